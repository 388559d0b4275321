package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// fuzzSecret is the secret of the fuzz configuration's token, which has
// every scope.
const fuzzSecret = "fuzz-secret-with-every-scope"

// fuzzFlags pick how a fuzzed request is sent.
const (
	fuzzAuthMask    = 0b11 // 0 the token, 1 none, 2 an unknown token, 3 key as the Authorization header
	fuzzIdempotent  = 1 << 2
	fuzzTypeShift   = 3 // 2 bits: an index into fuzzContentTypes
	fuzzOtherMethod = 1 << 5
	fuzzRawArg      = 1 << 6
	fuzzLastEventID = 1 << 7
)

// fuzzContentTypes are the Content-Types a fuzzed request may send.
var fuzzContentTypes = []string{"application/json", "", "application/cloudevents+json; charset=utf-8", "text/plain"}

// fuzzMethods are the methods a request may use instead of its route's.
var fuzzMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// fuzzParam matches a path parameter of a route.
var fuzzParam = regexp.MustCompile(`\{[a-zA-Z]+\}`)

// fuzzAPI is the API under fuzzing: a real server over a real SQLite
// store and the example configuration (with a token of every scope), made
// once per fuzz target and worker process.
type fuzzAPI struct {
	handler http.Handler
	// errors receives what the server logs at level error: a request that
	// logs one hit an internal error, whatever it answered.
	mu     sync.Mutex
	errors bytes.Buffer
}

// Write collects the server's error log.
func (a *fuzzAPI) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errors.Write(p)
}

// takeErrors returns and clears what was logged at level error.
func (a *fuzzAPI) takeErrors() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.errors.String()
	a.errors.Reset()
	return s
}

// newFuzzAPI builds the API over a temporary SQLite file and a copy of
// examples/config with auth/tokens.yml added.
func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	dir := f.TempDir()
	cfgDir := filepath.Join(dir, "config")
	if err := os.CopyFS(cfgDir, os.DirFS(filepath.Join("..", "examples", "config"))); err != nil {
		f.Fatal(err)
	}
	tokens := "tokens:\n  - name: fuzz\n    sha256: " + deploydb.HashSecret(fuzzSecret) +
		"\n    scopes: [read, artifacts:write, deployments:write, promotions:write, admin]\n    groups: [release-managers]\nanonymous: [read]\n"
	if err := os.MkdirAll(filepath.Join(cfgDir, "auth"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "auth", "tokens.yml"), []byte(tokens), 0o644); err != nil {
		f.Fatal(err)
	}
	holder, err := config.NewHolder(cfgDir, config.HolderOptions{})
	if err != nil {
		f.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "deploydb.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	a := &fuzzAPI{}
	logger := slog.New(slog.NewTextHandler(a, &slog.HandlerOptions{Level: slog.LevelError}))
	a.handler = httpapi.NewServer(logger, store, holder.Current).WithReloader(holder)
	return a
}

// fuzzRequest builds the request a fuzz input stands for: route picks the
// route (an index into httpapi.Routes()), arg fills its path parameters,
// query is the raw query string, body the body, flags how it is sent (see
// fuzzFlags) and key the value of the header a flag picks.
func fuzzRequest(route uint8, arg, query string, body []byte, flags uint8, key string) *http.Request {
	routes := httpapi.Routes()
	rt := routes[int(route)%len(routes)]
	method := rt.Method
	if flags&fuzzOtherMethod != 0 {
		method = fuzzMethods[len(arg)%len(fuzzMethods)]
	}
	if flags&fuzzRawArg == 0 {
		arg = url.PathEscape(arg)
	}
	path := fuzzParam.ReplaceAllLiteralString(rt.Path, arg)
	r := httptest.NewRequest(method, "/", bytes.NewReader(body))
	r.URL.RawQuery = query
	if u, err := url.ParseRequestURI(path); err == nil && flags&fuzzRawArg == 0 {
		r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
	} else {
		r.URL.Path = path
	}
	r.RequestURI = r.URL.RequestURI()
	// Without tokens the API serves loopback hosts only; with them, any.
	r.Host = "127.0.0.1:8080"
	switch flags & fuzzAuthMask {
	case 0:
		r.Header.Set("Authorization", "Bearer "+fuzzSecret)
	case 2:
		r.Header.Set("Authorization", "Bearer unknown-"+fuzzSecret)
	case 3:
		r.Header.Set("Authorization", key)
	}
	if flags&fuzzIdempotent != 0 {
		r.Header.Set(httpapi.HeaderIdempotencyKey, key)
	}
	if ct := fuzzContentTypes[(flags>>fuzzTypeShift)&0b11]; ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if flags&fuzzLastEventID != 0 {
		r.Header.Set(httpapi.HeaderLastEventID, key)
	}
	if rt.Path == "/api/events/stream" {
		// A stream runs until its client leaves: this client has left
		// once the stream's first batch is written.
		ctx, cancel := context.WithCancel(r.Context())
		cancel()
		r = r.WithContext(ctx)
	}
	return r
}

// fuzzSeedBodies are valid bodies for the routes that take one, by
// "METHOD path".
var fuzzSeedBodies = map[string]string{
	"POST /api/artifacts":                         `{"group":"com.example","name":"billing","version":"1.0.0","sourceUrl":"https://repo.example.com/billing-1.0.0.jar"}`,
	"PATCH /api/deployments/{id}":                 `{"status":"STARTED"}`,
	"POST /api/deployments/{id}/promotions":       `{"name":"smoke","status":"SUCCESS","infoUrl":"https://ci.example.com/smoke/1"}`,
	"POST /api/environments/{name}/lock":          `{"reason":"maintenance"}`,
	"DELETE /api/environments/{name}/lock":        `{"reason":"done"}`,
	"POST /api/flows/{id}/cancel":                 `{"reason":"wrong build"}`,
	"POST /api/deployments":                       `{"artifact":1,"service":"checkout","environment":"prod","reason":"hotfix"}`,
	"POST /api/deployments/{id}/retry":            `{"reason":"flaky host"}`,
	"POST /api/deployments/{id}/rollback":         `{"reason":"bad release"}`,
	"POST /api/webhook-deliveries/{id}/redeliver": `{"reason":"receiver fixed"}`,
	"POST /api/config/reload":                     ``,
	"POST /api/cdevents":                          `{}`,
}

// fuzzSeedArgs are valid path arguments, by parameter.
var fuzzSeedArgs = map[string]string{
	"{id}": "1", "{resultId}": "1", "{name}": "staging", "{module}": "com.example:billing", "{service}": "billing",
}

// fuzzListRoutes are the routes that read query parameters, which get
// every seed query.
var fuzzListRoutes = map[string]bool{
	"GET /api/artifacts": true, "GET /api/artifacts/by-module/{module}": true, "GET /api/deployments": true,
	"GET /api/deployments/by-artifact/{id}": true, "GET /api/deployments/by-service/{service}": true,
	"GET /api/environments/{name}/deployments": true, "GET /api/flows": true, "GET /api/webhook-deliveries": true,
	"GET /api/status": true, "GET /api/events": true, "GET /api/events/stream": true,
}

// fuzzSeedQueries are query strings, valid and not, of the routes that
// read one.
var fuzzSeedQueries = []string{
	"",
	"pageNumber=0&perPageSize=5&service=billing&environment=integ&status=created&order=asc",
	"query=billing&pageNumber=1&perPageSize=1000",
	"after=0&service=billing&environment=prod&type=deployment.created&actor=fuzz&limit=10",
	"status=pending&hook=127.0.0.1&deployment=1&artifact=1",
	"pageNumber=-1&perPageSize=0&order=up&status=nope&after=-1&type=Bad&limit=1001&deployment=0&artifact=x",
	"pageNumber=99999999999999999999&perPageSize=%zz;x=1&&=",
}

// FuzzAPI sends any request to any route of the API, over a real SQLite
// store and the example configuration, and checks that it never answers
// 5xx (the store is healthy) or logs an internal error, that every error is
// problem+json naming the problem, and every success is JSON (or an event
// stream, or a redirect to the clean path). The store keeps what earlier
// inputs wrote, so later ones find artifacts, deployments and deliveries
// to act on.
func FuzzAPI(f *testing.F) {
	// The seed tables name routes that exist.
	for _, table := range []map[string]bool{fuzzListRoutes, keys(fuzzSeedBodies)} {
		for rt := range table {
			method, path, _ := strings.Cut(rt, " ")
			routeIndex(f, method, path)
		}
	}
	for i, rt := range httpapi.Routes() {
		key := rt.Method + " " + rt.Path
		arg := ""
		if p := fuzzParam.FindString(rt.Path); p != "" {
			arg = fuzzSeedArgs[p]
		}
		body := fuzzSeedBodies[key]
		queries := fuzzSeedQueries[:1]
		if fuzzListRoutes[key] {
			queries = fuzzSeedQueries
		}
		for _, q := range queries {
			f.Add(uint8(i), arg, q, []byte(body), uint8(fuzzIdempotent), "key-"+key)
		}
	}
	// Without a token, with an unknown one, and with a malformed
	// Authorization header.
	for _, rt := range []string{"GET /api/deployments", "POST /api/artifacts", "POST /api/environments/{name}/lock", "GET /api/events/stream"} {
		method, path, _ := strings.Cut(rt, " ")
		arg := fuzzSeedArgs[fuzzParam.FindString(path)]
		f.Add(routeIndex(f, method, path), arg, "", []byte(fuzzSeedBodies[rt]), uint8(1), "")
		f.Add(routeIndex(f, method, path), arg, "", []byte(fuzzSeedBodies[rt]), uint8(2), "")
		f.Add(routeIndex(f, method, path), arg, "", []byte(fuzzSeedBodies[rt]), uint8(3), "Basic Zm9vOmJhcg==")
	}
	// CDEvents (FuzzCDEventIntake has more).
	docs, err := filepath.Glob(filepath.Join("..", "cdevents", "testdata", "conformance", "*.json"))
	if err != nil || len(docs) == 0 {
		f.Fatalf("no CDEvents conformance documents: %v", err)
	}
	intake := routeIndex(f, "POST", "/api/cdevents")
	for _, name := range docs {
		doc, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(intake, "", "", doc, uint8(0), "")
	}
	// Malformed bodies and arguments.
	for _, rt := range []string{"POST /api/artifacts", "PATCH /api/deployments/{id}", "POST /api/environments/{name}/lock", "POST /api/deployments"} {
		method, path, _ := strings.Cut(rt, " ")
		for _, body := range []string{`{"group":1,"status":[],"reason":{},"artifact":"1"}`, `[]`, `{"a":1} {"b":2}`, `{"status":"STARTED"`, `null`, "\xff", `{"reason":"  "}`} {
			f.Add(routeIndex(f, method, path), "1", "", []byte(body), uint8(0), "")
		}
	}
	f.Add(routeIndex(f, "GET", "/api/artifacts/{id}"), "-1", "", []byte(nil), uint8(fuzzRawArg), "")
	f.Add(routeIndex(f, "GET", "/api/artifacts/{id}"), "9223372036854775808", "", []byte(nil), uint8(fuzzOtherMethod), "")
	f.Add(routeIndex(f, "DELETE", "/api/artifacts/{id}"), "../..%2f%00", "", []byte(nil), uint8(fuzzRawArg), "")
	f.Add(routeIndex(f, "GET", "/api/events/stream"), "", "after=1", []byte(nil), uint8(fuzzLastEventID), " 7 ")

	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route uint8, arg, query string, body []byte, flags uint8, key string) {
		api.check(t, fuzzRequest(route, arg, query, body, flags, key), body)
	})
}

// check serves r (whose body is body) and checks the answer: never 5xx and
// nothing logged at level error; an error is problem+json naming the
// problem; a success is JSON, an event stream or a redirect.
func (a *fuzzAPI) check(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	resp := w.Result()
	got, _ := io.ReadAll(resp.Body)
	what := func() string {
		return r.Method + " " + r.URL.String() + " " + strings.Join(r.Header["Content-Type"], "") + " body " + strings.ReplaceAll(string(body), "\n", " ")
	}
	if logged := a.takeErrors(); logged != "" {
		t.Fatalf("%s: the server logged an error (answering %d): %s", what(), resp.StatusCode, logged)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("%s: status %d: %s", what(), resp.StatusCode, got)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case r.Method == "HEAD" || resp.StatusCode == http.StatusNoContent:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// ServeMux redirects to the clean path.
		if resp.Header.Get("Location") == "" {
			t.Fatalf("%s: status %d without a Location", what(), resp.StatusCode)
		}
	case resp.StatusCode >= 400:
		if ct != "application/problem+json" {
			t.Fatalf("%s: status %d with Content-Type %q: %s", what(), resp.StatusCode, ct, got)
		}
		var p httpapi.Problem
		if err := json.Unmarshal(got, &p); err != nil {
			t.Fatalf("%s: status %d, problem %s does not decode: %v", what(), resp.StatusCode, got, err)
		}
		if p.Status != resp.StatusCode || p.Code == "" || strings.TrimSpace(p.Detail) == "" || p.Type == "" || p.Title == "" {
			t.Fatalf("%s: status %d with problem %s", what(), resp.StatusCode, got)
		}
	case ct == "text/event-stream":
	case ct != "application/json" || !json.Valid(got):
		t.Fatalf("%s: status %d with Content-Type %q and body %s", what(), resp.StatusCode, ct, got)
	}
}

// keys returns the keys of m as a set.
func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// routeIndex returns the index in httpapi.Routes() of a route.
func routeIndex(tb testing.TB, method, path string) uint8 {
	tb.Helper()
	for i, rt := range httpapi.Routes() {
		if rt.Method == method && rt.Path == path {
			return uint8(i)
		}
	}
	tb.Fatalf("no route %s %s", method, path)
	return 0
}

// mustCDEvent returns the CDEvents conformance document name with the
// context id id and edit applied to it (decoded as a map).
func mustCDEvent(tb testing.TB, name, id string, edit func(doc map[string]any)) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cdevents", "testdata", "conformance", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	doc["context"].(map[string]any)["id"] = id
	edit(doc)
	if b, err = json.Marshal(doc); err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzCDEventIntake sends any body to POST /api/cdevents, as a bare CDEvent
// or a structured CloudEvent, over the same real server as FuzzAPI, and
// checks the same of its answers. The seeds are CDEvents about the example
// configuration's services, environments and promotions, so that mutations
// reach the records they would make.
func FuzzCDEventIntake(f *testing.F) {
	intake := routeIndex(f, "POST", "/api/cdevents")
	subject := func(doc map[string]any) map[string]any { return doc["subject"].(map[string]any) }
	content := func(doc map[string]any) map[string]any { return subject(doc)["content"].(map[string]any) }
	billing := func(version string) string { return cdevents.PURL("com.example", "billing", version) }
	seeds := [][]byte{
		mustCDEvent(f, "artifact_published", "fuzz-1", func(doc map[string]any) {
			subject(doc)["id"] = billing("2.0.0")
			doc["customData"] = map[string]any{"sourceUrl": "https://repo.example.com/billing-2.0.0.jar"}
		}),
		mustCDEvent(f, "artifact_published", "fuzz-2", func(doc map[string]any) {
			subject(doc)["id"] = billing("2.0.1") + "?download_url=https%3A%2F%2Frepo.example.com%2Fb.jar"
		}),
		mustCDEvent(f, "service_deployed", "fuzz-3", func(doc map[string]any) {
			subject(doc)["id"] = "billing"
			content(doc)["environment"] = map[string]any{"id": "integ"}
			content(doc)["artifactId"] = billing("2.0.0")
		}),
		mustCDEvent(f, "service_upgraded", "fuzz-4", func(doc map[string]any) {
			subject(doc)["id"] = "billing"
			content(doc)["environment"] = map[string]any{"id": "integ"}
			content(doc)["artifactId"] = billing("2.0.1")
			doc["customData"] = map[string]any{"deployment": 1}
		}),
		mustCDEvent(f, "testsuiterun_finished", "fuzz-5", func(doc map[string]any) {
			content(doc)["environment"] = map[string]any{"id": "integ"}
			content(doc)["testSuite"] = map[string]any{"id": "smoke", "name": "smoke", "uri": "https://ci.example.com/smoke/1"}
			content(doc)["outcome"] = "success"
			doc["customData"] = map[string]any{"service": "billing"}
		}),
		mustCDEvent(f, "testcaserun_finished", "fuzz-6", func(doc map[string]any) {
			content(doc)["environment"] = map[string]any{"id": "prod"}
			content(doc)["testCase"] = map[string]any{"id": "release-approval"}
			content(doc)["outcome"] = "error"
			doc["customData"] = map[string]any{"deployment": "9223372036854775807", "service": 1}
		}),
		[]byte(`{"context":{"type":"dev.cdevents.artifact.published.0.3.0"}}`),
		[]byte(`{"specversion":"1.0","data_base64":"e30="}`),
		[]byte(`[]`),
	}
	for i, doc := range seeds {
		f.Add(doc, uint8(0), "")
		structured, err := json.Marshal(map[string]any{"specversion": "1.0", "id": "1", "source": "/fuzz", "type": "x", "data": json.RawMessage(doc)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(structured, uint8(2<<fuzzTypeShift|fuzzIdempotent), "key-"+strconv.Itoa(i))
	}
	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte, flags uint8, key string) {
		// Any way of sending it, but to the intake.
		api.check(t, fuzzRequest(intake, "", "", body, flags&^fuzzOtherMethod, key), body)
	})
}
