package httpapi_test

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
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// testConfig is the model of the 0.3 acceptance features: service faas
// consumes com.example.cucumber:cucumber-artifact and moves through integ
// then pre-prod; jenkins-smoke must pass in pre-prod.
func testConfig() *deploydb.Config {
	return &deploydb.Config{
		Checksum: "test",
		Services: map[string]*deploydb.Service{
			"faas": {Ident: "faas", Description: "Fun as a Service", Artifacts: []string{"com.example.cucumber:cucumber-artifact"},
				Pipelines: []string{"basic"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify},
		},
		Environments: map[string]*deploydb.Environment{
			"integ":    {Ident: "integ", Description: "integration", Webhook: deploydb.Webhook{}},
			"pre-prod": {Ident: "pre-prod", Description: "pre-production", Webhook: deploydb.Webhook{}},
		},
		Pipelines: map[string]*deploydb.Pipeline{
			"basic": {Ident: "basic", Description: "basic pipeline", Environments: []deploydb.PipelineStage{
				{Environment: "integ", Promotions: []string{}},
				{Environment: "pre-prod", Promotions: []string{"jenkins-smoke"}},
			}},
		},
		Promotions: map[string]*deploydb.Promotion{
			"jenkins-smoke": {Ident: "jenkins-smoke", Type: deploydb.PromotionTypeBasic, Description: "smoke", Attributes: map[string]any{}},
		},
		Webhook: deploydb.Webhook{},
	}
}

type testServer struct {
	*httptest.Server
	store *sqlite.Store
	cfg   *deploydb.Config
}

func newServer(t *testing.T) *testServer {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := testConfig()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.NewServer(logger, store, func() *deploydb.Config { return cfg }))
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, store: store, cfg: cfg}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) problem(t *testing.T) httpapi.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p httpapi.Problem
	r.json(t, &p)
	if p.Status != r.Status || p.Detail == "" || p.Code == "" {
		t.Fatalf("problem %+v does not describe status %d", p, r.Status)
	}
	return p
}

func (s *testServer) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	return s.doWith(t, method, path, body, nil)
}

// doWith is do with the request headers of header besides.
func (s *testServer) doWith(t *testing.T, method, path string, body any, header http.Header) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
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
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (s *testServer) must(t *testing.T, want int, method, path string, body any) response {
	t.Helper()
	r := s.do(t, method, path, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

func sampleArtifact() map[string]any {
	return map[string]any{
		"group":     "com.example.cucumber",
		"name":      "cucumber-artifact",
		"version":   "1.0.1",
		"sourceUrl": "http://example.com/maven/com.example.cucumber/cucumber-artifact/1.0.1/cucumber-artifact-1.0.1.jar",
	}
}

func (s *testServer) publish(t *testing.T, version string) deploydb.Artifact {
	t.Helper()
	a := sampleArtifact()
	a["version"] = version
	var out deploydb.Artifact
	s.must(t, 201, "POST", "/api/artifacts", a).json(t, &out)
	return out
}

// firstDeployment returns the deployment of an artifact in an environment.
func (s *testServer) deployment(t *testing.T, artifact int64, env string) deploydb.Deployment {
	t.Helper()
	var list []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments/by-artifact/"+itoa(artifact)+"?environment="+env, nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("want one deployment of artifact %d in %s, got %d", artifact, env, len(list))
	}
	return list[0]
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestArtifactCreate(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		s := newServer(t)
		before := time.Now().UTC().Truncate(time.Millisecond)
		r := s.must(t, 201, "POST", "/api/artifacts", sampleArtifact())
		var a deploydb.Artifact
		r.json(t, &a)
		if a.ID != 1 || a.Group != "com.example.cucumber" || a.Version != "1.0.1" || a.CreatedAt.Before(before) {
			t.Fatalf("artifact = %+v", a)
		}
		if got := r.Header.Get("Location"); got != "/api/artifacts/1" {
			t.Fatalf("Location = %q", got)
		}
		// createdAt is RFC 3339 UTC with milliseconds.
		var raw map[string]any
		r.json(t, &raw)
		if ts := raw["createdAt"].(string); len(ts) != len("2015-06-15T17:03:21.000Z") || !strings.HasSuffix(ts, "Z") {
			t.Fatalf("createdAt = %q", ts)
		}
		var got deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts/1", nil).json(t, &got)
		if diff := cmp.Diff(a, got); diff != "" {
			t.Fatalf("read back (-created +read):\n%s", diff)
		}
	})
	for _, field := range []string{"group", "name", "version", "sourceUrl"} {
		t.Run("ErrMissing_"+field, func(t *testing.T) {
			s := newServer(t)
			a := sampleArtifact()
			delete(a, field)
			p := s.must(t, 422, "POST", "/api/artifacts", a).problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != field {
				t.Fatalf("errors = %+v, want one for %s", p.Errors, field)
			}
			s.must(t, 404, "GET", "/api/artifacts/1", nil)
		})
	}
	for field, max := range map[string]int{"group": 8192, "name": 8192, "version": 255, "sourceUrl": 8192} {
		t.Run("ErrTooLong_"+field, func(t *testing.T) {
			s := newServer(t)
			a := sampleArtifact()
			a[field] = strings.Repeat("x", max+1)
			p := s.must(t, 422, "POST", "/api/artifacts", a).problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != field {
				t.Fatalf("errors = %+v, want one for %s", p.Errors, field)
			}
			a[field] = strings.Repeat("x", max)
			if field == "group" || field == "name" {
				return // a different module is consumed by no service
			}
			s.must(t, 201, "POST", "/api/artifacts", a)
		})
	}
	t.Run("ErrAllMissing", func(t *testing.T) {
		s := newServer(t)
		p := s.must(t, 422, "POST", "/api/artifacts", map[string]any{}).problem(t)
		if len(p.Errors) != 4 {
			t.Fatalf("errors = %+v, want four", p.Errors)
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		s := newServer(t)
		s.must(t, 201, "POST", "/api/artifacts", sampleArtifact())
		s.must(t, 409, "POST", "/api/artifacts", sampleArtifact()).problem(t)
		var list []deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts", nil).json(t, &list)
		if len(list) != 1 {
			t.Fatalf("%d artifacts stored, want 1", len(list))
		}
	})
	t.Run("ErrNoService", func(t *testing.T) {
		s := newServer(t)
		a := sampleArtifact()
		a["name"] = "nobody-consumes-me"
		p := s.must(t, 404, "POST", "/api/artifacts", a).problem(t)
		if !strings.Contains(p.Detail, "com.example.cucumber:nobody-consumes-me") {
			t.Fatalf("detail %q does not name the module", p.Detail)
		}
	})
	t.Run("ErrWrongType", func(t *testing.T) {
		s := newServer(t)
		a := sampleArtifact()
		a["version"] = 101
		p := s.must(t, 400, "POST", "/api/artifacts", a).problem(t)
		if len(p.Errors) != 1 || p.Errors[0].Field != "version" {
			t.Fatalf("errors = %+v, want one for version", p.Errors)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		s := newServer(t)
		for _, body := range []string{"", "{", "[]", `{"group": "a"} {}`, "null x"} {
			s.must(t, 400, "POST", "/api/artifacts", body).problem(t)
		}
	})
	t.Run("UnknownFieldsIgnored", func(t *testing.T) {
		s := newServer(t)
		a := sampleArtifact()
		a["labels"] = map[string]string{"team": "payments"}
		s.must(t, 201, "POST", "/api/artifacts", a)
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		s := newServer(t)
		a := sampleArtifact()
		a["padding"] = strings.Repeat("x", httpapi.MaxBodyBytes)
		s.must(t, 413, "POST", "/api/artifacts", a).problem(t)
	})
}

func TestArtifactRead(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.must(t, 200, "GET", "/api/artifacts", nil)
	if body := strings.TrimSpace(string(s.must(t, 200, "GET", "/api/artifacts", nil).Body)); body != "[]" {
		t.Fatalf("empty list = %s, want []", body)
	}
	for _, v := range []string{"1.0.1", "1.0.2", "2.0.0"} {
		s.publish(t, v)
	}
	t.Run("List", func(t *testing.T) {
		var list []deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts?perPageSize=2", nil).json(t, &list)
		if len(list) != 2 || list[0].Version != "2.0.0" || list[1].Version != "1.0.2" {
			t.Fatalf("page 0 = %+v", list)
		}
		s.must(t, 200, "GET", "/api/artifacts?perPageSize=2&pageNumber=1", nil).json(t, &list)
		if len(list) != 1 || list[0].Version != "1.0.1" {
			t.Fatalf("page 1 = %+v", list)
		}
		s.must(t, 200, "GET", "/api/artifacts?query=1.0.", nil).json(t, &list)
		if len(list) != 2 {
			t.Fatalf("query 1.0. = %+v", list)
		}
	})
	t.Run("ByModule", func(t *testing.T) {
		var list []deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts/by-module/com.example.cucumber:cucumber-artifact", nil).json(t, &list)
		if len(list) != 3 {
			t.Fatalf("by module = %+v", list)
		}
		var a deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts/by-module/com.example.cucumber:cucumber-artifact/latest", nil).json(t, &a)
		if a.Version != "2.0.0" {
			t.Fatalf("latest = %+v", a)
		}
		s.must(t, 404, "GET", "/api/artifacts/by-module/com.example:unknown/latest", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts/by-module/no-colon/latest", nil).problem(t)
	})
	t.Run("Errors", func(t *testing.T) {
		s.must(t, 404, "GET", "/api/artifacts/100", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts/0xdeadbeef", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts?perPageSize=0", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts?perPageSize=abc", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts?perPageSize=1001", nil).problem(t)
		s.must(t, 400, "GET", "/api/artifacts?pageNumber=-1", nil).problem(t)
	})
	t.Run("ErrImmutable", func(t *testing.T) {
		for _, m := range []string{"PATCH", "DELETE"} {
			r := s.must(t, 405, m, "/api/artifacts/1", map[string]any{"version": "9"})
			r.problem(t)
			if r.Header.Get("Allow") == "" {
				t.Fatalf("%s: no Allow header", m)
			}
		}
		var a deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts/1", nil).json(t, &a)
		if a.Version != "1.0.1" {
			t.Fatalf("artifact changed: %+v", a)
		}
		s.must(t, 405, "PUT", "/api/artifacts", nil).problem(t)
	})
	t.Run("ErrUnknownPath", func(t *testing.T) {
		s.must(t, 404, "GET", "/api/nothing-here", nil).problem(t)
	})
}

func TestDeploymentUpdate(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.publish(t, "1.0.1")
	d := s.deployment(t, a.ID, "integ")
	path := "/api/deployments/" + itoa(d.ID)
	if d.Status != deploydb.DeploymentCreated || d.Reason != deploydb.ReasonPipeline {
		t.Fatalf("first deployment = %+v", d)
	}
	t.Run("ErrUnknownStatus", func(t *testing.T) {
		s.must(t, 400, "PATCH", path, map[string]any{"status": "VERIFIED"}).problem(t)
		s.must(t, 400, "PATCH", path, map[string]any{}).problem(t)
	})
	t.Run("ErrStatusNotReportable", func(t *testing.T) {
		// A status, but not one an orchestrator reports: a conflict with
		// the current state, as 0.3's 406 was.
		for _, st := range []string{"NOT_STARTED", "SUCCESS", "created"} {
			p := s.must(t, 409, "PATCH", path, map[string]any{"status": st}).problem(t)
			if cur, _ := p.Current.(map[string]any); cur["status"] != "CREATED" {
				t.Fatalf("%s: current = %v", st, p.Current)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s.must(t, 404, "PATCH", "/api/deployments/999", map[string]any{"status": "STARTED"}).problem(t)
		s.must(t, 400, "PATCH", "/api/deployments/abc", map[string]any{"status": "STARTED"}).problem(t)
	})
	t.Run("OK", func(t *testing.T) {
		var got deploydb.Deployment
		s.must(t, 200, "PATCH", path, map[string]any{"status": "STARTED"}).json(t, &got)
		if got.Status != deploydb.DeploymentStarted {
			t.Fatalf("status = %s", got.Status)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		p := s.must(t, 409, "PATCH", path, map[string]any{"status": "STARTED"}).problem(t)
		cur, _ := p.Current.(map[string]any)
		if cur["status"] != "STARTED" {
			t.Fatalf("current = %v, want the deployment as it is", p.Current)
		}
	})
	t.Run("CompletedWithoutPromotionsIsVerified", func(t *testing.T) {
		var got deploydb.Deployment
		s.must(t, 200, "PATCH", path, map[string]any{"status": "completed"}).json(t, &got)
		if got.Status != deploydb.DeploymentSuccess {
			t.Fatalf("status = %s, want SUCCESS: no promotions in integ", got.Status)
		}
		next := s.deployment(t, a.ID, "pre-prod")
		if next.Status != deploydb.DeploymentCreated {
			t.Fatalf("pre-prod = %s, want CREATED", next.Status)
		}
		s.must(t, 409, "PATCH", path, map[string]any{"status": "FAILED"}).problem(t)
	})
}

func TestPromotionCreate(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.publish(t, "1.0.1")
	integ := s.deployment(t, a.ID, "integ")
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(integ.ID), map[string]any{"status": "COMPLETED"})
	d := s.deployment(t, a.ID, "pre-prod")
	path := "/api/deployments/" + itoa(d.ID) + "/promotions"
	report := map[string]any{"name": "jenkins-smoke", "status": "SUCCESS", "infoUrl": "http://local.lookout.com/jenkins/job-id/2/results"}

	t.Run("ErrNotAwaiting", func(t *testing.T) {
		s.must(t, 409, "POST", path, report).problem(t)
	})
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(d.ID), map[string]any{"status": "COMPLETED"})
	t.Run("ErrNotAttached", func(t *testing.T) {
		s.must(t, 404, "POST", path, map[string]any{"name": "unknown-promo", "status": "SUCCESS"}).problem(t)
		s.must(t, 404, "POST", "/api/deployments/999/promotions", report).problem(t)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		s.must(t, 400, "POST", path, map[string]any{"name": "jenkins-smoke", "status": "MAYBE"}).problem(t)
		s.must(t, 409, "POST", path, map[string]any{"name": "jenkins-smoke", "status": "STARTED"}).problem(t)
		s.must(t, 422, "POST", path, map[string]any{"status": "SUCCESS"}).problem(t)
	})
	t.Run("OK", func(t *testing.T) {
		r := s.must(t, 201, "POST", path, report)
		var res deploydb.PromotionResult
		r.json(t, &res)
		if res.Status != deploydb.PromotionSuccess || res.Promotion != "jenkins-smoke" || res.InfoURL != report["infoUrl"] {
			t.Fatalf("result = %+v", res)
		}
		loc := r.Header.Get("Location")
		var read deploydb.PromotionResult
		s.must(t, 200, "GET", loc, nil).json(t, &read)
		if diff := cmp.Diff(res, read); diff != "" {
			t.Fatalf("read back:\n%s", diff)
		}
		var got deploydb.Deployment
		s.must(t, 200, "GET", "/api/deployments/"+itoa(d.ID), nil).json(t, &got)
		if got.Status != deploydb.DeploymentSuccess {
			t.Fatalf("deployment = %s, want SUCCESS", got.Status)
		}
		var f deploydb.Flow
		s.must(t, 200, "GET", "/api/flows/"+itoa(got.Flow), nil).json(t, &f)
		if f.Status != deploydb.FlowSuccess || len(f.Deployments) != 2 || f.Deployments[0].Environment != "integ" {
			t.Fatalf("flow = %+v", f)
		}
	})
	t.Run("ErrAlreadyReported", func(t *testing.T) {
		s.must(t, 409, "POST", path, report).problem(t)
	})
	t.Run("ErrResultOfOtherDeployment", func(t *testing.T) {
		s.must(t, 404, "GET", "/api/deployments/"+itoa(integ.ID)+"/promotions/1", nil).problem(t)
	})
}

func TestPromotionFailureAlias(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.publish(t, "1.0.1")
	integ := s.deployment(t, a.ID, "integ")
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(integ.ID), map[string]any{"status": "COMPLETED"})
	d := s.deployment(t, a.ID, "pre-prod")
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(d.ID), map[string]any{"status": "COMPLETED"})
	var res deploydb.PromotionResult
	s.must(t, 201, "POST", "/api/deployments/"+itoa(d.ID)+"/promotions", map[string]any{"name": "jenkins-smoke", "status": "FAILURE"}).json(t, &res)
	if res.Status != deploydb.PromotionFailed {
		t.Fatalf("status = %s, want FAILED", res.Status)
	}
	var f deploydb.Flow
	s.must(t, 200, "GET", "/api/flows/"+itoa(d.Flow), nil).json(t, &f)
	if f.Status != deploydb.FlowFailed || f.Deployments[1].Status != deploydb.DeploymentFailed {
		t.Fatalf("flow = %+v", f)
	}
}

func TestConfigReads(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	t.Run("Environments", func(t *testing.T) {
		var list []map[string]any
		s.must(t, 200, "GET", "/api/environments", nil).json(t, &list)
		if len(list) != 2 || list[0]["ident"] != "integ" {
			t.Fatalf("environments = %v", list)
		}
		s.must(t, 200, "GET", "/api/environments/pre-prod", nil)
		s.must(t, 404, "GET", "/api/environments/nope", nil).problem(t)
		s.must(t, 404, "GET", "/api/environments/nope/deployments", nil).problem(t)
		if body := strings.TrimSpace(string(s.must(t, 200, "GET", "/api/environments/integ/deployments", nil).Body)); body != "[]" {
			t.Fatalf("no deployments = %s", body)
		}
	})
	t.Run("Pipelines", func(t *testing.T) {
		r := s.must(t, 200, "GET", "/api/pipelines/basic", nil)
		// 0.3 shape: environments is an object in pipeline order.
		want := `{"ident":"basic","description":"basic pipeline","environments":{"integ":{"promotions":[]},"pre-prod":{"promotions":["jenkins-smoke"]}}}`
		if got := strings.TrimSpace(string(r.Body)); got != want {
			t.Fatalf("pipeline =\n%s\nwant\n%s", got, want)
		}
		var p deploydb.Pipeline
		r.json(t, &p)
		if diff := cmp.Diff(*s.cfg.Pipelines["basic"], p); diff != "" {
			t.Fatalf("round trip:\n%s", diff)
		}
		s.must(t, 404, "GET", "/api/pipelines/nope", nil).problem(t)
	})
	t.Run("ServicesAndPromotions", func(t *testing.T) {
		var svc deploydb.Service
		s.must(t, 200, "GET", "/api/services/faas", nil).json(t, &svc)
		if svc.Pipeline() != "basic" {
			t.Fatalf("service = %+v", svc)
		}
		s.must(t, 200, "GET", "/api/services", nil)
		s.must(t, 200, "GET", "/api/promotions", nil)
		s.must(t, 200, "GET", "/api/promotions/jenkins-smoke", nil)
		s.must(t, 404, "GET", "/api/promotions/nope", nil).problem(t)
		s.must(t, 404, "GET", "/api/services/nope", nil).problem(t)
	})
	t.Run("Health", func(t *testing.T) {
		s.must(t, 200, "GET", "/healthz", nil)
	})
}

func TestFlowsAndDeploymentReads(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if body := strings.TrimSpace(string(s.must(t, 200, "GET", "/api/flows", nil).Body)); body != "[]" {
		t.Fatalf("no flows = %s", body)
	}
	s.must(t, 404, "GET", "/api/deployments/latest", nil).problem(t)
	a1 := s.publish(t, "1.0.1")
	a2 := s.publish(t, "1.0.2")
	var flows []deploydb.Flow
	s.must(t, 200, "GET", "/api/flows?service=faas", nil).json(t, &flows)
	if len(flows) != 2 || flows[0].Artifact.ID != a2.ID || len(flows[0].Deployments) != 2 {
		t.Fatalf("flows = %+v", flows)
	}
	s.must(t, 200, "GET", "/api/flows?artifact="+itoa(a1.ID)+"&order=asc", nil).json(t, &flows)
	if len(flows) != 1 || flows[0].Artifact.ID != a1.ID {
		t.Fatalf("flows of a1 = %+v", flows)
	}
	s.must(t, 404, "GET", "/api/flows/99", nil).problem(t)
	s.must(t, 400, "GET", "/api/flows?artifact=x", nil).problem(t)

	var list []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments", nil).json(t, &list)
	if len(list) != 4 || list[0].ID < list[3].ID {
		t.Fatalf("deployments newest first = %+v", list)
	}
	// One active deployment per (service, environment): 1.0.2 waits in
	// integ while 1.0.1 is there, and says why.
	s.must(t, 200, "GET", "/api/deployments?order=asc&status=created", nil).json(t, &list)
	if len(list) != 1 || list[0].Artifact.ID != a1.ID {
		t.Fatalf("created deployments = %+v", list)
	}
	s.must(t, 200, "GET", "/api/deployments?order=asc&status=not_started&environment=integ", nil).json(t, &list)
	if len(list) != 1 || list[0].Artifact.ID != a2.ID || list[0].DueAt.IsZero() || !strings.HasPrefix(list[0].Waiting, "busy: deployment 1 ") {
		t.Fatalf("waiting deployment = %+v", list)
	}
	s.must(t, 200, "GET", "/api/deployments/by-service/faas?environment=pre-prod", nil).json(t, &list)
	if len(list) != 2 || list[0].Status != deploydb.DeploymentNotStarted {
		t.Fatalf("pre-prod = %+v", list)
	}
	var latest deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments/latest", nil).json(t, &latest)
	if latest.Artifact.ID != a2.ID {
		t.Fatalf("latest = %+v", latest)
	}
	s.must(t, 400, "GET", "/api/deployments?status=bogus", nil).problem(t)
	s.must(t, 400, "GET", "/api/deployments?order=sideways", nil).problem(t)
}

func (s *testServer) doKey(t *testing.T, method, path, key string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: rb}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	now := time.Now()
	s.store.Now = func() time.Time { return now }

	first := s.doKey(t, "POST", "/api/artifacts", "ci-run-1", sampleArtifact())
	if first.Status != 201 {
		t.Fatalf("first publish = %d: %s", first.Status, first.Body)
	}
	t.Run("Replayed", func(t *testing.T) {
		again := s.doKey(t, "POST", "/api/artifacts", "ci-run-1", sampleArtifact())
		if again.Status != 201 || !bytes.Equal(again.Body, first.Body) || again.Header.Get("Location") != first.Header.Get("Location") || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry = %d %v %s, want the first response replayed", again.Status, again.Header, again.Body)
		}
		var list []deploydb.Artifact
		s.must(t, 200, "GET", "/api/artifacts", nil).json(t, &list)
		if len(list) != 1 {
			t.Fatalf("%d artifacts, want 1", len(list))
		}
	})
	t.Run("ErrOtherRequest", func(t *testing.T) {
		a := sampleArtifact()
		a["version"] = "9.9.9"
		r := s.doKey(t, "POST", "/api/artifacts", "ci-run-1", a)
		if r.Status != 422 {
			t.Fatalf("key reused for another body = %d, want 422: %s", r.Status, r.Body)
		}
		r.problem(t)
	})
	t.Run("WithoutKeyConflicts", func(t *testing.T) {
		s.must(t, 409, "POST", "/api/artifacts", sampleArtifact()).problem(t)
	})
	t.Run("Report", func(t *testing.T) {
		d := s.deployment(t, 1, "integ")
		path := "/api/deployments/" + itoa(d.ID)
		r1 := s.doKey(t, "PATCH", path, "orchestrator-42", map[string]any{"status": "STARTED"})
		r2 := s.doKey(t, "PATCH", path, "orchestrator-42", map[string]any{"status": "STARTED"})
		if r1.Status != 200 || r2.Status != 200 || !bytes.Equal(r1.Body, r2.Body) {
			t.Fatalf("report and retry = %d, %d", r1.Status, r2.Status)
		}
		s.must(t, 409, "PATCH", path, map[string]any{"status": "STARTED"})
	})
	t.Run("ErrorsAreNotStored", func(t *testing.T) {
		a := sampleArtifact()
		a["name"] = "nobody-consumes-me"
		if r := s.doKey(t, "POST", "/api/artifacts", "ci-run-2", a); r.Status != 404 {
			t.Fatalf("first = %d", r.Status)
		}
		if r := s.doKey(t, "POST", "/api/artifacts", "ci-run-2", a); r.Status != 404 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry of a failed request = %d %v, want it run again", r.Status, r.Header)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		now = now.Add(deploydb.IdempotencyTTL + time.Minute)
		if r := s.doKey(t, "POST", "/api/artifacts", "ci-run-1", sampleArtifact()); r.Status != 409 {
			t.Fatalf("retry after the key expired = %d, want the request run again (409 duplicate)", r.Status)
		}
	})
	t.Run("ErrKeyTooLong", func(t *testing.T) {
		s.doKey(t, "POST", "/api/artifacts", strings.Repeat("k", 256), sampleArtifact()).problem(t)
	})
}
