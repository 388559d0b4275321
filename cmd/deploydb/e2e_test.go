package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// hookCall is one webhook call a receiver got.
type hookCall struct {
	Path        string
	ContentType string
	Body        map[string]any
	Header      http.Header
}

// receiver is a real HTTP server standing in for Jenkins, Rundeck or
// PagerDuty: it records every call.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	calls []hookCall
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook %s: body is not JSON: %s", req.URL.Path, b)
		}
		r.mu.Lock()
		r.calls = append(r.calls, hookCall{Path: req.URL.Path, ContentType: req.Header.Get("Content-Type"), Body: body, Header: req.Header.Clone()})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitCalls waits until path has been called n times and returns those calls.
func (r *receiver) waitCalls(t *testing.T, path string, n int) []hookCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var got []hookCall
		for _, c := range r.calls {
			if c.Path == path {
				got = append(got, c)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			if len(got) > n {
				t.Fatalf("%s called %d times, want %d", path, len(got), n)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s called %d times within 10s, want %d; all calls: %v", path, len(got), n, r.paths())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *receiver) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.Path)
	}
	return out
}

// writeConfig writes a config directory of three environments whose hooks
// point at the receiver through ${env:HOOK}.
func writeConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"services/billing.yml": `description: Billing
artifacts: ["com.example:billing"]
pipelines: [standard]
promotions: [smoke]
`,
		"environments/integ.yml": `description: Integration
webhook:
  deployment:
    created: ["${env:HOOK}/integ/deploy"]
`,
		"environments/staging.yml": `description: Staging
webhook:
  deployment:
    created: ["${env:HOOK}/staging/deploy"]
`,
		"environments/prod.yml": `description: Production
production: true
webhook:
  deployment:
    created: ["${env:HOOK}/prod/deploy"]
`,
		"pipelines/standard.yml": `description: integ, then staging, then prod
environments:
  integ:
  staging:
    promotions: [smoke]
  prod:
    promotions: [approval]
`,
		"promotions/smoke.yml": `type: basic
description: smoke tests
`,
		"promotions/approval.yml": `type: manual
description: a release manager approves
attributes:
  allowedGroup: release-managers
`,
		"webhook/global.yml": `deployment:
  created: ["${env:HOOK}/global/created"]
  started: ["${env:HOOK}/global/started"]
  completed:
    - "${env:HOOK}/global/completed-1"
    - "${env:HOOK}/global/completed-2"
  failed: ["${env:HOOK}/global/failed"]
  verified: ["${env:HOOK}/global/verified"]
promotion:
  completed: ["${env:HOOK}/global/promotion"]
flow:
  completed: ["${env:HOOK}/global/flow"]
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type api struct {
	t   *testing.T
	url string
}

func (a api) call(method, path string, body any, want int, out any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (a api) flowOf(artifact int64) deploydb.Flow {
	a.t.Helper()
	var flows []deploydb.Flow
	a.call("GET", fmt.Sprintf("/api/flows?artifact=%d", artifact), nil, 200, &flows)
	if len(flows) != 1 {
		a.t.Fatalf("artifact %d has %d flows, want 1", artifact, len(flows))
	}
	return flows[0]
}

// payload is the 0.3 webhook body of a deployment in a status.
func payload(t *testing.T, d deploydb.Deployment, status deploydb.DeploymentStatus) map[string]any {
	t.Helper()
	d.Status = status
	d.Artifact.PublishedBy = "" // the 0.3 artifact has no publisher
	b, _ := json.Marshal(map[string]any{
		"id": d.ID, "artifact": d.Artifact, "service": d.Service, "environment": d.Environment,
		"createdAt": d.CreatedAt, "status": d.Status,
	})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func checkCall(t *testing.T, c hookCall, contentType string, want map[string]any) {
	t.Helper()
	if c.ContentType != contentType {
		t.Errorf("%s: Content-Type = %q, want %q", c.Path, c.ContentType, contentType)
	}
	if diff := cmp.Diff(want, c.Body); diff != "" {
		t.Errorf("%s: body (-want +got):\n%s", c.Path, diff)
	}
}

// TestFlowEndToEnd runs the seed flow through the real server and real
// webhook receivers across three environments, with a restart in the middle.
func TestFlowEndToEnd(t *testing.T) {
	t.Parallel()
	testFlowEndToEnd(t, filepath.Join(t.TempDir(), "deploydb.db"))
}

// testFlowEndToEnd runs a flow through DeployDB serving database (empty).
func testFlowEndToEnd(t *testing.T, db string) {
	hooks := newReceiver(t)
	cfgDir := writeConfig(t)
	env := map[string]string{"HOOK": hooks.URL}
	srv := launch(t, cfgDir, db, env)
	c := api{t: t, url: srv.URL}

	// CI publishes.
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.4.0", "sourceUrl": "https://ci.example.com/billing-1.4.0.jar"}, 201, &art)
	f := c.flowOf(art.ID)
	if f.Status != deploydb.FlowCreated || len(f.Deployments) != 3 {
		t.Fatalf("flow = %+v", f)
	}
	for i, want := range []struct {
		env    string
		status deploydb.DeploymentStatus
		promos []string
	}{{"integ", deploydb.DeploymentCreated, []string{"smoke"}}, {"staging", deploydb.DeploymentNotStarted, []string{"smoke"}}, {"prod", deploydb.DeploymentNotStarted, []string{"smoke", "approval"}}} {
		d := f.Deployments[i]
		var names []string
		for _, p := range d.Promotions {
			names = append(names, p.Promotion)
			if p.Status != deploydb.PromotionNotStarted {
				t.Errorf("%s/%s = %s, want NOT_STARTED", d.Environment, p.Promotion, p.Status)
			}
		}
		if d.Environment != want.env || d.Status != want.status || !cmp.Equal(names, want.promos) {
			t.Fatalf("deployment %d = %s %s %v, want %s %s %v", i, d.Environment, d.Status, names, want.env, want.status, want.promos)
		}
	}

	// The orchestrator was told to deploy to integ: environment hook and
	// global hook, same 0.3 body.
	integ := f.Deployments[0]
	for _, path := range []string{"/integ/deploy", "/global/created"} {
		calls := hooks.waitCalls(t, path, 1)
		checkCall(t, calls[0], "application/vnd.deploydb.deploymentcreated.v1+json", payload(t, integ, deploydb.DeploymentCreated))
	}

	// Each environment in turn: started, completed, promotions.
	envs := []struct {
		name   string
		promos []string
	}{{"integ", []string{"smoke"}}, {"staging", []string{"smoke"}}, {"prod", []string{"smoke", "approval"}}}
	for i, e := range envs {
		d := c.flowOf(art.ID).Deployments[i]
		if d.Status != deploydb.DeploymentCreated {
			t.Fatalf("%s = %s, want CREATED", e.name, d.Status)
		}
		c.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "STARTED"}, 200, nil)
		checkCall(t, hooks.waitCalls(t, "/global/started", i+1)[i], "application/vnd.deploydb.deploymentstarted.v1+json", payload(t, d, deploydb.DeploymentStarted))

		var completed deploydb.Deployment
		c.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "COMPLETED"}, 200, &completed)
		if completed.Status != deploydb.DeploymentCompleted {
			t.Fatalf("%s after COMPLETED = %s", e.name, completed.Status)
		}
		for _, r := range completed.Promotions {
			if r.Status != deploydb.PromotionStarted {
				t.Fatalf("%s/%s = %s, want STARTED once deployed", e.name, r.Promotion, r.Status)
			}
		}
		// Several URLs for one event each get the call.
		for _, path := range []string{"/global/completed-1", "/global/completed-2"} {
			checkCall(t, hooks.waitCalls(t, path, i+1)[i], "application/vnd.deploydb.deploymentcompleted.v1+json", payload(t, d, deploydb.DeploymentCompleted))
		}

		if i == 1 {
			// DeployDB restarts between two reports: nothing is lost.
			srv.stop()
			srv = launch(t, cfgDir, db, env)
			c = api{t: t, url: srv.URL}
			var again deploydb.Deployment
			c.call("GET", fmt.Sprintf("/api/deployments/%d", d.ID), nil, 200, &again)
			if diff := cmp.Diff(completed, again); diff != "" {
				t.Fatalf("deployment after restart (-before +after):\n%s", diff)
			}
		}

		for j, name := range e.promos {
			info := fmt.Sprintf("https://ci.example.com/job/%s/%d", name, d.ID)
			var res deploydb.PromotionResult
			c.call("POST", fmt.Sprintf("/api/deployments/%d/promotions", d.ID), map[string]any{"name": name, "status": "SUCCESS", "infoUrl": info}, 201, &res)
			if res.Status != deploydb.PromotionSuccess || res.InfoURL != info {
				t.Fatalf("result = %+v", res)
			}
			n := 0
			for k := 0; k < i; k++ {
				n += len(envs[k].promos)
			}
			call := hooks.waitCalls(t, "/global/promotion", n+j+1)[n+j]
			if call.ContentType != "application/vnd.deploydb.promotioncompleted.v1+json" {
				t.Errorf("promotion Content-Type = %q", call.ContentType)
			}
			pr, _ := call.Body["promotionResult"].(map[string]any)
			if pr["promotion"] != name || pr["status"] != "SUCCESS" || pr["infoUrl"] != info || call.Body["id"] != float64(d.ID) {
				t.Errorf("promotion payload = %v", call.Body)
			}
			// The deployment as the result left it: verified by the last one.
			wantStatus := "COMPLETED"
			if j == len(e.promos)-1 {
				wantStatus = "SUCCESS"
			}
			if call.Body["status"] != wantStatus {
				t.Errorf("promotion payload status = %v, want %s", call.Body["status"], wantStatus)
			}
		}
		var verified deploydb.Deployment
		c.call("GET", fmt.Sprintf("/api/deployments/%d", d.ID), nil, 200, &verified)
		if verified.Status != deploydb.DeploymentSuccess {
			t.Fatalf("%s = %s after every promotion passed, want SUCCESS", e.name, verified.Status)
		}
		checkCall(t, hooks.waitCalls(t, "/global/verified", i+1)[i], "application/vnd.deploydb.deploymentverified.v1+json", payload(t, d, deploydb.DeploymentSuccess))
		if i+1 < len(envs) {
			next := c.flowOf(art.ID).Deployments[i+1]
			checkCall(t, hooks.waitCalls(t, "/"+next.Environment+"/deploy", 1)[0], "application/vnd.deploydb.deploymentcreated.v1+json", payload(t, next, deploydb.DeploymentCreated))
		}
	}
	if f := c.flowOf(art.ID); f.Status != deploydb.FlowSuccess {
		t.Fatalf("flow = %s after prod verified, want SUCCESS", f.Status)
	}
	flowCall := hooks.waitCalls(t, "/global/flow", 1)[0]
	if flowCall.ContentType != "application/vnd.deploydb.flowcompleted.v1+json" || flowCall.Body["status"] != "SUCCESS" {
		t.Errorf("flow.completed = %s %v", flowCall.ContentType, flowCall.Body)
	}
	if got := hooks.paths(); len(got) != 4+3+6+4+3+2+1 {
		t.Errorf("%d webhook calls, want %d: %v", len(got), 4+3+6+4+3+2+1, got)
	}
}

// TestFlowFailure: a FAILED report stops the flow and fires deployment.failed.
func TestFlowFailure(t *testing.T) {
	t.Parallel()
	hooks := newReceiver(t)
	srv := launch(t, writeConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), map[string]string{"HOOK": hooks.URL})
	c := api{t: t, url: srv.URL}
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci.example.com/b.jar"}, 201, &art)
	d := c.flowOf(art.ID).Deployments[0]
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "FAILED"}, 200, nil)
	checkCall(t, hooks.waitCalls(t, "/global/failed", 1)[0], "application/vnd.deploydb.deploymentfailed.v1+json", payload(t, d, deploydb.DeploymentFailed))
	f := c.flowOf(art.ID)
	if f.Status != deploydb.FlowFailed || f.Deployments[1].Status != deploydb.DeploymentNotStarted {
		t.Fatalf("flow = %s, staging %s", f.Status, f.Deployments[1].Status)
	}
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "COMPLETED"}, 409, nil)
	if strings.Contains(srv.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", srv.logs)
	}
}

// TestServeRefusesBrokenConfig: a broken config directory stops the server
// from starting and says which file is broken.
func TestServeRefusesBrokenConfig(t *testing.T) {
	t.Parallel()
	dir := writeConfig(t)
	if err := os.WriteFile(filepath.Join(dir, "services", "billing.yml"), []byte("pipelines: [nope]\nartifacts: [\"a:b\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--config", dir, "--database", filepath.Join(t.TempDir(), "d.db"), "--listen", "127.0.0.1:0"},
		func(k string) string { return map[string]string{"HOOK": "http://127.0.0.1:9"}[k] }, strings.NewReader(""), io.Discard, &stderr)
	if err == nil {
		t.Fatal("serve started with a broken config")
	}
	if msg := stderr.String() + err.Error(); !strings.Contains(msg, "services/billing.yml") || !strings.Contains(msg, "nope") {
		t.Fatalf("error does not name the broken file and reference: %v\n%s", err, stderr.String())
	}
}

// TestCompat03 serves the DeployDB 0.3 example configuration unchanged and
// publishes artifacts through it.
func TestCompat03(t *testing.T) {
	t.Parallel()
	srv := startServer(t, filepath.Join("..", "..", "testdata", "config", "deploydb-0.3"))
	c := api{t: t, url: srv}
	for _, tc := range []struct {
		group, name, service string
		promotions           []string
	}{
		{"basic.group.1", "bg1", "basicServ", []string{"basicPromo"}},
		{"adv.group.2", "bg2", "advServ", []string{"manualPromo", "basicPromo"}},
	} {
		var art deploydb.Artifact
		c.call("POST", "/api/artifacts", map[string]any{"group": tc.group, "name": tc.name, "version": "0.3.0", "sourceUrl": "http://example.com/" + tc.name + ".jar"}, 201, &art)
		f := c.flowOf(art.ID)
		if f.Service != tc.service || len(f.Deployments) != 1 {
			t.Fatalf("flow = %+v", f)
		}
		d := f.Deployments[0]
		var names []string
		for _, p := range d.Promotions {
			names = append(names, p.Promotion)
		}
		if d.Environment != "basicEnv" || d.Status != deploydb.DeploymentCreated || !cmp.Equal(names, tc.promotions) {
			t.Fatalf("deployment = %s %s %v, want basicEnv CREATED %v", d.Environment, d.Status, names, tc.promotions)
		}
	}
	var promo deploydb.Promotion
	c.call("GET", "/api/promotions/manualPromo", nil, 200, &promo)
	if promo.Type != deploydb.PromotionTypeManual || promo.Attributes["allowedGroup"] != "ManualPromotionGroup" {
		t.Fatalf("manualPromo = %+v", promo)
	}
}

// TestServeRefusesNonLoopback: without API tokens every caller is
// anonymous, so serving beyond loopback needs --insecure-anonymous.
func TestServeRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--config", filepath.Join("..", "..", "examples", "config"), "--database", filepath.Join(t.TempDir(), "d.db"), "--listen", "0.0.0.0:0"},
		func(string) string { return "" }, strings.NewReader(""), io.Discard, &stderr)
	if deploydb.ErrorCode(err) != deploydb.EINVALID || !strings.Contains(stderr.String(), "--insecure-anonymous") {
		t.Fatalf("serve on 0.0.0.0 = %v, stderr %q; want a refusal naming --insecure-anonymous", err, stderr.String())
	}
}

// TestShutdownWithOpenStream: an event stream never goes idle, yet SIGTERM
// (here: cancelling serve's context) still shuts down cleanly.
func TestShutdownWithOpenStream(t *testing.T) {
	t.Parallel()
	srv := launch(t, filepath.Join("..", "..", "examples", "config"), filepath.Join(t.TempDir(), "d.db"), nil)
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/events/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream = %d", resp.StatusCode)
	}
	srv.stop() // fails the test if serve returns an error or hangs
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
}
