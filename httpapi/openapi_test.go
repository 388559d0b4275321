package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlite"
)

// TestOpenAPI drives every route of the table through the real server and
// validates each response body against the schema the served OpenAPI
// description gives for that route and status.
// slackHook is a hook object as the config loader makes one.
func slackHook(t *testing.T) deploydb.Hook {
	t.Helper()
	u, err := deploydb.ParseHookTemplate("url", "http://127.0.0.1:9/slack", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := deploydb.ParseHookTemplate("body", `{"text": {{json .Service}}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	return deploydb.Hook{Name: "slack", URL: "http://127.0.0.1:9/slack", Display: "${env:SLACK_URL}", Body: `{"text": {{json .Service}}}`,
		Format: deploydb.HookFormatDeployDB, Secrets: []string{"whsec_c2VjcmV0"}, Signed: true, Headers: []deploydb.HookHeader{{Name: "X-Token", Value: "s3cret"}},
		Templates: &deploydb.HookTemplates{URL: u, Body: body, Headers: []*template.Template{u}}}
}

// ndjson is a request body sent as it is.
type ndjson string

func TestOpenAPI(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := &deploydb.Config{
		Checksum: "test",
		Services: map[string]*deploydb.Service{"svc": {Ident: "svc", Artifacts: []string{"g:n"}, Pipelines: []string{"p"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}},
		Environments: map[string]*deploydb.Environment{
			"a": {Ident: "a", Webhook: deploydb.Webhook{deploydb.EventDeploymentCreated: {{URL: "http://127.0.0.1:9/hook"}}}},
			"b": {Ident: "b", Webhook: deploydb.Webhook{deploydb.EventDeploymentFailed: {slackHook(t)}}},
		},
		Pipelines:  map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: []deploydb.PipelineStage{{Environment: "a", Promotions: []string{}}, {Environment: "b", Promotions: []string{"smoke"}}}}},
		Promotions: map[string]*deploydb.Promotion{"smoke": {Ident: "smoke", Type: deploydb.PromotionTypeBasic, Attributes: map[string]any{}}},
		Webhook:    deploydb.Webhook{},
	}
	api := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return cfg })
	srv := httptest.NewServer(api)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.(map[string]any)["openapi"]; v != "3.1.0" {
		t.Fatalf("openapi = %v", v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	paths := doc.(map[string]any)["paths"].(map[string]any)

	covered := map[string]bool{}
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		switch body := body.(type) {
		case nil:
		case ndjson:
			rd = strings.NewReader(string(body))
		default:
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		_, pattern := api.mux.Handler(req)
		route := strings.TrimPrefix(pattern, method+" ")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s = %d, want %d: %s", method, path, res.StatusCode, want, b)
		}
		op, ok := paths[route].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			t.Fatalf("%s %s (route %q) is not in the OpenAPI description", method, path, route)
		}
		covered[method+" "+route] = true
		code := strconv.Itoa(res.StatusCode)
		r, ok := op["responses"].(map[string]any)[code].(map[string]any)
		if !ok {
			t.Fatalf("%s %s answered %s, which the description does not list", method, route, code)
		}
		if _, ok := r["headers"].(map[string]any)[HeaderRequestID]; !ok || res.Header.Get(HeaderRequestID) == "" {
			t.Fatalf("%s %s %s: X-Request-Id described %t, answered %q; want both", method, route, code, ok, res.Header.Get(HeaderRequestID))
		}
		content, _ := r["content"].(map[string]any)
		if content == nil {
			return b
		}
		ct := res.Header.Get("Content-Type")
		if _, ok := content[ct]; !ok {
			t.Fatalf("%s %s: content type %q not described", method, route, ct)
		}
		ptr := "openapi.json#/paths/" + esc(route) + "/" + strings.ToLower(method) + "/responses/" + code + "/content/" + esc(ct) + "/schema"
		sch, err := c.Compile(ptr)
		if err != nil {
			t.Fatalf("compile %s: %v", ptr, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", method, route, err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("%s %s %s: body does not match the description: %v\n%s", method, path, code, err, b)
		}
		return b
	}

	call("GET", "/healthz", nil, 200)
	call("GET", "/readyz", nil, 200)
	call("GET", "/api/openapi.json", nil, 200)
	call("GET", "/api/artifacts", nil, 200)
	call("POST", "/api/artifacts", map[string]any{"group": "g"}, 422)
	call("POST", "/api/artifacts", map[string]any{"group": "g", "name": "n", "version": "1", "sourceUrl": "http://x"}, 201)
	call("POST", "/api/artifacts", map[string]any{"group": "g", "name": "n", "version": "1", "sourceUrl": "http://x"}, 409)
	call("GET", "/api/artifacts/1", nil, 200)
	call("GET", "/api/artifacts/x", nil, 400)
	call("PATCH", "/api/artifacts/1", nil, 405)
	call("DELETE", "/api/artifacts/1", nil, 405)
	call("GET", "/api/artifacts/by-module/g:n", nil, 200)
	call("GET", "/api/artifacts/by-module/g:n/latest", nil, 200)
	call("GET", "/api/deployments", nil, 200)
	call("GET", "/api/deployments/latest", nil, 200)
	call("GET", "/api/deployments/1", nil, 200)
	call("PATCH", "/api/deployments/1", map[string]any{"status": "COMPLETED"}, 200)
	call("PATCH", "/api/deployments/1", map[string]any{"status": "STARTED"}, 409)
	call("PATCH", "/api/deployments/2", map[string]any{"status": "COMPLETED"}, 200)
	call("GET", "/api/deployments/by-artifact/1", nil, 200)
	call("GET", "/api/deployments/by-service/svc", nil, 200)
	call("POST", "/api/deployments/2/promotions", map[string]any{"name": "smoke", "status": "SUCCESS", "infoUrl": "http://ci/1"}, 201)
	call("GET", "/api/deployments/2/promotions/1", nil, 200)
	call("GET", "/api/environments", nil, 200)
	call("GET", "/api/environments/a", nil, 200)
	if b := call("GET", "/api/environments/b", nil, 200); bytes.Contains(b, []byte("s3cret")) || bytes.Contains(b, []byte("whsec_")) || !bytes.Contains(b, []byte(`"name":"slack"`)) {
		t.Errorf("GET /api/environments/b shows a secret, or not the hook object: %s", b)
	}
	call("GET", "/api/environments/a/deployments", nil, 200)
	call("GET", "/api/services", nil, 200)
	call("GET", "/api/services/svc", nil, 200)
	call("GET", "/api/pipelines", nil, 200)
	call("GET", "/api/pipelines/p", nil, 200)
	call("GET", "/api/promotions", nil, 200)
	call("GET", "/api/promotions/smoke", nil, 200)
	call("GET", "/api/flows", nil, 200)
	call("GET", "/api/flows/1", nil, 200)
	call("GET", "/api/flows/9", nil, 404)

	// Coordination and operator actions.
	call("POST", "/api/environments/a/lock", map[string]any{"reason": "incident 42"}, 201)
	call("POST", "/api/environments/a/lock", map[string]any{"reason": "again"}, 409)
	call("POST", "/api/environments/b/lock", map[string]any{}, 422)
	call("GET", "/api/status", nil, 200)
	call("DELETE", "/api/environments/a/lock", nil, 204)
	call("DELETE", "/api/environments/a/lock", nil, 404)
	call("POST", "/api/artifacts", map[string]any{"group": "g", "name": "n", "version": "2", "sourceUrl": "http://x"}, 201)
	call("PATCH", "/api/deployments/3", map[string]any{"status": "FAILED"}, 200)
	call("POST", "/api/deployments/3/retry", map[string]any{"reason": "flaky network"}, 201)
	call("POST", "/api/deployments/3/retry", map[string]any{"reason": "again"}, 409)
	call("POST", "/api/deployments/3/rollback", map[string]any{"reason": "back to 1"}, 201)
	call("POST", "/api/flows/2/cancel", map[string]any{"reason": "giving up on 2"}, 200)
	call("POST", "/api/flows/1/cancel", map[string]any{"reason": "finished already"}, 409)
	call("POST", "/api/deployments", map[string]any{"artifact": 1, "service": "svc", "environment": "b", "reason": "hotfix"}, 201)
	call("POST", "/api/deployments", map[string]any{"artifact": 1, "service": "svc"}, 422)
	call("GET", "/api/status", nil, 200)

	call("GET", "/api/webhook-deliveries", nil, 200)
	call("GET", "/api/webhook-deliveries?status=failed&hook=127.0.0.1&deployment=1", nil, 200)
	call("GET", "/api/webhook-deliveries?status=bogus", nil, 400)
	call("GET", "/api/webhook-deliveries/1", nil, 200)
	call("GET", "/api/webhook-deliveries/999", nil, 404)
	call("POST", "/api/webhook-deliveries/1/redeliver", map[string]any{"reason": "receiver is back"}, 409) // pending: no dispatcher runs here

	published := func(version string) map[string]any {
		return map[string]any{
			"context":    map[string]any{"specversion": "0.5.1", "id": "e-" + version, "source": "/ci", "type": "dev.cdevents.artifact.published.0.3.0", "timestamp": "2026-01-02T03:04:05Z"},
			"subject":    map[string]any{"id": "pkg:generic/g/n@" + version, "content": map[string]any{}},
			"customData": map[string]any{"sourceUrl": "http://x/" + version},
		}
	}
	call("POST", "/api/cdevents", published("3"), 200)
	call("POST", "/api/cdevents", published("3"), 200) // the same event again changes nothing
	noSource := published("4")
	delete(noSource, "customData")
	call("POST", "/api/cdevents", noSource, 422)
	call("POST", "/api/cdevents", []int{1}, 422)

	// History and insights.
	line := `{"group":"g","name":"n","version":"0.9","sourceUrl":"http://x/0.9","service":"svc","environment":"b","status":"SUCCESS","startedAt":"2026-01-01T10:00:00Z","finishedAt":"2026-01-01T10:05:00Z","commits":[{"sha":"abc","timestamp":"2025-12-31T09:00:00Z"}]}`
	call("POST", "/api/import", ndjson(line+"\n\n"+line+"\n"), 200)
	call("POST", "/api/import", ndjson(line+"\n{\"status\": 7}\n"), 422)
	call("GET", "/api/insights/dora?environment=b&from=2025-12-01T00:00:00Z&to=2026-01-31T00:00:00Z", nil, 200)
	call("GET", "/api/insights/dora", nil, 400) // no environment is production here
	call("GET", "/api/diff?from=a&to=b", nil, 200)
	call("GET", "/api/status?at=2026-01-01T10:01:00Z", nil, 200)
	call("GET", "/api/status?at=yesterday", nil, 400)
	call("GET", "/api/diff?from=a&to=moon", nil, 404)

	call("GET", "/api/events?after=0&limit=50", nil, 200)
	call("GET", "/api/events?limit=0", nil, 400)
	call("GET", "/api/config", nil, 200)
	call("POST", "/api/config/reload", nil, 503) // this server has no reloader; cmd/deploydb tests reload
	// The stream is text/event-stream, not one JSON body: events_test.go
	// drives it.
	covered["GET /api/events/stream"] = true

	for _, rt := range routes {
		if !covered[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not exercised by this test", rt.Method, rt.Path)
		}
	}
}

// esc escapes a JSON pointer token.
func esc(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
