package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/httpapi"
)

// Tokens of the auth tests: name → secret and scopes.
var testTokens = []struct {
	name, secret string
	scopes       []deploydb.Scope
	groups       []string
}{
	{"reader", "ddb_reader-secret-0123456789", []deploydb.Scope{deploydb.ScopeRead}, nil},
	{"ci", "ddb_ci-secret-0123456789abcd", []deploydb.Scope{deploydb.ScopeArtifactsWrite, deploydb.ScopePromotionsWrite}, []string{"release-managers"}},
	{"orchestrator", "ddb_orchestrator-secret-0123", []deploydb.Scope{deploydb.ScopeDeploymentsWrite}, nil},
	{"tests", "ddb_tests-secret-0123456789a", []deploydb.Scope{deploydb.ScopePromotionsWrite}, nil},
	{"alice", "ddb_alice-secret-0123456789a", []deploydb.Scope{deploydb.ScopeRead, deploydb.ScopePromotionsWrite}, []string{"release-managers"}},
	{"ops", "ddb_ops-secret-0123456789abcd", []deploydb.Scope{deploydb.ScopeAdmin}, nil},
}

func secretOf(name string) string {
	for _, tk := range testTokens {
		if tk.name == name {
			return tk.secret
		}
	}
	panic(name)
}

// authConfig writes billing through integ (smoke) then prod, whose manual
// promotion approval only release-managers may report, and not the
// publisher; with the test tokens, and anonymous callers granted
// anonymous.
func authConfig(t *testing.T, anonymous string) string {
	t.Helper()
	var tokens strings.Builder
	tokens.WriteString("tokens:\n")
	for _, tk := range testTokens {
		scopes := make([]string, len(tk.scopes))
		for i, s := range tk.scopes {
			scopes[i] = string(s)
		}
		fmt.Fprintf(&tokens, "  - name: %s\n    sha256: %s\n    scopes: [%s]\n    groups: [%s]\n", tk.name, deploydb.HashSecret(tk.secret), strings.Join(scopes, ", "), strings.Join(tk.groups, ", "))
	}
	if anonymous != "" {
		tokens.WriteString("anonymous: [" + anonymous + "]\n")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":    "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml":  "description: Integration\n",
		"environments/prod.yml":   "description: Production\nproduction: true\n",
		"pipelines/standard.yml":  "environments:\n  integ: {promotions: [smoke]}\n  prod: {promotions: [approval]}\n",
		"promotions/smoke.yml":    "type: basic\n",
		"promotions/approval.yml": "type: manual\nattributes:\n  allowedGroup: release-managers\n  allowSelfApproval: false\n",
		"auth/tokens.yml":         tokens.String(),
	})
	return dir
}

// send makes a request with the Authorization header auth (none if
// empty) and returns the status and body.
func send(t *testing.T, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") == "text/event-stream" {
		return res.StatusCode, nil // a stream: the status is what counts
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// routeScopes is who may call what (issue 5): reads need read; publishing
// artifacts:write; deployment reports deployments:write; promotion results
// promotions:write; operator actions, reload and redelivery admin; CDEvents
// the scope of what the event records ("event"); health checks nothing.
var routeScopes = map[string]string{
	"GET /healthz":                                    "",
	"GET /readyz":                                     "",
	"GET /api/openapi.json":                           "read",
	"POST /api/artifacts":                             "artifacts:write",
	"GET /api/artifacts":                              "read",
	"GET /api/artifacts/{id}":                         "read",
	"PATCH /api/artifacts/{id}":                       "artifacts:write",
	"DELETE /api/artifacts/{id}":                      "artifacts:write",
	"GET /api/artifacts/by-module/{module}":           "read",
	"GET /api/artifacts/by-module/{module}/latest":    "read",
	"GET /api/deployments":                            "read",
	"GET /api/deployments/latest":                     "read",
	"GET /api/deployments/{id}":                       "read",
	"PATCH /api/deployments/{id}":                     "deployments:write",
	"GET /api/deployments/by-artifact/{id}":           "read",
	"GET /api/deployments/by-service/{service}":       "read",
	"POST /api/deployments/{id}/promotions":           "promotions:write",
	"GET /api/deployments/{id}/promotions/{resultId}": "read",
	"GET /api/environments":                           "read",
	"GET /api/environments/{name}":                    "read",
	"POST /api/environments/{name}/lock":              "admin",
	"DELETE /api/environments/{name}/lock":            "admin",
	"GET /api/environments/{name}/deployments":        "read",
	"GET /api/services":                               "read",
	"GET /api/services/{name}":                        "read",
	"GET /api/pipelines":                              "read",
	"GET /api/pipelines/{name}":                       "read",
	"GET /api/promotions":                             "read",
	"GET /api/promotions/{name}":                      "read",
	"GET /api/flows":                                  "read",
	"GET /api/flows/{id}":                             "read",
	"POST /api/flows/{id}/cancel":                     "admin",
	"POST /api/deployments":                           "admin",
	"POST /api/deployments/{id}/retry":                "admin",
	"POST /api/deployments/{id}/rollback":             "admin",
	"GET /api/webhook-deliveries":                     "read",
	"GET /api/webhook-deliveries/{id}":                "read",
	"POST /api/webhook-deliveries/{id}/redeliver":     "admin",
	"GET /api/status":                                 "read",
	"GET /api/events":                                 "read",
	"GET /api/events/stream":                          "read",
	"GET /api/config":                                 "read",
	"POST /api/config/reload":                         "admin",
	"POST /api/cdevents":                              "event",
	"POST /api/import":                                "admin",
	"GET /api/insights/dora":                          "read",
	"GET /api/diff":                                   "read",
}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// concrete fills a route's path parameters.
func concrete(path string) string {
	return pathParam.ReplaceAllStringFunc(path, func(p string) string {
		switch p {
		case "{name}":
			return "integ"
		case "{module}":
			return "com.example:billing"
		case "{service}":
			return "billing"
		}
		return "1"
	})
}

// TestAuthEveryRoute calls every route of the API with no token, a
// malformed one, an unknown one and each test token: a missing, malformed
// or unknown token is 401, a token without the route's scope 403 (admin has
// every scope), a token with it gets past authentication. Routes that need
// no scope answer everyone. No response and no log line shows a secret or
// a hash.
func TestAuthEveryRoute(t *testing.T) {
	t.Parallel()
	srv := launch(t, authConfig(t, ""), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	// Something to find: an artifact, its flow and deployments.
	if code, b := send(t, "POST", srv.URL+"/api/artifacts", "Bearer "+secretOf("ci"),
		map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}); code != 201 {
		t.Fatalf("publish: %d %s", code, b)
	}
	type caller struct{ label, auth string }
	callers := []caller{{"none", ""}, {"malformed", "Basic " + secretOf("ops")}, {"unknown", "Bearer ddb_not-a-token-0123456789"}, {"bare", "Bearer"}}
	for _, tk := range testTokens {
		callers = append(callers, caller{tk.name, "Bearer " + tk.secret})
	}
	var bodies [][]byte
	served := map[string]bool{}
	for _, rt := range httpapi.Routes() {
		key := rt.Method + " " + rt.Path
		served[key] = true
		scope, listed := routeScopes[key]
		if !listed {
			t.Errorf("route %s is not in this test's table of scopes", key)
			continue
		}
		declared := string(rt.Scope)
		if rt.ScopeByEvent {
			declared = "event"
		}
		if declared != scope {
			t.Errorf("route %s declares scope %q, want %q", key, declared, scope)
		}
		for _, c := range callers {
			var body any
			if rt.Method != "GET" {
				body = map[string]any{}
			}
			code, b := send(t, rt.Method, srv.URL+concrete(rt.Path), c.auth, body)
			bodies = append(bodies, b)
			want := "through"
			switch {
			case scope == "":
				// Needs nothing, and looks at no token.
			case c.label == "none" || c.label == "malformed" || c.label == "unknown" || c.label == "bare":
				want = "401"
			default:
				tk := testTokens[slices.IndexFunc(testTokens, func(x struct {
					name, secret string
					scopes       []deploydb.Scope
					groups       []string
				}) bool {
					return x.name == c.label
				})]
				has := slices.Contains(tk.scopes, deploydb.ScopeAdmin) || slices.Contains(tk.scopes, deploydb.Scope(scope))
				if scope == "event" {
					has = slices.ContainsFunc(tk.scopes, func(s deploydb.Scope) bool { return s != deploydb.ScopeRead })
				}
				if !has {
					want = "403"
				}
			}
			got := "through"
			if code == 401 || code == 403 {
				got = fmt.Sprint(code)
				var p struct{ Code, Detail string }
				if err := json.Unmarshal(b, &p); err != nil || p.Detail == "" {
					t.Errorf("%s %s as %s: %d is not problem+json: %s", rt.Method, rt.Path, c.label, code, b)
				}
			}
			if got != want {
				t.Errorf("%s %s as %s: %d, want %s: %s", rt.Method, rt.Path, c.label, code, want, b)
			}
		}
	}
	for key := range routeScopes {
		if !served[key] {
			t.Errorf("the table lists %s, which the API does not serve", key)
		}
	}
	// Nothing shows a secret or its hash, not even one that is not a
	// token's.
	srv.stop()
	all := append(slices.Clone(testTokens), struct {
		name, secret string
		scopes       []deploydb.Scope
		groups       []string
	}{name: "unknown", secret: "ddb_not-a-token-0123456789"})
	for _, tk := range all {
		for _, s := range []string{tk.secret, deploydb.HashSecret(tk.secret)} {
			if strings.Contains(srv.logs.String(), s) {
				t.Errorf("the logs show %s's secret or hash", tk.name)
			}
			for _, b := range bodies {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("a response shows %s's secret or hash: %s", tk.name, b)
				}
			}
		}
	}
}

// A manual promotion is reported only by a token of its allowedGroup, and
// not by the one that published the artifact (allowSelfApproval: false);
// a refused report changes nothing. The approver is recorded on the result
// and in the event log, which the actor filter finds.
func TestAuthManualApproval(t *testing.T) {
	t.Parallel()
	srv := launch(t, authConfig(t, "read"), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	as := func(name string) string { return "Bearer " + secretOf(name) }
	call := func(method, path, who string, body any, want int) []byte {
		t.Helper()
		code, b := send(t, method, srv.URL+path, who, body)
		if code != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
		}
		return b
	}
	call("POST", "/api/artifacts", as("ci"), map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201)
	for _, st := range []string{"STARTED", "COMPLETED"} {
		call("PATCH", "/api/deployments/1", as("orchestrator"), map[string]any{"status": st}, 200)
	}
	call("POST", "/api/deployments/1/promotions", as("tests"), map[string]any{"name": "smoke", "status": "SUCCESS"}, 201)
	for _, st := range []string{"STARTED", "COMPLETED"} {
		call("PATCH", "/api/deployments/2", as("orchestrator"), map[string]any{"status": st}, 200)
	}
	approve := map[string]any{"name": "approval", "status": "SUCCESS", "infoUrl": "https://tickets/CHG-1"}
	b := call("POST", "/api/deployments/2/promotions", as("tests"), approve, 403) // not in release-managers
	if !strings.Contains(string(b), "not in group release-managers") {
		t.Errorf("refusal says %s", b)
	}
	b = call("POST", "/api/deployments/2/promotions", as("ci"), approve, 403) // published it
	if !strings.Contains(string(b), "does not allow self-approval") {
		t.Errorf("refusal says %s", b)
	}
	// Anonymous callers may read (anonymous: [read]), not approve.
	call("POST", "/api/deployments/2/promotions", "", approve, 401)
	var d deploydb.Deployment
	if err := json.Unmarshal(call("GET", "/api/deployments/2", "", nil, 200), &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != deploydb.DeploymentCompleted || d.Promotions[0].Status != deploydb.PromotionStarted {
		t.Fatalf("after refused approvals: %+v", d)
	}
	var r deploydb.PromotionResult
	if err := json.Unmarshal(call("POST", "/api/deployments/2/promotions", as("alice"), approve, 201), &r); err != nil {
		t.Fatal(err)
	}
	if r.ReportedBy != "alice" {
		t.Errorf("result %+v, want reported by alice", r)
	}
	var evs []deploydb.Event
	if err := json.Unmarshal(call("GET", "/api/events?actor=alice", as("reader"), nil, 200), &evs); err != nil {
		t.Fatal(err)
	}
	// Her approval, and what it caused: verified, and the flow done.
	if len(evs) != 3 || evs[0].Type != deploydb.EventPromotionCompleted || evs[0].Deployment != 2 || evs[2].Type != deploydb.EventFlowCompleted {
		t.Errorf("alice's events = %+v", evs)
	}
	if err := json.Unmarshal(call("GET", "/api/events?type=artifact.published", "", nil, 200), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "ci" {
		t.Errorf("artifact.published events = %+v, want by ci", evs)
	}
	var a deploydb.Artifact
	if err := json.Unmarshal(call("GET", "/api/artifacts/1", "", nil, 200), &a); err != nil || a.PublishedBy != "ci" {
		t.Errorf("artifact = %+v (%v), want published by ci", a, err)
	}
}

// With tokens, the server may listen beyond loopback; a reload that
// removes every token then closes the API instead of opening it. Bodies
// over 1 MiB are 413, absurdly nested JSON 400.
func TestAuthBeyondLoopback(t *testing.T) {
	t.Parallel()
	dir := authConfig(t, "")
	srv := launchArgs(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil, "--listen", "0.0.0.0:0")
	base := strings.Replace(srv.URL, "0.0.0.0", "127.0.0.1", 1)
	ops := "Bearer " + secretOf("ops")
	if code, b := send(t, "GET", base+"/api/status", ops, nil); code != 200 {
		t.Fatalf("status: %d %s", code, b)
	}
	big := map[string]any{"group": strings.Repeat("x", 2<<20)}
	if code, _ := send(t, "POST", base+"/api/artifacts", ops, big); code != 413 {
		t.Errorf("a 2 MiB body: %d, want 413", code)
	}
	deep := json.RawMessage(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))
	if code, b := send(t, "POST", base+"/api/artifacts", ops, map[string]any{"group": deep}); code != 400 {
		t.Errorf("deeply nested JSON: %d, want 400: %s", code, b)
	}

	writeFiles(t, dir, map[string]string{"auth/tokens.yml": "tokens: []\n"})
	if code, b := send(t, "POST", base+"/api/config/reload", ops, nil); code != 200 {
		t.Fatalf("reload: %d %s", code, b)
	}
	code, b := send(t, "GET", base+"/api/status", "", nil)
	if code != 401 || !strings.Contains(string(b), "no API tokens are configured") {
		t.Errorf("without tokens beyond loopback: %d %s, want 401", code, b)
	}
	if code, _ := send(t, "GET", base+"/healthz", "", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// A browser page of another origin cannot make a state-changing request.
func TestAuthCrossOrigin(t *testing.T) {
	t.Parallel()
	srv := launch(t, authConfig(t, ""), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	req, _ := http.NewRequest("POST", srv.URL+"/api/artifacts", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+secretOf("ci"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("cross-site POST: %d, want 403", res.StatusCode)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers missing: %v", res.Header)
	}
}

// A token added to the file works after a reload; the CLI sends the token
// of DEPLOYDB_TOKEN, and exits 6 without one or without the scope, as CI
// jobs expect.
func TestAuthReloadAndCLI(t *testing.T) {
	t.Parallel()
	dir := authConfig(t, "")
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil)
	cliAs := func(token string, args ...string) invocation {
		t.Helper()
		var stdout, stderr bytes.Buffer
		env := map[string]string{cli.EnvURL: srv.URL, cli.EnvToken: token}
		err := run(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		return invocation{args: args, code: cli.ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
	}
	cliAs("", "status").fails(t, 6, "API token")
	cliAs(secretOf("orchestrator"), "status").fails(t, 6, "does not have scope read")
	cliAs(secretOf("reader"), "status").ok(t)

	// A new token, by its hash from `deploydb token hash`.
	const late = "ddb_late-secret-0123456789abcdef"
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"token", "hash", "--name", "late", "--scope", "read"}, func(string) string { return "" }, strings.NewReader(late+"\n"), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), late) {
		t.Fatalf("token hash echoed the secret: %s", stdout.String())
	}
	old, err := os.ReadFile(filepath.Join(dir, "auth", "tokens.yml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"auth/tokens.yml": string(old) + stdout.String()})
	cliAs(late, "status").fails(t, 6, "unknown API token")
	cliAs(secretOf("ops"), "config", "reload").ok(t)
	cliAs(late, "status").ok(t)
}

// --tls-cert and --tls-key serve HTTPS; a pair that does not load stops
// the server before it listens.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := launchArgs(t, authConfig(t, ""), filepath.Join(t.TempDir(), "deploydb.db"), nil, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("ready URL %s, want https", srv.URL)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", srv.URL+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+secretOf("reader"))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /api/status over TLS: %d", res.StatusCode)
	}

	var stderr bytes.Buffer
	err = run(t.Context(), []string{"serve", "--config", authConfig(t, ""), "--database", filepath.Join(t.TempDir(), "x.db"), "--listen", "127.0.0.1:0", "--tls-cert", keyFile, "--tls-key", certFile},
		func(string) string { return "" }, strings.NewReader(""), io.Discard, &stderr)
	if cli.ExitCode(err) != 3 || !strings.Contains(fmt.Sprint(err), "--tls-cert/--tls-key") {
		t.Errorf("serve with a bad pair: %v (exit %d)", err, cli.ExitCode(err))
	}
}

// A server on loopback that started with tokens stays closed when a reload
// removes the last one; without tokens it answers only requests addressed to
// a loopback host (no DNS rebinding).
func TestAuthLoopback(t *testing.T) {
	t.Parallel()
	dir := authConfig(t, "")
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil)
	ops := "Bearer " + secretOf("ops")
	code, _ := send(t, "POST", srv.URL+"/api/environments/integ/lock", "", map[string]any{"reason": "x"})
	if code != 401 {
		t.Fatalf("anonymous lock: %d, want 401", code)
	}
	writeFiles(t, dir, map[string]string{"auth/tokens.yml": "tokens: []\n"})
	if code, b := send(t, "POST", srv.URL+"/api/config/reload", ops, nil); code != 200 {
		t.Fatalf("reload: %d %s", code, b)
	}
	if code, b := send(t, "POST", srv.URL+"/api/environments/integ/lock", "", map[string]any{"reason": "x"}); code != 401 {
		t.Errorf("anonymous lock after the last token was removed: %d %s, want 401", code, b)
	}

	open := launch(t, writeConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), map[string]string{"HOOK": "http://127.0.0.1:1"})
	req, _ := http.NewRequest("POST", open.URL+"/api/artifacts", strings.NewReader(`{"group":"com.example","name":"billing","version":"1","sourceUrl":"https://x"}`))
	req.Host = "evil.example" + strings.TrimPrefix(open.URL, "http://127.0.0.1")
	req.Header.Set("Origin", "http://"+req.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("a rebound page's POST without tokens: %d, want 403", res.StatusCode)
	}
	if code, b := send(t, "GET", open.URL+"/api/status", "", nil); code != 200 {
		t.Errorf("a local caller without tokens: %d %s", code, b)
	}
}

// CDEvents need the scope of what they record, and their event ids and
// idempotency keys are each caller's own.
func TestAuthCDEventsAndKeys(t *testing.T) {
	t.Parallel()
	srv := launch(t, authConfig(t, ""), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	as := func(name string) string { return "Bearer " + secretOf(name) }
	published := map[string]any{
		"context":    map[string]any{"specversion": "0.5.1", "id": "evt-1", "source": "/ci", "type": "dev.cdevents.artifact.published.0.3.0", "timestamp": "2026-01-02T03:04:05Z"},
		"subject":    map[string]any{"id": "pkg:maven/com.example/billing@1.0.0", "content": map[string]any{}},
		"customData": map[string]any{"sourceUrl": "https://ci/b.jar"},
	}
	if code, b := send(t, "POST", srv.URL+"/api/cdevents", as("tests"), published); code != 403 {
		t.Errorf("artifact.published by a promotions:write token: %d %s, want 403", code, b)
	}
	if code, b := send(t, "POST", srv.URL+"/api/cdevents", as("ci"), published); code != 200 || !strings.Contains(string(b), `"recorded":"artifact"`) {
		t.Fatalf("artifact.published by ci: %d %s", code, b)
	}
	for _, st := range []string{"STARTED", "COMPLETED"} {
		send(t, "PATCH", srv.URL+"/api/deployments/1", as("orchestrator"), map[string]any{"status": st})
	}
	suite := map[string]any{
		"context": map[string]any{"specversion": "0.5.1", "id": "run-1", "source": "/tests", "type": "dev.cdevents.testsuiterun.finished.0.3.0", "timestamp": "2026-01-02T03:04:05Z"},
		"subject": map[string]any{"id": "run-1", "content": map[string]any{"outcome": "success", "environment": map[string]any{"id": "integ"}, "testSuite": map[string]any{"id": "smoke", "name": "smoke"}}},
	}
	if code, b := send(t, "POST", srv.URL+"/api/cdevents", as("orchestrator"), suite); code != 403 {
		t.Errorf("testsuiterun by a deployments:write token: %d %s, want 403", code, b)
	}
	// An event id is its sender's: another token's event of the same id
	// is judged on its own (nothing awaits smoke any more: 422), not
	// answered with alice's replay.
	if code, _ := send(t, "POST", srv.URL+"/api/cdevents", as("alice"), suite); code != 200 {
		t.Fatalf("testsuiterun by alice: %d", code)
	}
	if code, b := send(t, "POST", srv.URL+"/api/cdevents", as("tests"), suite); code != 422 {
		t.Errorf("the same event id from tests: %d %s, want 422 (judged on its own)", code, b)
	}

	// Idempotency keys: the same key from two tokens is two keys.
	req := func(who, version string) (int, http.Header) {
		body := fmt.Sprintf(`{"group":"com.example","name":"billing","version":%q,"sourceUrl":"https://ci/b.jar"}`, version)
		r, _ := http.NewRequest("POST", srv.URL+"/api/artifacts", strings.NewReader(body))
		r.Header.Set("Authorization", as(who))
		r.Header.Set("Idempotency-Key", "publish-7")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	if code, _ := req("ci", "2.0.0"); code != 201 {
		t.Fatalf("ci publish: %d", code)
	}
	if code, h := req("ops", "2.0.0"); code != 409 || h.Get("Idempotent-Replayed") != "" {
		t.Errorf("ops with ci's key: %d replayed=%q, want its own answer (409: published already)", code, h.Get("Idempotent-Replayed"))
	}
	if code, h := req("ci", "2.0.0"); code != 201 || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("ci again: %d replayed=%q, want its first answer", code, h.Get("Idempotent-Replayed"))
	}
	res, err := http.Get(srv.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: Bearer: %d %v", res.StatusCode, res.Header)
	}
}

// A token revoked by a reload ends the event streams it opened.
func TestAuthStreamRevoked(t *testing.T) {
	t.Parallel()
	dir := authConfig(t, "")
	srv := launch(t, dir, filepath.Join(t.TempDir(), "deploydb.db"), nil)
	req, _ := http.NewRequest("GET", srv.URL+"/api/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+secretOf("reader"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	// The stream is under way once it sent what was there: the two
	// environments announced at start.
	body := bufio.NewReader(res.Body)
	for seen := 0; seen < 2; {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "event: environment.created") {
			seen++
		}
	}
	old, err := os.ReadFile(filepath.Join(dir, "auth", "tokens.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Without reader's entry (its four lines).
	lines := strings.Split(string(old), "\n")
	i := slices.Index(lines, "  - name: reader")
	writeFiles(t, dir, map[string]string{"auth/tokens.yml": strings.Join(slices.Delete(lines, i, i+4), "\n")})
	if code, b := send(t, "POST", srv.URL+"/api/config/reload", "Bearer "+secretOf("ops"), nil); code != 200 {
		t.Fatalf("reload: %d %s", code, b)
	}
	// A commit wakes the stream, which then finds its token gone.
	send(t, "POST", srv.URL+"/api/artifacts", "Bearer "+secretOf("ci"), map[string]any{"group": "com.example", "name": "billing", "version": "9", "sourceUrl": "https://x"})
	done := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(body)
		if err == nil && strings.Contains(string(b), "artifact.published") {
			err = fmt.Errorf("the revoked stream delivered %s", b)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream of a revoked token is still open")
	}
}
