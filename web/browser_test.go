package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploydb/deploydb"
)

// The browser tests drive the UI in a real headless Chromium (Debian's
// chromium package; .ci/run installs it). Without one they skip, saying
// so. With DEPLOYDB_SCREENSHOTS=DIR they also write a screenshot of each
// page there (make screenshots: docs/screenshots).

// chromium returns the path of the Chromium to drive, or skips t.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DEPLOYDB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DEPLOYDB_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium to drive, and DEPLOYDB_REQUIRE_BROWSER is set (CI): install Debian's chromium package, or set DEPLOYDB_CHROMIUM")
	}
	t.Skip("no Chromium to drive (install Debian's chromium package, or set DEPLOYDB_CHROMIUM): the browser tests skip")
	return ""
}

// browser starts a headless Chromium and returns a context to drive one
// tab of it; it ends with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// do runs the browser steps, failing t on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value, failing t on an error.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the visible text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "the text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// poll waits until the JavaScript expression is true. A page that
// navigates meanwhile (a form posted, a redirect) is polled again once
// there.
func poll(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot writes the page as it is to DEPLOYDB_SCREENSHOTS/name.png,
// when that is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DEPLOYDB_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
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
	screenshot(t, ctx, "matrix")

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
	} {
		do(t, ctx, "open "+p.path, chromedp.Navigate(s.URL+p.path))
		if got := text(t, ctx, "main"); !strings.Contains(got, p.want) {
			t.Errorf("%s says %q, want %q in it", p.path, got, p.want)
		}
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
	screenshot(t, ctx, "approvals-signed-in")
	do(t, ctx, "approve as alice", chromedp.Click(chromedp.CSS(`form.decide button[value="approve"]`)))
	poll(t, ctx, "the approval is done", `document.querySelector("#approvals") && document.querySelector("#approvals").textContent.includes("Nothing waits for a decision.")`, 10*time.Second)
	if d, err := s.store.FindDeployment(t.Context(), prod); err != nil || d.Status != deploydb.DeploymentSuccess {
		t.Errorf("after alice's approval the deployment is %v (%v), want SUCCESS", d.Status, err)
	}
}
