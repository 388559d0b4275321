package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// pprofPaths are the profiler's answers an admin gets, each with something
// its body holds.
var pprofPaths = []struct{ path, want string }{
	{"/debug/pprof/", "Types of profiles available"},
	{"/debug/pprof/heap?debug=1", "heap profile:"},
	{"/debug/pprof/allocs?debug=1", "heap profile:"},
	{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
	{"/debug/pprof/threadcreate?debug=1", "threadcreate profile:"},
	{"/debug/pprof/block?debug=1", "--- contention:"},
	{"/debug/pprof/mutex?debug=1", "--- mutex:"},
	{"/debug/pprof/symbol", "num_symbols:"},
}

// TestPprof: the Go profiler is served under /debug/pprof/ to admin tokens
// only: no token is 401 and a token without admin 403, as problem+json; an
// admin token gets the index, every named profile, a CPU profile and an
// execution trace. The command line is not served.
func TestPprof(t *testing.T) {
	t.Parallel()
	srv := launch(t, authConfig(t, "read"), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	as := func(name string) string { return "Bearer " + secretOf(name) }
	for _, p := range pprofPaths {
		for _, c := range []struct {
			who, auth string
			want      int
		}{
			{"none", "", 401}, // anonymous callers may read (anonymous: [read]), not profile
			{"unknown", "Bearer ddb_not-a-token-0123456789", 401},
			{"reader", as("reader"), 403},
			{"orchestrator", as("orchestrator"), 403},
			{"ops", as("ops"), 200},
		} {
			code, b := send(t, "GET", srv.URL+p.path, c.auth, nil)
			if code != c.want {
				t.Errorf("GET %s as %s: %d, want %d: %.200s", p.path, c.who, code, c.want, b)
				continue
			}
			if code != 200 {
				var prob struct{ Status int }
				if err := json.Unmarshal(b, &prob); err != nil || prob.Status != code {
					t.Errorf("GET %s as %s: %d is not problem+json: %s", p.path, c.who, code, b)
				}
			} else if !bytes.Contains(b, []byte(p.want)) {
				t.Errorf("GET %s as ops: no %q in %.300s", p.path, p.want, b)
			}
		}
	}

	// A CPU profile (gzipped protocol buffers) and an execution trace.
	code, b := send(t, "GET", srv.URL+"/debug/pprof/profile?seconds=1", as("ops"), nil)
	if code != 200 {
		t.Fatalf("CPU profile: %d %s", code, b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("CPU profile is not gzipped: %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Errorf("CPU profile: %d bytes, %v", len(raw), err)
	}
	if code, b := send(t, "GET", srv.URL+"/debug/pprof/profile?seconds=1", as("reader"), nil); code != 403 {
		t.Errorf("CPU profile as reader: %d %s, want 403", code, b)
	}
	code, b = send(t, "GET", srv.URL+"/debug/pprof/trace?seconds=0.2", as("ops"), nil)
	if code != 200 || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("trace: %d %.40q, want 200 and a Go execution trace", code, b)
	}

	if code, b := send(t, "GET", srv.URL+"/debug/pprof/cmdline", as("ops"), nil); code != 404 {
		t.Errorf("cmdline: %d %s, want 404 (it may show a database password)", code, b)
	}
	if code, b := send(t, "POST", srv.URL+"/debug/pprof/heap", as("ops"), nil); code != 405 {
		t.Errorf("POST heap: %d %s, want 405", code, b)
	}
}

// TestPprofWithoutTokens: without tokens the profiler is served as the
// rest of the API, to requests addressed to a loopback host only.
func TestPprofWithoutTokens(t *testing.T) {
	t.Parallel()
	srv := launch(t, writeConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), map[string]string{"HOOK": "http://127.0.0.1:1"})
	if code, b := send(t, "GET", srv.URL+"/debug/pprof/heap?debug=1", "", nil); code != 200 || !strings.Contains(string(b), "heap profile:") {
		t.Errorf("a local caller without tokens: %d %.200s", code, b)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/debug/pprof/heap?debug=1", nil)
	req.Host = "evil.example" + strings.TrimPrefix(srv.URL, "http://127.0.0.1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("a request addressed to evil.example without tokens: %d, want 403", res.StatusCode)
	}
}
