package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
)

// writeFiles writes files (slash-separated path → content) into dir,
// replacing those already there.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stagingSmokeConfig writes config A: billing through integ then staging,
// where a deployment must pass the promotion smoke.
func stagingSmokeConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ:\n  staging:\n    promotions: [smoke]\n",
		"promotions/smoke.yml":     "type: basic\n",
	})
	return dir
}

// promotionsOf returns the names of the promotions a deployment must pass.
func promotionsOf(d deploydb.Deployment) []string {
	names := []string{}
	for _, p := range d.Promotions {
		names = append(names, p.Promotion)
	}
	return names
}

// deploy reports a deployment STARTED then COMPLETED and returns it as it
// is afterwards.
func (a api) deploy(d deploydb.Deployment) deploydb.Deployment {
	a.t.Helper()
	a.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "STARTED"}, 200, nil)
	var out deploydb.Deployment
	a.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "COMPLETED"}, 200, &out)
	return out
}

func (a api) publish(version string) deploydb.Flow {
	a.t.Helper()
	var art deploydb.Artifact
	a.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": version, "sourceUrl": "https://ci.example.com/billing-" + version + ".jar"}, 201, &art)
	return a.flowOf(art.ID)
}

func (a api) configStatus() deploydb.ConfigStatus {
	a.t.Helper()
	var st deploydb.ConfigStatus
	a.call("GET", "/api/config", nil, 200, &st)
	return st
}

// TestReloadInFlightFlowKeepsItsConfig: a flow created before a reload
// finishes under the config it was created with; a flow created after it
// follows the new one.
func TestReloadInFlightFlowKeepsItsConfig(t *testing.T) {
	t.Parallel()
	dir := stagingSmokeConfig(t)
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil)
	c := api{t: t, url: srv.URL}
	before := c.configStatus()

	// Under config A, 1.0.0 reaches staging, which requires smoke.
	old := c.publish("1.0.0")
	if d := c.deploy(old.Deployments[0]); d.Status != deploydb.DeploymentSuccess {
		t.Fatalf("integ = %s after COMPLETED with no promotion, want SUCCESS", d.Status)
	}
	old = c.flowOf(old.Artifact.ID)
	if s := old.Deployments[1]; s.Status != deploydb.DeploymentCreated || !slices.Equal(promotionsOf(s), []string{"smoke"}) {
		t.Fatalf("staging of the first flow = %s %v, want CREATED requiring smoke", s.Status, promotionsOf(s))
	}

	// Config B: staging no longer requires smoke.
	writeFiles(t, dir, map[string]string{"pipelines/standard.yml": "environments:\n  integ:\n  staging:\n"})
	var reloaded deploydb.ConfigStatus
	c.call("POST", "/api/config/reload", nil, 200, &reloaded)
	if reloaded.Checksum == before.Checksum || reloaded.LastError != "" || reloaded.LoadedAt.Before(before.LoadedAt.Time) {
		t.Fatalf("reload answered %+v, want a new checksum (was %s) and no error", reloaded, before.Checksum)
	}
	if st := c.configStatus(); st.Checksum != reloaded.Checksum {
		t.Fatalf("GET /api/config checksum = %s after the reload, want %s", st.Checksum, reloaded.Checksum)
	}

	// A flow created now follows config B.
	fresh := c.publish("2.0.0")
	if got := promotionsOf(fresh.Deployments[1]); len(got) != 0 {
		t.Fatalf("staging of a flow created after the reload requires %v, want nothing", got)
	}
	if fresh.ConfigChecksum != reloaded.Checksum || old.ConfigChecksum != before.Checksum {
		t.Errorf("flows record config %s and %s, want %s (before) and %s (after)", old.ConfigChecksum, fresh.ConfigChecksum, before.Checksum, reloaded.Checksum)
	}

	// The first flow still requires smoke in staging: COMPLETED is not
	// enough.
	s := c.deploy(c.flowOf(old.Artifact.ID).Deployments[1])
	if s.Status != deploydb.DeploymentCompleted || !slices.Equal(promotionsOf(s), []string{"smoke"}) || s.Promotions[0].Status != deploydb.PromotionStarted {
		t.Fatalf("staging of the first flow after COMPLETED = %s %v, want COMPLETED awaiting smoke", s.Status, s.Promotions)
	}
	c.call("POST", fmt.Sprintf("/api/deployments/%d/promotions", s.ID), map[string]any{"name": "smoke", "status": "SUCCESS", "infoUrl": "https://ci.example.com/smoke/1"}, 201, nil)
	if f := c.flowOf(old.Artifact.ID); f.Status != deploydb.FlowSuccess {
		t.Fatalf("first flow = %s after smoke passed, want SUCCESS", f.Status)
	}

	// The second flow's staging is verified once deployed.
	c.deploy(c.flowOf(fresh.Artifact.ID).Deployments[0])
	s = c.flowOf(fresh.Artifact.ID).Deployments[1]
	if s.Status != deploydb.DeploymentCreated {
		t.Fatalf("staging of the second flow = %s once integ passed and staging is free, want CREATED", s.Status)
	}
	if s = c.deploy(s); s.Status != deploydb.DeploymentSuccess {
		t.Fatalf("staging of the second flow after COMPLETED = %s, want SUCCESS: config B requires no promotion", s.Status)
	}
	if f := c.flowOf(fresh.Artifact.ID); f.Status != deploydb.FlowSuccess {
		t.Fatalf("second flow = %s, want SUCCESS", f.Status)
	}
	if !strings.Contains(srv.logs.String(), `msg="config reloaded"`) {
		t.Errorf("the reload is not logged:\n%s", srv.logs)
	}
}

// TestReloadBrokenConfigKeepsTheOld: a config that does not load is refused
// with every problem named, and the old config keeps serving.
func TestReloadBrokenConfigKeepsTheOld(t *testing.T) {
	t.Parallel()
	dir := stagingSmokeConfig(t)
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil)
	c := api{t: t, url: srv.URL}
	before := c.configStatus()
	if before.Checksum == "" || before.Dir == "" || len(before.Files) != 5 || before.LoadedAt.IsZero() || before.LastError != "" {
		t.Fatalf("GET /api/config = %+v, want the config loaded at start", before)
	}

	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [nowhere]\n",
		"environments/staging.yml": "production: \"yes\"\n",
	})
	resp, err := http.Post(srv.URL+"/api/config/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var problem struct {
		Code   string                `json:"code"`
		Detail string                `json:"detail"`
		Errors []deploydb.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(body, &problem); err != nil {
		t.Fatalf("reload answered %d %s: %v", resp.StatusCode, body, err)
	}
	wantErrors := []deploydb.FieldError{
		{Field: "environments/staging.yml:1: production", Message: "must be true or false, not a string"},
		{Field: "services/billing.yml:2: pipelines[0]", Message: `unknown pipeline "nowhere"`},
	}
	if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" ||
		problem.Code != deploydb.EINVALID || !slices.Equal(problem.Errors, wantErrors) || !strings.Contains(problem.Detail, before.Checksum) {
		t.Fatalf("reload of a broken config answered %d %s %s, want 422 problem+json with errors %v, naming the config that keeps serving",
			resp.StatusCode, resp.Header.Get("Content-Type"), body, wantErrors)
	}

	after := c.configStatus()
	if after.Checksum != before.Checksum || after.LoadedAt != before.LoadedAt || after.LastAttemptAt.Before(before.LastAttemptAt.Time) ||
		!strings.Contains(after.LastError, `services/billing.yml:2: pipelines[0]: unknown pipeline "nowhere"`) ||
		!strings.Contains(after.LastError, "environments/staging.yml:1: production: must be true or false, not a string") {
		t.Fatalf("GET /api/config after a refused reload = %+v, want the old checksum %s and the problems as lastError", after, before.Checksum)
	}
	// The old config serves: billing still moves through standard, and
	// staging still requires smoke.
	f := c.publish("1.0.0")
	if f.Pipeline != "standard" || len(f.Deployments) != 2 || !slices.Equal(promotionsOf(f.Deployments[1]), []string{"smoke"}) || f.ConfigChecksum != before.Checksum {
		t.Fatalf("flow published after a refused reload = %+v, want the old config's", f)
	}
	if !strings.Contains(srv.logs.String(), "config reload refused") {
		t.Errorf("the refused reload is not logged:\n%s", srv.logs)
	}

	// The command line says the same, exit 3, every problem on stderr.
	r := deploydbCLI(t, srv.URL, "config", "reload")
	r.fails(t, 3, "configuration not reloaded: invalid configuration: 2 problems")
	for _, want := range []string{
		"  environments/staging.yml:1: production: must be true or false, not a string\n",
		"  services/billing.yml:2: pipelines[0]: unknown pipeline \"nowhere\"\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("deploydb config reload: stderr %q does not hold %q", r.stderr, want)
		}
	}
	if r := deploydbCLI(t, srv.URL, "config", "status").ok(t); !strings.Contains(r.stdout, before.Checksum) || !strings.Contains(r.stdout, "  services/billing.yml:2: pipelines[0]: unknown pipeline \"nowhere\"\n") {
		t.Errorf("deploydb config status:\n%s\nwant the checksum %s and the last problems", r.stdout, before.Checksum)
	}

	// Fixed, it loads: the error is cleared.
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\ndescription: Billing\n",
		"environments/staging.yml": "production: false\n",
	})
	r = deploydbCLI(t, srv.URL, "config", "reload", "-o", "json").ok(t)
	var st deploydb.ConfigStatus
	r.decode(t, &st)
	if st.Checksum == before.Checksum || st.LastError != "" {
		t.Errorf("deploydb config reload = %+v, want a new checksum and no error", st)
	}
	var svc deploydb.Service
	c.call("GET", "/api/services/billing", nil, 200, &svc)
	if svc.Description != "Billing" {
		t.Errorf("service after the reload = %+v, want the new description", svc)
	}
}

// TestConfigStatusShowsNoSecret: GET /api/config names the files and their
// checksums, never a value, so a secret expanded from ${env:NAME} stays
// out of it.
func TestConfigStatusShowsNoSecret(t *testing.T) {
	t.Parallel()
	dir := stagingSmokeConfig(t)
	writeFiles(t, dir, map[string]string{"webhook/global.yml": "flow:\n  completed: ['https://hooks.example.com/done?token=${env:HOOK_TOKEN}']\n"})
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), map[string]string{"HOOK_TOKEN": "t0ps3cret"})
	resp, err := http.Get(srv.URL + "/api/config")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "t0ps3cret") || strings.Contains(string(body), "hooks.example.com") {
		t.Fatalf("GET /api/config = %d %s, want the status without any config value", resp.StatusCode, body)
	}
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range st {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"checksum", "dir", "files", "lastAttemptAt", "lastError", "loadedAt"}; !slices.Equal(keys, want) {
		t.Errorf("GET /api/config keys = %v, want %v", keys, want)
	}
}

// The configuration's environments are announced as events, and a hook
// hears of them: at the first start, after a reload that changes them, and
// after a restart on a configuration changed while DeployDB was down.
func TestEnvironmentEvents(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	dir := stagingSmokeConfig(t)
	writeFiles(t, dir, map[string]string{"webhook/cd.yml": "hooks:\n  - url: ${env:HOOK}/cd\n    format: cdevents\n"})
	db := filepath.Join(t.TempDir(), "deploydb.db")
	env := map[string]string{"HOOK": recv.URL}
	srv := launch(t, dir, db, env)
	c := api{t: t, url: srv.URL}
	type change struct{ Type, Environment string }
	wantEvents := func(want ...change) {
		t.Helper()
		var got []change
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var evs []deploydb.Event
			c.call("GET", "/api/events?limit=1000", nil, 200, &evs)
			got = got[:0]
			for _, ev := range evs {
				if strings.HasPrefix(string(ev.Type), "environment.") {
					got = append(got, change{string(ev.Type), ev.Environment})
				}
			}
			if slices.Equal(got, want) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("environment events %v, want %v", got, want)
	}
	created := []change{{"environment.created", "integ"}, {"environment.created", "staging"}}
	wantEvents(created...)
	calls := recv.waitCalls(t, "/cd", 2)
	for _, call := range calls {
		if call.Header.Get("Ce-Type") != "dev.cdevents.environment.created.0.3.0" {
			t.Errorf("call %+v, want a CDEvent environment.created", call)
		}
	}

	// A completed deployment is a service.deployed CDEvent, valid
	// against the 0.5.1 schemas.
	f := c.publish("1.0.0")
	c.deploy(f.Deployments[0])
	deployed := recv.waitCalls(t, "/cd", 3)[2]
	if deployed.Header.Get("Ce-Type") != cdevents.ServiceDeployed {
		t.Fatalf("call %+v, want service.deployed", deployed)
	}
	body, _ := json.Marshal(deployed.Body)
	if err := cdevents.Validate(body); err != nil {
		t.Fatalf("service.deployed %s: %v", body, err)
	}

	writeFiles(t, dir, map[string]string{"environments/staging.yml": "description: Staging, eu-west\n"})
	c.call("POST", "/api/config/reload", nil, 200, nil)
	wantEvents(append(created, change{"environment.modified", "staging"})...)

	// Changed while DeployDB is down: announced at the next start.
	srv.stop()
	if err := os.Remove(filepath.Join(dir, "environments", "integ.yml")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"pipelines/standard.yml": "environments:\n  staging:\n    promotions: [smoke]\n"})
	srv = launch(t, dir, db, env)
	c = api{t: t, url: srv.URL}
	wantEvents(append(created, change{"environment.modified", "staging"}, change{"environment.deleted", "integ"})...)
	recv.waitCalls(t, "/cd", 5)
}
