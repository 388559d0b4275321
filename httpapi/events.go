package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// The event log: a page of it by cursor, and the same live as Server-Sent
// Events.

// HeaderNextAfter is the response header of GET /api/events that holds the
// cursor of the next page: the id of the last event returned, or the
// request's own cursor when it returned none. Polling with it never skips
// or repeats an event.
const HeaderNextAfter = "X-Next-After"

// HeaderNextCursor is the response header of the deployment lists that
// holds, after a full page, the cursor of the next one (the id of the
// page's last deployment): ?cursor= goes on from there.
const HeaderNextCursor = "X-Next-Cursor"

// HeaderLastEventID is the header an SSE client sends when it reconnects:
// the id of the last event it received (the stream resumes after it).
const HeaderLastEventID = "Last-Event-ID"

// Limits of the event log's pages.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = deploydb.MaxPageSize
)

// Pacing of the event stream.
const (
	// streamBatch is how many events the stream reads and writes at a
	// time: what it holds in memory per client.
	streamBatch = 100
	// streamHeartbeat is how often an idle stream sends a comment, so
	// that proxies keep it open and clients can tell a live stream from a
	// dead one.
	streamHeartbeat = 15 * time.Second
	// streamRecheck is how often the stream reads the log even when no
	// commit was signalled: a safety net, not the way events arrive.
	streamRecheck = 5 * time.Second
	// streamWriteTimeout is how long a client may take to accept one
	// batch (or heartbeat) before it is dropped. It replaces the server's
	// WriteTimeout, which would end every stream after 30 s.
	streamWriteTimeout = 30 * time.Second
)

var eventParams = []param{
	{"after", "integer", "only events with an id greater than this (default 0: from the start)"},
	{"service", "string", "only events of this service"},
	{"environment", "string", "only events in this environment"},
	{"type", "string", "only events of this type, such as deployment.created"},
	{"actor", "string", "only events caused by this caller"},
}

// eventRoutes are the event log's entries of the route table.
var eventRoutes = []route{
	{Method: "GET", Path: "/api/events", Scope: deploydb.ScopeRead, Summary: "The event log, oldest first, after a cursor; X-Next-After holds the cursor of the next page",
		Handle: (*Server).listEvents, Response: []deploydb.Event{}, Status: 200, Errors: []int{400},
		Query: append(append([]param{}, eventParams...), param{"limit", "integer", "at most this many events, 1 to 1000 (default 100)"})},
	{Method: "GET", Path: "/api/events/stream", Scope: deploydb.ScopeRead, Summary: "The event log live, as Server-Sent Events (text/event-stream): id, event (the type) and data (the event as JSON); resumes after Last-Event-ID",
		Handle: (*Server).streamEvents, Status: 200, Errors: []int{400}, Query: eventParams},
}

// eventTypeSyntax is what an event type looks like: kind.name. Types are
// checked by form, not against a list, so that a client may filter on a
// type this server has not recorded yet and get an empty list.
var eventTypeSyntax = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$`)

// eventFilter parses the filters both event routes take. The cursor is the
// after parameter; the stream lets Last-Event-ID override it.
func eventFilter(r *http.Request) (deploydb.EventFilter, error) {
	q := r.URL.Query()
	f := deploydb.EventFilter{Service: q.Get("service"), Environment: q.Get("environment"), Actor: q.Get("actor")}
	var err error
	if f.After, err = cursor("after", q.Get("after")); err != nil {
		return f, err
	}
	if t := q.Get("type"); t != "" {
		if !eventTypeSyntax.MatchString(t) {
			return f, badParam("type", fmt.Sprintf("must be an event type such as deployment.created, not %q", t))
		}
		f.Type = deploydb.EventType(t)
	}
	return f, nil
}

// cursor parses an event id used as a cursor: an integer, 0 or more.
func cursor(name, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badParam(name, fmt.Sprintf("must be an event id (an integer, 0 or more), not %q", s))
	}
	return n, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := eventFilter(r)
	if err != nil {
		return err
	}
	if f.Limit, err = queryInt(r, "limit", DefaultEventLimit); err != nil {
		return err
	}
	if f.Limit < 1 || f.Limit > MaxEventLimit {
		return badParam("limit", fmt.Sprintf("must be between 1 and %d", MaxEventLimit))
	}
	evs, err := s.store.FindEvents(r.Context(), f)
	if err != nil {
		return err
	}
	next := f.After
	if len(evs) > 0 {
		next = evs[len(evs)-1].ID
	}
	w.Header().Set(HeaderNextAfter, strconv.FormatInt(next, 10))
	encode(w, http.StatusOK, evs)
	return nil
}

// streamEvents sends the events after the cursor, then each new one as it
// is committed, until the client goes away. It reads the log in batches of
// streamBatch and writes each batch before it reads the next, so a client
// costs one batch of memory however far behind it is; a client that stops
// reading is dropped after streamWriteTimeout.
//
// New events are noticed through Store.EventsCommitted, taken before each
// read so that a commit between the read and the wait is not missed.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := eventFilter(r)
	if err != nil {
		return err
	}
	if id := r.Header.Get(HeaderLastEventID); id != "" {
		// A reconnecting client resumes after what it last received,
		// whatever cursor its URL started with.
		if f.After, err = cursor(HeaderLastEventID, strings.TrimSpace(id)); err != nil {
			return err
		}
	}
	f.Limit = streamBatch

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)

	ctx := r.Context()
	// send writes what buf holds and flushes it. An error means the
	// client is gone or too slow: the stream ends. Each send sets its own
	// write deadline, replacing the server's WriteTimeout, which counts
	// from the start of the request and would cut every stream short.
	// (The server lifts its read deadline itself once a request without
	// a body is read.)
	var buf bytes.Buffer
	send := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		return rc.Flush()
	}
	// Send the headers now, so the client knows it is connected.
	if err := send(); err != nil {
		return nil
	}

	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(streamRecheck)
	defer recheck.Stop()
	for {
		committed := s.store.EventsCommitted()
		// The caller's right to read is checked again before each batch:
		// a token revoked by a reload ends its open streams.
		auth := s.config().Auth
		if _, err := authenticate(r, auth, deploydb.ScopeRead); err != nil {
			return nil
		}
		if err := s.closed(r, auth); err != nil {
			return nil
		}
		for {
			evs, err := s.store.FindEvents(ctx, f)
			if err != nil {
				if ctx.Err() == nil {
					// The response has started: end the stream and let
					// the client resume with Last-Event-ID.
					s.log(r).Error("event stream: read events", "after", f.After, "err", err)
				}
				return nil
			}
			for _, ev := range evs {
				data, err := json.Marshal(ev)
				if err != nil {
					s.log(r).Error("event stream: encode event", "id", ev.ID, "err", err)
					return nil
				}
				fmt.Fprintf(&buf, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
				f.After = ev.ID
			}
			if len(evs) > 0 {
				if err := send(); err != nil {
					return nil
				}
				heartbeat.Reset(streamHeartbeat)
			}
			if len(evs) < f.Limit {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil // the server is shutting down
		case <-committed:
		case <-recheck.C:
		case <-heartbeat.C:
			buf.WriteString(": heartbeat\n\n")
			if err := send(); err != nil {
				return nil
			}
		}
	}
}
