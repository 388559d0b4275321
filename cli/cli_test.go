package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// result is what one command line did.
type result struct {
	err            error
	code           int
	stdout, stderr string
}

// execute runs the command line args with env (its output streams are
// replaced) and returns what it did.
func execute(t *testing.T, env Env, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env.Stdout, env.Stderr = &stdout, &stderr
	err := Execute(context.Background(), args, env)
	return result{err: err, code: ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// getenv returns a Getenv reading vars.
func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("disk full"), 1},
		{deploydb.Errorf(deploydb.EINTERNAL, "internal error"), 1},
		{usagef("bad"), 2},
		{fmt.Errorf("wrapped: %w", usagef("bad")), 2},
		{deploydb.Errorf(deploydb.EBADREQUEST, "x"), 3},
		{deploydb.Errorf(deploydb.EINVALID, "x"), 3},
		{deploydb.Errorf(deploydb.ENOTFOUND, "x"), 4},
		{fmt.Errorf("client: %w", deploydb.Errorf(deploydb.ENOTFOUND, "x")), 4},
		{deploydb.Errorf(deploydb.ECONFLICT, "x"), 5},
		{deploydb.Errorf(deploydb.EUNAUTHORIZED, "x"), 6},
		{deploydb.Errorf(deploydb.EFORBIDDEN, "x"), 6},
		{deploydb.Errorf(deploydb.EUNAVAILABLE, "x"), 7},
		{deploydb.Errorf("something_new", "x"), 1},
		{&exitError{code: 1, err: deploydb.Errorf(deploydb.EINVALID, "x")}, 1},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"Plain", errors.New("listen tcp 127.0.0.1:8080: bind: address already in use"),
			"deploydb: listen tcp 127.0.0.1:8080: bind: address already in use\n"},
		{"Fields", &deploydb.Error{Code: deploydb.EINVALID, Message: "invalid artifact: group is required (and 1 more)",
			Fields: []deploydb.FieldError{{Field: "group", Message: "is required"}, {Field: "version", Message: "is required"}}},
			"deploydb: invalid artifact: group is required (and 1 more)\n  group: is required\n  version: is required\n"},
		{"FieldSaidInDetail", &deploydb.Error{Code: deploydb.EBADREQUEST, Message: "perPageSize must be between 1 and 1000",
			Fields: []deploydb.FieldError{{Field: "perPageSize", Message: "must be between 1 and 1000"}}},
			"deploydb: perPageSize must be between 1 and 1000\n"},
		{"FieldWithoutName", &deploydb.Error{Code: deploydb.EINVALID, Message: "invalid configuration: 1 problem",
			Fields: []deploydb.FieldError{{Message: "directory does not exist"}}},
			"deploydb: invalid configuration: 1 problem\n  directory does not exist\n"},
		{"Current", &deploydb.Error{Code: deploydb.ECONFLICT, Message: "deployment 3 is COMPLETED: it cannot become STARTED",
			Current: json.RawMessage(`{"id":3,"status":"COMPLETED"}`)},
			"deploydb: deployment 3 is COMPLETED: it cannot become STARTED\n  current status: COMPLETED\n"},
		{"CurrentValue", &deploydb.Error{Code: deploydb.ECONFLICT, Message: "conflict",
			Current: deploydb.Deployment{Status: deploydb.DeploymentFailed}},
			"deploydb: conflict\n  current status: FAILED\n"},
		{"Wrapped", fmt.Errorf("config ./config: %w", &exitError{code: 1, err: &deploydb.Error{Code: deploydb.EINVALID, Message: "invalid configuration: 1 problem",
			Fields: []deploydb.FieldError{{Field: "services/a.yml:1: pipelines", Message: "is required"}}}}),
			"deploydb: config ./config: invalid configuration: 1 problem\n  services/a.yml:1: pipelines: is required\n"},
		{"CurrentWithoutStatus", &deploydb.Error{Code: deploydb.ECONFLICT, Message: "artifact com.example:billing:1.0 already exists",
			Current: json.RawMessage(`{"id":3}`)},
			"deploydb: artifact com.example:billing:1.0 already exists\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, errorText(tt.err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPublishArgs(t *testing.T) {
	t.Parallel()
	url := "https://repo.example.com/b.jar"
	tests := []struct {
		name    string
		args    []string
		flags   deploydb.Artifact
		want    deploydb.Artifact
		wantErr string
	}{
		{"OKPositional", []string{"com.example:billing:1.0"}, deploydb.Artifact{SourceURL: url},
			deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.0", SourceURL: url}, ""},
		{"OKVersionWithColons", []string{"com.example:billing:1.0:linux:amd64"}, deploydb.Artifact{SourceURL: url},
			deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.0:linux:amd64", SourceURL: url}, ""},
		{"OKFlags", nil, deploydb.Artifact{Group: "g", Name: "n", Version: "v", SourceURL: url},
			deploydb.Artifact{Group: "g", Name: "n", Version: "v", SourceURL: url}, ""},
		{"ErrBoth", []string{"g:n:v"}, deploydb.Artifact{Version: "v", SourceURL: url}, deploydb.Artifact{}, "not both"},
		{"ErrTwoParts", []string{"g:n"}, deploydb.Artifact{SourceURL: url}, deploydb.Artifact{}, `artifact "g:n" must be GROUP:NAME:VERSION`},
		{"ErrEmptyPart", []string{"g::v"}, deploydb.Artifact{SourceURL: url}, deploydb.Artifact{}, "must be GROUP:NAME:VERSION"},
		{"ErrMissing", nil, deploydb.Artifact{Name: "n"}, deploydb.Artifact{}, "missing --group, --version, --source-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := publishArgs(tt.args, tt.flags)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || ExitCode(err) != ExitUsage {
					t.Fatalf("err = %v (exit %d), want a usage error containing %q", err, ExitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseModule(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"com.example:billing": {"com.example", "billing"},
		"a:b:c":               {"a:b", "c"}, // the last colon splits, as on the server
	} {
		g, n, err := parseModule(in)
		if err != nil || g != want[0] || n != want[1] {
			t.Errorf("parseModule(%q) = %q, %q, %v; want %q, %q", in, g, n, err, want[0], want[1])
		}
	}
	for _, in := range []string{"", "billing", ":billing", "com.example:"} {
		if _, _, err := parseModule(in); ExitCode(err) != ExitUsage {
			t.Errorf("parseModule(%q): err = %v, want a usage error", in, err)
		}
	}
}

func TestPromotionReportArgs(t *testing.T) {
	t.Parallel()
	r, err := promotionReportArgs([]string{"7", "smoke"}, "failure", "https://ci/1")
	if err != nil {
		t.Fatal(err)
	}
	want := deploydb.PromotionReport{Deployment: 7, Promotion: "smoke", Status: deploydb.PromotionFailed, InfoURL: "https://ci/1"}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ args []string }{{[]string{"x", "smoke"}}, {[]string{"0", "smoke"}}, {[]string{"7", ""}}} {
		if _, err := promotionReportArgs(tt.args, "SUCCESS", ""); ExitCode(err) != ExitUsage {
			t.Errorf("promotionReportArgs(%q): err = %v, want a usage error", tt.args, err)
		}
	}
	if _, err := promotionReportArgs([]string{"7", "smoke"}, "STARTED", ""); ExitCode(err) != ExitUsage {
		t.Errorf("status STARTED: err = %v, want a usage error", err)
	}
}

func TestExecuteUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"UnknownCommand", []string{"bogus"}, `deploydb: unknown command "bogus" for "deploydb"`},
		{"UnknownSubcommand", []string{"artifact", "bogus"}, `deploydb: unknown command "bogus" for "deploydb artifact"`},
		{"UnknownFlag", []string{"artifact", "list", "--bogus"}, "deploydb: unknown flag: --bogus"},
		{"MissingArgument", []string{"deployment", "get"}, "deploydb: deploydb deployment get takes 1 argument(s): ID; got 0"},
		{"ExtraArgument", []string{"serve", "now"}, `deploydb: unknown command "now" for "deploydb serve"`},
		{"BadID", []string{"flow", "get", "0xdeadbeef"}, `deploydb: flow ID must be a positive integer, not "0xdeadbeef"`},
		{"MissingRequiredFlag", []string{"promotion", "report", "1", "smoke"}, `deploydb: required flag(s) "status" not set`},
		{"BadOutput", []string{"health", "-o", "yaml"}, `deploydb: --output must be table or json, not "yaml"`},
		{"BadFlagValue", []string{"flow", "list", "--page", "one"}, `deploydb: invalid argument "one" for "--page" flag`},
		{"BadServerURL", []string{"health", "--server", "127.0.0.1:8080"}, `server URL "127.0.0.1:8080" must be an absolute http:// or https:// URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := execute(t, Env{}, tt.args...)
			want := ExitUsage
			if tt.name == "BadServerURL" {
				want = ExitInvalid
			}
			if r.code != want {
				t.Errorf("exit %d, want %d (err %v)", r.code, want, r.err)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestExecuteHelp(t *testing.T) {
	t.Parallel()
	r := execute(t, Env{}, "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"Exit codes:", "5  conflict", "DEPLOYDB_URL", "DEPLOYDB_TOKEN", "serve", "artifact", "completion"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
	r = execute(t, Env{}, "deployment")
	if r.code != 0 || !strings.Contains(r.stdout, "complete") {
		t.Errorf("a group alone: exit %d, stdout %q; want its help", r.code, r.stdout)
	}
	r = execute(t, Env{}, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Errorf("completion bash: exit %d, stdout starts %.40q", r.code, r.stdout)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want ServeOptions
	}{
		{"Defaults", nil, nil, ServeOptions{Config: "./config", Database: "./deploydb.db", Listen: "127.0.0.1:8080", WebhookTimeout: 10 * time.Second, WebhookLease: time.Minute, LogFormat: LogJSON}},
		{"Env", nil, map[string]string{EnvConfig: "/etc/deploydb", EnvDatabase: "/var/lib/deploydb.db", EnvListen: ":9000"},
			ServeOptions{Config: "/etc/deploydb", Database: "/var/lib/deploydb.db", Listen: ":9000", WebhookTimeout: 10 * time.Second, WebhookLease: time.Minute, LogFormat: LogJSON}},
		{"FlagsBeatEnv", []string{"--config", "c", "--database", "d", "--listen", "l"},
			map[string]string{EnvConfig: "/etc/deploydb", EnvDatabase: "/var/lib/deploydb.db", EnvListen: ":9000"},
			ServeOptions{Config: "c", Database: "d", Listen: "l", WebhookTimeout: 10 * time.Second, WebhookLease: time.Minute, LogFormat: LogJSON}},
		{"Mixed", []string{"--listen", "127.0.0.1:0"}, map[string]string{EnvDatabase: "x.db"},
			ServeOptions{Config: "./config", Database: "x.db", Listen: "127.0.0.1:0", WebhookTimeout: 10 * time.Second, WebhookLease: time.Minute, LogFormat: LogJSON}},
		{"Webhook", []string{"--webhook-timeout", "2s", "--webhook-lease", "3s"}, nil,
			ServeOptions{Config: "./config", Database: "./deploydb.db", Listen: "127.0.0.1:8080", WebhookTimeout: 2 * time.Second, WebhookLease: 3 * time.Second, LogFormat: LogJSON}},
		{"Logs", []string{"--log-format", "text", "--log-level", "debug"}, nil,
			ServeOptions{Config: "./config", Database: "./deploydb.db", Listen: "127.0.0.1:8080", WebhookTimeout: 10 * time.Second, WebhookLease: time.Minute, LogFormat: LogText, LogLevel: slog.LevelDebug}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got ServeOptions
			env := Env{Getenv: getenv(tt.env), Serve: func(ctx context.Context, o ServeOptions) error {
				got = o
				return nil
			}}
			if r := execute(t, env, append([]string{"serve"}, tt.args...)...); r.err != nil {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, args := range [][]string{
		{"--webhook-timeout", "0s"},
		{"--webhook-lease", "10s"},
		{"--webhook-timeout", "30s", "--webhook-lease", "30s"},
		{"--tls-cert", "c.pem"},
		{"--log-format", "xml"},
		{"--log-level", "loud"},
	} {
		r := execute(t, Env{Serve: func(context.Context, ServeOptions) error { return errors.New("served") }}, append([]string{"serve"}, args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, strings.TrimLeft(args[0], "-")) {
			t.Errorf("serve %v: exit %d, stderr %q; want a usage error naming %s", args, r.code, r.stderr, args[0])
		}
	}
	t.Run("ErrServe", func(t *testing.T) {
		t.Parallel()
		env := Env{Serve: func(context.Context, ServeOptions) error {
			return errors.New("listen tcp 127.0.0.1:8080: bind: address already in use")
		}}
		r := execute(t, env, "serve")
		if r.code != ExitFailure || r.stderr != "deploydb: listen tcp 127.0.0.1:8080: bind: address already in use\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrConfig", func(t *testing.T) {
		t.Parallel()
		env := Env{Serve: func(context.Context, ServeOptions) error {
			return &deploydb.Error{Code: deploydb.EINVALID, Message: "invalid configuration: 1 problem", Fields: []deploydb.FieldError{{Field: "services/a.yml:1: pipelines", Message: "is required"}}}
		}}
		r := execute(t, env, "serve")
		if r.code != ExitInvalid || r.stderr != "deploydb: invalid configuration: 1 problem\n  services/a.yml:1: pipelines: is required\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	var got []string
	env := Env{Getenv: getenv(map[string]string{EnvDatabase: "env.db"}), Migrate: func(ctx context.Context, db string) error {
		got = append(got, db)
		return nil
	}}
	for _, args := range [][]string{{"migrate"}, {"migrate", "--database", "flag.db"}} {
		if r := execute(t, env, args...); r.err != nil {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
	}
	if diff := cmp.Diff([]string{"env.db", "flag.db"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "config", "check", "testdata/config/ok")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "ok: 1 service, 2 environments, 1 pipeline, 1 promotion (checksum ") || !strings.HasSuffix(r.stdout, ")\n") {
			t.Errorf("stdout = %q", r.stdout)
		}
	})
	t.Run("OKFromEnv", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{Getenv: getenv(map[string]string{EnvConfig: "testdata/config/ok"})}, "config", "check")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 1 service,") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("ErrProblems", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "config", "check", "testdata/config/broken")
		if r.code != ExitFailure {
			t.Errorf("exit %d, want 1", r.code)
		}
		for _, want := range []string{
			"deploydb: invalid configuration: ",
			"services/billing.yml:5: pipelines[0]: unknown pipeline \"nowhere\"\n",
			"services/billing.yml:6: owner: unknown key \"owner\"",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
			}
		}
	})
	t.Run("ErrMissingDir", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "config", "check", "testdata/config/nowhere")
		if r.code != ExitFailure || !strings.HasPrefix(r.stderr, "deploydb: ") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// apiServer is a stand-in DeployDB server for the CLI's own tests: it
// answers each "METHOD path" with a canned status and body and records
// the requests. The real server is driven end to end in cmd/deploydb.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

type reply struct {
	status int
	body   string
}

func newAPIServer(t *testing.T, replies map[string]reply) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		rep, ok := replies[r.Method+" "+r.URL.RequestURI()]
		if !ok {
			rep = reply{404, `{"type":"urn:deploydb:problem:not_found","title":"Not Found","status":404,"detail":"no route","code":"not_found"}`}
		}
		if rep.status >= 400 {
			w.Header().Set("Content-Type", "application/problem+json")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(s.Close)
	return s
}

// request returns the i-th request the server received and its body.
func (s *apiServer) request(i int) (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i], s.bodies[i]
}

func (s *apiServer) env() Env {
	return Env{Getenv: getenv(map[string]string{EnvURL: s.URL, EnvToken: "s3cret"})}
}

const deploymentJSON = `{"id":7,"artifact":{"id":1,"group":"com.example","name":"billing","version":"1.4.2","sourceUrl":"https://repo.example.com/b.jar","createdAt":"2025-11-25T22:41:00.000Z"},"service":"billing","environment":"integ","status":"STARTED","reason":"pipeline","promotions":[{"id":1,"deployment":7,"promotion":"smoke","status":"NOT_STARTED","infoUrl":"","createdAt":"2025-11-25T22:41:00.000Z","updatedAt":null}],"flow":1,"createdAt":"2025-11-25T22:41:00.000Z","updatedAt":"2025-11-25T22:42:00.000Z","futureField":{"x":1}}`

func TestClientCommands(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, map[string]reply{
		"PATCH /api/deployments/7": {200, deploymentJSON + "\n"},
		"PATCH /api/deployments/8": {409, `{"type":"urn:deploydb:problem:conflict","title":"Conflict","status":409,"detail":"deployment 8 is COMPLETED: it cannot become STARTED","code":"conflict","current":{"id":8,"status":"COMPLETED"}}`},
		"GET /api/deployments?environment=integ&order=asc&perPageSize=5&service=billing&status=STARTED": {200, "[" + deploymentJSON + "]"},
		"POST /api/artifacts": {422, `{"type":"urn:deploydb:problem:invalid","title":"Unprocessable Entity","status":422,"detail":"invalid artifact: version must be at most 255 characters","code":"invalid","errors":[{"field":"version","message":"must be at most 255 characters"}]}`},
		"GET /api/services":   {502, `<html>Bad Gateway</html>`},
	})

	t.Run("TableOutput", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "deployment", "start", "7")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := "ID  SERVICE  ENV    VERSION                    STATUS   REASON    PROMOTIONS         UPDATED\n" +
			"7   billing  integ  com.example:billing:1.4.2  STARTED  pipeline  smoke=NOT_STARTED  2025-11-25T22:42:00Z\n"
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("JSONOutputIsTheServers", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "deployment", "list", "--service", "billing", "--environment", "integ", "--status", "started", "--asc", "--per-page", "5", "-o", "json")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var want bytes.Buffer
		_ = json.Indent(&want, []byte("["+deploymentJSON+"]"), "", "  ")
		if diff := cmp.Diff(want.String()+"\n", r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "deployment", "start", "8")
		if r.code != ExitConflict {
			t.Errorf("exit %d, want 5", r.code)
		}
		if want := "deploydb: deployment 8 is COMPLETED: it cannot become STARTED\n  current status: COMPLETED\n"; r.stderr != want || r.stdout != "" {
			t.Errorf("stderr = %q, stdout = %q; want stderr %q", r.stderr, r.stdout, want)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "artifact", "publish", "g:n:"+strings.Repeat("9", 256), "--source-url", "https://x", "-o", "json")
		if r.code != ExitInvalid {
			t.Errorf("exit %d, want 3", r.code)
		}
		if want := "deploydb: invalid artifact: version must be at most 255 characters\n  version: must be at most 255 characters\n"; r.stderr != want || r.stdout != "" {
			t.Errorf("stderr = %q, stdout = %q; want stderr %q", r.stderr, r.stdout, want)
		}
	})
	t.Run("ErrNotProblem", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "config", "services")
		if r.code != ExitUnavailable || r.stderr != "deploydb: the server answered 502 Bad Gateway\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		r := execute(t, s.env(), "artifact", "get", "99")
		if r.code != ExitNotFound || r.stderr != "deploydb: no route\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrUnreachable", func(t *testing.T) {
		t.Parallel()
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		r := execute(t, Env{}, "health", "--server", dead.URL)
		if r.code != ExitUnavailable || !strings.HasPrefix(r.stderr, "deploydb: cannot reach the server at "+dead.URL) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestClientSettings(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, map[string]reply{"GET /healthz": {200, `{"status":"ok"}`}})
	other := newAPIServer(t, map[string]reply{"GET /healthz": {200, `{"status":"ok"}`}})

	// The environment names the server and the token.
	if r := execute(t, s.env(), "health"); r.err != nil || r.stdout != "ok: "+s.URL+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Flags beat the environment.
	if r := execute(t, s.env(), "health", "--server", other.URL, "--token", "flag"); r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// No token, no Authorization header.
	if r := execute(t, Env{}, "health", "--server", other.URL); r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	first, _ := s.request(0)
	flagged, _ := other.request(0)
	tokenless, _ := other.request(1)
	if got := first.Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization from the environment = %q", got)
	}
	if got := flagged.Header.Get("Authorization"); got != "Bearer flag" {
		t.Errorf("Authorization from --token = %q", got)
	}
	if got, ok := tokenless.Header["Authorization"]; ok {
		t.Errorf("Authorization without a token = %q, want none", got)
	}
}

func TestWriteCommandsSend(t *testing.T) {
	t.Parallel()
	artifact := `{"id":1,"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://x/b.jar","createdAt":"2025-11-25T22:41:00.000Z"}`
	result := `{"id":3,"deployment":7,"promotion":"smoke","status":"FAILED","infoUrl":"https://ci/1","createdAt":"2025-11-25T22:41:00.000Z","updatedAt":"2025-11-25T22:41:00.000Z"}`
	s := newAPIServer(t, map[string]reply{
		"POST /api/artifacts":                {201, artifact},
		"PATCH /api/deployments/7":           {200, deploymentJSON},
		"POST /api/deployments/7/promotions": {201, result},
	})
	tests := []struct {
		args   []string
		method string
		path   string
		body   string
		key    string
	}{
		{[]string{"artifact", "publish", "com.example:billing:1.0", "--source-url", "https://x/b.jar", "--idempotency-key", "k1"},
			"POST", "/api/artifacts", `{"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://x/b.jar"}`, "k1"},
		{[]string{"artifact", "publish", "--group", "com.example", "--name", "billing", "--version", "1.0", "--source-url", "https://x/b.jar"},
			"POST", "/api/artifacts", `{"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://x/b.jar"}`, ""},
		{[]string{"deployment", "start", "7"}, "PATCH", "/api/deployments/7", `{"status":"STARTED"}`, ""},
		{[]string{"deployment", "complete", "7"}, "PATCH", "/api/deployments/7", `{"status":"COMPLETED"}`, ""},
		{[]string{"deployment", "fail", "7", "--idempotency-key", "k2"}, "PATCH", "/api/deployments/7", `{"status":"FAILED"}`, "k2"},
		{[]string{"promotion", "report", "7", "smoke", "--status", "failure", "--info-url", "https://ci/1"},
			"POST", "/api/deployments/7/promotions", `{"name":"smoke","status":"FAILED","infoUrl":"https://ci/1"}`, ""},
	}
	for i, tt := range tests {
		r := execute(t, s.env(), tt.args...)
		if r.err != nil {
			t.Fatalf("%q: exit %d: %s", tt.args, r.code, r.stderr)
		}
		req, body := s.request(i)
		if req.Method != tt.method || req.URL.Path != tt.path || body != tt.body || req.Header.Get("Idempotency-Key") != tt.key {
			t.Errorf("%q sent %s %s %s (key %q); want %s %s %s (key %q)", tt.args, req.Method, req.URL.Path, body, req.Header.Get("Idempotency-Key"), tt.method, tt.path, tt.body, tt.key)
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%q: Content-Type %q", tt.args, ct)
		}
	}
}

func TestReadCommandsAsk(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil) // every answer is 404: only the requests matter here
	tests := []struct {
		args []string
		uri  string
	}{
		{[]string{"artifact", "get", "3"}, "/api/artifacts/3"},
		{[]string{"artifact", "list"}, "/api/artifacts"},
		{[]string{"artifact", "list", "--query", "bill ing", "--page", "2", "--per-page", "10"}, "/api/artifacts?pageNumber=2&perPageSize=10&query=bill+ing"},
		{[]string{"artifact", "list", "--module", "com.example:billing"}, "/api/artifacts/by-module/com.example:billing"},
		{[]string{"artifact", "latest", "com.example:billing"}, "/api/artifacts/by-module/com.example:billing/latest"},
		{[]string{"deployment", "get", "7"}, "/api/deployments/7"},
		{[]string{"deployment", "list", "--artifact", "3"}, "/api/deployments/by-artifact/3"},
		{[]string{"promotion", "get", "7", "2"}, "/api/deployments/7/promotions/2"},
		{[]string{"flow", "get", "4"}, "/api/flows/4"},
		{[]string{"flow", "list", "--service", "billing", "--artifact", "3"}, "/api/flows?artifact=3&service=billing"},
		{[]string{"history", "billing", "--environment", "prod"}, "/api/deployments?environment=prod&service=billing"},
		{[]string{"config", "services", "billing"}, "/api/services/billing"},
		{[]string{"config", "environments"}, "/api/environments"},
		{[]string{"config", "environments", "prod"}, "/api/environments/prod"},
		{[]string{"config", "pipelines", "standard"}, "/api/pipelines/standard"},
		{[]string{"config", "promotions"}, "/api/promotions"},
		{[]string{"config", "promotions", "release approval"}, "/api/promotions/release%20approval"},
	}
	for i, tt := range tests {
		r := execute(t, s.env(), tt.args...)
		if r.code != ExitNotFound {
			t.Errorf("%q: exit %d, want 4 (stderr %q)", tt.args, r.code, r.stderr)
		}
		req, _ := s.request(i)
		if req.Method != http.MethodGet || req.URL.RequestURI() != tt.uri {
			t.Errorf("%q asked %s %s, want GET %s", tt.args, req.Method, req.URL.RequestURI(), tt.uri)
		}
	}
}
