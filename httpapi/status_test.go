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
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// TestStatusKept checks the status matrix the API keeps between requests:
// a server that serves it again after writes made through another store
// on the same database (as another process would) answers exactly what a
// server that never saw it before answers, and exactly what json.Encoder
// writes for it; a configuration reload changes it without a write.
func TestStatusKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deploydb.db")
	open := func() *sqlite.Store {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	writer, reader := open(), open()
	// faas, whose rows the writes change, and gaas, whose rows they
	// do not: a kept matrix reads again the rows of faas alone.
	withService := func(c *deploydb.Config, name string) *deploydb.Config {
		c.Services[name] = &deploydb.Service{Ident: name, Artifacts: []string{"com.example:" + name}, Pipelines: []string{"basic"},
			Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
		return c
	}
	var cfg atomic.Pointer[deploydb.Config]
	cfg.Store(withService(testConfig(), "gaas"))
	config := cfg.Load
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func(st deploydb.Store) *testServer {
		srv := httptest.NewServer(httpapi.NewServer(logger, st, config))
		t.Cleanup(srv.Close)
		return &testServer{Server: srv, cfg: testConfig()}
	}
	w, kept := serve(writer), serve(reader)

	// check fetches the matrix from kept and from a new server, which
	// has none, and wants both the same and as json.Encoder writes them,
	// with the same ETag, which no other matrix of the test had (the
	// unlock brings back the one before the lock, and its tag). Sent
	// back, the ETag gets 304 without a body; the last step's, when the
	// matrix changed since, gets the matrix.
	etags := map[string][]byte{} // ETag -> its matrix
	var last string
	check := func(step string, query string) httpapi.Status {
		t.Helper()
		got := kept.must(t, 200, "GET", "/api/status"+query, nil)
		fresh := serve(reader).must(t, 200, "GET", "/api/status"+query, nil)
		if !bytes.Equal(got.Body, fresh.Body) {
			t.Fatalf("%s: the kept matrix\n%s\ndiffers from a new one\n%s", step, got.Body, fresh.Body)
		}
		etag := got.Header.Get("ETag")
		if etag == "" || etag != fresh.Header.Get("ETag") {
			t.Fatalf("%s: ETag %q from the kept matrix, %q from a new one", step, etag, fresh.Header.Get("ETag"))
		}
		if seen, ok := etags[etag]; ok && !bytes.Equal(seen, got.Body) {
			t.Fatalf("%s: ETag %s again, for a different matrix", step, etag)
		}
		for tag, body := range etags {
			if tag != etag && bytes.Equal(body, got.Body) {
				t.Fatalf("%s: ETag %s, and %s before, for one matrix", step, etag, tag)
			}
		}
		etags[etag] = got.Body
		for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
			if r := conditional(t, kept, "/api/status"+query, inm); r.Status != 304 || len(r.Body) != 0 || r.Header.Get("ETag") != etag {
				t.Fatalf("%s: If-None-Match: %s got %d, ETag %q, %d bytes; want 304, %s, none", step, inm, r.Status, r.Header.Get("ETag"), len(r.Body), etag)
			}
		}
		if last != "" && last != etag {
			if r := conditional(t, kept, "/api/status"+query, last); r.Status != 200 || !bytes.Equal(r.Body, got.Body) {
				t.Fatalf("%s: If-None-Match the last step's ETag got %d, want 200 and the matrix", step, r.Status)
			}
		}
		last = etag
		var m httpapi.Status
		got.json(t, &m)
		var enc bytes.Buffer
		if err := json.NewEncoder(&enc).Encode(m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Body, enc.Bytes()) {
			t.Fatalf("%s: the matrix\n%s\nis not what json.Encoder writes\n%s", step, got.Body, enc.Bytes())
		}
		if ct := got.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", step, ct)
		}
		return m
	}
	cell := func(m httpapi.Status, env string) *httpapi.StatusCell {
		t.Helper()
		if len(m.Services) != 2 || m.Services[0].Service != "faas" {
			t.Fatalf("services %+v, want faas and gaas", m.Services)
		}
		c := m.Services[0].Cell(env)
		if c == nil {
			t.Fatalf("no %s cell in %+v", env, m.Services[0])
		}
		return c
	}

	m := check("empty", "")
	if c := cell(m, "integ"); c.InFlight != nil || c.Current != nil {
		t.Fatalf("integ before any deployment: %+v", c)
	}

	a := w.publish(t, "1.0.0")
	m = check("published", "")
	c := cell(m, "integ")
	if c.InFlight == nil || c.InFlight.Artifact.ID != a.ID {
		t.Fatalf("integ after the publish: %+v, want artifact %d in flight", c, a.ID)
	}
	id := c.InFlight.ID
	w.must(t, 200, "PATCH", "/api/deployments/"+itoa(id), map[string]any{"status": "STARTED"})
	if c := cell(check("started", ""), "integ"); c.InFlight == nil || c.InFlight.Status != deploydb.DeploymentStarted {
		t.Fatalf("integ after STARTED: %+v", c)
	}
	w.must(t, 200, "PATCH", "/api/deployments/"+itoa(id), map[string]any{"status": "COMPLETED"})
	if c := cell(check("completed", ""), "integ"); c.Current == nil || c.Current.ID != id || c.LastKnownGood == nil {
		t.Fatalf("integ after COMPLETED: %+v", c)
	}

	w.must(t, 201, "POST", "/api/environments/pre-prod/lock", map[string]any{"reason": "maintenance"})
	m = check("locked", "")
	if c := cell(m, "pre-prod"); !c.Locked {
		t.Fatalf("pre-prod after the lock: %+v", c)
	}
	if m.Environments[1].Name != "pre-prod" || m.Environments[1].Lock == nil {
		t.Fatalf("environments after the lock: %+v", m.Environments)
	}
	w.must(t, 204, "DELETE", "/api/environments/pre-prod/lock", map[string]any{"reason": "done"})
	if c := cell(check("unlocked", ""), "pre-prod"); c.Locked {
		t.Fatalf("pre-prod after the unlock: %+v", c)
	}

	// A filter that matches nothing, then one that matches.
	if m := check("filtered out", "?service=nope"); len(m.Services) != 0 || len(m.Environments) != 2 {
		t.Fatalf("?service=nope: %+v", m)
	}
	if m := check("filtered", "?service=fa"); len(m.Services) != 1 || m.Services[0].Service != "faas" {
		t.Fatalf("?service=fa: %+v", m.Services)
	}

	// A reload: a third service, with no write to the store.
	cfg.Store(withService(withService(testConfig(), "gaas"), "haas"))
	if m := check("reloaded", ""); len(m.Services) != 3 || m.Services[2].Service != "haas" {
		t.Fatalf("services after the reload: %+v", m.Services)
	}
}

// conditional sends GET path to srv with If-None-Match: inm.
func conditional(t *testing.T, srv *testServer, path, inm string) response {
	t.Helper()
	return srv.doWith(t, "GET", path, nil, http.Header{"If-None-Match": {inm}})
}

// countingStore is a real store that notes the FindStatus calls it serves.
type countingStore struct {
	deploydb.Store
	mu    sync.Mutex
	calls [][]string // the services of each call; empty for all
}

func (s *countingStore) FindStatus(ctx context.Context, services ...string) ([]*deploydb.StatusCell, error) {
	s.mu.Lock()
	s.calls = append(s.calls, append([]string{}, services...))
	s.mu.Unlock()
	return s.Store.FindStatus(ctx, services...)
}

// took returns the calls since the last and forgets them.
func (s *countingStore) took() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// TestStatusReads checks how little the kept matrix reads: nothing again
// while nothing changed (a new database, at version 0, too), the rows of
// the one service a write changed, all of it after a lock.
func TestStatusReads(t *testing.T) {
	base := newServer(t)
	st := &countingStore{Store: base.store}
	cfg := base.cfg
	cfg.Services["gaas"] = &deploydb.Service{Ident: "gaas", Artifacts: []string{"com.example:gaas"}, Pipelines: []string{"basic"},
		Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), st, func() *deploydb.Config { return cfg }))
	t.Cleanup(srv.Close)
	s := &testServer{Server: srv, store: base.store, cfg: cfg}
	want := func(step string, calls ...[]string) {
		t.Helper()
		s.must(t, 200, "GET", "/api/status", nil)
		s.must(t, 200, "GET", "/api/status", nil)
		if got := st.took(); !cmp.Equal(got, calls, cmpopts.EquateEmpty()) {
			t.Errorf("%s: FindStatus calls %q, want %q", step, got, calls)
		}
	}
	want("new database", []string{})
	want("no change")
	base.publish(t, "1.0.0")
	want("faas published", []string{"faas"})
	s.must(t, 201, "POST", "/api/environments/pre-prod/lock", map[string]any{"reason": "maintenance"})
	want("locked", []string{})
}

// TestStatusEnvironmentOrder: the matrix's columns keep the order of every
// pipeline, however many there are and whatever their names: fast (dev,
// integ, prod) sorts before standard (dev, integ, staging, prod), and
// staging still comes before prod.
func TestStatusEnvironmentOrder(t *testing.T) {
	s := newServer(t)
	stage := func(names ...string) []deploydb.PipelineStage {
		var out []deploydb.PipelineStage
		for _, n := range names {
			out = append(out, deploydb.PipelineStage{Environment: n, Promotions: []string{}})
			s.cfg.Environments[n] = &deploydb.Environment{Ident: n, Webhook: deploydb.Webhook{}}
		}
		return out
	}
	s.cfg.Environments = map[string]*deploydb.Environment{"zz-spare": {Ident: "zz-spare", Webhook: deploydb.Webhook{}}, "aa-spare": {Ident: "aa-spare", Webhook: deploydb.Webhook{}}}
	s.cfg.Pipelines = map[string]*deploydb.Pipeline{
		"fast":     {Ident: "fast", Environments: stage("dev", "integ", "prod")},
		"standard": {Ident: "standard", Environments: stage("dev", "integ", "staging", "prod")},
		"hotfix":   {Ident: "hotfix", Environments: stage("hotfix", "prod")},
	}
	s.cfg.Services["faas"].Pipelines = []string{"standard"}
	var st struct {
		Environments []struct{ Name string }
	}
	s.do(t, "GET", "/api/status", nil).json(t, &st)
	var got []string
	for _, e := range st.Environments {
		got = append(got, e.Name)
	}
	// hotfix has no environment before it: it comes as soon as it may,
	// after those seen before it in the longest pipeline.
	want := []string{"dev", "integ", "staging", "hotfix", "prod", "aa-spare", "zz-spare"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
