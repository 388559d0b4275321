package client_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// seen records the requests a server received: method, URI, the headers
// that say how a body was sent, and the body.
type seen struct {
	mu       sync.Mutex
	requests []seenRequest
}

type seenRequest struct {
	method, uri, contentType, body string
	contentLength                  int64
	chunked                        bool
}

func (s *seen) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, seenRequest{method: r.Method, uri: r.URL.RequestURI(), contentType: r.Header.Get("Content-Type"),
			body: string(b), contentLength: r.ContentLength, chunked: len(r.TransferEncoding) > 0})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	})
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *seen) last() seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[len(s.requests)-1]
}

// historyServer is the real API over a real store: services billing and
// search (consuming com.example:billing and com.example:search) on a
// pipeline staging → prod, prod marked production: true.
func historyServer(t *testing.T) (*client.Client, *seen) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := func(name string) *deploydb.Service {
		return &deploydb.Service{Ident: name, Artifacts: []string{"com.example:" + name}, Pipelines: []string{"standard"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	}
	cfg := &deploydb.Config{
		Checksum: "test",
		Services: map[string]*deploydb.Service{"billing": svc("billing"), "search": svc("search")},
		Environments: map[string]*deploydb.Environment{
			"staging": {Ident: "staging", Webhook: deploydb.Webhook{}},
			"prod":    {Ident: "prod", Production: true, Webhook: deploydb.Webhook{}},
		},
		Pipelines: map[string]*deploydb.Pipeline{"standard": {Ident: "standard", Environments: []deploydb.PipelineStage{
			{Environment: "staging", Promotions: []string{}}, {Environment: "prod", Promotions: []string{}},
		}}},
		Promotions: map[string]*deploydb.Promotion{},
		Webhook:    deploydb.Webhook{},
	}
	s := &seen{}
	srv := httptest.NewServer(s.wrap(httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return cfg })))
	t.Cleanup(srv.Close)
	return mustNew(t, srv.URL), s
}

// importFile is two deployments of billing: 1.0 (with two commits) in
// prod, failed 1.1 in prod an hour later, and 1.1 (with one commit more)
// in staging. A blank line is skipped.
const importFile = `{"group":"com.example","name":"billing","version":"1.0","sourceUrl":"https://repo.example.com/billing-1.0.jar","service":"billing","environment":"prod","status":"SUCCESS","startedAt":"2026-01-05T09:00:00Z","finishedAt":"2026-01-05T10:00:00Z","commits":[{"sha":"b","timestamp":"2026-01-05T08:00:00Z"},{"sha":"a","timestamp":"2026-01-05T07:00:00Z"}]}
{"group":"com.example","name":"billing","version":"1.1","sourceUrl":"https://repo.example.com/billing-1.1.jar","service":"billing","environment":"prod","status":"FAILED","reason":"hotfix","startedAt":"2026-01-05T10:50:00Z","finishedAt":"2026-01-05T11:00:00Z","commits":[{"sha":"c","timestamp":"2026-01-05T10:30:00Z"}]}

{"group":"com.example","name":"billing","version":"1.1","sourceUrl":"https://repo.example.com/billing-1.1.jar","service":"billing","environment":"staging","status":"SUCCESS","startedAt":"2026-01-05T10:40:00Z","finishedAt":"2026-01-05T10:45:00Z"}
`

// onlyReader hides every method of a reader but Read, so that its length
// is unknown.
type onlyReader struct{ io.Reader }

func TestImport(t *testing.T) {
	t.Parallel()
	c, s := historyServer(t)
	ctx := t.Context()

	res, err := c.Import(ctx, strings.NewReader(importFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&deploydb.ImportResult{Imported: 3, ArtifactsCreated: 2, Events: res.Events}, res); diff != "" || len(res.Events) != 1 || res.Events[0] == 0 {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	req := s.last()
	if req.method != "POST" || req.uri != "/api/import" || req.contentType != "application/x-ndjson" ||
		req.body != importFile || req.contentLength != int64(len(importFile)) {
		t.Errorf("sent %s %s, Content-Type %q, Content-Length %d, body %q", req.method, req.uri, req.contentType, req.contentLength, req.body)
	}

	t.Run("Again", func(t *testing.T) {
		// A reader of unknown length goes chunked, as it is.
		res, err := c.Import(ctx, onlyReader{strings.NewReader(importFile)})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&deploydb.ImportResult{Unchanged: 3, Events: []int64{}}, res); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		if req := s.last(); !req.chunked || req.body != importFile {
			t.Errorf("chunked %t, body %q; want the file, chunked", req.chunked, req.body)
		}
	})
	t.Run("ErrLines", func(t *testing.T) {
		bad := strings.Replace(importFile, `"status":"FAILED"`, `"status":"DONE"`, 1)
		bad = strings.Replace(bad, `"environment":"staging"`, `"environment":"qa"`, 1)
		_, err := c.Import(ctx, strings.NewReader(bad))
		if deploydb.ErrorCode(err) != deploydb.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
		want := []deploydb.FieldError{
			{Line: 2, Field: "status", Message: `must be SUCCESS or FAILED, not "DONE"`},
			{Line: 4, Field: "environment", Message: `is not an environment of the configuration: "qa"`},
		}
		if diff := cmp.Diff(want, deploydb.ErrorFields(err)); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		_, err := c.Import(ctx, strings.NewReader(""))
		if deploydb.ErrorCode(err) != deploydb.EINVALID || !strings.Contains(deploydb.ErrorMessage(err), "holds no deployment") {
			t.Errorf("err = %v, want EINVALID: no deployment", err)
		}
	})
}

// closeRecorder is a ReadCloser that says when it is closed.
type closeRecorder struct {
	io.Reader
	once   sync.Once
	closed chan struct{}
}

func (r *closeRecorder) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

func TestImportClosesReadCloser(t *testing.T) {
	t.Parallel()
	c, _ := historyServer(t)
	r := &closeRecorder{Reader: strings.NewReader(importFile), closed: make(chan struct{})}
	if _, err := c.Import(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	// net/http may close a request body after Do returns.
	select {
	case <-r.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the body was not closed")
	}
}

func TestDORA(t *testing.T) {
	t.Parallel()
	c, s := historyServer(t)
	ctx := t.Context()
	if _, err := c.Import(ctx, strings.NewReader(importFile)); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

	rep, err := c.DORA(ctx, client.DORAQuery{From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/api/insights/dora?from=2026-01-05T00%3A00%3A00Z&to=2026-01-06T00%3A00%3A00Z"; s.last().uri != want {
		t.Errorf("sent %s, want %s", s.last().uri, want)
	}
	// prod on the 5th: 1.0 succeeded at 10:00, 3 h after its oldest
	// commit; 1.1 (a hotfix) failed at 11:00 and was never followed by a
	// success.
	f := func(v float64) *float64 { return &v }
	want := &client.DORAReport{
		Environment: "prod", From: deploydb.NewTime(day), To: deploydb.NewTime(day.Add(24 * time.Hour)),
		DeploymentFrequency: deploydb.DeploymentFrequency{PerDay: 1, Successful: 1, Days: 1},
		LeadTime:            deploydb.LeadTime{MedianSeconds: f(3 * 3600), Deployments: 1},
		ChangeFailureRate:   deploydb.ChangeFailureRate{Rate: f(0.5), Failed: 1, Successful: 1},
		RecoveryTime:        deploydb.RecoveryTime{Unrecovered: 1},
		ReworkRate:          deploydb.ReworkRate{Rate: f(0.5), Rework: 1, Total: 2},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	t.Run("EnvironmentAndService", func(t *testing.T) {
		rep, err := c.DORA(ctx, client.DORAQuery{Environment: "staging", Service: "billing", From: day})
		if err != nil {
			t.Fatal(err)
		}
		if want := "/api/insights/dora?environment=staging&from=2026-01-05T00%3A00%3A00Z&service=billing"; s.last().uri != want {
			t.Errorf("sent %s, want %s", s.last().uri, want)
		}
		// 1.1 carries the commits of its artifact, known from line 2.
		if rep.Environment != "staging" || rep.Service != "billing" || rep.DeploymentFrequency.Successful != 1 ||
			rep.LeadTime.MedianSeconds == nil || *rep.LeadTime.MedianSeconds != 15*60 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := c.DORA(ctx, client.DORAQuery{Service: "nope"}); deploydb.ErrorCode(err) != deploydb.ENOTFOUND {
			t.Errorf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("ErrWindow", func(t *testing.T) {
		_, err := c.DORA(ctx, client.DORAQuery{From: day, To: day})
		if deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
			t.Errorf("err = %v, want EBADREQUEST", err)
		}
	})
}

func TestDiff(t *testing.T) {
	t.Parallel()
	c, s := historyServer(t)
	ctx := t.Context()
	if _, err := c.Import(ctx, strings.NewReader(importFile)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(ctx, "staging", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if want := "/api/diff?from=staging&to=prod"; s.last().uri != want {
		t.Errorf("sent %s, want %s", s.last().uri, want)
	}
	// staging runs 1.1; prod still 1.0 (1.1 failed there).
	want := &deploydb.EnvironmentDiff{From: "staging", To: "prod", Services: []deploydb.ServiceDiff{{
		Service:   "billing",
		From:      &deploydb.MatrixArtifact{ID: 2, Group: "com.example", Name: "billing", Version: "1.1"},
		To:        &deploydb.MatrixArtifact{ID: 1, Group: "com.example", Name: "billing", Version: "1.0"},
		Commits:   []deploydb.Commit{{SHA: "c", Timestamp: deploydb.NewTime(time.Date(2026, 1, 5, 10, 30, 0, 0, time.UTC))}},
		Direction: deploydb.DiffAhead,
	}}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := c.Diff(ctx, "staging", "qa"); deploydb.ErrorCode(err) != deploydb.ENOTFOUND {
			t.Errorf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("ErrNoName", func(t *testing.T) {
		n := s.count()
		if _, err := c.Diff(ctx, "", "prod"); deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
			t.Errorf("err = %v, want EBADREQUEST", err)
		}
		if s.count() != n {
			t.Errorf("a request was sent")
		}
	})
}
