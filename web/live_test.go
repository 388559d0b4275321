package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploydb/deploydb"
)

// TestBrowserLiveKeepsInput: a live refresh leaves alone the part of the
// page the reader is busy with: on /deliveries the redeliver form's reason
// is inside #failed, which changes every second ("N s ago"); what was
// typed stays, and so does the keyboard focus. (Found by review: the next
// event wiped it.)
func TestBrowserLiveKeepsInput(t *testing.T) {
	s := newSiteWithTokens(t)
	s.publish(t, "billing", "1.0.0")
	s.failDelivery(t)
	ctx := browser(t)
	do(t, ctx, "sign in as ops",
		chromedp.Navigate(s.URL+"/signin?next=/deliveries"),
		chromedp.SendKeys(chromedp.ID("token"), opsSecret),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`#failed input[name="reason"]`)),
	)
	poll(t, ctx, "the event stream opens", `document.documentElement.dataset.liveState === "open"`, 10*time.Second)
	do(t, ctx, "type a reason",
		chromedp.Focus(chromedp.CSS(`#failed input[name="reason"]`)),
		chromedp.SendKeys(chromedp.CSS(`#failed input[name="reason"]`), "receiver fixed"),
	)
	// A second or more after the page was rendered ("0 s ago" is now "1 s
	// ago"), something happens elsewhere.
	poll(t, ctx, "a second passes", `performance.now() > 2500`, 10*time.Second)
	s.publish(t, "checkout", "1.0.0")
	poll(t, ctx, "the page refreshes", `document.documentElement.hasAttribute("data-refreshed")`, 10*time.Second)
	value := get(t, ctx, "the reason", chromedp.Evaluate[string](`document.querySelector('#failed input[name="reason"]').value`))
	focused := get(t, ctx, "the focus", chromedp.Evaluate[string](`document.activeElement.name || document.activeElement.tagName`))
	if value != "receiver fixed" || focused != "reason" {
		t.Errorf("after a live refresh the reason is %q (want %q) and the focus is on %q (want the reason input)", value, "receiver fixed", focused)
	}
}

// TestBrowserRefreshThrottle: a page fetches itself about once a second
// at most, however many events come: 40 events 75 ms apart. (Found by
// review: each event spaced wider than a fetch refetched the whole page.)
func TestBrowserRefreshThrottle(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	do(t, ctx, "open the matrix",
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-service="checkout"]`)),
	)
	poll(t, ctx, "the event stream opens", `document.documentElement.dataset.liveState === "open"`, 10*time.Second)
	get(t, ctx, "count the page's fetches", chromedp.Evaluate[bool](
		`window.fetches = 0; (f => { window.fetch = function () { window.fetches++; return f.apply(this, arguments); }; })(window.fetch); true`))
	start := time.Now()
	for i := 0; i < 20; i++ { // 20 events over about 3 s
		if _, err := s.store.LockEnvironment(t.Context(), s.cfg, "prod", deploydb.Action{Actor: "alice", Reason: "burst"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(75 * time.Millisecond)
		if err := s.store.UnlockEnvironment(t.Context(), s.cfg, "prod", deploydb.Action{Actor: "alice", Reason: "burst"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(75 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // the last delayed refresh, if any
	n := get(t, ctx, "the fetches", chromedp.Evaluate[int](`window.fetches`))
	if limit := int(took.Seconds()) + 3; n > limit {
		t.Errorf("%d page fetches for 40 events over %s, want at most about one a second (%d)", n, took.Round(100*time.Millisecond), limit)
	}
}
