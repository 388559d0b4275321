package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploydb/deploydb/webhook"
)

// Call is one webhook call the receiver got from the orchestrator hook:
// the first attempt of a delivery.
type Call struct {
	// At is when the receiver got it (before reading the body).
	At time.Time
	// ID is the delivery's Webhook-Id.
	ID string
	// EventTime is the event's time as the hook's body gives it (.Time,
	// milliseconds).
	EventTime   time.Time `json:"-"`
	Event       string    `json:"event"`
	Time        string    `json:"time"`
	Deployment  int64     `json:"deployment"`
	Artifact    int64     `json:"artifact"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	Version     string    `json:"version"`
}

// Receiver is the webhook receiver the model's hooks call: the
// orchestrator's and the chat channel's. It answers 204 at once, checks
// the orchestrator's signatures, and hands each first attempt to OnCall.
type Receiver struct {
	URL    string
	secret string
	srv    *http.Server
	ln     net.Listener

	mu    sync.Mutex
	seen  map[string]bool
	onDep func(Call)
	onAny func(time.Time)

	// Counters: calls by hook, repeated attempts, bad signatures or
	// bodies.
	Deploys, Chats, Repeats, Bad atomic.Int64
}

// NewReceiver starts a receiver on a free port of 127.0.0.1 that checks
// signatures with secret.
func NewReceiver(ctx context.Context, secret string) (*Receiver, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + ln.Addr().String(), secret: secret, ln: ln, seen: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /deploy/{env}/{service}", r.deploy)
	mux.HandleFunc("POST /chat", func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusNoContent)
		r.Chats.Add(1)
		if first, _, each := r.first(req.Header.Get(webhook.HeaderID)); first && each != nil {
			each(at)
		}
	})
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *Receiver) deploy(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(req.Body)
	w.WriteHeader(http.StatusNoContent)
	id := req.Header.Get(webhook.HeaderID)
	var c Call
	if err == nil {
		err = webhook.Verify(r.secret, id, req.Header.Get(webhook.HeaderTimestamp), body, req.Header.Get(webhook.HeaderSignature))
	}
	if err == nil {
		err = json.Unmarshal(body, &c)
	}
	if err == nil {
		c.EventTime, err = time.Parse(time.RFC3339Nano, c.Time)
	}
	if err != nil || c.Deployment == 0 {
		r.Bad.Add(1)
		return
	}
	c.At, c.ID = at, id
	r.Deploys.Add(1)
	first, on, each := r.first(id)
	if !first {
		return
	}
	if each != nil {
		each(at)
	}
	if on != nil {
		on(c)
	}
}

// first notes a call of Webhook-Id id and reports whether it is the
// delivery's first attempt, with the callbacks in force.
func (r *Receiver) first(id string) (bool, func(Call), func(time.Time)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] {
		r.Repeats.Add(1)
		return false, nil, nil
	}
	r.seen[id] = true
	return true, r.onDep, r.onAny
}

// Forget forgets the Webhook-Ids seen so far, before the calls of
// another database, whose delivery ids (and so Webhook-Ids) start over:
// remembered, a call of the next database was taken for a repeat of the
// last one's and went unmeasured, and the orchestrator loop driven by the
// calls stalled.
func (r *Receiver) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.seen)
}

// OnCall sets what the receiver does with each first attempt of the
// orchestrator hook from now on (nil: nothing). fn must not block.
func (r *Receiver) OnCall(fn func(Call)) {
	r.mu.Lock()
	r.onDep = fn
	r.mu.Unlock()
}

// OnAny sets what the receiver does with the time of each first attempt
// of any hook's call from now on (nil: nothing). fn must not block.
func (r *Receiver) OnAny(fn func(time.Time)) {
	r.mu.Lock()
	r.onAny = fn
	r.mu.Unlock()
}

// Close stops the receiver.
func (r *Receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// isRunTag reports whether version was published by the run tagged tag.
func isRunTag(version, tag string) bool { return strings.HasPrefix(version, tag+".") }
