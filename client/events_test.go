package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// eventsConfig has two services consuming one artifact, so that one
// publication records events of both.
func eventsConfig() *deploydb.Config {
	svc := func(name string) *deploydb.Service {
		return &deploydb.Service{Ident: name, Artifacts: []string{"com.example:app"}, Pipelines: []string{"p"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	}
	return &deploydb.Config{
		Checksum:     "test",
		Services:     map[string]*deploydb.Service{"api": svc("api"), "worker": svc("worker")},
		Environments: map[string]*deploydb.Environment{"integ": {Ident: "integ", Webhook: deploydb.Webhook{}}},
		Pipelines:    map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: []deploydb.PipelineStage{{Environment: "integ", Promotions: []string{}}}}},
		Promotions:   map[string]*deploydb.Promotion{},
		Webhook:      deploydb.Webhook{},
	}
}

// eventsServer is the real API over a real store, wrapped by wrap when it
// is not nil.
func eventsServer(t *testing.T, wrap func(http.Handler) http.Handler) *client.Client {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := eventsConfig()
	var h http.Handler = httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return cfg })
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return mustNew(t, srv.URL)
}

func publishApp(t *testing.T, c *client.Client, version string) {
	t.Helper()
	if _, err := c.PublishArtifact(t.Context(), deploydb.Artifact{Group: "com.example", Name: "app", Version: version, SourceURL: "https://repo.example.com/app-" + version + ".jar"}); err != nil {
		t.Fatal(err)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	c := eventsServer(t, nil)
	publishApp(t, c, "1.0")
	all, err := c.Events(t.Context(), deploydb.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// artifact.published, then deployment.created of api and worker
	if len(all) != 3 || all[0].Type != deploydb.EventArtifactPublished {
		t.Fatalf("events = %+v, want artifact.published and two deployment.created", all)
	}
	for _, tt := range []struct {
		name string
		f    deploydb.EventFilter
		want []*deploydb.Event
	}{
		{"Service", deploydb.EventFilter{Service: "worker"}, keepEvents(all, func(ev *deploydb.Event) bool { return ev.Service == "worker" })},
		{"Type", deploydb.EventFilter{Type: deploydb.EventDeploymentCreated, Environment: "integ", Actor: "anonymous"}, all[1:]},
		{"After", deploydb.EventFilter{After: all[0].ID}, all[1:]},
		{"Limit", deploydb.EventFilter{Limit: 2}, all[:2]},
	} {
		got, err := c.Events(t.Context(), tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(tt.want) == len(all) {
			t.Fatalf("%s: the filter keeps every event; the test does not test it", tt.name)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	_, err = c.Events(t.Context(), deploydb.EventFilter{Type: "Created"})
	if deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
		t.Errorf("a malformed type: %v, want %s from the server", err, deploydb.EBADREQUEST)
	}
	_, err = c.Events(t.Context(), deploydb.EventFilter{Deployment: 1})
	if deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
		t.Errorf("by deployment: %v, want %s", err, deploydb.EBADREQUEST)
	}
}

func keepEvents(evs []*deploydb.Event, fn func(*deploydb.Event) bool) []*deploydb.Event {
	var out []*deploydb.Event
	for _, ev := range evs {
		if fn(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// cutWriter passes the response through until the end of the first event,
// then drops the connection, as a network failure would.
type cutWriter struct {
	http.ResponseWriter
}

func (w cutWriter) Write(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\n\n"))
	if end < 0 {
		return w.ResponseWriter.Write(b)
	}
	if _, err := w.ResponseWriter.Write(b[:end+2]); err != nil {
		return 0, err
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}

func (w cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestFollowEvents(t *testing.T) {
	t.Parallel()
	t.Run("ResumesAfterDrop", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var lastEventIDs []string
		c := eventsServer(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/events/stream" {
					h.ServeHTTP(w, r)
					return
				}
				mu.Lock()
				lastEventIDs = append(lastEventIDs, r.Header.Get("Last-Event-ID"))
				first := len(lastEventIDs) == 1
				mu.Unlock()
				if first {
					w = cutWriter{w}
				}
				h.ServeHTTP(w, r)
			})
		})
		publishApp(t, c, "1.0")
		all, err := c.Events(t.Context(), deploydb.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var got []*deploydb.Event
		target := 0
		err = c.FollowEvents(ctx, deploydb.EventFilter{}, func(ev *deploydb.Event, raw []byte) error {
			got = append(got, ev)
			if len(got) == len(all) {
				// More, live, on the second connection.
				publishApp(t, c, "2.0")
				more, err := c.Events(t.Context(), deploydb.EventFilter{})
				if err != nil {
					return err
				}
				target = len(more)
			}
			if len(got) == target {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("FollowEvents = %v, want %v once cancelled", err, context.Canceled)
		}
		all, err = c.Events(t.Context(), deploydb.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("followed (-want +got):\n%s", diff)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"", strconv.FormatInt(all[0].ID, 10)}; !cmp.Equal(want, lastEventIDs) {
			t.Errorf("Last-Event-ID of each connection: %q, want %q: none, then the event received before the drop", lastEventIDs, want)
		}
	})

	t.Run("FnErrorStops", func(t *testing.T) {
		t.Parallel()
		c := eventsServer(t, nil)
		publishApp(t, c, "1.0")
		enough := errors.New("enough")
		n := 0
		err := c.FollowEvents(t.Context(), deploydb.EventFilter{Service: "worker"}, func(ev *deploydb.Event, raw []byte) error {
			n++
			if ev.Service != "worker" {
				t.Errorf("event %+v of another service", ev)
			}
			return enough
		})
		if !errors.Is(err, enough) || n != 1 {
			t.Errorf("FollowEvents = %v after %d events, want %v after 1", err, n, enough)
		}
	})

	t.Run("ErrRefused", func(t *testing.T) {
		t.Parallel()
		c := eventsServer(t, nil)
		err := c.FollowEvents(t.Context(), deploydb.EventFilter{Type: "Created"}, func(*deploydb.Event, []byte) error {
			t.Error("an event of a refused stream")
			return nil
		})
		if deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
			t.Errorf("FollowEvents = %v, want %s at once", err, deploydb.EBADREQUEST)
		}
	})
}
