package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/client"
)

// operator drives a server through the command line, as an operator and
// the CI jobs around it would.
type operator struct {
	t   *testing.T
	url string
}

func (o operator) run(args ...string) invocation {
	o.t.Helper()
	return deploydbCLI(o.t, o.url, args...)
}

// publish publishes com.example:SERVICE:VERSION and returns its artifact.
func (o operator) publish(service, version string) deploydb.Artifact {
	o.t.Helper()
	var a deploydb.Artifact
	o.run("artifact", "publish", "com.example:"+service+":"+version, "--source-url", "https://repo.example.com/"+service+"-"+version+".jar", "-o", "json").ok(o.t).decode(o.t, &a)
	return a
}

// newest returns the newest deployment of service to env.
func (o operator) newest(service, env string) deploydb.Deployment {
	o.t.Helper()
	var list []deploydb.Deployment
	o.run("deployment", "list", "--service", service, "--environment", env, "--per-page", "1", "-o", "json").ok(o.t).decode(o.t, &list)
	if len(list) != 1 {
		o.t.Fatalf("no deployment of %s to %s", service, env)
	}
	return list[0]
}

func (o operator) deployment(id int64) deploydb.Deployment {
	o.t.Helper()
	var d deploydb.Deployment
	o.run("deployment", "get", itoa(id), "-o", "json").ok(o.t).decode(o.t, &d)
	return d
}

// pass has the orchestrator deploy d and its promotion succeed: d is then
// verified.
func (o operator) pass(d deploydb.Deployment, promotion string) {
	o.t.Helper()
	o.run("deployment", "start", itoa(d.ID)).ok(o.t)
	o.run("deployment", "complete", itoa(d.ID)).ok(o.t)
	o.run("promotion", "report", itoa(d.ID), promotion, "--status", "SUCCESS").ok(o.t)
	if got := o.deployment(d.ID); got.Status != deploydb.DeploymentSuccess {
		o.t.Fatalf("deployment %d is %s after %s passed, want SUCCESS", d.ID, got.Status, promotion)
	}
}

func (o operator) status() client.Status {
	o.t.Helper()
	var s client.Status
	o.run("status", "-o", "json").ok(o.t).decode(o.t, &s)
	return s
}

// contains fails the test unless out contains every one of want.
func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s printed\n%s\nwant it to contain %q", what, out, w)
		}
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// TestCLICoordination drives locks, the status matrix and every operator
// action through the command line against a real server with the example
// configuration.
func TestCLICoordination(t *testing.T) {
	t.Parallel()
	url := startServer(t, exampleConfig)
	o := operator{t: t, url: url}

	// Lock prod before anything reaches it.
	contains(t, "env lock", o.run("env", "lock", "prod", "--reason", "release freeze").ok(t).stdout,
		"ENVIRONMENT  REASON          BY         SINCE", "prod         release freeze  anonymous  ")
	o.run("env", "lock", "prod", "--reason", "again").fails(t, cli.ExitConflict, "deploydb: environment prod is locked already: release freeze")
	o.run("env", "lock", "moon", "--reason", "x").fails(t, cli.ExitNotFound, `"moon"`)
	o.run("env", "lock", "staging").fails(t, cli.ExitUsage, `required flag(s) "reason" not set`)
	o.run("env", "lock", "staging", "--reason", " ").fails(t, cli.ExitUsage, "--reason is required")
	contains(t, "env list", o.run("env", "list").ok(t).stdout,
		"NAME     PRODUCTION  LOCKED", "integ    no          -", "prod     yes         release freeze (by anonymous since ")
	var prodEnv client.EnvironmentView
	o.run("env", "get", "prod", "-o", "json").ok(t).decode(t, &prodEnv)
	if prodEnv.Ident != "prod" || !prodEnv.Production || prodEnv.Lock == nil || prodEnv.Lock.Reason != "release freeze" || prodEnv.Lock.Actor == "" {
		t.Errorf("env get prod = %+v, lock %+v", prodEnv, prodEnv.Lock)
	}

	// billing 1.0.0 passes integ and staging, and waits for prod.
	v1 := o.publish("billing", "1.0.0")
	o.pass(o.newest("billing", "integ"), "smoke")
	o.pass(o.newest("billing", "staging"), "smoke")
	prod := o.newest("billing", "prod")
	if prod.Artifact.ID != v1.ID || prod.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(prod.Waiting, "locked: release freeze") || prod.DueAt.IsZero() {
		t.Fatalf("prod deployment = %s, waiting %q, due %v; want NOT_STARTED, waiting for the lock, due", prod.Status, prod.Waiting, prod.DueAt)
	}
	contains(t, "deployment list", o.run("deployment", "list", "--service", "billing", "--environment", "prod").ok(t).stdout,
		"WAITING", "NOT_STARTED  pipeline  release-approval=NOT_STARTED", "locked: release freeze")
	contains(t, "deployment get", o.run("deployment", "get", itoa(prod.ID)).ok(t).stdout,
		"DUE", "WAITING", "locked: release freeze", "release-approval  manual  NOT_STARTED")

	// The status matrix shows the versions and the lock.
	contains(t, "status", o.run("status").ok(t).stdout,
		"SERVICE   integ    staging  prod [locked]\n",
		"billing   1.0.0 ✓  1.0.0 ✓  -\n",
		"checkout  -        -        -\n",
		"✓ verified (SUCCESS)",
		"prod [locked]: release freeze (by anonymous since ")
	st := o.status()
	if len(st.Environments) != 3 || st.Environments[2].Name != "prod" || st.Environments[2].Lock == nil || len(st.Services) != 2 {
		t.Fatalf("status = %+v", st)
	}
	if c := st.Services[0].Cell("staging"); c == nil || c.Current == nil || c.Current.Artifact.Version != "1.0.0" || c.Current.Status != deploydb.DeploymentSuccess || c.CurrentSince.IsZero() {
		t.Errorf("billing in staging = %+v", c)
	}
	if c := st.Services[0].Cell("prod"); c == nil || c.Current != nil || c.InFlight != nil || !c.Locked {
		t.Errorf("billing in prod = %+v, want nothing there, locked", c)
	}
	if r := o.run("status", "--service", "check").ok(t); strings.Contains(r.stdout, "billing") || !strings.Contains(r.stdout, "checkout") {
		t.Errorf("status --service check:\n%s", r.stdout)
	}
	// The client's types read every field the server sends.
	checkRoundTrip(t, url+"/api/status", &client.Status{})
	checkRoundTrip(t, url+"/api/environments/prod", &client.EnvironmentView{})

	// Unlocking activates what waited.
	if r := o.run("env", "unlock", "prod", "--reason", "freeze over").ok(t); r.stdout != "unlocked prod\n" {
		t.Errorf("env unlock: %q", r.stdout)
	}
	o.run("env", "unlock", "prod").fails(t, cli.ExitNotFound, "deploydb: environment \"prod\" is not locked")
	if d := o.deployment(prod.ID); d.Status != deploydb.DeploymentCreated || d.Waiting != "" {
		t.Fatalf("prod after unlock = %s, waiting %q; want CREATED", d.Status, d.Waiting)
	}
	o.pass(prod, "release-approval")
	contains(t, "deployment get", o.run("deployment", "get", itoa(prod.ID)).ok(t).stdout, "REPORTED BY", "release-approval  manual  SUCCESS  anonymous")
	contains(t, "status", o.run("status").ok(t).stdout, "SERVICE   integ    staging  prod\n", "billing   1.0.0 ✓  1.0.0 ✓  1.0.0 ✓\n")

	// billing 1.1.0 fails in integ; it is retried, fails again, and integ
	// is rolled back to 1.0.0.
	v11 := o.publish("billing", "1.1.0")
	failed := o.newest("billing", "integ")
	o.run("deployment", "start", itoa(failed.ID)).ok(t)
	contains(t, "status", o.run("status").ok(t).stdout, "billing   1.0.0 ✓ →1.1.0  1.0.0 ✓  1.0.0 ✓\n")
	o.run("deployment", "fail", itoa(failed.ID)).ok(t)
	contains(t, "status", o.run("status").ok(t).stdout, "billing   1.0.0 ✓ !1.1.0  1.0.0 ✓  1.0.0 ✓\n")

	var retry deploydb.Deployment
	o.run("deployment", "retry", itoa(failed.ID), "--reason", "flaky runner", "-o", "json").ok(t).decode(t, &retry)
	if retry.ID == failed.ID || retry.Reason != deploydb.ReasonRetry || retry.Status != deploydb.DeploymentCreated || retry.Artifact.ID != v11.ID || retry.Environment != "integ" {
		t.Fatalf("retry = %d %s %s %s %s", retry.ID, retry.Reason, retry.Status, retry.Artifact.Version, retry.Environment)
	}
	o.run("deployment", "retry", itoa(failed.ID), "--reason", "again").fails(t, cli.ExitConflict, "current status: FAILED")
	o.run("deployment", "retry", itoa(prod.ID), "--reason", "why not").fails(t, cli.ExitConflict, "current status: SUCCESS")
	o.run("deployment", "retry", "9999", "--reason", "x").fails(t, cli.ExitNotFound, "deploydb: ")
	o.run("deployment", "retry", itoa(failed.ID)).fails(t, cli.ExitUsage, `required flag(s) "reason" not set`)
	o.run("deployment", "start", itoa(retry.ID)).ok(t)
	o.run("deployment", "fail", itoa(retry.ID)).ok(t)

	r := o.run("deployment", "rollback", itoa(retry.ID), "--reason", "1.1.0 breaks invoices").ok(t)
	contains(t, "deployment rollback", r.stdout, "billing  integ  com.example:billing:1.0.0  CREATED  rollback")
	rollback := o.newest("billing", "integ")
	if rollback.Reason != deploydb.ReasonRollback || rollback.Artifact.ID != v1.ID || rollback.Status != deploydb.DeploymentCreated {
		t.Fatalf("rollback = %s %s %s", rollback.Reason, rollback.Artifact.Version, rollback.Status)
	}
	o.run("deployment", "rollback", itoa(retry.ID), "--reason", " ").fails(t, cli.ExitUsage, "--reason is required")
	o.run("deployment", "rollback", "9999", "--reason", "x").fails(t, cli.ExitNotFound, "deploydb: ")
	var rbFlow deploydb.Flow
	o.run("flow", "get", itoa(rollback.Flow), "-o", "json").ok(t).decode(t, &rbFlow)
	if rbFlow.Reason != deploydb.ReasonRollback || len(rbFlow.Deployments) != 1 {
		t.Errorf("rollback flow = %s with %d deployments", rbFlow.Reason, len(rbFlow.Deployments))
	}

	// checkout has never been verified anywhere: nothing to roll back to.
	o.publish("checkout", "2.0.0")
	co := o.newest("checkout", "integ")
	o.run("deployment", "rollback", itoa(co.ID), "--reason", "x").fails(t, cli.ExitConflict, "no last known good")

	// A hotfix takes billing 1.1.0 straight to prod.
	var hot deploydb.Deployment
	o.run("deployment", "hotfix", "--artifact", itoa(v11.ID), "--service", "billing", "--environment", "prod", "--reason", "CVE-2025-1234", "-o", "json").ok(t).decode(t, &hot)
	if hot.Reason != deploydb.ReasonHotfix || hot.Environment != "prod" || hot.Artifact.ID != v11.ID {
		t.Fatalf("hotfix = %s %s %s", hot.Reason, hot.Environment, hot.Artifact.Version)
	}
	// prod is free: the hotfix is activated at once, and the answer says so.
	if hot.Status != deploydb.DeploymentCreated {
		t.Errorf("hotfix answered %s, want CREATED", hot.Status)
	}
	if d := o.deployment(hot.ID); d.Status != deploydb.DeploymentCreated {
		t.Errorf("hotfix deployment is %s, want CREATED", d.Status)
	}
	contains(t, "status", o.run("status", "--service", "billing").ok(t).stdout, "1.0.0 ✓ →1.1.0\n")
	o.run("deployment", "hotfix", "--artifact", "9999", "--service", "billing", "--environment", "prod", "--reason", "x").fails(t, cli.ExitNotFound, "deploydb: artifact 9999 not found")
	o.run("deployment", "hotfix", "--artifact", itoa(v11.ID), "--service", "checkout", "--environment", "prod", "--reason", "x").fails(t, cli.ExitInvalid, "does not consume")
	o.run("deployment", "hotfix", "--artifact", itoa(v11.ID), "--service", "billing", "--environment", "prod").fails(t, cli.ExitUsage, `required flag(s) "reason" not set`)

	// The checkout flow is cancelled: its deployments that had not
	// completed are.
	contains(t, "flow cancel", o.run("flow", "cancel", itoa(co.Flow), "--reason", "2.0.0 is withdrawn").ok(t).stdout,
		"CANCELLED  pipeline", "integ    com.example:checkout:2.0.0  CANCELLED")
	var cancelled deploydb.Flow
	o.run("flow", "get", itoa(co.Flow), "-o", "json").ok(t).decode(t, &cancelled)
	for _, d := range cancelled.Deployments {
		if d.Status != deploydb.DeploymentCancelled {
			t.Errorf("after cancel, %s is %s", d.Environment, d.Status)
		}
	}
	o.run("flow", "cancel", itoa(co.Flow), "--reason", "again").fails(t, cli.ExitConflict, "current status: CANCELLED")
	o.run("flow", "cancel", "9999", "--reason", "x").fails(t, cli.ExitNotFound, "deploydb: ")
	o.run("flow", "cancel", itoa(co.Flow)).fails(t, cli.ExitUsage, `required flag(s) "reason" not set`)
}

// checkRoundTrip reads url, decodes it into v and encodes v again: the
// result must be the JSON the server sent, so that v's type knows every
// field of the API's.
func checkRoundTrip(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&want); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(again, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s through %T (-server +client):\n%s", url, v, diff)
	}
}
