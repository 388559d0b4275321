package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploydb/deploydb"
)

// TestBrowserLiveKeepsInput: live.js replaces the innerHTML of each
// data-live part whenever it differs, and it always differs after a second
// (the "N s ago" times): on /deliveries the redeliver form (its reason
// input) is inside #failed, so any event in the system wipes what an admin
// is typing, and takes the keyboard focus away (the same holds for the
// Approve/Reject buttons inside #approvals).
func TestBrowserLiveKeepsInput(t *testing.T) {
	s := newSiteWithTokens(t)
	s.publish(t, "billing", "1.0.0")
	now := time.Now()
	due, err := s.store.ClaimDeliveries(t.Context(), now, 1, time.Minute)
	if err != nil || len(due) != 1 {
		t.Fatalf("claim: %v, %d deliveries", err, len(due))
	}
	if err := s.store.RecordAttempt(t.Context(), deploydb.AttemptResult{
		Attempt: deploydb.Attempt{Delivery: due[0].ID, StatusCode: 410, Error: "HTTP 410 Gone", CreatedAt: deploydb.NewTime(now)},
		Done:    true, Status: deploydb.DeliveryFailed, NextAttemptAt: now,
	}); err != nil {
		t.Fatal(err)
	}
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

// TestBrowserRefreshThrottle: f399b18 promises "a refresh a second
// at most under a burst of events", but live.js only delays a refresh
// when an event arrives while a fetch is in flight: events spaced wider
// than a fetch takes (here 150 ms apart, a fetch takes a few ms) each
// refetch the whole page at once.
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
