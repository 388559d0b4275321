package main

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestServeDemo runs serve --demo, as the README's first command does, and
// watches the demo move through the API: CI publishes, the orchestrator
// (called by the webhook) starts and completes deployments, the test jobs
// verify them, so that a flow reaches its second environment; the page a
// newcomer opens shows it; the token the log gives signs in; and the
// temporary directory is gone once the server stops.
func TestServeDemo(t *testing.T) {
	t.Parallel()
	srv := launchServe(t, nil, "--demo", "--listen", "127.0.0.1:0")
	c := api{t: t, url: srv.URL}
	// Anonymous callers may read.
	seen := map[deploydb.EventType]bool{}
	var after int64
	for deadline := time.Now().Add(90 * time.Second); ; {
		var evs []deploydb.Event
		c.call("GET", "/api/events?after="+itoa(after), nil, 200, &evs)
		for _, ev := range evs {
			seen[ev.Type] = true
			after = ev.ID
		}
		if seen[deploydb.EventArtifactPublished] && seen[deploydb.EventDeploymentStarted] && seen[deploydb.EventDeploymentCompleted] &&
			seen[deploydb.EventPromotionCompleted] && seen[deploydb.EventDeploymentVerified] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 90 s the demo recorded only %v\nlogs:\n%s", seen, srv.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	status, page := fetch(t, srv.URL+"/", "")
	if status != 200 || !strings.Contains(page, `<span class="s">verified</span>`) {
		t.Errorf("GET / = %d, the matrix shows nothing verified:\n%s", status, page)
	}
	// The log names the file of the token that signs in and approves;
	// the token itself is never logged.
	m := regexp.MustCompile(`msg="demo: running[^"]*" .*token_file=(\S+)`).FindStringSubmatch(srv.logs.String())
	if m == nil {
		t.Fatalf("no token file in the log:\n%s", srv.logs)
	}
	if strings.Contains(srv.logs.String(), "ddb_") {
		t.Errorf("the log shows a token's secret:\n%s", srv.logs)
	}
	secret, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(m[1]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file's mode is %v (%v), want 0600", fi.Mode(), err)
	}
	m[1] = strings.TrimSpace(string(secret))
	// It is an admin's: the profiler (admin only) answers it, and not
	// an anonymous reader.
	if status, _ := fetch(t, srv.URL+"/debug/pprof/", m[1]); status != 200 {
		t.Errorf("the demo's token got %d from an admin route, want 200", status)
	}
	if status, _ := fetch(t, srv.URL+"/debug/pprof/", ""); status != 401 {
		t.Errorf("an anonymous reader got %d from an admin route, want 401", status)
	}
	dir := regexp.MustCompile(`config=(/\S+)/config `).FindStringSubmatch(srv.logs.String())
	srv.stop()
	if dir == nil {
		t.Fatalf("the log does not say where the demo's files are:\n%s", srv.logs)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there after the server stopped (%v)", dir[1], err)
	}
}

// fetch GETs url, with token if not "", and returns the status and body.
func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
