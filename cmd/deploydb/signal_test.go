package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// slowReceiver is a webhook receiver that takes its time: each call is
// announced on arrived (by webhook-id), then answered 204 after delay.
type slowReceiver struct {
	*httptest.Server
	arrived chan string

	mu       sync.Mutex
	answered map[string]int
}

func newSlowReceiver(t *testing.T, delay time.Duration) *slowReceiver {
	r := &slowReceiver{arrived: make(chan string, 100), answered: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		id := req.Header.Get("Webhook-Id")
		r.arrived <- id
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
		w.WriteHeader(http.StatusNoContent)
		r.mu.Lock()
		r.answered[id]++
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *slowReceiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered[id]
}

// TestSIGTERM stops a server with SIGTERM while a request is in flight (its
// body half sent) and a webhook call is under way to a receiver that takes
// 1.5 s to answer. The server stops accepting connections at once, yet
// finishes the request (201: the artifact is stored); the dispatcher lets
// the call finish and records it; and the process exits 0, within
// shutdownTimeout plus the dispatcher's drain time. After a restart
// nothing is sent twice: the call made during the shutdown is recorded as
// delivered, and the one the last request caused is made once.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	recv := newSlowReceiver(t, 1500*time.Millisecond)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"services/search.yml":    "artifacts: [com.example:search]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/standard.yml": "environments:\n  integ: {}\n",
		"webhook/all.yml":        "hooks:\n  - {name: all, url: '${env:HOOK}/all', events: [deployment.created]}\n",
	})
	db := t.TempDir() + "/deploydb.db"
	env := map[string]string{"HOOK": recv.URL}
	srv := spawn(t, dir, db, env)
	c := api{t: t, url: srv.URL}

	// A webhook call under way.
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, nil)
	var first string
	select {
	case first = <-recv.arrived:
	case <-time.After(10 * time.Second):
		t.Fatalf("no webhook call within 10 s\n%s", srv.logs)
	}

	// A request in flight: its handler reads the body (Expect:
	// 100-continue makes the client wait for that), of which half is sent.
	body, _ := json.Marshal(map[string]any{"group": "com.example", "name": "search", "version": "1.0.0", "sourceUrl": "https://ci/s.jar"})
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", srv.URL+"/api/artifacts", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	req.ContentLength = int64(len(body))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	type answer struct {
		code int
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		answered <- answer{res.StatusCode, b, err}
	}()
	if _, err := pw.Write(body[:len(body)/2]); err != nil { // returns once the handler reads
		t.Fatal(err)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	// New connections are refused at once.
	u, _ := url.Parse(srv.URL)
	if !pollUntil(5*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}) {
		t.Errorf("the server still accepts connections 5 s after SIGTERM")
	}
	select {
	case <-srv.done:
		t.Fatalf("the server exited with a request in flight: %v\n%s", srv.err, srv.logs)
	default:
	}
	// The request in flight is finished.
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var a answer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatalf("the request in flight got no answer within 10 s of its end")
	}
	if a.err != nil || a.code != 201 {
		t.Fatalf("the request in flight at SIGTERM: %d %s %v, want 201", a.code, a.body, a.err)
	}
	var stored deploydb.Artifact
	if err := json.Unmarshal(a.body, &stored); err != nil {
		t.Fatal(err)
	}

	// The process exits 0, in bounded time, having let the call finish.
	bound := shutdownTimeout + 5*time.Second + 5*time.Second // requests, the dispatcher's drain, slack
	select {
	case <-srv.done:
	case <-time.After(bound):
		t.Fatalf("the server did not exit within %s of SIGTERM\n%s", bound, srv.logs)
	}
	t.Logf("exited %s after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	if srv.err != nil || strings.Contains(srv.logs.String(), "DATA RACE") {
		t.Fatalf("exit after SIGTERM: %v\n%s", srv.err, srv.logs)
	}
	if recv.count(first) != 1 {
		t.Errorf("the call under way at SIGTERM was answered %d times before the exit, want 1", recv.count(first))
	}

	// After a restart: the call made during the shutdown was recorded,
	// and every call owed is made once.
	srv = spawn(t, dir, db, env)
	c = api{t: t, url: srv.URL}
	c.call("GET", fmt.Sprintf("/api/artifacts/%d", stored.ID), nil, 200, nil)
	var ds []deploydb.DeliveryView
	if !pollUntil(20*time.Second, func() bool {
		c.call("GET", "/api/webhook-deliveries", nil, 200, &ds)
		for _, d := range ds {
			if d.Status != deploydb.DeliveryDelivered {
				return false
			}
		}
		return len(ds) == 2
	}) {
		t.Fatalf("deliveries after the restart: %+v", ds)
	}
	for _, d := range ds {
		id := fmt.Sprintf("dd_%d", d.ID)
		if n := recv.count(id); n != 1 || d.Attempts != 1 {
			t.Errorf("delivery %d: answered %d times in %d attempts, want once in 1", d.ID, n, d.Attempts)
		}
	}
}

// TestSIGTERMStuckRequest stops a server with SIGTERM while a client sends
// a request body that never ends. The server waits shutdownTimeout for it,
// then cuts it short (it was never answered: nothing it did was
// acknowledged), says so, and exits 0.
func TestSIGTERMStuckRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/standard.yml": "environments:\n  integ: {}\n",
	})
	srv := spawn(t, dir, t.TempDir()+"/deploydb.db", nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", srv.URL+"/api/artifacts", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	req.ContentLength = 1000
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	go func() {
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte(`{"group": `)); err != nil { // returns once the handler reads
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	bound := shutdownTimeout + 5*time.Second + 5*time.Second // requests, the dispatcher's drain, slack
	select {
	case <-srv.done:
	case <-time.After(bound):
		t.Fatalf("the server did not exit within %s of SIGTERM\n%s", bound, srv.logs)
	}
	t.Logf("exited %s after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	if srv.err != nil || !strings.Contains(srv.logs.String(), "cut short") {
		t.Errorf("exit after SIGTERM with a request stuck: %v, want exit 0 and a log line that says the request was cut short\n%s", srv.err, srv.logs)
	}
}

// TestSIGHUP reloads the config of a running server process with a real
// SIGHUP: a new environment is served; a broken config is refused, the
// one in force is kept and the failure is reported; the process lives on
// (SIGHUP would end a process that does not handle it).
func TestSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/standard.yml": "environments:\n  integ: {}\n",
	})
	srv := spawn(t, dir, t.TempDir()+"/deploydb.db", nil)
	c := api{t: t, url: srv.URL}
	var before deploydb.ConfigStatus
	c.call("GET", "/api/config", nil, 200, &before)
	if code, _ := send(t, "GET", srv.URL+"/api/environments/staging", "", nil); code != 404 {
		t.Fatalf("staging before the reload: %d, want 404", code)
	}

	writeFiles(t, dir, map[string]string{"environments/staging.yml": "description: Staging\n"})
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after deploydb.ConfigStatus
	if !pollUntil(10*time.Second, func() bool {
		c.call("GET", "/api/config", nil, 200, &after)
		return after.Checksum != before.Checksum
	}) {
		t.Fatalf("the config was not reloaded within 10 s of SIGHUP\n%s", srv.logs)
	}
	c.call("GET", "/api/environments/staging", nil, 200, nil)

	writeFiles(t, dir, map[string]string{"pipelines/standard.yml": "environments:\n  integ: {}\n  nowhere: {}\n"})
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var broken deploydb.ConfigStatus
	if !pollUntil(10*time.Second, func() bool {
		c.call("GET", "/api/config", nil, 200, &broken)
		return broken.LastError != ""
	}) {
		t.Fatalf("the broken config's failure was not reported within 10 s of SIGHUP\n%s", srv.logs)
	}
	if broken.Checksum != after.Checksum || !strings.Contains(broken.LastError, "nowhere") {
		t.Errorf("after a broken config: checksum %s (want %s kept), last error %q (want it to name nowhere)", broken.Checksum, after.Checksum, broken.LastError)
	}
	c.call("GET", "/api/environments/staging", nil, 200, nil)
	select {
	case <-srv.done:
		t.Fatalf("the server exited after SIGHUP: %v\n%s", srv.err, srv.logs)
	default:
	}
}
