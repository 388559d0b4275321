package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// tcpProxy forwards the TCP connections it accepts on 127.0.0.1 to a
// target address, so that a test can cut a server off from its database
// (the shared PostgreSQL server cannot be stopped) and connect it again.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string // where it listens: the same port after each restore

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	ports map[int]bool // local ports of the connections to the target made since the last restore
	wg    sync.WaitGroup
}

// newTCPProxy starts a proxy to target; it stops at the end of the test.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.restore()
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

// cut closes every connection through the proxy and refuses new ones, as a
// database server that went away does.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// restore accepts connections again, on the same address.
func (p *tcpProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	// The port was just closed; the kernel may take a moment to let it go.
	for range 100 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr, p.ports = ln, ln.Addr().String(), map[int]bool{}
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(ln, c) })
		}
	})
}

// forward copies c to and from a new connection to the target, until
// either side closes or the proxy is cut.
func (p *tcpProxy) forward(ln net.Listener, c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.ln != ln { // cut meanwhile
		p.mu.Unlock()
		_ = c.Close()
		_ = u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.ports[u.LocalAddr().(*net.TCPAddr).Port] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// upstream reports whether port is the local port of a connection to the
// target made since the last restore.
func (p *tcpProxy) upstream(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ports[port]
}

// through returns the PostgreSQL URL db with its host replaced by the
// proxy's address.
func (p *tcpProxy) through(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		p.t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

// problem decodes a problem+json answer, failing the test if it is not one.
func problem(t *testing.T, what string, code int, body []byte, header string) httpapi.Problem {
	t.Helper()
	var p httpapi.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != code {
		t.Errorf("%s: %d %s: want a problem+json body with status %d", what, code, body, code)
	}
	if header != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, header)
	}
	return p
}

// TestPostgresUnavailable cuts a server off from its PostgreSQL database: a
// TCP proxy between them closes every connection and refuses new ones, for
// longer than a soak promotion needs to come due; then it lets the server
// connect again. Meanwhile /readyz answers 503, and so do writes and the
// reads that need the database, with a problem+json that names the
// database and says what is wrong (not a 500); the process stays alive
// (/healthz) and serves what needs no database (the config). Once the
// database is back, the server recovers by itself: it is ready, the timer
// applies the soak that came due meanwhile (and activates the next
// environment), the dispatcher makes the call that owes, writes succeed,
// and the LISTEN connection is made again.
func TestPostgresUnavailable(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	recv := newCountingReceiver(t, 1)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ: {promotions: [bake]}\n  staging: {}\n",
		"promotions/bake.yml":      "type: soak\nattributes: {duration: 2s}\n",
		"webhook/all.yml":          "hooks:\n  - {name: all, url: '${env:HOOK}/all', events: [deployment.created]}\n",
	})
	srv := spawn(t, dir, proxy.through(db), map[string]string{"HOOK": recv.URL})
	c := api{t: t, url: srv.URL}
	c.call("GET", "/readyz", nil, 200, nil)
	pg, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	listening := func() bool {
		t.Helper()
		rows, err := pg.QueryContext(t.Context(), `SELECT client_port FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND client_port IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var port int
			if err := rows.Scan(&port); err != nil {
				t.Fatal(err)
			}
			if proxy.upstream(port) {
				return true
			}
		}
		return false
	}
	if !pollUntil(10*time.Second, listening) {
		t.Fatalf("no LISTEN connection of the server in pg_stat_activity before the cut")
	}

	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	flow := c.flowOf(art.ID)
	integ, staging := flow.Deployments[0].ID, flow.Deployments[1].ID
	var done deploydb.Deployment
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "COMPLETED"}, 200, &done)
	soakDue := done.Promotions[0].DueAt.Time
	if !pollUntil(10*time.Second, func() bool { return recv.answered(fmt.Sprintf("dd_%d", 1)) > 0 }) {
		t.Fatalf("integ's deployment.created call not made\n%s", srv.logs)
	}

	proxy.cut()
	cutAt := time.Now()
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/readyz", nil},
		{"POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci/b.jar"}},
		{"PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}},
		{"POST", "/api/environments/staging/lock", map[string]any{"reason": "db down"}},
		{"GET", "/api/artifacts", nil},
		{"GET", fmt.Sprintf("/api/deployments/%d", integ), nil},
		{"GET", "/api/flows", nil},
		{"GET", "/api/status", nil},
		{"GET", "/api/events", nil},
	} {
		what := r.method + " " + r.path
		code, body, ctype, err := tryHeader(r.method, srv.URL+r.path, r.body)
		if err != nil {
			t.Fatalf("%s with the database cut off: %v", what, err)
		}
		if code != 503 {
			t.Errorf("%s with the database cut off: %d %s, want 503", what, code, body)
			continue
		}
		p := problem(t, what, code, body, ctype)
		if p.Code != deploydb.EUNAVAILABLE || !strings.Contains(p.Detail, "PostgreSQL database is unavailable") {
			t.Errorf("%s: %+v, want code unavailable and a detail naming the PostgreSQL database", what, p)
		}
	}
	for _, path := range []string{"/healthz", "/api/services/billing", "/api/config"} {
		c.call("GET", path, nil, 200, nil)
	}
	// The soak comes due while the database is away.
	time.Sleep(time.Until(soakDue.Add(500 * time.Millisecond)))
	proxy.restore()
	t.Logf("database cut off for %s", time.Since(cutAt).Round(time.Millisecond))

	restored := time.Now()
	if !pollUntil(30*time.Second, func() bool { code, _, _ := try("GET", srv.URL+"/readyz", nil); return code == 200 }) {
		t.Fatalf("not ready 30 s after the database came back\n%s", srv.logs)
	}
	// Nothing asks for it: the timer applies the soak, which activates
	// staging, whose call the dispatcher makes.
	if !pollUntil(15*time.Second, func() bool {
		return recv.answered(fmt.Sprintf("dd_%d", 2)) > 0
	}) {
		t.Fatalf("the soak due during the outage was not applied, or staging's call not made, within 15 s of the database's return\n%s", srv.logs)
	}
	t.Logf("soak applied and staging's call made %s after the database came back", time.Since(restored).Round(time.Millisecond))
	flow = c.flowOf(art.ID)
	if flow.Deployments[0].Status != deploydb.DeploymentSuccess || flow.Deployments[1].Status != deploydb.DeploymentCreated {
		t.Errorf("after the outage: integ %s, staging %s; want SUCCESS, CREATED", flow.Deployments[0].Status, flow.Deployments[1].Status)
	}
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}, 200, nil)
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci/b.jar"}, 201, nil)
	if !pollUntil(40*time.Second, listening) {
		t.Errorf("the server did not LISTEN again within 40 s of the database's return")
	}
	if strings.Contains(srv.logs.String(), "internal error") {
		t.Errorf("the outage was logged as an internal error:\n%s", srv.logs)
	}
}

// tryHeader is try, with the answer's Content-Type.
func tryHeader(method, url string, body any) (code int, b []byte, contentType string, err error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	b, err = io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header.Get("Content-Type"), err
}
