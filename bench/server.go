package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ServerOptions says how to run bin/deploydb.
type ServerOptions struct {
	Bin      string // the deploydb binary
	Config   string // the config directory
	Database string // a SQLite file or a PostgreSQL URL
	Log      string // the file its stderr goes to
	// Env is added to the benchmark's environment: the variables the
	// config reads.
	Env []string
}

// Server is a deploydb serve process the benchmark started.
type Server struct {
	URL   string
	cmd   *exec.Cmd
	log   *os.File
	exit  chan struct{}
	err   error
	Start time.Time
	// Ready is how long after the process started /readyz first answered
	// 200.
	Ready time.Duration
}

// StartServer starts deploydb serve on a free port of 127.0.0.1 and waits
// until /readyz answers 200 (at most a minute).
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: a free port for the server: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	logf, err := os.OpenFile(o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: the server's log: %w", err)
	}
	cmd := exec.CommandContext(ctx, o.Bin, "serve", "--config", o.Config, "--database", o.Database, "--listen", addr, "--log-format", "text")
	// Should the run be interrupted, the server stops as it does for an
	// operator, and is killed if it does not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	dieWithParent(cmd)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	s := &Server{URL: "http://" + addr, cmd: cmd, log: logf, exit: make(chan struct{})}
	probe := &http.Client{Timeout: time.Second}
	s.Start = time.Now()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", o.Bin, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exit)
	}()
	deadline := s.Start.Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := probe.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.Ready = time.Since(s.Start)
				return s, nil
			}
		}
		select {
		case <-s.exit:
			_ = logf.Close()
			return nil, errors.Join(fmt.Errorf("bench: deploydb serve exited before it was ready: see %s", o.Log), s.err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("bench: deploydb serve not ready within a minute: see %s", o.Log)
		}
	}
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// RSS returns the server's resident memory (VmRSS) and its peak so far
// (VmHWM), in MB.
func (s *Server) RSS() (rss, peak float64, err error) { return rssMB(s.PID()) }

// Stop asks the server to stop (SIGTERM), as an operator does, and kills
// it if it has not stopped within 20 s.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	_ = s.log.Close()
}

// client calls the API with the model's tokens.
type client struct {
	base   string
	tokens Tokens
	http   *http.Client
}

func newClient(base string, tokens Tokens, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0,
		IdleConnTimeout: time.Minute, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	return &client{base: base, tokens: tokens, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// errStatus is an answer the benchmark did not expect.
type errStatus struct {
	method, path string
	code         int
	body         string
}

func (e *errStatus) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.code, e.body)
}

// do calls method path as actor with body (JSON, or none when nil) and
// returns the response's body, or an error unless the status is want.
func (c *client) do(ctx context.Context, actor, method, path string, body any, want int) ([]byte, error) {
	return c.doInto(ctx, actor, method, path, body, want, nil)
}

// doInto is do, reading the answer into buf (reset first) when it is not
// nil: a read load reuses one buffer per client, so that the benchmark's
// own allocations (megabytes per GET /api/status) do not take the CPU the
// server shares with it.
func (c *client) doInto(ctx context.Context, actor, method, path string, body any, want int, buf *bytes.Buffer) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if actor != "" {
		req.Header.Set("Authorization", "Bearer "+c.tokens[actor])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if buf == nil {
		buf = &bytes.Buffer{}
	}
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if resp.StatusCode != want {
		if len(b) > 300 {
			b = b[:300]
		}
		return b, &errStatus{method, path, resp.StatusCode, string(b)}
	}
	return b, nil
}

// getJSON gets path as the reader and decodes the answer into out.
func (c *client) getJSON(ctx context.Context, path string, out any) error {
	b, err := c.do(ctx, ActorReader, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (c *client) close() { c.http.CloseIdleConnections() }

// isCanceled reports whether err comes from a context that ended.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
