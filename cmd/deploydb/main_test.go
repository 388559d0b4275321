package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// server is a DeployDB started in-process through run, as `deploydb serve`.
type server struct {
	URL  string
	stop func()
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readyLine finds the URL in the line serve logs once it is ready, in
// either log format: msg="deploydb ready" url=URL (text) or
// "msg":"deploydb ready","url":"URL" (JSON).
var readyLine = regexp.MustCompile(`"?msg"?[=:]"deploydb ready"[ ,]"?url"?[=:]"?([^"\s]+)`)

// launch runs `deploydb serve` on 127.0.0.1:0 with the given config
// directory, database file and environment, and returns once it is ready.
// The server stops at the end of the test, or earlier through stop.
func launch(t *testing.T, configDir, database string, env map[string]string) *server {
	t.Helper()
	return launchArgs(t, configDir, database, env, "--listen", "127.0.0.1:0")
}

// launchArgs is launch with more serve arguments (--listen among them).
// The server logs text (--log-format text), which the tests read, unless
// more says otherwise.
func launchArgs(t *testing.T, configDir, database string, env map[string]string, more ...string) *server {
	t.Helper()
	return launchServe(t, env, append([]string{"--config", configDir, "--database", database}, more...)...)
}

// launchServe runs `deploydb serve` with args (and --log-format text,
// unless args say otherwise) and returns once it is ready.
func launchServe(t *testing.T, env map[string]string, more ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &lockedBuffer{}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if m := readyLine.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
	}()
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		args := append([]string{"serve", "--log-format", "text"}, more...)
		done <- run(ctx, args, getenv, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	s := &server{logs: logs}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v\nlogs:\n%s", err, logs)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("serve did not stop within 20s of cancel\nlogs:\n%s", logs)
			}
		})
	}
	t.Cleanup(s.stop)
	select {
	case s.URL = <-ready:
	case err := <-done:
		t.Fatalf("serve exited before ready: %v\nlogs:\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve not ready within 20s\nlogs:\n%s", logs)
	}
	return s
}

// startServer runs DeployDB with configDir on a fresh database and returns
// its base URL.
func startServer(t *testing.T, configDir string) string {
	t.Helper()
	return launch(t, configDir, filepath.Join(t.TempDir(), "deploydb.db"), nil).URL
}
