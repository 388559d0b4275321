package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// syncBuffer is a log destination that handlers write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far, decoded.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// observedServer is a test server that logs JSON (every level) to logs and
// counts its requests in reg.
type observedServer struct {
	*testServer
	path string // the SQLite database file
	reg  *prometheus.Registry
	logs *syncBuffer
}

func newObservedServer(t *testing.T) *observedServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "deploydb.db")
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := testConfig()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(httpapi.NewServer(logger, store, func() *deploydb.Config { return cfg }).WithMetrics(reg))
	t.Cleanup(srv.Close)
	return &observedServer{testServer: &testServer{Server: srv, store: store, cfg: cfg}, path: path, reg: reg, logs: logs}
}

// series returns how many series the metric name has.
func (s *observedServer) series(t *testing.T, name string) int {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// requests returns deploydb_http_requests_total{route, code}.
func (s *observedServer) requests(t *testing.T, route, code string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deploydb_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newObservedServer(t)
	get := func(id string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+"/api/artifacts/999", nil)
		if id != "" {
			req.Header.Set(httpapi.HeaderRequestID, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
	}

	t.Run("Made", func(t *testing.T) {
		a, b := get(""), get("")
		ida, idb := a.Header.Get(httpapi.HeaderRequestID), b.Header.Get(httpapi.HeaderRequestID)
		if len(ida) < 16 || ida == idb {
			t.Errorf("request ids %q and %q: want two different ones of 16 characters or more", ida, idb)
		}
		if p := a.problem(t); p.RequestID != ida {
			t.Errorf("problem requestId = %q, want the header's %q", p.RequestID, ida)
		}
	})
	t.Run("Taken", func(t *testing.T) {
		id := "lb-7f3a/9c:2~" + strings.Repeat("x", 51) // 64 characters
		r := get(id)
		if got := r.Header.Get(httpapi.HeaderRequestID); got != id {
			t.Errorf("X-Request-Id = %q, want the caller's %q", got, id)
		}
		if p := r.problem(t); p.RequestID != id {
			t.Errorf("problem requestId = %q, want %q", p.RequestID, id)
		}
	})
	t.Run("Replaced", func(t *testing.T) {
		for _, bad := range []string{strings.Repeat("x", 65), "two words", "tab\there", "caf\u00e9"} {
			r := get(bad)
			got := r.Header.Get(httpapi.HeaderRequestID)
			if got == bad || got == "" {
				t.Errorf("X-Request-Id %q: answered %q, want a new id", bad, got)
			}
			if p := r.problem(t); p.RequestID != got {
				t.Errorf("X-Request-Id %q: problem requestId = %q, want %q", bad, p.RequestID, got)
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		// A request authentication refuses is named and logged too.
		req, _ := http.NewRequest("GET", s.URL+"/api/artifacts", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		req.Header.Set(httpapi.HeaderRequestID, "refused-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		r := response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
		if p := r.problem(t); r.Status != http.StatusUnauthorized || p.RequestID != "refused-1" {
			t.Errorf("a token sent to a server without tokens: %d, requestId %q; want 401, refused-1", r.Status, p.RequestID)
		}
		var logged bool
		for _, l := range s.logs.lines(t) {
			if l["msg"] == "request" && l["request_id"] == "refused-1" && l["status"] == float64(401) && l["route"] == "GET /api/artifacts" {
				logged = true
			}
		}
		if !logged {
			t.Errorf("no request log line of the refused request:\n%s", s.logs.buf.String())
		}
	})
	t.Run("Success", func(t *testing.T) {
		r := s.must(t, 200, "GET", "/healthz", nil)
		if r.Header.Get(httpapi.HeaderRequestID) == "" {
			t.Error("a 200 carries no X-Request-Id")
		}
	})
}

// TestInternalErrorLog breaks the database under a running server (a table
// is dropped) and checks that the 500 it answers names the request in its
// header, its problem body and the JSON log line of the internal error.
func TestInternalErrorLog(t *testing.T) {
	t.Parallel()
	s := newObservedServer(t)
	s.publish(t, "1.0.0")
	db, err := sql.Open("sqlite", s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/artifacts", strings.NewReader(`{"group":"com.example.cucumber","name":"cucumber-artifact","version":"2.0.0","sourceUrl":"http://x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpapi.HeaderIdempotencyKey, "k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", r.Status, r.Body)
	}
	id := r.Header.Get(httpapi.HeaderRequestID)
	p := r.problem(t)
	if p.RequestID != id || id == "" {
		t.Errorf("problem requestId %q, header %q: want the same, not empty", p.RequestID, id)
	}
	if p.Detail != "internal error" || strings.Contains(string(r.Body), "idempotency_keys") {
		t.Errorf("a 500 shows more than \"internal error\": %s", r.Body)
	}
	var internal, request map[string]any
	for _, l := range s.logs.lines(t) {
		switch l["msg"] {
		case "internal error":
			internal = l
		case "request":
			if l["path"] == "/api/artifacts" && l["method"] == "POST" && l["status"] == float64(500) {
				request = l
			}
		}
	}
	if internal == nil {
		t.Fatalf("no internal error logged:\n%s", s.logs.buf.String())
	}
	if internal["request_id"] != id || internal["level"] != "ERROR" || !strings.Contains(internal["err"].(string), "idempotency_keys") {
		t.Errorf("internal error log %v: want level ERROR, request_id %q and the error", internal, id)
	}
	if request == nil || request["request_id"] != id || request["route"] != "POST /api/artifacts" {
		t.Errorf("request log %v: want request_id %q and route POST /api/artifacts", request, id)
	}
	if got := s.requests(t, "POST /api/artifacts", "500"); got != 1 {
		t.Errorf(`deploydb_http_requests_total{route="POST /api/artifacts",code="500"} = %v, want 1`, got)
	}
}

func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	s := newObservedServer(t)
	a := s.publish(t, "1.0.0")
	s.publish(t, "1.0.1")
	d := s.deployment(t, a.ID, "integ")
	s.must(t, 200, "GET", "/api/deployments/"+itoa(d.ID), nil)
	s.must(t, 404, "GET", "/api/deployments/999999", nil)
	s.must(t, 409, "POST", "/api/artifacts", sampleArtifact())
	s.must(t, 404, "GET", "/no/such/path/"+itoa(d.ID), nil)
	s.must(t, 405, "PUT", "/api/artifacts", nil)
	req, _ := http.NewRequest("POST", s.URL+"/api/artifacts", strings.NewReader("{}"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", resp.StatusCode)
	}

	// Routes are patterns, never paths: every deployment id is one series.
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"POST /api/artifacts", "201", 2},
		{"POST /api/artifacts", "409", 1},
		{"POST /api/artifacts", "403", 1},
		{"GET /api/deployments/{id}", "200", 1},
		{"GET /api/deployments/{id}", "404", 1},
		{"unmatched", "404", 1},
		{"unmatched", "405", 1},
	} {
		if got := s.requests(t, c.route, c.code); got != c.want {
			t.Errorf("deploydb_http_requests_total{route=%q,code=%q} = %v, want %v", c.route, c.code, got, c.want)
		}
	}
	// The histogram has one series per route that answered: with
	// GET /api/deployments/by-artifact/{id} of s.deployment, 4.
	if n := s.series(t, "deploydb_http_request_duration_seconds"); n != 4 {
		t.Errorf("deploydb_http_request_duration_seconds has %d series, want 4 (one per route)", n)
	}
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "request" && strings.Contains(l["route"].(string), "999999") {
			t.Errorf("a route label holds a path: %v", l)
		}
	}
}

// TestReadiness checks /readyz fails, naming why, once the database is
// gone, and that /healthz still answers.
func TestReadiness(t *testing.T) {
	t.Parallel()
	s := newObservedServer(t)
	s.must(t, 200, "GET", "/readyz", nil)
	s.store.Close()
	r := s.must(t, 503, "GET", "/readyz", nil)
	if p := r.problem(t); !strings.Contains(p.Detail, "the SQLite database") || !strings.Contains(p.Detail, "does not answer") || p.RequestID == "" {
		t.Errorf("readyz problem %+v: want the database named and a requestId", p)
	}
	s.must(t, 200, "GET", "/healthz", nil)
}

// TestReadinessWithoutConfig checks that a server with no configuration
// loaded is not ready.
func TestReadinessWithoutConfig(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.DiscardHandler), store, func() *deploydb.Config { return nil }))
	defer srv.Close()
	r := (&testServer{Server: srv}).must(t, 503, "GET", "/readyz", nil)
	if p := r.problem(t); !strings.Contains(p.Detail, "no configuration is loaded") {
		t.Errorf("readyz problem %+v: want the configuration named", p)
	}
}
