package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/browsertest"
)

// TestScreenshots takes the screenshots of docs/screenshots (make
// screenshots) from serve --demo after it has run a while: real pages,
// real data. It runs only with DEPLOYDB_SCREENSHOTS set.
func TestScreenshots(t *testing.T) {
	if os.Getenv("DEPLOYDB_SCREENSHOTS") == "" {
		t.Skip("takes screenshots for docs/: run with DEPLOYDB_SCREENSHOTS=DIR (make screenshots)")
	}
	srv := launchServe(t, nil, "--demo", "--listen", "127.0.0.1:0")
	// Let the demo fill the matrix: releases in every environment, some
	// failed, one waiting for approval.
	c := api{t: t, url: srv.URL}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		var waiting []deploydb.Deployment
		c.call("GET", "/api/deployments?status=COMPLETED&environment=prod", nil, 200, &waiting)
		var verified []deploydb.Deployment
		c.call("GET", "/api/deployments?status=SUCCESS&environment=prod", nil, 200, &verified)
		if len(waiting) > 0 && len(verified) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo has no release verified and none waiting in prod after 3 minutes\n%s", srv.logs)
		}
		time.Sleep(time.Second)
	}
	m := regexp.MustCompile(`msg="demo: running[^"]*" .*token_file=(\S+)`).FindStringSubmatch(srv.logs.String())
	if m == nil {
		t.Fatalf("no token file in the log")
	}
	secret, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	m[1] = strings.TrimSpace(string(secret))
	ctx := browsertest.Start(t, 2*time.Minute)
	browsertest.Do(t, ctx, "open the matrix", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#matrix")))
	browsertest.Screenshot(t, ctx, "matrix")
	browsertest.Do(t, ctx, "open a service", chromedp.Navigate(srv.URL+"/services/checkout"), chromedp.WaitVisible(chromedp.ID("timeline")))
	browsertest.Screenshot(t, ctx, "service")
	var flows []deploydb.Flow
	c.call("GET", "/api/flows?service=billing", nil, 200, &flows)
	if len(flows) > 0 {
		browsertest.Do(t, ctx, "open a flow", chromedp.Navigate(srv.URL+"/flows/"+itoa(flows[len(flows)-1].ID)), chromedp.WaitVisible(chromedp.ID("stages")))
		browsertest.Screenshot(t, ctx, "flow")
	}
	browsertest.Do(t, ctx, "open an environment", chromedp.Navigate(srv.URL+"/environments/prod"), chromedp.WaitVisible(chromedp.ID("history")))
	browsertest.Screenshot(t, ctx, "environment")
	browsertest.Do(t, ctx, "sign in",
		chromedp.Navigate(srv.URL+"/signin?next=/approvals"),
		chromedp.SendKeys(chromedp.ID("token"), m[1]),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("approvals")),
	)
	browsertest.Screenshot(t, ctx, "approvals")
	browsertest.Do(t, ctx, "open the deliveries", chromedp.Navigate(srv.URL+"/deliveries"), chromedp.WaitVisible(chromedp.ID("failed")))
	browsertest.Screenshot(t, ctx, "deliveries")
}
