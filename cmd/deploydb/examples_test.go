package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
)

// The examples in examples/<tool>/ are configuration directories. Here each
// runs unchanged through the real server, with its ${env:...} URLs pointed
// at stand-ins for the tools: real HTTP servers that check each request as
// the tool's API would, answer as it does, and do what the tool then does
// (a Jenkins build, a Rundeck job reporting back with the CLI).

// exampleDir is the example of tool, relative to this package.
func exampleDir(tool string) string { return filepath.Join("..", "..", "examples", tool) }

// Credentials the examples read from the environment.
const (
	jenkinsUser     = "deploydb"
	jenkinsAPIToken = "11f3c5e7a9b1d3f5e7a9b1d3f5e7a9b1d3"
	jenkinsJobToken = "deploy-from-deploydb"
	rundeckJobID    = "3f2a8c1e-7b4d-4e0a-9c55-0d6b1f0e8a21"
	rundeckToken    = "Xq3v9RkLmN2pT8wZ"
	auditSecret     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	herokuAPIKey    = "HRKU-6d1e3b2a-8c4f-4e5a-9b7d-0f1e2d3c4b5a"
	pagerDutyKey    = "R0ut1ngKey0123456789abcdef012345"
	slackHookPath   = "/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
)

func jenkinsEnv(jenkinsURL string) map[string]string {
	return map[string]string{
		"JENKINS_URL":       jenkinsURL,
		"JENKINS_JOB_TOKEN": jenkinsJobToken,
		"JENKINS_USER":      jenkinsUser,
		"JENKINS_API_TOKEN": jenkinsAPIToken,
	}
}

func rundeckEnv(rundeckURL, auditURL string) map[string]string {
	return map[string]string{
		"RUNDECK_URL":             rundeckURL,
		"RUNDECK_JOB_ID":          rundeckJobID,
		"RUNDECK_TOKEN":           rundeckToken,
		"AUDIT_URL":               auditURL,
		"DEPLOYDB_WEBHOOK_SECRET": auditSecret,
	}
}

func herokuEnv(apiURL string) map[string]string {
	return map[string]string{"HEROKU_API_URL": apiURL, "HEROKU_API_KEY": herokuAPIKey}
}

func pagerDutyEnv(eventsURL string) map[string]string {
	return map[string]string{"PAGERDUTY_URL": eventsURL, "PAGERDUTY_ROUTING_KEY": pagerDutyKey}
}

func slackEnv(webhookURL string) map[string]string {
	return map[string]string{"SLACK_WEBHOOK_URL": webhookURL}
}

// toolCall is one request a stand-in got.
type toolCall struct {
	Method string
	// Path is the path as sent, escaped.
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	Host   string
	// Dropped is set when the stand-in was down: it read the request and
	// dropped the connection without an answer.
	Dropped bool
}

func readCall(r *http.Request) toolCall {
	b, _ := io.ReadAll(r.Body)
	return toolCall{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: b, Host: r.Host}
}

// basicAuth returns the HTTP Basic credentials of c.
func (c toolCall) basicAuth() (user, password string, ok bool) {
	return (&http.Request{Header: c.Header}).BasicAuth()
}

// standIn is a real HTTP server standing in for a tool: it records every
// call, then answers it.
type standIn struct {
	*httptest.Server
	mu    sync.Mutex
	calls []toolCall
}

// newStandIn starts a stand-in that answers the n-th call (from 1) with
// answer.
func newStandIn(t *testing.T, answer func(w http.ResponseWriter, c toolCall, n int)) *standIn {
	s := &standIn{}
	s.Server = httptest.NewServer(s.handler(answer))
	t.Cleanup(s.Close)
	return s
}

func (s *standIn) handler(answer func(w http.ResponseWriter, c toolCall, n int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := readCall(r)
		n := s.record(c)
		answer(w, c, n)
	})
}

func (s *standIn) record(c toolCall) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return len(s.calls)
}

func (s *standIn) all() []toolCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// wait waits until the stand-in has had n calls and returns them all.
func (s *standIn) wait(t *testing.T, what string, n int) []toolCall {
	t.Helper()
	eventually(t, fmt.Sprintf("%d calls to %s", n, what), func() bool { return len(s.all()) >= n })
	return s.all()
}

// downListener serves a stand-in that is down until up is called: it reads
// each request and drops the connection without an answer, as a receiver
// that crashes mid-call (or a proxy that loses it).
type downListener struct {
	net.Listener
	up   atomic.Bool
	drop func(toolCall)
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.up.Load() {
			return c, err
		}
		go l.dropConn(c)
	}
}

func (l *downListener) dropConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	call := readCall(r)
	call.Dropped = true
	l.drop(call)
}

// newDownStandIn starts a stand-in that is down until the returned
// function brings it up.
func newDownStandIn(t *testing.T, answer func(w http.ResponseWriter, c toolCall, n int)) (*standIn, func()) {
	s := &standIn{}
	s.Server = httptest.NewUnstartedServer(s.handler(answer))
	l := &downListener{Listener: s.Listener, drop: func(c toolCall) { s.record(c) }}
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s, func() { l.up.Store(true) }
}

// eventually polls cond until it holds, and fails the test after 30 s: long
// enough for a delivery's first retry, about 5 s after a failed attempt.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(30*time.Second, cond) {
		t.Fatalf("no %s within 30s", what)
	}
}

// runCLI runs one deploydb command line in-process against the server at
// serverURL, from any goroutine, as a job on a tool's agent does.
func runCLI(serverURL string, args ...string) invocation {
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == cli.EnvURL {
			return serverURL
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, getenv, strings.NewReader(""), &stdout, &stderr)
	return invocation{args: args, code: cli.ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// jobs are what a tool runs after it answered a call (a Jenkins build, a
// Rundeck execution), each in its own goroutine, reporting to DeployDB with
// the CLI. The test waits for them before the server stops.
type jobs struct {
	t      *testing.T
	mu     sync.Mutex
	wg     sync.WaitGroup
	server string
	closed bool
}

// reportTo makes the jobs report to the server at serverURL. Call it once
// the server runs: the jobs are waited for before it stops.
func (j *jobs) reportTo(serverURL string) {
	j.mu.Lock()
	j.server = serverURL
	j.mu.Unlock()
	j.t.Cleanup(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.wg.Wait()
	})
}

// start runs job in a goroutine; dd runs a deploydb command line.
func (j *jobs) start(job func(dd func(args ...string) invocation)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.server == "" {
		j.t.Errorf("a job started while no server runs")
		return
	}
	server := j.server
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		job(func(args ...string) invocation { return runCLI(server, args...) })
	}()
}

// mustOK reports a command of a job that failed.
func (j *jobs) mustOK(r invocation) bool {
	if r.code != 0 {
		j.t.Errorf("job: deploydb %s: exit %d: %s", strings.Join(r.args, " "), r.code, r.stderr)
		return false
	}
	return true
}

func (a api) publishArtifact(group, name, version, sourceURL string) deploydb.Artifact {
	a.t.Helper()
	var art deploydb.Artifact
	a.call("POST", "/api/artifacts", map[string]any{"group": group, "name": name, "version": version, "sourceUrl": sourceURL}, 201, &art)
	return art
}

func (a api) deployment(id int64) deploydb.Deployment {
	a.t.Helper()
	var d deploydb.Deployment
	a.call("GET", fmt.Sprintf("/api/deployments/%d", id), nil, 200, &d)
	return d
}

// waitDeployment waits until deployment id is in status and returns it.
func (a api) waitDeployment(id int64, status deploydb.DeploymentStatus) deploydb.Deployment {
	a.t.Helper()
	return a.waitDeploymentUntil(id, string(status), func(d deploydb.Deployment) bool { return d.Status == status })
}

// waitDeploymentUntil waits until deployment id is as cond wants and
// returns it.
func (a api) waitDeploymentUntil(id int64, what string, cond func(deploydb.Deployment) bool) deploydb.Deployment {
	a.t.Helper()
	var d deploydb.Deployment
	eventually(a.t, fmt.Sprintf("deployment %d %s", id, what), func() bool {
		d = a.deployment(id)
		return cond(d)
	})
	return d
}

// promotionStatus returns the status of promotion name of d.
func promotionStatus(d deploydb.Deployment, name string) deploydb.PromotionStatus {
	for _, p := range d.Promotions {
		if p.Promotion == name {
			return p.Status
		}
	}
	return ""
}

// waitFlow waits until the flow of artifact is in status and returns it.
func (a api) waitFlow(artifact int64, status deploydb.FlowStatus) deploydb.Flow {
	a.t.Helper()
	var f deploydb.Flow
	eventually(a.t, fmt.Sprintf("flow of artifact %d %s", artifact, status), func() bool {
		f = a.flowOf(artifact)
		return f.Status == status
	})
	return f
}

// deploymentsTo lists the deployments of service to env, newest first.
func (a api) deploymentsTo(service, env string) []deploydb.Deployment {
	a.t.Helper()
	var ds []deploydb.Deployment
	a.call("GET", "/api/deployments?service="+url.QueryEscape(service)+"&environment="+url.QueryEscape(env), nil, 200, &ds)
	return ds
}

// hookDeliveries lists the deliveries of a hook, newest first.
func (a api) hookDeliveries(hook string) []deploydb.DeliveryView {
	a.t.Helper()
	var ds []deploydb.DeliveryView
	a.call("GET", "/api/webhook-deliveries?perPageSize=1000&hook="+url.QueryEscape(hook), nil, 200, &ds)
	return ds
}

// waitDelivered waits until every delivery of hook is delivered and
// returns them, newest first.
func (a api) waitDelivered(hook string) []deploydb.DeliveryView {
	a.t.Helper()
	var ds []deploydb.DeliveryView
	eventually(a.t, "every delivery of "+hook+" delivered", func() bool {
		ds = a.hookDeliveries(hook)
		return !slices.ContainsFunc(ds, func(d deploydb.DeliveryView) bool { return d.Status != deploydb.DeliveryDelivered })
	})
	return ds
}

// deliveryHistory returns one delivery with its attempts.
func (a api) deliveryHistory(id int64) deploydb.DeliveryView {
	a.t.Helper()
	var d deploydb.DeliveryView
	a.call("GET", fmt.Sprintf("/api/webhook-deliveries/%d", id), nil, 200, &d)
	return d
}

// deliveryAbout returns the one delivery of ds about deployment id.
func deliveryAbout(t *testing.T, ds []deploydb.DeliveryView, id int64) deploydb.DeliveryView {
	t.Helper()
	var out []deploydb.DeliveryView
	for _, d := range ds {
		if d.Deployment == id {
			out = append(out, d)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d deliveries about deployment %d, want 1: %+v", len(out), id, ds)
	}
	return out[0]
}

// jsonBody decodes a JSON body into a generic value for cmp.
func jsonBody(t *testing.T, what string, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v: %s", what, err, b)
	}
	return m
}

// checkHeader fails the test unless c has header name with value want.
func checkHeader(t *testing.T, what string, c toolCall, name, want string) {
	t.Helper()
	if got := c.Header.Get(name); got != want {
		t.Errorf("%s: %s = %q, want %q", what, name, got, want)
	}
}

// configCheck runs `deploydb config check dir` with env as the process
// environment.
func configCheck(t *testing.T, dir string, env map[string]string) invocation {
	var stdout, stderr bytes.Buffer
	args := []string{"config", "check", dir}
	err := run(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return invocation{args: args, code: cli.ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// TestExamplesConfigCheck: `deploydb config check` accepts every example
// with its environment variables set, names each one that is missing, and
// the example's README lists them all.
func TestExamplesConfigCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tool    string
		env     map[string]string
		summary string
	}{
		{"jenkins", jenkinsEnv("https://jenkins.example.com"), "ok: 2 services, 3 environments, 1 pipeline, 2 promotions"},
		{"rundeck", rundeckEnv("https://rundeck.example.com", "https://audit.example.com/deploydb"), "ok: 2 services, 2 environments, 1 pipeline, 1 promotion"},
		{"heroku", herokuEnv("https://api.heroku.com"), "ok: 2 services, 2 environments, 1 pipeline, 1 promotion"},
		{"pagerduty", pagerDutyEnv("https://events.pagerduty.com"), "ok: 2 services, 2 environments, 1 pipeline, 1 promotion"},
		{"slack", slackEnv("https://hooks.slack.com" + slackHookPath), "ok: 2 services, 3 environments, 1 pipeline, 2 promotions"},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			t.Parallel()
			dir := exampleDir(tc.tool)
			if r := configCheck(t, dir, tc.env).ok(t); !strings.HasPrefix(r.stdout, tc.summary+" (checksum ") {
				t.Errorf("config check: %q, want %q", r.stdout, tc.summary)
			}
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			for name := range tc.env {
				env := maps.Clone(tc.env)
				delete(env, name)
				configCheck(t, dir, env).fails(t, cli.ExitFailure, "environment variable "+name+" is not set (used as ${env:"+name+"})")
				if !bytes.Contains(readme, []byte("`"+name+"`")) {
					t.Errorf("%s/README.md does not list the variable %s", tc.tool, name)
				}
			}
		})
	}
}

// jenkinsfile is what the stand-in for Jenkins runs of
// examples/jenkins/Jenkinsfile: its parameters and the deploydb command of
// each of its reporting steps.
type jenkinsfile struct {
	params   []string
	commands map[string]string // "deployment start" → `deploydb deployment start "$DEPLOYMENT_ID"`
}

func readJenkinsfile(t *testing.T) jenkinsfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(exampleDir("jenkins"), "Jenkinsfile"))
	if err != nil {
		t.Fatal(err)
	}
	jf := jenkinsfile{commands: map[string]string{}}
	for _, m := range regexp.MustCompile(`string\(name: '(\w+)'`).FindAllSubmatch(b, -1) {
		jf.params = append(jf.params, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`sh '(deploydb [^']*)'`).FindAllSubmatch(b, -1) {
		words := strings.Fields(string(m[1]))
		jf.commands[words[1]+" "+words[2]] = string(m[1])
	}
	for _, step := range []string{"deployment start", "deployment complete", "deployment fail", "promotion report"} {
		if jf.commands[step] == "" {
			t.Fatalf("the Jenkinsfile has no `deploydb %s` step", step)
		}
	}
	return jf
}

// shellWords splits a command line of a Jenkinsfile sh step into words as
// sh does for the simple lines used there: words separated by spaces,
// double quotes, $NAME expanded from vars.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '$':
			j := i + 1
			for j < len(line) && (line[j] == '_' || 'A' <= line[j] && line[j] <= 'Z' || 'a' <= line[j] && line[j] <= 'z' || '0' <= line[j] && line[j] <= '9') {
				j++
			}
			v, ok := vars[line[i+1:j]]
			if !ok {
				return nil, fmt.Errorf("%s: $%s is not set in the build", line, line[i+1:j])
			}
			word.WriteString(v)
			inWord, i = true, j-1
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("%s: unterminated quote", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// build plays one build of the Jenkinsfile with the parameters of a
// buildWithParameters call: the deploydb steps exactly as the file writes
// them, the deploy script failing when deployFails.
func (jf jenkinsfile) build(j *jobs, dd func(args ...string) invocation, params map[string]string, deployFails bool) {
	run := func(step string) invocation {
		words, err := shellWords(jf.commands[step], params)
		if err != nil {
			j.t.Errorf("Jenkinsfile: %v", err)
			return invocation{code: -1}
		}
		return dd(words[1:]...)
	}
	// stage('Report start'); a refused start fails the build, which then
	// reports nothing else.
	if !j.mustOK(run("deployment start")) {
		return
	}
	// stage('Deploy'); post { unsuccessful { ... } } while started.
	if deployFails {
		j.mustOK(run("deployment fail"))
		return
	}
	// stage('Report complete'), then stage('Smoke tests'), which pass.
	if !j.mustOK(run("deployment complete")) {
		return
	}
	params["SMOKE_STATUS"] = "SUCCESS"
	j.mustOK(run("promotion report"))
}

// TestExampleJenkins runs examples/jenkins: Jenkins is restarting (503)
// when the first deployment is activated and gets the call on the retry;
// each build runs the Jenkinsfile's deploydb steps, which take billing
// through integ and staging to prod, where a release manager approves;
// checkout's deploy fails and the build reports it.
func TestExampleJenkins(t *testing.T) {
	t.Parallel()
	jf := readJenkinsfile(t)
	builds := &jobs{t: t}
	jenkins := newStandIn(t, func(w http.ResponseWriter, c toolCall, n int) {
		user, pass, basic := c.basicAuth()
		apiToken := basic && user == jenkinsUser && pass == jenkinsAPIToken
		switch {
		case n == 1:
			http.Error(w, "Please wait while Jenkins is getting ready to work", http.StatusServiceUnavailable)
		case c.Method != http.MethodPost || c.Path != "/job/deploy/buildWithParameters":
			http.Error(w, "Not Found", http.StatusNotFound)
		case c.Query.Get("token") != jenkinsJobToken:
			http.Error(w, "Invalid token", http.StatusForbidden)
		case !apiToken && c.Header.Get("Jenkins-Crumb") == "":
			// Only calls authenticated with an API token are exempt from
			// the CSRF crumb.
			http.Error(w, "No valid crumb was included in the request", http.StatusForbidden)
		default:
			params := map[string]string{"BUILD_URL": fmt.Sprintf("http://%s/job/deploy/%d/", c.Host, n)}
			for _, p := range jf.params {
				params[p] = c.Query.Get(p)
			}
			w.Header().Set("Location", fmt.Sprintf("http://%s/queue/item/%d/", c.Host, n))
			w.WriteHeader(http.StatusCreated)
			builds.start(func(dd func(args ...string) invocation) {
				jf.build(builds, dd, params, params["SERVICE"] == "checkout")
			})
		}
	})
	srv := launch(t, exampleDir("jenkins"), filepath.Join(t.TempDir(), "deploydb.db"), jenkinsEnv(jenkins.URL))
	builds.reportTo(srv.URL)
	c := api{t: t, url: srv.URL}

	// CI publishes billing; Jenkins builds it in integ, staging and prod.
	const version = "1.4.0+build.7"
	const source = "https://repo.example.com/billing/billing-1.4.0+build.7.jar?X-Amz-Expires=600&X-Amz-Signature=ab%2Fcd"
	art := c.publishArtifact("com.example", "billing", version, source)
	f := c.flowOf(art.ID)
	prod := f.Deployments[2]
	prod = c.waitDeploymentUntil(prod.ID, "COMPLETED, smoke tests passed", func(d deploydb.Deployment) bool {
		return d.Status == deploydb.DeploymentCompleted && promotionStatus(d, "smoke") == deploydb.PromotionSuccess
	})
	for _, d := range f.Deployments[:2] {
		if d = c.deployment(d.ID); d.Status != deploydb.DeploymentSuccess {
			t.Errorf("%s = %s, want SUCCESS", d.Environment, d.Status)
		}
	}
	for _, p := range prod.Promotions {
		want := map[string]deploydb.PromotionStatus{"smoke": deploydb.PromotionSuccess, "release-approval": deploydb.PromotionStarted}[p.Promotion]
		if p.Status != want {
			t.Errorf("prod %s = %s, want %s", p.Promotion, p.Status, want)
		}
		if p.Promotion == "smoke" && !strings.HasSuffix(p.InfoURL, "/job/deploy/4/") {
			t.Errorf("smoke infoUrl = %q, want the build's URL", p.InfoURL)
		}
	}
	// The release manager approves; the flow is done.
	deploydbCLI(t, srv.URL, "promotion", "report", itoa(prod.ID), "release-approval", "--status", "SUCCESS").ok(t)
	c.waitFlow(art.ID, deploydb.FlowSuccess)

	calls := jenkins.wait(t, "Jenkins", 4)
	if len(calls) != 4 {
		t.Fatalf("%d calls to Jenkins, want 4 (503, then one build per environment)", len(calls))
	}
	if calls[0].Header.Get("Webhook-Id") == "" || calls[0].Header.Get("Webhook-Id") != calls[1].Header.Get("Webhook-Id") {
		t.Errorf("webhook-id of the refused call %q and of its retry %q differ", calls[0].Header.Get("Webhook-Id"), calls[1].Header.Get("Webhook-Id"))
	}
	for i, d := range f.Deployments {
		call := calls[i+1]
		what := "build for " + d.Environment
		if call.Method != http.MethodPost || call.Path != "/job/deploy/buildWithParameters" {
			t.Errorf("%s: %s %s", what, call.Method, call.Path)
		}
		want := url.Values{
			"token": {jenkinsJobToken}, "SERVICE": {"billing"}, "ENVIRONMENT": {d.Environment},
			"VERSION": {version}, "ARTIFACT_URL": {source}, "DEPLOYMENT_ID": {itoa(d.ID)},
		}
		if diff := cmp.Diff(want, call.Query); diff != "" {
			t.Errorf("%s: query (-want +got):\n%s", what, diff)
		}
		if user, pass, ok := call.basicAuth(); !ok || user != jenkinsUser || pass != jenkinsAPIToken {
			t.Errorf("%s: basic auth = %q %q %v, want the user's API token", what, user, pass, ok)
		}
		if call.Header.Get("Jenkins-Crumb") != "" {
			t.Errorf("%s: sent a crumb", what)
		}
	}
	var names []string
	for p := range calls[1].Query {
		if p != "token" {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(jf.params)); !slices.Equal(names, want) {
		t.Errorf("the hook sends the parameters %v, the Jenkinsfile declares %v", names, want)
	}

	// The delivery log: integ's call took two attempts, 503 then 201;
	// the URL it shows holds no token.
	ds := c.waitDelivered("jenkins-deploy")
	integ := c.deliveryHistory(deliveryAbout(t, ds, f.Deployments[0].ID).ID)
	if len(integ.History) != 2 || integ.History[0].StatusCode != 503 || integ.History[1].StatusCode != 201 {
		t.Errorf("integ delivery attempts = %+v, want 503 then 201", integ.History)
	}
	for _, d := range ds {
		if strings.Contains(d.URL, jenkinsJobToken) || strings.Contains(d.URL, "token") {
			t.Errorf("delivery log shows the URL %s", d.URL)
		}
		if d.Deployment != f.Deployments[0].ID && d.Attempts != 1 {
			t.Errorf("delivery %d took %d attempts", d.ID, d.Attempts)
		}
	}

	// checkout's deploy fails: the build reports it and the flow stops.
	bad := c.publishArtifact("com.example", "checkout", "2.0.0", "https://repo.example.com/checkout/checkout-2.0.0.jar")
	bf := c.flowOf(bad.ID)
	c.waitDeployment(bf.Deployments[0].ID, deploydb.DeploymentFailed)
	bf = c.waitFlow(bad.ID, deploydb.FlowFailed)
	if bf.Deployments[1].Status != deploydb.DeploymentNotStarted {
		t.Errorf("checkout staging = %s after integ failed, want NOT_STARTED", bf.Deployments[1].Status)
	}
	if calls := jenkins.all(); len(calls) != 5 || calls[4].Query.Get("SERVICE") != "checkout" {
		t.Errorf("calls to Jenkins after checkout's: %d", len(calls))
	}
}

// TestExampleRundeck runs examples/rundeck: every deployment runs the
// Rundeck job, which reports back; shipping 1.1.0 fails in production and
// is rolled back to 1.0.0 through the same job. Every event also goes to
// the audit receiver, signed.
func TestExampleRundeck(t *testing.T) {
	t.Parallel()
	execs := &jobs{t: t}
	rundeck := newStandIn(t, func(w http.ResponseWriter, c toolCall, n int) {
		var in struct {
			Options map[string]string `json:"options"`
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case c.Method != http.MethodPost || c.Path != "/api/41/job/"+rundeckJobID+"/run":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error": true, "apiversion": 41, "errorCode": "api.error.item.doesnotexist", "message": "Job ID does not exist"}`)
		case c.Header.Get("X-Rundeck-Auth-Token") != rundeckToken:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"error": true, "apiversion": 41, "errorCode": "request.error.unauthorized.message", "message": "Unauthorized"}`)
		case c.Header.Get("Content-Type") != "application/json" || json.Unmarshal(c.Body, &in) != nil || in.Options == nil:
			// Option values must be strings: a number fails to decode.
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error": true, "apiversion": 41, "errorCode": "api.error.invalid.request", "message": "Invalid request"}`)
		default:
			fmt.Fprintf(w, `{"id": %d, "href": "http://%s/api/41/execution/%d", "permalink": "http://%s/project/deploy/execution/show/%d", "status": "running", "project": "deploy", "job": {"id": %q, "name": "deploy", "group": "deploydb"}}`,
				n, c.Host, n, c.Host, n, rundeckJobID)
			o := in.Options
			execs.start(func(dd func(args ...string) invocation) {
				// The job's steps: start, deploy (1.1.0 breaks production,
				// the error handler reports it), complete.
				if !execs.mustOK(dd("deployment", "start", o["deployment_id"])) {
					return
				}
				if o["version"] == "1.1.0" && o["environment"] == "production" {
					execs.mustOK(dd("deployment", "fail", o["deployment_id"]))
					return
				}
				execs.mustOK(dd("deployment", "complete", o["deployment_id"]))
			})
		}
	})
	audit := newStandIn(t, func(w http.ResponseWriter, c toolCall, n int) { w.WriteHeader(http.StatusNoContent) })
	srv := launch(t, exampleDir("rundeck"), filepath.Join(t.TempDir(), "deploydb.db"), rundeckEnv(rundeck.URL, audit.URL+"/deploydb"))
	execs.reportTo(srv.URL)
	c := api{t: t, url: srv.URL}
	dd := func(args ...string) invocation { t.Helper(); return deploydbCLI(t, srv.URL, args...) }

	// ship takes version through qa (the integration tests pass) to
	// production and returns its flow.
	ship := func(version string, want deploydb.FlowStatus) deploydb.Flow {
		art := c.publishArtifact("com.example", "shipping", version, "https://nexus.example.com/shipping-"+version+".tar.gz")
		f := c.flowOf(art.ID)
		qa := c.waitDeployment(f.Deployments[0].ID, deploydb.DeploymentCompleted)
		dd("promotion", "report", itoa(qa.ID), "integration-tests", "--status", "SUCCESS").ok(t)
		return c.waitFlow(art.ID, want)
	}
	good := ship("1.0.0", deploydb.FlowSuccess)
	bad := ship("1.1.0", deploydb.FlowFailed)
	var rollback deploydb.Deployment
	eventually(t, "the rollback verified in production", func() bool {
		rollback = c.deploymentsTo("shipping", "production")[0]
		return rollback.Reason == deploydb.ReasonRollback && rollback.Status == deploydb.DeploymentSuccess
	})
	if rollback.Artifact.Version != "1.0.0" {
		t.Errorf("rolled back to %s, want 1.0.0", rollback.Artifact.Version)
	}

	calls := rundeck.all()
	type run struct {
		d      deploydb.Deployment
		reason string
	}
	want := []run{{good.Deployments[0], "pipeline"}, {good.Deployments[1], "pipeline"}, {bad.Deployments[0], "pipeline"}, {bad.Deployments[1], "pipeline"}, {rollback, "rollback"}}
	if len(calls) != len(want) {
		t.Fatalf("%d calls to Rundeck, want %d", len(calls), len(want))
	}
	for i, r := range want {
		call := calls[i]
		what := fmt.Sprintf("run %d (%s %s)", i+1, r.d.Environment, r.d.Artifact.Version)
		if call.Method != http.MethodPost || call.Path != "/api/41/job/"+rundeckJobID+"/run" || len(call.Query) != 0 {
			t.Errorf("%s: %s %s?%s", what, call.Method, call.Path, call.Query.Encode())
		}
		checkHeader(t, what, call, "X-Rundeck-Auth-Token", rundeckToken)
		checkHeader(t, what, call, "Accept", "application/json")
		checkHeader(t, what, call, "Content-Type", "application/json")
		checkHeader(t, what, call, "Webhook-Signature", "")
		wantBody := map[string]any{"options": map[string]any{
			"service": "shipping", "environment": r.d.Environment, "version": r.d.Artifact.Version,
			"artifact_url":  "https://nexus.example.com/shipping-" + r.d.Artifact.Version + ".tar.gz",
			"deployment_id": itoa(r.d.ID), "reason": r.reason,
		}}
		if diff := cmp.Diff(wantBody, jsonBody(t, what, call.Body)); diff != "" {
			t.Errorf("%s: body (-want +got):\n%s", what, diff)
		}
	}

	// The audit receiver got every event, each call signed with the
	// secret (the reference library verifies it) and with its own
	// webhook-id.
	ds := c.waitDelivered("deploy-audit")
	got := audit.wait(t, "the audit receiver", len(ds))
	if len(got) != len(ds) || len(ds) < 20 {
		t.Fatalf("audit receiver got %d calls, the delivery log has %d deliveries", len(got), len(ds))
	}
	wh, err := standardwebhooks.NewWebhook(auditSecret)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	types := map[string]bool{}
	for _, call := range got {
		if err := wh.Verify(call.Body, call.Header); err != nil {
			t.Errorf("call %s %s: signature does not verify: %v", call.Header.Get("Webhook-Id"), call.Header.Get("Content-Type"), err)
		}
		ids[call.Header.Get("Webhook-Id")] = true
		types[call.Header.Get("Content-Type")] = true
		if call.Path != "/deploydb" || jsonBody(t, "audit", call.Body)["service"] != "shipping" {
			t.Errorf("audit call %s: %s", call.Path, call.Body)
		}
	}
	if len(ids) != len(got) {
		t.Errorf("%d webhook-ids for %d deliveries", len(ids), len(got))
	}
	for _, typ := range []string{"deploymentcreated", "deploymentstarted", "deploymentcompleted", "deploymentfailed", "deploymentverified", "promotioncompleted", "flowcompleted"} {
		if !types["application/vnd.deploydb."+typ+".v1+json"] {
			t.Errorf("the audit receiver got no %s event; got %v", typ, types)
		}
	}
	for _, d := range ds {
		if !d.Signed {
			t.Errorf("delivery %d not shown as signed", d.ID)
		}
	}
	wrong, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("not the secret")))
	if wrong.Verify(got[0].Body, got[0].Header) == nil {
		t.Error("a wrong secret verifies the audit call")
	}
}

// TestExampleHeroku runs examples/heroku: each deployment creates a build
// of the app <service>-<environment> from the artifact's source tarball;
// a watcher reports the build's outcome as the README's script does.
func TestExampleHeroku(t *testing.T) {
	t.Parallel()
	app := regexp.MustCompile(`^/apps/([a-z][a-z0-9-]{2,29})/builds$`)
	heroku := newStandIn(t, func(w http.ResponseWriter, c toolCall, n int) {
		var in struct {
			SourceBlob struct {
				URL     string  `json:"url"`
				Version *string `json:"version"`
			} `json:"source_blob"`
		}
		w.Header().Set("Content-Type", "application/json")
		m := app.FindStringSubmatch(c.Path)
		switch {
		case c.Method != http.MethodPost || m == nil:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"id": "not_found", "message": "Couldn't find that app."}`)
		case c.Header.Get("Authorization") != "Bearer "+herokuAPIKey:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"id": "unauthorized", "message": "Invalid credentials provided."}`)
		case c.Header.Get("Accept") != "application/vnd.heroku+json; version=3":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"id": "bad_request", "message": "Please specify a version along with Heroku's API MIME type."}`)
		case c.Header.Get("Content-Type") != "application/json" || json.Unmarshal(c.Body, &in) != nil || in.SourceBlob.URL == "":
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"id": "invalid_params", "message": "source_blob.url is required."}`)
		default:
			w.WriteHeader(http.StatusCreated)
			b, _ := json.Marshal(map[string]any{
				"id": fmt.Sprintf("01234567-89ab-cdef-0123-%012d", n), "status": "pending",
				"app":         map[string]any{"id": fmt.Sprintf("fedcba98-7654-3210-fedc-%012d", n), "name": m[1]},
				"source_blob": map[string]any{"url": in.SourceBlob.URL, "version": in.SourceBlob.Version, "checksum": nil},
				"buildpacks":  nil, "release": nil, "slug": nil, "stack": "heroku-24",
				"output_stream_url": fmt.Sprintf("https://build-output.heroku.com/streams/%d", n),
			})
			w.Write(b)
		}
	})
	srv := launch(t, exampleDir("heroku"), filepath.Join(t.TempDir(), "deploydb.db"), herokuEnv(heroku.URL))
	c := api{t: t, url: srv.URL}
	dd := func(args ...string) invocation { t.Helper(); return deploydbCLI(t, srv.URL, args...) }

	// watch plays the README's watcher for one service and environment:
	// once Heroku has the build, find the CREATED deployment, report it
	// started, then what the build came to.
	watch := func(service, env string, succeeded bool) deploydb.Deployment {
		path := "/apps/" + service + "-" + env + "/builds"
		eventually(t, "a build of "+service+"-"+env, func() bool {
			return slices.ContainsFunc(heroku.all(), func(c toolCall) bool { return c.Path == path })
		})
		var created []deploydb.Deployment
		dd("deployment", "list", "--service", service, "--environment", env, "--status", "CREATED", "-o", "json").ok(t).decode(t, &created)
		if len(created) != 1 {
			t.Fatalf("%s in %s: %d CREATED deployments", service, env, len(created))
		}
		id := itoa(created[0].ID)
		dd("deployment", "start", id).ok(t)
		if succeeded {
			dd("deployment", "complete", id).ok(t)
		} else {
			dd("deployment", "fail", id).ok(t)
		}
		return created[0]
	}

	const storefrontSource = "https://ci.example.com/storefront/storefront-3.1.0.tar.gz?token=a%2Bb"
	front := c.publishArtifact("com.example", "storefront", "3.1.0", storefrontSource)
	admin := c.publishArtifact("com.example", "admin", "0.4.0", "https://ci.example.com/admin/admin-0.4.0.tar.gz")
	staging := watch("storefront", "staging", true)
	dd("promotion", "report", itoa(staging.ID), "acceptance", "--status", "SUCCESS", "--info-url", "https://ci.example.com/acceptance/17").ok(t)
	production := watch("storefront", "production", true)
	c.waitFlow(front.ID, deploydb.FlowSuccess)
	adminStaging := watch("admin", "staging", false)
	c.waitFlow(admin.ID, deploydb.FlowFailed)

	calls := heroku.all()
	if len(calls) != 3 {
		t.Fatalf("%d calls to Heroku, want 3 builds", len(calls))
	}
	for _, b := range []struct {
		d       deploydb.Deployment
		app     string
		source  string
		version string
	}{
		{staging, "storefront-staging", storefrontSource, "3.1.0"},
		{production, "storefront-production", storefrontSource, "3.1.0"},
		{adminStaging, "admin-staging", "https://ci.example.com/admin/admin-0.4.0.tar.gz", "0.4.0"},
	} {
		i := slices.IndexFunc(calls, func(c toolCall) bool { return c.Path == "/apps/"+b.app+"/builds" })
		if i < 0 {
			t.Errorf("no build of %s", b.app)
			continue
		}
		call := calls[i]
		what := "build of " + b.app
		if call.Method != http.MethodPost || len(call.Query) != 0 {
			t.Errorf("%s: %s %s?%s", what, call.Method, call.Path, call.Query.Encode())
		}
		checkHeader(t, what, call, "Accept", "application/vnd.heroku+json; version=3")
		checkHeader(t, what, call, "Authorization", "Bearer "+herokuAPIKey)
		checkHeader(t, what, call, "Content-Type", "application/json")
		want := map[string]any{"source_blob": map[string]any{"url": b.source, "version": b.version}}
		if diff := cmp.Diff(want, jsonBody(t, what, call.Body)); diff != "" {
			t.Errorf("%s: body (-want +got):\n%s", what, diff)
		}
	}
	// The delivery log shows the URL as rendered, the variable as written.
	for _, d := range c.waitDelivered("heroku-build") {
		if d.Attempts != 1 || d.URL != "${env:HEROKU_API_URL}/apps/"+map[int64]string{staging.ID: "storefront-staging", production.ID: "storefront-production", adminStaging.ID: "admin-staging"}[d.Deployment]+"/builds" {
			t.Errorf("delivery %+v", d)
		}
	}
}

// TestExamplePagerDuty runs examples/pagerduty: a failure in staging pages
// nobody; a failure in prod triggers one PagerDuty alert for that
// deployment.
func TestExamplePagerDuty(t *testing.T) {
	t.Parallel()
	severities := []string{"critical", "error", "warning", "info"}
	pagerduty := newStandIn(t, func(w http.ResponseWriter, c toolCall, n int) {
		var ev struct {
			RoutingKey  string `json:"routing_key"`
			EventAction string `json:"event_action"`
			DedupKey    string `json:"dedup_key"`
			Payload     struct {
				Summary   string `json:"summary"`
				Source    string `json:"source"`
				Severity  string `json:"severity"`
				Timestamp string `json:"timestamp"`
			} `json:"payload"`
		}
		w.Header().Set("Content-Type", "application/json")
		var problems []string
		if c.Method != http.MethodPost || c.Path != "/v2/enqueue" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err := json.Unmarshal(c.Body, &ev); err != nil || c.Header.Get("Content-Type") != "application/json" {
			problems = append(problems, "Event object is invalid")
		}
		if len(ev.RoutingKey) != 32 {
			problems = append(problems, "'routing_key' is invalid")
		}
		if !slices.Contains([]string{"trigger", "acknowledge", "resolve"}, ev.EventAction) {
			problems = append(problems, "'event_action' is invalid")
		}
		if ev.DedupKey == "" || len(ev.DedupKey) > 255 {
			problems = append(problems, "'dedup_key' is invalid")
		}
		if ev.Payload.Summary == "" || len(ev.Payload.Summary) > 1024 || ev.Payload.Source == "" || !slices.Contains(severities, ev.Payload.Severity) {
			problems = append(problems, "'payload' is invalid")
		}
		if _, err := time.Parse(time.RFC3339, ev.Payload.Timestamp); ev.Payload.Timestamp != "" && err != nil {
			problems = append(problems, "'payload.timestamp' is invalid")
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusBadRequest)
			b, _ := json.Marshal(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": problems})
			w.Write(b)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		b, _ := json.Marshal(map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
		w.Write(b)
	})
	srv := launch(t, exampleDir("pagerduty"), filepath.Join(t.TempDir(), "deploydb.db"), pagerDutyEnv(pagerduty.URL))
	c := api{t: t, url: srv.URL}
	dd := func(args ...string) invocation { t.Helper(); return deploydbCLI(t, srv.URL, args...) }

	// ledger fails in staging: nobody is paged. The delivery is written
	// with the failure, so the log shows now whether there is one.
	ledger := c.publishArtifact("com.example", "ledger", "5.0.0", "https://repo.example.com/ledger-5.0.0.jar")
	dd("deployment", "fail", itoa(c.flowOf(ledger.ID).Deployments[0].ID)).ok(t)
	if ds := c.hookDeliveries("pagerduty"); len(ds) != 0 {
		t.Fatalf("a failure in staging pages: %+v", ds)
	}

	// payments passes staging and fails in prod.
	const version = `2.0.1 "hotfix"`
	payments := c.publishArtifact("com.example", "payments", version, "https://repo.example.com/payments-2.0.1.jar")
	f := c.flowOf(payments.ID)
	staging := itoa(f.Deployments[0].ID)
	dd("deployment", "start", staging).ok(t)
	dd("deployment", "complete", staging).ok(t)
	dd("promotion", "report", staging, "smoke", "--status", "SUCCESS").ok(t)
	prod := c.waitDeployment(f.Deployments[1].ID, deploydb.DeploymentCreated)
	dd("deployment", "start", itoa(prod.ID)).ok(t)
	dd("deployment", "fail", itoa(prod.ID)).ok(t)

	calls := pagerduty.wait(t, "PagerDuty", 1)
	ds := c.waitDelivered("pagerduty")
	if len(calls) != 1 || len(ds) != 1 || ds[0].Deployment != prod.ID || ds[0].EventType != deploydb.EventDeploymentFailed {
		t.Fatalf("PagerDuty got %d calls; deliveries %+v; want one, about prod deployment %d", len(calls), ds, prod.ID)
	}
	call := calls[0]
	if call.Method != http.MethodPost || call.Path != "/v2/enqueue" || len(call.Query) != 0 {
		t.Errorf("call: %s %s?%s", call.Method, call.Path, call.Query.Encode())
	}
	checkHeader(t, "call", call, "Content-Type", "application/json")
	var evs []deploydb.Event
	c.call("GET", "/api/events?type=deployment.failed&service=payments", nil, 200, &evs)
	if len(evs) != 1 {
		t.Fatalf("deployment.failed events of payments = %+v", evs)
	}
	want := map[string]any{
		"routing_key":  pagerDutyKey,
		"event_action": "trigger",
		"dedup_key":    "deploydb-deployment-" + itoa(prod.ID),
		"payload": map[string]any{
			"summary":   `Deployment of payments 2.0.1 "hotfix" to prod failed`,
			"source":    "deploydb",
			"severity":  "error",
			"timestamp": evs[0].CreatedAt.String(),
			"component": "payments",
			"group":     "prod",
			"class":     "deployment",
			"custom_details": map[string]any{
				"deployment_id": float64(prod.ID),
				"flow_id":       float64(f.ID),
				"artifact":      "com.example:payments:" + version,
				"artifact_url":  "https://repo.example.com/payments-2.0.1.jar",
				"reason":        "pipeline",
				"reported_by":   "anonymous",
				"detail":        evs[0].Detail,
			},
		},
	}
	if diff := cmp.Diff(want, jsonBody(t, "PagerDuty event", call.Body)); diff != "" {
		t.Errorf("PagerDuty event (-want +got):\n%s", diff)
	}
	if ds[0].Attempts != 1 {
		t.Errorf("PagerDuty refused the event first: %+v", ds[0])
	}
}

// TestExampleSlack runs examples/slack with Slack down at first: the calls
// made while it is down are dropped without an answer; once it is back each
// is delivered on its retry, with the same webhook-id, and the delivery log
// shows the failed attempt, then the success.
func TestExampleSlack(t *testing.T) {
	t.Parallel()
	slack, backUp := newDownStandIn(t, func(w http.ResponseWriter, c toolCall, n int) {
		var msg struct {
			Text *string `json:"text"`
		}
		w.Header().Set("Content-Type", "text/html")
		switch {
		case c.Method != http.MethodPost || c.Path != slackHookPath:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "no_service")
		case c.Header.Get("Content-Type") != "application/json" || json.Unmarshal(c.Body, &msg) != nil || msg.Text == nil || *msg.Text == "":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "invalid_payload")
		default:
			fmt.Fprint(w, "ok")
		}
	})
	srv := launch(t, exampleDir("slack"), filepath.Join(t.TempDir(), "deploydb.db"), slackEnv(slack.URL+slackHookPath))
	c := api{t: t, url: srv.URL}
	dd := func(args ...string) invocation { t.Helper(); return deploydbCLI(t, srv.URL, args...) }
	deploy := func(d deploydb.Deployment) {
		t.Helper()
		dd("deployment", "start", itoa(d.ID)).ok(t)
		dd("deployment", "complete", itoa(d.ID)).ok(t)
	}

	// While Slack is down: web is verified in dev, api (with a quote in
	// its version) fails there.
	web := c.publishArtifact("com.example", "web", "1.8.0", "https://repo.example.com/web-1.8.0.tgz")
	wf := c.flowOf(web.ID)
	deploy(wf.Deployments[0])
	const apiVersion = `0.9.0 "rc1"`
	apiArt := c.publishArtifact("com.example", "api", apiVersion, "https://repo.example.com/api-0.9.0.tgz")
	apiDev := c.flowOf(apiArt.ID).Deployments[0]
	dd("deployment", "fail", itoa(apiDev.ID)).ok(t)
	var down []deploydb.DeliveryView
	eventually(t, "a failed attempt at both calls", func() bool {
		down = c.hookDeliveries("slack")
		return len(down) == 2 && !slices.ContainsFunc(down, func(d deploydb.DeliveryView) bool { return d.Attempts < 1 })
	})
	for _, d := range down {
		if d.Status != deploydb.DeliveryPending || d.LastError == "" {
			t.Errorf("delivery while Slack is down = %+v, want pending with the error", d)
		}
	}

	// Slack is back: both are delivered on their retry.
	backUp()
	ds := c.waitDelivered("slack")
	calls := slack.all()
	for _, d := range ds {
		h := c.deliveryHistory(d.ID).History
		if len(h) != 2 || h[0].StatusCode != 0 || h[0].Error == "" || h[1].StatusCode != 200 || h[1].Response != "ok" {
			t.Errorf("attempts of delivery %d = %+v, want a dropped call, then 200 ok", d.ID, h)
			continue
		}
		t.Logf("delivery %d: the call dropped while Slack was down: %q", d.ID, h[0].Error)
		if gap := h[1].CreatedAt.Sub(h[0].CreatedAt.Time); gap < 4500*time.Millisecond {
			t.Errorf("retried %s after the failed attempt, before the schedule's first delay (5 s less 10%% jitter)", gap)
		}
	}
	byID := map[string][]toolCall{}
	for _, call := range calls {
		byID[call.Header.Get("Webhook-Id")] = append(byID[call.Header.Get("Webhook-Id")], call)
	}
	if len(calls) != 4 || len(byID) != 2 {
		t.Fatalf("Slack got %d calls with %d webhook-ids, want each of 2 messages dropped once then delivered", len(calls), len(byID))
	}
	texts := map[string]bool{}
	for id, cs := range byID {
		if len(cs) != 2 || !cs[0].Dropped || cs[1].Dropped || !bytes.Equal(cs[0].Body, cs[1].Body) {
			t.Errorf("webhook-id %s: calls %+v, want the same call dropped then delivered", id, cs)
			continue
		}
		checkHeader(t, "message", cs[1], "Content-Type", "application/json")
		texts[jsonBody(t, "message", cs[1].Body)["text"].(string)] = true
	}

	// Slack stays up: web goes through staging (QA signs off) to prod.
	staging := c.waitDeployment(wf.Deployments[1].ID, deploydb.DeploymentCreated)
	deploy(staging)
	dd("promotion", "report", itoa(staging.ID), "qa-signoff", "--status", "SUCCESS").ok(t)
	deploy(c.waitDeployment(wf.Deployments[2].ID, deploydb.DeploymentCreated))
	c.waitFlow(web.ID, deploydb.FlowSuccess)
	ds = c.waitDelivered("slack")
	calls = slack.wait(t, "Slack", 7)
	if len(ds) != 5 || len(calls) != 7 {
		t.Fatalf("%d deliveries, %d calls to Slack; want 5 messages, 7 calls", len(ds), len(calls))
	}
	for _, call := range calls[4:] {
		texts[jsonBody(t, "message", call.Body)["text"].(string)] = true
	}
	want := map[string]bool{
		":white_check_mark: web 1.8.0 is verified in dev":                          true,
		":x: api 0.9.0 \"rc1\" failed in dev (deployment " + itoa(apiDev.ID) + ")": true,
		":white_check_mark: web 1.8.0 is verified in staging":                      true,
		":white_check_mark: web 1.8.0 is verified in prod":                         true,
		":rocket: web 1.8.0 went through the whole pipeline: live in prod":         true,
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("Slack messages (-want +got):\n%s", diff)
	}
	for _, call := range calls[4:] {
		byID[call.Header.Get("Webhook-Id")] = append(byID[call.Header.Get("Webhook-Id")], call)
	}
	if len(byID) != 5 {
		t.Errorf("%d webhook-ids for 5 messages", len(byID))
	}
}
