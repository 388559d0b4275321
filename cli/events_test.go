package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// eventServer is the real API over a real store: services api and worker
// both consume com.example:app, so a publication records three events.
func eventServer(t *testing.T) (Env, *client.Client) {
	t.Helper()
	svc := func(name string) *deploydb.Service {
		return &deploydb.Service{Ident: name, Artifacts: []string{"com.example:app"}, Pipelines: []string{"p"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	}
	cfg := &deploydb.Config{
		Checksum:     "test",
		Services:     map[string]*deploydb.Service{"api": svc("api"), "worker": svc("worker")},
		Environments: map[string]*deploydb.Environment{"integ": {Ident: "integ", Webhook: deploydb.Webhook{}}},
		Pipelines:    map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: []deploydb.PipelineStage{{Environment: "integ", Promotions: []string{}}}}},
		Promotions:   map[string]*deploydb.Promotion{},
		Webhook:      deploydb.Webhook{},
	}
	return serveAPI(t, cfg)
}

// serveAPI serves the real API under cfg over a new SQLite store until t
// ends, and returns the CLI's environment and a client for it.
func serveAPI(t *testing.T, cfg *deploydb.Config) (Env, *client.Client) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return cfg }))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return Env{Getenv: getenv(map[string]string{EnvURL: srv.URL})}, c
}

func publishApp(t *testing.T, c *client.Client, version string) {
	t.Helper()
	if _, err := c.PublishArtifact(t.Context(), deploydb.Artifact{Group: "com.example", Name: "app", Version: version, SourceURL: "https://repo.example.com/app.jar"}); err != nil {
		t.Fatal(err)
	}
}

// jsonEvents decodes JSON Lines of events.
func jsonEvents(t *testing.T, out string) []deploydb.Event {
	t.Helper()
	var evs []deploydb.Event
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var ev deploydb.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEventsCommand(t *testing.T) {
	t.Parallel()
	env, c := eventServer(t)
	publishApp(t, c, "1.0")

	r := execute(t, env, "events", "-o", "json")
	if r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	all := jsonEvents(t, r.stdout)
	if len(all) != 3 || all[0].Type != deploydb.EventArtifactPublished {
		t.Fatalf("events = %+v, want artifact.published and two deployment.created", all)
	}

	r = execute(t, env, "events", "--service", "worker")
	if r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], " deployment.created ") || !strings.Contains(lines[1], " worker ") {
		t.Errorf("table of worker's events:\n%s", r.stdout)
	}

	r = execute(t, env, "events", "--after", strconv.FormatInt(all[0].ID, 10), "--limit", "1", "--type", "deployment.created", "--environment", "integ", "--actor", "anonymous", "-o", "json")
	if r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := jsonEvents(t, r.stdout); len(got) != 1 || got[0].ID != all[1].ID {
		t.Errorf("one event after %d: %+v, want event %d", all[0].ID, got, all[1].ID)
	}

	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"events", "--follow", "--limit", "5"}, ExitUsage},
		{[]string{"events", "--after", "-1"}, ExitUsage},
		{[]string{"events", "--type", "Deployment Created"}, ExitInvalid},
		{[]string{"events", "--limit", "1001"}, ExitInvalid},
		{[]string{"events", "--follow", "--type", "Deployment Created"}, ExitInvalid},
	} {
		if r := execute(t, env, tt.args...); r.code != tt.code || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d", tt.args, r.code, r.stdout, r.stderr, tt.code)
		}
	}
}

// lineWriter collects output and calls fn with the number of lines
// written so far after each write.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	fn  func(lines int)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(b)
	w.fn(strings.Count(w.buf.String(), "\n"))
	return n, nil
}

func TestEventsFollow(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "table"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			env, c := eventServer(t)
			publishApp(t, c, "1.0")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The backlog of three events, then those of a publication
			// while following (which may come in one batch, printed
			// before the cancellation is noticed); a table has a header
			// line first.
			want := 4
			if format == "table" {
				want++
			}
			published := false
			out := &lineWriter{fn: func(lines int) {
				if lines == want-1 && !published {
					published = true
					if _, err := c.PublishArtifact(ctx, deploydb.Artifact{Group: "com.example", Name: "app", Version: "2.0", SourceURL: "https://repo.example.com/app.jar"}); err != nil {
						t.Errorf("publish 2.0: %v", err)
					}
				}
				if lines >= want {
					cancel()
				}
			}}
			var stderr bytes.Buffer
			env.Stdout, env.Stderr = out, &stderr
			err := Execute(ctx, []string{"events", "--follow", "-o", format}, env)
			if err != nil || ctx.Err() != context.Canceled {
				t.Fatalf("exit %d (%v, %v): %s", ExitCode(err), err, ctx.Err(), stderr.String())
			}
			got := out.buf.String()
			if format == "json" {
				evs := jsonEvents(t, got)
				if len(evs) < want || evs[3].Type != deploydb.EventArtifactPublished || evs[3].ID <= evs[2].ID {
					t.Errorf("followed %+v, want the three events of 1.0, then artifact.published of 2.0", evs)
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) < want || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[4], " artifact.published ") {
				t.Errorf("followed table:\n%s", got)
			}
		})
	}
}
