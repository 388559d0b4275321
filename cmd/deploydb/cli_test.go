package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
)

// exampleConfig is the configuration shipped in examples/: billing and
// checkout through integ → staging → prod, smoke in integ and staging,
// release-approval in prod.
var exampleConfig = filepath.Join("..", "..", "examples", "config")

// invocation is what one `deploydb ...` command line did.
type invocation struct {
	args           []string
	code           int
	stdout, stderr string
}

// deploydbCLI runs one command line in-process through run, as a CI job
// would run the binary, against the server at url (DEPLOYDB_URL).
func deploydbCLI(t *testing.T, url string, args ...string) invocation {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return map[string]string{cli.EnvURL: url}[k] }
	err := run(t.Context(), args, getenv, strings.NewReader(""), &stdout, &stderr)
	return invocation{args: args, code: cli.ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// ok fails the test unless the command succeeded.
func (r invocation) ok(t *testing.T) invocation {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("deploydb %s: exit %d\nstderr: %s", strings.Join(r.args, " "), r.code, r.stderr)
	}
	return r
}

// fails fails the test unless the command exited with code and said want
// on stderr, and nothing on stdout.
func (r invocation) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Errorf("deploydb %s: exit %d, stderr %q, stdout %q; want exit %d and stderr containing %q",
			strings.Join(r.args, " "), r.code, r.stderr, r.stdout, code, want)
	}
}

// decode parses the command's -o json output into v.
func (r invocation) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("deploydb %s: output is not the JSON expected: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
}

func TestCLIEndToEnd(t *testing.T) {
	t.Parallel()
	deploydbCLI(t, "", "config", "check", exampleConfig).ok(t)
	url := startServer(t, exampleConfig)
	dd := func(args ...string) invocation { t.Helper(); return deploydbCLI(t, url, args...) }

	if r := dd("health").ok(t); r.stdout != "ok: "+url+"\n" {
		t.Errorf("health: %q", r.stdout)
	}

	// CI publishes billing 1.0.0; a retry of the same publish is a conflict
	// that says so.
	var art deploydb.Artifact
	dd("artifact", "publish", "com.example:billing:1.0.0", "--source-url", "https://repo.example.com/billing-1.0.0.jar", "-o", "json").ok(t).decode(t, &art)
	if art.ID == 0 || art.Group != "com.example" || art.Name != "billing" || art.Version != "1.0.0" || art.CreatedAt.IsZero() {
		t.Fatalf("published %+v", art)
	}
	dd("artifact", "publish", "--group", "com.example", "--name", "billing", "--version", "1.0.0", "--source-url", "https://repo.example.com/billing-1.0.0.jar").
		fails(t, cli.ExitConflict, "deploydb: artifact com.example:billing:1.0.0 already exists")

	// It started one flow, for billing, waiting in integ.
	var flows []deploydb.Flow
	dd("flow", "list", "--service", "billing", "-o", "json").ok(t).decode(t, &flows)
	if len(flows) != 1 || flows[0].Artifact.ID != art.ID || len(flows[0].Deployments) != 3 {
		t.Fatalf("flows = %+v", flows)
	}
	integ := flows[0].Deployments[0]
	if integ.Environment != "integ" || integ.Status != deploydb.DeploymentCreated {
		t.Fatalf("first deployment = %s %s, want integ CREATED", integ.Environment, integ.Status)
	}
	id := strconv.FormatInt(integ.ID, 10)
	if r := dd("flow", "get", strconv.FormatInt(flows[0].ID, 10)).ok(t); !strings.Contains(r.stdout, "integ=CREATED,staging=NOT_STARTED,prod=NOT_STARTED") {
		t.Errorf("flow get:\n%s", r.stdout)
	}

	// The orchestrator reports; reporting STARTED twice is a conflict that
	// shows the current status.
	if r := dd("deployment", "start", id).ok(t); !strings.Contains(r.stdout, "com.example:billing:1.0.0  STARTED") {
		t.Errorf("deployment start:\n%s", r.stdout)
	}
	dd("deployment", "start", id).fails(t, cli.ExitConflict, "current status: STARTED")
	var d deploydb.Deployment
	dd("deployment", "complete", id, "-o", "json").ok(t).decode(t, &d)
	if d.Status != deploydb.DeploymentCompleted || len(d.Promotions) != 1 || d.Promotions[0].Status != deploydb.PromotionStarted {
		t.Fatalf("completed deployment = %s %+v", d.Status, d.Promotions)
	}

	// The smoke tests pass: integ is verified and staging is next.
	var res deploydb.PromotionResult
	dd("promotion", "report", id, "smoke", "--status", "SUCCESS", "--info-url", "https://ci.example.com/smoke/1", "-o", "json").ok(t).decode(t, &res)
	if res.Promotion != "smoke" || res.Status != deploydb.PromotionSuccess || res.InfoURL != "https://ci.example.com/smoke/1" {
		t.Fatalf("result = %+v", res)
	}
	var again deploydb.PromotionResult
	dd("promotion", "get", id, strconv.FormatInt(res.ID, 10), "-o", "json").ok(t).decode(t, &again)
	if diff := cmp.Diff(res, again); diff != "" {
		t.Errorf("promotion get (-reported +read):\n%s", diff)
	}
	dd("promotion", "report", id, "smoke", "--status", "SUCCESS").fails(t, cli.ExitConflict, "deploydb: ")

	var staging []deploydb.Deployment
	dd("deployment", "list", "--service", "billing", "--environment", "staging", "-o", "json").ok(t).decode(t, &staging)
	if len(staging) != 1 || staging[0].Status != deploydb.DeploymentCreated {
		t.Fatalf("staging = %+v", staging)
	}

	// People read the history as a table, newest first (every deployment
	// of a flow is created when the artifact is published, in pipeline
	// order).
	hist := dd("history", "billing").ok(t).stdout
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID  SERVICE  ENV") {
		t.Fatalf("history:\n%s", hist)
	}
	for i, want := range []string{"prod     com.example:billing:1.0.0  NOT_STARTED", "staging  com.example:billing:1.0.0  CREATED", "integ    com.example:billing:1.0.0  SUCCESS"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("history line %d = %q, want it to contain %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(hist, "smoke=SUCCESS") {
		t.Errorf("history lacks the smoke result:\n%s", hist)
	}

	// -o json is the API's JSON exactly, indented.
	resp, err := http.Get(url + "/api/deployments/" + id)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var want bytes.Buffer
	if err := json.Indent(&want, bytes.TrimSpace(body), "", "  "); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String()+"\n", dd("deployment", "get", id, "-o", "json").ok(t).stdout); diff != "" {
		t.Errorf("deployment get -o json (-api +cli):\n%s", diff)
	}

	var latest deploydb.Artifact
	dd("artifact", "latest", "com.example:billing", "-o", "json").ok(t).decode(t, &latest)
	if latest.ID != art.ID {
		t.Errorf("latest = %+v, want artifact %d", latest, art.ID)
	}
	if r := dd("artifact", "list", "--query", "billing").ok(t); !strings.Contains(r.stdout, "https://repo.example.com/billing-1.0.0.jar") {
		t.Errorf("artifact list:\n%s", r.stdout)
	}

	// The configuration as the server loaded it.
	var services []deploydb.Service
	dd("config", "services", "-o", "json").ok(t).decode(t, &services)
	if len(services) != 2 || services[0].Ident != "billing" || services[1].Ident != "checkout" {
		t.Errorf("services = %+v", services)
	}
	if r := dd("config", "pipelines").ok(t); !strings.Contains(r.stdout, "integ(smoke) -> staging(smoke) -> prod(release-approval)") {
		t.Errorf("config pipelines:\n%s", r.stdout)
	}
	if r := dd("config", "promotions", "release-approval").ok(t); !strings.Contains(r.stdout, "release-approval  manual") {
		t.Errorf("config promotions release-approval:\n%s", r.stdout)
	}

	// Failures exit with the code of the server's error and say why.
	t.Run("ErrNotFound", func(t *testing.T) {
		deploydbCLI(t, url, "deployment", "get", "9999").fails(t, cli.ExitNotFound, "deploydb: ")
		deploydbCLI(t, url, "config", "environments", "moon").fails(t, cli.ExitNotFound, "moon")
		deploydbCLI(t, url, "promotion", "report", id, "load-test", "--status", "FAILED").fails(t, cli.ExitNotFound, "deploydb: ")
		deploydbCLI(t, url, "artifact", "publish", "com.example:unknown:1", "--source-url", "https://x").
			fails(t, cli.ExitNotFound, "deploydb: no service consumes com.example:unknown")
	})
	t.Run("ErrBadRequest", func(t *testing.T) {
		deploydbCLI(t, url, "deployment", "list", "--per-page", "-1").fails(t, cli.ExitInvalid, "deploydb: perPageSize must be between 1 and 1000")
		deploydbCLI(t, url, "history", "billing", "--status", "bogus").fails(t, cli.ExitInvalid, `"BOGUS"`)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		deploydbCLI(t, url, "artifact", "publish", "com.example:billing:"+strings.Repeat("9", 256), "--source-url", "https://x").
			fails(t, cli.ExitInvalid, "  version: must be at most 255 characters")
	})
	t.Run("ErrUsage", func(t *testing.T) {
		deploydbCLI(t, url, "deployment", "start").fails(t, cli.ExitUsage, "Run 'deploydb deployment start --help' for usage.")
		deploydbCLI(t, url, "promotion", "report", id, "smoke", "--status", "MAYBE").fails(t, cli.ExitUsage, "--status must be SUCCESS or FAILED")
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		deploydbCLI(t, dead.URL, "deployment", "list").fails(t, cli.ExitUnavailable, "deploydb: cannot reach the server at "+dead.URL)
	})
}

func TestCLIConfigCheckBroken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "services"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "services", "billing.yml"), []byte("description: Billing\nartifacts: [\"com.example:billing\"]\npipelines: [nope]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deploydbCLI(t, "", "config", "check", dir).fails(t, 1, "services/billing.yml:3: pipelines[0]: unknown pipeline \"nope\"")
}
