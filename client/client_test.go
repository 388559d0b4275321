package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// recorder is an HTTP server that answers every request with one canned
// response and records what it was asked. The client is tested against
// the real server end to end in cmd/deploydb; these tests pin the wire
// format down to the byte.
type recorder struct {
	*httptest.Server
	status      int
	contentType string
	body        string

	mu   sync.Mutex
	last *http.Request
	sent string
}

func newRecorder(t *testing.T, status int, body string) *recorder {
	t.Helper()
	r := &recorder{status: status, body: body, contentType: "application/json"}
	if status >= 400 {
		r.contentType = "application/problem+json"
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.last, r.sent = req, string(b)
		r.mu.Unlock()
		w.Header().Set("Content-Type", r.contentType)
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	}))
	t.Cleanup(r.Close)
	return r
}

// request returns the last request and its body.
func (r *recorder) request() (*http.Request, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.sent
}

func mustNew(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"http://127.0.0.1:8080":            "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":           "http://127.0.0.1:8080",
		"https://ci.example.com/deploydb/": "https://ci.example.com/deploydb",
	} {
		c, err := client.New(url)
		if err != nil {
			t.Errorf("New(%q): %v", url, err)
			continue
		}
		if c.BaseURL() != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", url, c.BaseURL(), want)
		}
	}
	for _, url := range []string{"", "127.0.0.1:8080", "ftp://example.com", "http://", "http://x/?a=b", "://"} {
		if _, err := client.New(url); deploydb.ErrorCode(err) != deploydb.EINVALID {
			t.Errorf("New(%q): err = %v, want EINVALID", url, err)
		}
	}
}

const artifactJSON = `{"id":1,"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://x/b.jar","createdAt":"2025-11-25T22:41:00.123Z"}`

func TestPublishArtifact(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 201, artifactJSON)
	c := mustNew(t, s.URL+"/", client.WithToken("t0k"), client.WithUserAgent("ci/1"))
	got, err := c.PublishArtifact(context.Background(),
		deploydb.Artifact{ID: 99, Group: "com.example", Name: "billing", Version: "1.0", SourceURL: "https://x/b.jar"},
		client.IdempotencyKey("abc"))
	if err != nil {
		t.Fatal(err)
	}
	want := &deploydb.Artifact{ID: 1, Group: "com.example", Name: "billing", Version: "1.0", SourceURL: "https://x/b.jar",
		CreatedAt: deploydb.UnixMilli(1764110460123)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("artifact (-want +got):\n%s", diff)
	}
	req, body := s.request()
	if req.Method != "POST" || req.URL.RequestURI() != "/api/artifacts" {
		t.Errorf("sent %s %s", req.Method, req.URL.RequestURI())
	}
	if want := `{"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://x/b.jar"}`; body != want {
		t.Errorf("body %s, want %s", body, want)
	}
	for h, want := range map[string]string{
		"Authorization":   "Bearer t0k",
		"User-Agent":      "ci/1",
		"Content-Type":    "application/json",
		"Idempotency-Key": "abc",
	} {
		if got := req.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

func TestDefaultHeaders(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, `{"status":"ok"}`)
	if err := mustNew(t, s.URL).Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, body := s.request()
	if req.URL.Path != "/healthz" || body != "" {
		t.Errorf("sent %s %q", req.URL.Path, body)
	}
	if _, ok := req.Header["Authorization"]; ok {
		t.Error("sent Authorization without a token")
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		t.Error("sent Idempotency-Key without a key")
	}
	if got := req.Header.Get("User-Agent"); got != client.DefaultUserAgent {
		t.Errorf("User-Agent %q", got)
	}
}

// TestRequests pins down the method, path, query and body of every call.
func TestRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	page := deploydb.Page{Number: 2, Size: 50}
	tests := []struct {
		name   string
		reply  string
		call   func(c *client.Client) error
		method string
		uri    string
		body   string
	}{
		{"Artifact", artifactJSON, func(c *client.Client) error { _, err := c.Artifact(ctx, 3); return err }, "GET", "/api/artifacts/3", ""},
		{"Artifacts", "[]", func(c *client.Client) error { _, err := c.Artifacts(ctx, deploydb.ArtifactFilter{}); return err }, "GET", "/api/artifacts", ""},
		{"ArtifactsQuery", "[]", func(c *client.Client) error {
			_, err := c.Artifacts(ctx, deploydb.ArtifactFilter{Query: "a&b", Page: page})
			return err
		}, "GET", "/api/artifacts?pageNumber=2&perPageSize=50&query=a%26b", ""},
		{"ArtifactsModule", "[]", func(c *client.Client) error {
			_, err := c.Artifacts(ctx, deploydb.ArtifactFilter{Group: "com.example", Name: "bill/ing"})
			return err
		}, "GET", "/api/artifacts/by-module/com.example:bill%2Fing", ""},
		{"LatestArtifact", artifactJSON, func(c *client.Client) error { _, err := c.LatestArtifact(ctx, "com.example", "billing"); return err },
			"GET", "/api/artifacts/by-module/com.example:billing/latest", ""},
		{"Deployment", "{}", func(c *client.Client) error { _, err := c.Deployment(ctx, 7); return err }, "GET", "/api/deployments/7", ""},
		{"LatestDeployment", "{}", func(c *client.Client) error { _, err := c.LatestDeployment(ctx); return err }, "GET", "/api/deployments/latest", ""},
		{"Deployments", "[]", func(c *client.Client) error {
			_, err := c.Deployments(ctx, deploydb.DeploymentFilter{Service: "billing", Environment: "prod", Status: deploydb.DeploymentFailed, Ascending: true, Page: page})
			return err
		}, "GET", "/api/deployments?environment=prod&order=asc&pageNumber=2&perPageSize=50&service=billing&status=FAILED", ""},
		{"DeploymentsByArtifact", "[]", func(c *client.Client) error {
			_, err := c.Deployments(ctx, deploydb.DeploymentFilter{Artifact: 3, Service: "billing"})
			return err
		}, "GET", "/api/deployments/by-artifact/3?service=billing", ""},
		{"EnvironmentDeployments", "[]", func(c *client.Client) error {
			_, err := c.EnvironmentDeployments(ctx, "prod", deploydb.DeploymentFilter{Environment: "ignored", Status: deploydb.DeploymentSuccess})
			return err
		}, "GET", "/api/environments/prod/deployments?status=SUCCESS", ""},
		{"ReportDeployment", "{}", func(c *client.Client) error {
			_, err := c.ReportDeployment(ctx, 7, deploydb.DeploymentCompleted)
			return err
		}, "PATCH", "/api/deployments/7", `{"status":"COMPLETED"}`},
		{"ReportPromotion", "{}", func(c *client.Client) error {
			_, err := c.ReportPromotion(ctx, deploydb.PromotionReport{Deployment: 7, Promotion: "smoke", Status: deploydb.PromotionSuccess, InfoURL: "https://ci/1", Actor: "not sent"})
			return err
		}, "POST", "/api/deployments/7/promotions", `{"name":"smoke","status":"SUCCESS","infoUrl":"https://ci/1"}`},
		{"ReportPromotionNoInfo", "{}", func(c *client.Client) error {
			_, err := c.ReportPromotion(ctx, deploydb.PromotionReport{Deployment: 7, Promotion: "smoke", Status: deploydb.PromotionFailed})
			return err
		}, "POST", "/api/deployments/7/promotions", `{"name":"smoke","status":"FAILED"}`},
		{"PromotionResult", "{}", func(c *client.Client) error { _, err := c.PromotionResult(ctx, 7, 2); return err }, "GET", "/api/deployments/7/promotions/2", ""},
		{"Flow", "{}", func(c *client.Client) error { _, err := c.Flow(ctx, 4); return err }, "GET", "/api/flows/4", ""},
		{"Flows", "[]", func(c *client.Client) error {
			_, err := c.Flows(ctx, deploydb.FlowFilter{Service: "billing", Artifact: 3, Ascending: true, Page: page})
			return err
		}, "GET", "/api/flows?artifact=3&order=asc&pageNumber=2&perPageSize=50&service=billing", ""},
		{"Services", "[]", func(c *client.Client) error { _, err := c.Services(ctx); return err }, "GET", "/api/services", ""},
		{"Service", "{}", func(c *client.Client) error { _, err := c.Service(ctx, "billing"); return err }, "GET", "/api/services/billing", ""},
		{"Environments", "[]", func(c *client.Client) error { _, err := c.Environments(ctx); return err }, "GET", "/api/environments", ""},
		{"Environment", "{}", func(c *client.Client) error { _, err := c.Environment(ctx, "prod"); return err }, "GET", "/api/environments/prod", ""},
		{"Pipelines", "[]", func(c *client.Client) error { _, err := c.Pipelines(ctx); return err }, "GET", "/api/pipelines", ""},
		{"Pipeline", "{}", func(c *client.Client) error { _, err := c.Pipeline(ctx, "standard"); return err }, "GET", "/api/pipelines/standard", ""},
		{"Promotions", "[]", func(c *client.Client) error { _, err := c.Promotions(ctx); return err }, "GET", "/api/promotions", ""},
		{"Promotion", "{}", func(c *client.Client) error { _, err := c.Promotion(ctx, "a b"); return err }, "GET", "/api/promotions/a%20b", ""},
		{"Health", `{"status":"ok"}`, func(c *client.Client) error { return c.Health(ctx) }, "GET", "/healthz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newRecorder(t, 200, tt.reply)
			// A path prefix is kept: the server may sit behind a proxy.
			if err := tt.call(mustNew(t, s.URL+"/prefix")); err != nil {
				t.Fatal(err)
			}
			req, body := s.request()
			if uri := req.URL.RequestURI(); req.Method != tt.method || uri != "/prefix"+tt.uri || body != tt.body {
				t.Errorf("sent %s %s %s\nwant %s /prefix%s %s", req.Method, uri, body, tt.method, tt.uri, tt.body)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, `[{"id":7,"artifact":`+artifactJSON+`,"service":"billing","environment":"integ","status":"COMPLETED","reason":"pipeline",`+
		`"promotions":[{"id":1,"deployment":7,"promotion":"smoke","status":"STARTED","infoUrl":null,"createdAt":"2025-11-25T22:41:00.000Z"}],`+
		`"flow":2,"createdAt":"2025-11-25T22:41:00.000Z","updatedAt":null,"addedLater":true}]`)
	var raw []byte
	c := mustNew(t, s.URL, client.WithResponseBody(func(b []byte) { raw = b }))
	got, err := c.Deployments(context.Background(), deploydb.DeploymentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	a := deploydb.Artifact{ID: 1, Group: "com.example", Name: "billing", Version: "1.0", SourceURL: "https://x/b.jar", CreatedAt: deploydb.UnixMilli(1764110460123)}
	want := []*deploydb.Deployment{{
		ID: 7, Artifact: a, Service: "billing", Environment: "integ", Status: deploydb.DeploymentCompleted, Reason: deploydb.ReasonPipeline,
		Promotions: []deploydb.PromotionResult{{ID: 1, Deployment: 7, Promotion: "smoke", Status: deploydb.PromotionStarted, CreatedAt: deploydb.UnixMilli(1764110460000)}},
		Flow:       2,
		CreatedAt:  deploydb.UnixMilli(1764110460000),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if string(raw) != s.body {
		t.Errorf("WithResponseBody got %q, want the body as sent", raw)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        *deploydb.Error
	}{
		{"Problem", 422, "", `{"type":"urn:deploydb:problem:invalid","title":"Unprocessable Entity","status":422,"detail":"invalid artifact: group is required (and 1 more)","code":"invalid","errors":[{"field":"group","message":"is required"},{"field":"version","message":"is required"}]}`,
			&deploydb.Error{Code: deploydb.EINVALID, Message: "invalid artifact: group is required (and 1 more)",
				Fields: []deploydb.FieldError{{Field: "group", Message: "is required"}, {Field: "version", Message: "is required"}}}},
		{"ProblemWithCurrent", 409, "", `{"status":409,"detail":"deployment 3 is COMPLETED","code":"conflict","current":{"id":3,"status":"COMPLETED"}}`,
			&deploydb.Error{Code: deploydb.ECONFLICT, Message: "deployment 3 is COMPLETED", Current: json.RawMessage(`{"id":3,"status":"COMPLETED"}`)}},
		{"CodeBeatsStatus", 405, "", `{"status":405,"detail":"artifacts are immutable","code":"bad_request"}`,
			&deploydb.Error{Code: deploydb.EBADREQUEST, Message: "artifacts are immutable"}},
		{"UnknownCodeFromStatus", 403, "", `{"detail":"no","code":"teapot"}`,
			&deploydb.Error{Code: deploydb.EFORBIDDEN, Message: "no"}},
		{"TitleWithoutDetail", 401, "", `{"title":"Unauthorized","status":401}`,
			&deploydb.Error{Code: deploydb.EUNAUTHORIZED, Message: "Unauthorized"}},
		{"NotAProblem", 503, "text/html", `<html>down for maintenance</html>`,
			&deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: "the server answered 503 Service Unavailable"}},
		{"Empty", 500, "text/plain", ``,
			&deploydb.Error{Code: deploydb.EINTERNAL, Message: "the server answered 500 Internal Server Error"}},
		{"NullCurrent", 409, "", `{"detail":"exists","code":"conflict","current":null}`,
			&deploydb.Error{Code: deploydb.ECONFLICT, Message: "exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newRecorder(t, tt.status, tt.body)
			if tt.contentType != "" {
				s.contentType = tt.contentType
			}
			called := false
			c := mustNew(t, s.URL, client.WithResponseBody(func([]byte) { called = true }))
			_, err := c.Deployment(context.Background(), 3)
			var got *deploydb.Error
			if !errors.As(err, &got) {
				t.Fatalf("err = %#v, want a *deploydb.Error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if called {
				t.Error("WithResponseBody was called with an error body")
			}
		})
	}
}

func TestCodeOfStatus(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{
		400: deploydb.EBADREQUEST, 401: deploydb.EUNAUTHORIZED, 403: deploydb.EFORBIDDEN, 404: deploydb.ENOTFOUND,
		405: deploydb.EBADREQUEST, 409: deploydb.ECONFLICT, 413: deploydb.EINVALID, 422: deploydb.EINVALID,
		502: deploydb.EUNAVAILABLE, 503: deploydb.EUNAVAILABLE, 504: deploydb.EUNAVAILABLE,
		406: deploydb.EINTERNAL, 418: deploydb.EINTERNAL, 500: deploydb.EINTERNAL,
	} {
		if got := client.CodeOfStatus(status); got != want {
			t.Errorf("CodeOfStatus(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	t.Run("ErrUnreachable", func(t *testing.T) {
		t.Parallel()
		s := httptest.NewServer(http.NotFoundHandler())
		s.Close()
		err := mustNew(t, s.URL).Health(context.Background())
		if deploydb.ErrorCode(err) != deploydb.EUNAVAILABLE || !strings.Contains(deploydb.ErrorMessage(err), "cannot reach the server at "+s.URL) {
			t.Errorf("err = %v, want EUNAVAILABLE naming the server", err)
		}
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		t.Parallel()
		s := newRecorder(t, 200, "{}")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := mustNew(t, s.URL).Health(ctx)
		if !errors.Is(err, context.Canceled) || deploydb.ErrorCode(err) != deploydb.EINTERNAL {
			t.Errorf("err = %v, want context.Canceled, not a server error", err)
		}
	})
	t.Run("ErrNotJSON", func(t *testing.T) {
		t.Parallel()
		s := newRecorder(t, 200, "<html>")
		_, err := mustNew(t, s.URL).Artifact(context.Background(), 1)
		if deploydb.ErrorCode(err) != deploydb.EINTERNAL {
			t.Errorf("err = %v, want EINTERNAL", err)
		}
	})
}

// TestLocalChecks covers requests the client refuses without a round trip,
// because the API would refuse them or read them as something else.
func TestLocalChecks(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, "{}")
	c := mustNew(t, s.URL)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"ZeroID":     func() error { _, err := c.Deployment(ctx, 0); return err },
		"NegativeID": func() error { _, err := c.PromotionResult(ctx, 1, -1); return err },
		"EmptyName":  func() error { _, err := c.Service(ctx, ""); return err },
		"HalfModule": func() error { _, err := c.Artifacts(ctx, deploydb.ArtifactFilter{Group: "g"}); return err },
		"ModuleQuery": func() error {
			_, err := c.Artifacts(ctx, deploydb.ArtifactFilter{Group: "g", Name: "n", Query: "q"})
			return err
		},
		"ByFlow":      func() error { _, err := c.Deployments(ctx, deploydb.DeploymentFilter{Flow: 1}); return err },
		"EmptyLatest": func() error { _, err := c.LatestArtifact(ctx, "", "n"); return err },
	} {
		if err := call(); deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
			t.Errorf("%s: err = %v, want EBADREQUEST", name, err)
		}
	}
	if req, _ := s.request(); req != nil {
		t.Errorf("sent %s %s, want no request", req.Method, req.URL)
	}
}
