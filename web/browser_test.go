package web_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/browsertest"
)

// The browser tests drive the UI in a real headless Chromium
// (internal/browsertest). With DEPLOYDB_SCREENSHOTS=DIR they also write a
// screenshot of each page there.

// browser starts a Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, 90*time.Second)
}

var (
	do         = browsertest.Do
	text       = browsertest.Text
	poll       = browsertest.Poll
	screenshot = browsertest.Screenshot
)

func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Get(t, ctx, what, a)
}

// a11yCheck is what accessible finds wrong with the page: form controls
// without a label, buttons without a name, text whose contrast with its
// background is below WCAG AA (4.5:1), no lang, no h1.
const a11yCheck = `(() => {
  const problems = [];
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.getAttribute("aria-label") || el.closest("label");
    if (!labelled) problems.push("no label: " + el.outerHTML.slice(0, 80));
  }
  for (const b of document.querySelectorAll("button, a")) {
    if (!(b.textContent.trim() || b.getAttribute("aria-label"))) problems.push("no name: " + b.outerHTML.slice(0, 80));
  }
  const rgb = c => c.match(/[\d.]+/g).map(Number);
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    const m = rgb(c);
    return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]);
  };
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== "transparent" && !(rgb(c).length === 4 && rgb(c)[3] === 0)) return c;
    }
    return "rgb(255, 255, 255)";
  };
  for (const el of document.querySelectorAll("body *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const s = getComputedStyle(el);
    if (s.visibility === "hidden" || s.display === "none" || el.closest(".skip, .sr")) continue;
    const a = lum(s.color), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) problems.push("contrast " + ratio.toFixed(2) + ":1 of " + el.tagName.toLowerCase() + "." + el.className + " (" + el.textContent.trim().slice(0, 30) + ")");
  }
  if (!document.documentElement.lang) problems.push("no lang on html");
  if (!document.querySelector("h1")) problems.push("no h1");
  return problems;
})()`

// accessible fails t with what a11yCheck finds on the page open in ctx.
func accessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	for _, p := range get(t, ctx, "check "+page, chromedp.Evaluate[[]string](a11yCheck)) {
		t.Errorf("%s: %s", page, p)
	}
}

// history gives a site a history to show: billing verified in integ and
// staging and waiting for release-approval in prod, checkout failed in
// integ, a locked environment.
func history(t *testing.T, s *site) (billing, checkout *deploydb.Flow) {
	t.Helper()
	billing = s.toProd(t, "1.4.2")
	checkout = s.publish(t, "checkout", "2.0.0")
	s.report(t, checkout.Deployments[0].ID, deploydb.DeploymentStarted)
	s.report(t, checkout.Deployments[0].ID, deploydb.DeploymentFailed)
	return billing, checkout
}

func TestBrowserPages(t *testing.T) {
	s := newSiteWithTokens(t)
	billing, checkout := history(t, s)
	ctx := browser(t)

	// Anonymous readers are not let in: the page says so and offers to
	// sign in; the sign-in form, filled in by keyboard, lets a reader in.
	do(t, ctx, "open / without a token", chromedp.Navigate(s.URL+"/"))
	if got := text(t, ctx, "main"); !strings.Contains(got, "Sign in with a token") {
		t.Fatalf("the page without a token says %q", got)
	}
	accessible(t, ctx, "/ (401)")
	screenshot(t, ctx, "signin-needed")
	do(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin?next=/"),
		chromedp.SendKeys(chromedp.ID("token"), readerSecret),
		chromedp.SendKeys(chromedp.ID("token"), "\r"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-service="billing"]`)),
	)
	if got := text(t, ctx, "header .who"); !strings.Contains(got, "signed in as reader") {
		t.Errorf("after signing in the header says %q", got)
	}

	// The matrix: versions and states in words.
	billingRow, checkoutRow := text(t, ctx, `tr[data-service="billing"]`), text(t, ctx, `tr[data-service="checkout"]`)
	for _, want := range []string{"1.4.2", "verified", "deployed, not verified yet"} {
		if !strings.Contains(billingRow, want) {
			t.Errorf("billing's row %q has no %q", billingRow, want)
		}
	}
	if !strings.Contains(checkoutRow, "failed: 2.0.0") {
		t.Errorf("checkout's row %q does not show its failure", checkoutRow)
	}
	accessible(t, ctx, "/")
	screenshot(t, ctx, "matrix")

	// Keyboard: the first Tab reaches the link that skips to the content.
	do(t, ctx, "press Tab", chromedp.KeyEvent("\t"))
	if got := get(t, ctx, "the focus", chromedp.Evaluate[string](`document.activeElement.textContent`)); got != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}

	// Keyboard: the filter is reached and used without a mouse.
	do(t, ctx, "filter by keyboard",
		chromedp.Focus(chromedp.ID("service")),
		chromedp.SendKeys(chromedp.ID("service"), "check\r"),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-service="billing"]`)),
	)
	if got := text(t, ctx, "#count"); !strings.Contains(got, "1 of 2 services") {
		t.Errorf("filtered, the count says %q", got)
	}

	// The other pages.
	for _, p := range []struct{ path, name, want string }{
		{"/services/billing", "service", "release-approval"},
		{"/flows/" + strconv.FormatInt(billing.ID, 10), "flow", "smoke: success by tests"},
		{"/flows/" + strconv.FormatInt(checkout.ID, 10), "flow-failed", "failed"},
		{"/environments/prod", "environment", "billing"},
		{"/approvals", "approvals", "group release-managers"},
		{"/deliveries", "deliveries", "No failed deliveries."},
		{"/?at=" + time.Now().UTC().Format(time.RFC3339), "matrix-at", "As it was at"},
	} {
		do(t, ctx, "open "+p.path, chromedp.Navigate(s.URL+p.path))
		if got := text(t, ctx, "main"); !strings.Contains(got, p.want) {
			t.Errorf("%s says %q, want %q in it", p.path, got, p.want)
		}
		accessible(t, ctx, p.path)
		screenshot(t, ctx, p.name)
	}
}

func TestBrowserLive(t *testing.T) {
	s := newSite(t) // no tokens: anonymous on loopback may read
	s.publish(t, "billing", "1.0.0")
	ctx := browser(t)
	do(t, ctx, "open the matrix",
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-service="checkout"]`)),
	)
	// A mark that a reload would wipe out.
	get(t, ctx, "mark the page", chromedp.Evaluate[int](`window.deploydbMark = 42`))
	if got := text(t, ctx, `tr[data-service="checkout"]`); strings.Contains(got, "3.1.0") {
		t.Fatalf("checkout's row %q shows 3.1.0 before it exists", got)
	}
	// The page hears of what happens once its event stream is open.
	poll(t, ctx, "the event stream opens", `document.documentElement.dataset.liveState === "open"`, 10*time.Second)

	// A deployment happens elsewhere: the row changes, without a reload.
	fl := s.publish(t, "checkout", "3.1.0")
	s.report(t, fl.Deployments[0].ID, deploydb.DeploymentStarted)
	s.report(t, fl.Deployments[0].ID, deploydb.DeploymentCompleted)
	poll(t, ctx, "see the deployment", `document.querySelector('tr[data-service="checkout"]').textContent.includes("3.1.0")`, 15*time.Second)
	poll(t, ctx, "see it completed", `document.querySelector('tr[data-service="checkout"]').textContent.includes("deployed, not verified yet")`, 15*time.Second)
	if mark := get(t, ctx, "read the mark", chromedp.Evaluate[int](`window.deploydbMark || 0`)); mark != 42 {
		t.Errorf("the page was reloaded (mark %d): want the row changed in place", mark)
	}
}

func TestBrowserApprove(t *testing.T) {
	s := newSiteWithTokens(t)
	billing, _ := history(t, s)
	prod := billing.Deployments[2].ID
	ctx := browser(t)
	signIn := func(secret string) {
		t.Helper()
		do(t, ctx, "sign in",
			chromedp.Navigate(s.URL+"/signin?next=/approvals"),
			chromedp.SendKeys(chromedp.ID("token"), secret),
			chromedp.Submit(chromedp.ID("token")),
			chromedp.WaitVisible(chromedp.ID("approvals")),
		)
	}
	// bob may report promotions but is no release manager: no button,
	// and the server refuses his decision should he post it anyway.
	signIn(bobSecret)
	buttons := get(t, ctx, "count the buttons", chromedp.Evaluate[int](`document.querySelectorAll('form.decide button').length`))
	if got := text(t, ctx, "#approvals"); buttons != 0 || !strings.Contains(got, "not for bob") {
		t.Errorf("bob sees %d buttons and %q", buttons, got)
	}
	status := get(t, ctx, "post as bob", chromedp.Evaluate[int](fmt.Sprintf(
		`fetch("/approvals/%d/release-approval", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "decision=approve"}).then(r => r.status)`, prod),
		chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("bob's approval posted from the page = %d, want 403", status)
	}
	if d, err := s.store.FindDeployment(t.Context(), prod); err != nil || d.Status != deploydb.DeploymentCompleted {
		t.Fatalf("after bob the deployment is %v (%v)", d.Status, err)
	}

	// alice is a release manager: she approves with the button.
	signIn(aliceSecret)
	accessible(t, ctx, "/approvals (alice)")
	screenshot(t, ctx, "approvals-signed-in")
	do(t, ctx, "approve as alice", chromedp.Click(chromedp.CSS(`form.decide button[value="approve"]`)))
	poll(t, ctx, "the approval is done", `document.querySelector("#approvals") && document.querySelector("#approvals").textContent.includes("Nothing waits for a decision.")`, 10*time.Second)
	if d, err := s.store.FindDeployment(t.Context(), prod); err != nil || d.Status != deploydb.DeploymentSuccess {
		t.Errorf("after alice's approval the deployment is %v (%v), want SUCCESS", d.Status, err)
	}
}
