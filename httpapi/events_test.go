package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
)

// eventWait bounds every wait for the stream; events arrive as soon as
// they are committed, the bound only keeps a broken server from hanging.
const eventWait = 10 * time.Second

// newEventServer serves testConfig plus a second service, web, that
// consumes the same artifact, so that one publication gives events of two
// services. wrap, when not nil, wraps the API handler; configure, when not
// nil, sets up the http.Server before it starts.
func newEventServer(t *testing.T, wrap func(http.Handler) http.Handler, configure func(*http.Server)) *testServer {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := testConfig()
	cfg.Services["web"] = &deploydb.Service{Ident: "web", Artifacts: []string{"com.example.cucumber:cucumber-artifact"},
		Pipelines: []string{"basic"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	var h http.Handler = httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return cfg })
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewUnstartedServer(h)
	if configure != nil {
		configure(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, store: store, cfg: cfg}
}

// history publishes version and walks faas's integ deployment through
// STARTED to COMPLETED, which frees integ for the next version: events of
// several types, services and environments. It returns the deployment as
// it was once STARTED.
func (s *testServer) history(t *testing.T, version string) deploydb.Deployment {
	t.Helper()
	a := s.publish(t, version)
	var list []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments/by-artifact/"+itoa(a.ID)+"?service=faas&environment=integ", nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("%d faas deployments of artifact %d in integ, want 1", len(list), a.ID)
	}
	var d deploydb.Deployment
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(list[0].ID), map[string]any{"status": "STARTED"}).json(t, &d)
	s.must(t, 200, "PATCH", "/api/deployments/"+itoa(list[0].ID), map[string]any{"status": "COMPLETED"})
	return d
}

func (s *testServer) allEvents(t *testing.T) []deploydb.Event {
	t.Helper()
	var evs []deploydb.Event
	s.must(t, 200, "GET", "/api/events?limit=1000", nil).json(t, &evs)
	return evs
}

// keep returns the events for which fn is true.
func keep(evs []deploydb.Event, fn func(deploydb.Event) bool) []deploydb.Event {
	out := []deploydb.Event{}
	for _, ev := range evs {
		if fn(ev) {
			out = append(out, ev)
		}
	}
	return out
}

func TestEventList(t *testing.T) {
	t.Parallel()
	s := newEventServer(t, nil, nil)
	if body := strings.TrimSpace(string(s.must(t, 200, "GET", "/api/events", nil).Body)); body != "[]" {
		t.Fatalf("events of an empty store = %s, want []", body)
	}
	d := s.history(t, "1.0.1")
	s.history(t, "1.0.2")
	all := s.allEvents(t)
	if len(all) < 8 {
		t.Fatalf("%d events, want at least 8: %+v", len(all), all)
	}
	for i, ev := range all {
		if ev.Actor != "anonymous" {
			t.Errorf("event %d: actor %q, want anonymous", ev.ID, ev.Actor)
		}
		if i > 0 && ev.ID <= all[i-1].ID {
			t.Errorf("event %d after %d: want oldest first", ev.ID, all[i-1].ID)
		}
	}

	t.Run("Filters", func(t *testing.T) {
		mid := all[len(all)/2].ID
		tests := []struct {
			query string
			want  func(deploydb.Event) bool
		}{
			{"service=web", func(ev deploydb.Event) bool { return ev.Service == "web" }},
			{"environment=integ", func(ev deploydb.Event) bool { return ev.Environment == "integ" }},
			{"type=deployment.created", func(ev deploydb.Event) bool { return ev.Type == deploydb.EventDeploymentCreated }},
			{"type=deployment.started&service=faas", func(ev deploydb.Event) bool {
				return ev.Type == deploydb.EventDeploymentStarted && ev.Service == "faas"
			}},
			{"service=faas&after=" + itoa(mid), func(ev deploydb.Event) bool { return ev.Service == "faas" && ev.ID > mid }},
			{"actor=anonymous&type=artifact.published", func(ev deploydb.Event) bool { return ev.Type == deploydb.EventArtifactPublished }},
			{"actor=somebody", func(deploydb.Event) bool { return false }},
			{"type=no.such", func(deploydb.Event) bool { return false }},
			{"service=nobody", func(deploydb.Event) bool { return false }},
		}
		for _, tt := range tests {
			want := keep(all, tt.want)
			var got []deploydb.Event
			s.must(t, 200, "GET", "/api/events?"+tt.query, nil).json(t, &got)
			if len(want) == len(all) {
				t.Errorf("%s: the history does not test the filter: it keeps every event", tt.query)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET /api/events?%s (-want +got):\n%s", tt.query, diff)
			}
		}
		var started []deploydb.Event
		s.must(t, 200, "GET", "/api/events?type=deployment.started&service=faas", nil).json(t, &started)
		if len(started) != 2 || started[0].Deployment != d.ID || started[0].Status != "STARTED" {
			t.Errorf("deployment.started events of faas = %+v, want two, the first of deployment %d", started, d.ID)
		}
	})

	t.Run("Cursor", func(t *testing.T) {
		// Following X-Next-After pages through every event once.
		var paged []deploydb.Event
		after := "0"
		for range len(all) + 1 {
			r := s.must(t, 200, "GET", "/api/events?limit=3&after="+after, nil)
			var page []deploydb.Event
			r.json(t, &page)
			if len(page) > 3 {
				t.Fatalf("%d events with limit 3", len(page))
			}
			next := r.Header.Get(httpapi.HeaderNextAfter)
			if len(page) == 0 {
				if next != after {
					t.Errorf("an empty page: %s %q, want the cursor unchanged, %s", httpapi.HeaderNextAfter, next, after)
				}
				break
			}
			if want := itoa(page[len(page)-1].ID); next != want {
				t.Errorf("%s = %q, want the last id, %s", httpapi.HeaderNextAfter, next, want)
			}
			paged = append(paged, page...)
			after = next
		}
		if diff := cmp.Diff(all, paged); diff != "" {
			t.Errorf("paged 3 at a time (-want +got):\n%s", diff)
		}
		// Without a cursor or a limit: the first 100 from the start.
		r := s.must(t, 200, "GET", "/api/events", nil)
		if got := r.Header.Get(httpapi.HeaderNextAfter); got != itoa(all[len(all)-1].ID) {
			t.Errorf("%s without a cursor = %q, want %d", httpapi.HeaderNextAfter, got, all[len(all)-1].ID)
		}
	})

	t.Run("ErrBadParameter", func(t *testing.T) {
		for query, field := range map[string]string{
			"after=x":          "after",
			"after=-1":         "after",
			"after=1.5":        "after",
			"limit=0":          "limit",
			"limit=1001":       "limit",
			"limit=ten":        "limit",
			"type=Deployment!": "type",
			"type=created":     "type",
		} {
			p := s.must(t, 400, "GET", "/api/events?"+query, nil).problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Field != field {
				t.Errorf("GET /api/events?%s: errors %+v, want one naming %s", query, p.Errors, field)
			}
		}
	})
}

func TestEventListDefaultLimit(t *testing.T) {
	t.Parallel()
	s := newEventServer(t, nil, nil)
	// Enough services that one publication records more events than the
	// default page holds. The server reads the config per request, and
	// none has been made yet.
	for i := range httpapi.DefaultEventLimit {
		name := fmt.Sprintf("svc%03d", i)
		s.cfg.Services[name] = &deploydb.Service{Ident: name, Artifacts: []string{"com.example.cucumber:cucumber-artifact"},
			Pipelines: []string{"basic"}, Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	}
	s.publish(t, "1.0.1")
	all := s.allEvents(t)
	if len(all) <= httpapi.DefaultEventLimit {
		t.Fatalf("%d events, want more than %d", len(all), httpapi.DefaultEventLimit)
	}
	r := s.must(t, 200, "GET", "/api/events", nil)
	var page []deploydb.Event
	r.json(t, &page)
	if diff := cmp.Diff(all[:httpapi.DefaultEventLimit], page); diff != "" {
		t.Errorf("default page (-want +got):\n%s", diff)
	}
	if got, want := r.Header.Get(httpapi.HeaderNextAfter), itoa(page[len(page)-1].ID); got != want {
		t.Errorf("%s = %q, want %s", httpapi.HeaderNextAfter, got, want)
	}
	var rest []deploydb.Event
	s.must(t, 200, "GET", "/api/events?limit=1000&after="+r.Header.Get(httpapi.HeaderNextAfter), nil).json(t, &rest)
	if diff := cmp.Diff(all[httpapi.DefaultEventLimit:], rest); diff != "" {
		t.Errorf("the rest (-want +got):\n%s", diff)
	}
}

// sseEvent is one event as the stream sent it.
type sseEvent struct {
	id, event, data string
}

// stream is an open event stream read by a goroutine.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	ended  chan error // receives once when the stream ends
	cancel context.CancelFunc
}

// openStream connects to the event stream and starts reading it. It fails
// the test unless the server answers 200 with text/event-stream.
func (s *testServer) openStream(t *testing.T, query string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/events/stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /api/events/stream?%s: %d %s: %s", query, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	st := &stream{resp: resp, events: make(chan sseEvent, 1000), ended: make(chan error, 1), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				st.ended <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					st.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"): // a comment: the heartbeat
			default:
				field, value, _ := strings.Cut(line, ": ")
				switch field {
				case "id":
					ev.id = value
				case "event":
					ev.event = value
				case "data":
					ev.data += value
				}
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

func (st *stream) close() { st.cancel() }

// next returns the next event the stream sends, as the event it carries.
func (st *stream) next(t *testing.T) deploydb.Event {
	t.Helper()
	select {
	case e := <-st.events:
		var ev deploydb.Event
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatalf("data %q: %v", e.data, err)
		}
		if e.id != itoa(ev.ID) || e.event != string(ev.Type) {
			t.Fatalf("id %q and event %q do not match the data %s", e.id, e.event, e.data)
		}
		return ev
	case err := <-st.ended:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(eventWait):
		t.Fatalf("no event within %s", eventWait)
	}
	panic("unreachable")
}

// nextN returns the next n events.
func (st *stream) nextN(t *testing.T, n int) []deploydb.Event {
	t.Helper()
	out := make([]deploydb.Event, 0, n)
	for range n {
		out = append(out, st.next(t))
	}
	return out
}

// quiet fails the test if the stream has sent an event it was not asked
// for. The caller makes sure the stream has had the chance to send it: the
// stream sends in id order, so once a later event has arrived, an
// unexpected earlier one would have come first.
func (st *stream) quiet(t *testing.T) {
	t.Helper()
	select {
	case e := <-st.events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	t.Run("Live", func(t *testing.T) {
		t.Parallel()
		s := newEventServer(t, nil, nil)
		s.history(t, "1.0.1")
		before := s.allEvents(t)
		st := s.openStream(t, "", nil)
		// The backlog first, then what is committed after connecting.
		if diff := cmp.Diff(before, st.nextN(t, len(before))); diff != "" {
			t.Errorf("backlog (-want +got):\n%s", diff)
		}
		s.history(t, "1.0.2")
		all := s.allEvents(t)
		if diff := cmp.Diff(all[len(before):], st.nextN(t, len(all)-len(before))); diff != "" {
			t.Errorf("live events (-want +got):\n%s", diff)
		}
		st.quiet(t)
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := newEventServer(t, nil, nil)
		st := s.openStream(t, "service=faas&type=deployment.completed", nil)
		completed := func(ev deploydb.Event) bool {
			return ev.Service == "faas" && ev.Type == deploydb.EventDeploymentCompleted
		}
		// The stream sends in id order, so an event the filter should
		// have dropped would come before the next one it keeps.
		s.history(t, "1.0.1")
		s.history(t, "1.0.2")
		want := keep(s.allEvents(t), completed)
		if len(want) != 2 {
			t.Fatalf("%d faas deployment.completed events, want 2", len(want))
		}
		if diff := cmp.Diff(want, st.nextN(t, len(want))); diff != "" {
			t.Errorf("filtered stream (-want +got):\n%s", diff)
		}
		s.history(t, "1.0.3")
		want = keep(s.allEvents(t), completed)
		if diff := cmp.Diff(want[2], st.next(t)); diff != "" {
			t.Errorf("next filtered event (-want +got):\n%s", diff)
		}
	})

	t.Run("Resume", func(t *testing.T) {
		t.Parallel()
		s := newEventServer(t, nil, nil)
		s.history(t, "1.0.1")
		s.history(t, "1.0.2")
		all := s.allEvents(t)
		cut := all[2].ID
		// Last-Event-ID wins over the URL's cursor, as when a browser
		// reconnects to the URL it started with.
		st := s.openStream(t, "after=0", http.Header{"Last-Event-Id": {itoa(cut)}})
		if diff := cmp.Diff(all[3:], st.nextN(t, len(all)-3)); diff != "" {
			t.Errorf("resumed after %d (-want +got):\n%s", cut, diff)
		}
		st.quiet(t)
		st2 := s.openStream(t, "after="+itoa(all[len(all)-2].ID), nil)
		if got := st2.next(t); got.ID != all[len(all)-1].ID {
			t.Errorf("after=%d: first event %d, want %d", all[len(all)-2].ID, got.ID, all[len(all)-1].ID)
		}
		st2.quiet(t)
	})

	t.Run("ErrBadParameter", func(t *testing.T) {
		t.Parallel()
		s := newEventServer(t, nil, nil)
		for _, tt := range []struct {
			query, lastEventID, field string
		}{
			{"after=x", "", "after"},
			{"type=DEPLOYMENT", "", "type"},
			{"", "abc", "Last-Event-ID"},
			{"after=1", "-2", "Last-Event-ID"},
		} {
			req, _ := http.NewRequest("GET", s.URL+"/api/events/stream?"+tt.query, nil)
			if tt.lastEventID != "" {
				req.Header.Set("Last-Event-ID", tt.lastEventID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
			if r.Status != 400 {
				t.Fatalf("%s (Last-Event-ID %q): status %d, want 400", tt.query, tt.lastEventID, r.Status)
			}
			if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
				t.Errorf("%s (Last-Event-ID %q): errors %+v, want one naming %s", tt.query, tt.lastEventID, p.Errors, tt.field)
			}
		}
	})

	t.Run("ClientGoneEndsHandler", func(t *testing.T) {
		t.Parallel()
		ended := make(chan struct{}, 10)
		s := newEventServer(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if r.URL.Path == "/api/events/stream" {
						ended <- struct{}{}
					}
				}()
				h.ServeHTTP(w, r)
			})
		}, nil)
		s.history(t, "1.0.1")
		st := s.openStream(t, "", nil)
		st.next(t)
		select {
		case <-ended:
			t.Fatal("the handler ended while the client was connected")
		default:
		}
		st.close()
		select {
		case <-ended:
		case <-time.After(eventWait):
			t.Fatalf("the handler still runs %s after the client went away", eventWait)
		}
	})

	t.Run("OutlivesServerTimeouts", func(t *testing.T) {
		// The server's read and write timeouts bound ordinary requests; a
		// stream must outlive them. Waiting past them is the point of the
		// test, so it sleeps.
		// The event is recorded through the store: an ordinary request
		// to this server could itself run out of time on a busy machine.
		t.Parallel()
		const timeout = 300 * time.Millisecond
		s := newEventServer(t, nil, func(srv *http.Server) { srv.ReadTimeout, srv.WriteTimeout = timeout, timeout })
		st := s.openStream(t, "", nil)
		time.Sleep(3 * timeout)
		a := deploydb.Artifact{Group: "com.example.cucumber", Name: "cucumber-artifact", Version: "1.0.1", SourceURL: "http://example.com/a.jar"}
		if _, _, err := s.store.PublishArtifact(t.Context(), s.cfg, a, "anonymous"); err != nil {
			t.Fatal(err)
		}
		if got := st.next(t); got.Type != deploydb.EventArtifactPublished {
			t.Errorf("first event %s, want artifact.published", got.Type)
		}
	})
}
