package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// streamWait bounds the waits for an event stream. Events reach another
// replica's stream as soon as they are committed (LISTEN/NOTIFY wakes it),
// in milliseconds; the bound only keeps a broken server from hanging the
// test. It is shorter than a few rereads of the stream's safety net (every
// 5 s, httpapi's streamRecheck), so that a stream that hears only its own
// replica's commits fails a test of several steps.
const streamWait = 10 * time.Second

// TestReplicasFreeze: with two replicas on one database, a deployment held
// by a freeze window is activated once when the window ends, by the
// replicas' timers alone (no reload, no request): one deployment.created
// event, seen alike through both replicas, and one webhook call.
func TestReplicasFreeze(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	recv := newReceiver(t)
	// The window started an hour ago and ends 4 to 5 s from now (RFC 3339
	// in the config holds whole seconds): time enough to start two
	// replicas and hold staging, short enough for a test.
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	end := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"environments/staging.yml": fmt.Sprintf("description: Staging\nfreezes:\n  - reason: release train\n    start: %s\n    end: %s\n"+
			"webhook:\n  deployment:\n    created: [\"${env:HOOK}/staging/created\"]\n",
			start.Format(time.RFC3339), end.Format(time.RFC3339)),
		"pipelines/standard.yml": "environments:\n  integ: {}\n  staging: {}\n",
	})
	env := map[string]string{"HOOK": recv.URL}
	a, b := launch(t, dir, db, env), launch(t, dir, db, env)
	ca, cb := api{t: t, url: a.URL}, api{t: t, url: b.URL}

	var art deploydb.Artifact
	ca.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	flow := cb.flowOf(art.ID)
	integ, staging := flow.Deployments[0].ID, flow.Deployments[1].ID
	ca.call("PATCH", fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "COMPLETED"}, 200, nil)
	held := cb.flowOf(art.ID).Deployments[1]
	if time.Now().After(end) {
		t.Fatalf("starting two replicas and completing integ took past the end of the freeze window (%s): the test cannot see staging held", end.Format(time.RFC3339))
	}
	if held.ID != staging || held.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(held.Waiting, "frozen: release train") {
		t.Fatalf("staging during the freeze = %d %s waiting %q, want %d NOT_STARTED, frozen: release train", held.ID, held.Status, held.Waiting, staging)
	}

	// Nothing more is asked of the replicas: their timers end the freeze.
	var now deploydb.Deployment
	if !pollUntil(time.Until(end)+10*time.Second, func() bool {
		now = ca.flowOf(art.ID).Deployments[1]
		return now.Status != deploydb.DeploymentNotStarted
	}) {
		t.Fatalf("staging 10 s after the freeze ended (%s) = %s waiting %q, want CREATED", end.Format(time.RFC3339), now.Status, now.Waiting)
	}
	if now.Status != deploydb.DeploymentCreated {
		t.Fatalf("staging after the freeze = %s, want CREATED", now.Status)
	}
	// A barrier: once staging is STARTED no timer can activate it again,
	// and a timer's activation that committed first is in the log.
	cb.call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}, 200, nil)
	for name, c := range map[string]api{"A": ca, "B": cb} {
		var created []deploydb.Event
		c.call("GET", "/api/events?type=deployment.created&environment=staging", nil, 200, &created)
		if len(created) != 1 || created[0].Deployment != staging || created[0].Actor != "deploydb" {
			t.Fatalf("through %s: deployment.created events in staging = %+v, want one, of deployment %d, by deploydb", name, created, staging)
		}
		if at := created[0].CreatedAt; at.Before(end) {
			t.Errorf("through %s: staging activated at %s, before the freeze ended (%s)", name, at, end.Format(time.RFC3339))
		}
	}

	// The one activation owes one call, made once, by whichever replica
	// claimed it.
	var owed []deploydb.DeliveryView
	if !pollUntil(10*time.Second, func() bool {
		ca.call("GET", "/api/webhook-deliveries?perPageSize=1000", nil, 200, &owed)
		for _, d := range owed {
			if d.Status != deploydb.DeliveryDelivered {
				return false
			}
		}
		return len(owed) > 0
	}) {
		t.Fatalf("deliveries not delivered within 10 s: %+v", owed)
	}
	if len(owed) != 1 || owed[0].EventType != deploydb.EventDeploymentCreated || owed[0].Deployment != staging {
		t.Fatalf("deliveries = %+v, want one: staging's deployment.created", owed)
	}
	recv.mu.Lock()
	calls := append([]hookCall(nil), recv.calls...)
	recv.mu.Unlock()
	if len(calls) != 1 || calls[0].Path != "/staging/created" || calls[0].Header.Get("Webhook-Id") != fmt.Sprintf("dd_%d", owed[0].ID) {
		var got []string
		for _, c := range calls {
			got = append(got, c.Path+" "+c.Header.Get("Webhook-Id"))
		}
		t.Fatalf("webhook calls = %q, want one: /staging/created dd_%d", got, owed[0].ID)
	}
}

// TestReplicasStream: a client streaming the events of one replica sees
// every event the others record, as they commit them, in the order and
// with the ids of the one log, whether one replica records them or two at
// once.
func TestReplicasStream(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"services/ledger.yml":      "artifacts: [com.example:ledger]\npipelines: [standard]\n",
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ: {}\n  staging: {}\n",
	})
	a, b, c := launch(t, dir, db, nil), launch(t, dir, db, nil), launch(t, dir, db, nil)
	ca, cb, cc := api{t: t, url: a.URL}, api{t: t, url: b.URL}, api{t: t, url: c.URL}
	st := openEventStream(t, b.URL)

	// From the start: the backlog first (the environments the replicas
	// announced).
	var got []deploydb.Event
	var backlog []deploydb.Event
	ca.call("GET", "/api/events?limit=1000", nil, 200, &backlog)
	if len(backlog) == 0 {
		t.Fatal("no events after start, want the environments announced")
	}
	got = append(got, st.nextN(t, len(backlog), time.Now().Add(streamWait))...)
	if diff := cmp.Diff(backlog, got); diff != "" {
		t.Fatalf("backlog on B's stream (-A's log +stream):\n%s", diff)
	}

	// One replica records: after each request through A, B's stream
	// sends what it recorded, as A's log lists it. One deadline for every
	// step: a stream woken only by its safety net would take 5 s a step.
	deadline := time.Now().Add(streamWait)
	step := func(what string, do func()) {
		t.Helper()
		do()
		var want []deploydb.Event
		ca.call("GET", fmt.Sprintf("/api/events?limit=1000&after=%d", got[len(got)-1].ID), nil, 200, &want)
		if len(want) == 0 {
			t.Fatalf("%s recorded no event", what)
		}
		evs := st.nextN(t, len(want), deadline)
		if diff := cmp.Diff(want, evs); diff != "" {
			t.Fatalf("%s: B's stream (-A's log +stream):\n%s", what, diff)
		}
		got = append(got, evs...)
	}
	var art deploydb.Artifact
	step("publish", func() {
		ca.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	})
	flow := ca.flowOf(art.ID)
	for _, d := range flow.Deployments {
		for _, status := range []string{"STARTED", "COMPLETED"} {
			step(fmt.Sprintf("deployment %d (%s) %s", d.ID, d.Environment, status), func() {
				ca.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": status}, 200, nil)
			})
		}
	}
	if f := ca.flowOf(art.ID); f.Status != deploydb.FlowSuccess {
		t.Fatalf("flow after both environments = %s, want %s", f.Status, deploydb.FlowSuccess)
	}

	// Two replicas record at once: B's stream is the one log still, in
	// commit order, with nothing missed or repeated.
	var wg sync.WaitGroup
	for _, w := range []struct{ base, service string }{{a.URL, "ledger"}, {c.URL, "billing"}} {
		wg.Go(func() {
			if err := walkFlow(w.base, w.service, "2.0.0"); err != nil {
				t.Errorf("%s through %s: %v", w.service, w.base, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var all []deploydb.Event
	cc.call("GET", "/api/events?limit=1000", nil, 200, &all)
	if len(all) <= len(got) {
		t.Fatalf("%d events in the log, %d before the two flows: they recorded nothing", len(all), len(got))
	}
	got = append(got, st.nextN(t, len(all)-len(got), time.Now().Add(streamWait))...)
	if diff := cmp.Diff(all, got); diff != "" {
		t.Fatalf("B's stream (-C's log +stream):\n%s", diff)
	}
	st.quiet(t)
	for name, c := range map[string]api{"A": ca, "B": cb} {
		var log []deploydb.Event
		c.call("GET", "/api/events?limit=1000", nil, 200, &log)
		if diff := cmp.Diff(all, log); diff != "" {
			t.Errorf("%s's log (-C's log +%s's):\n%s", name, name, diff)
		}
	}
}

// walkFlow publishes version of service's artifact through the server at
// base and deploys it to each environment of its flow (STARTED, then
// COMPLETED). It may run in any goroutine.
func walkFlow(base, service, version string) error {
	do := func(method, path string, body any, want int, out any) error {
		code, b, err := sendJSON(http.DefaultClient, method, base+path, body)
		if err != nil {
			return err
		}
		if code != want {
			return fmt.Errorf("%s %s = %d, want %d: %s", method, path, code, want, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	var art deploydb.Artifact
	if err := do("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": service, "version": version, "sourceUrl": "https://ci/" + service + ".jar"}, 201, &art); err != nil {
		return err
	}
	var flows []deploydb.Flow
	if err := do("GET", fmt.Sprintf("/api/flows?artifact=%d&service=%s", art.ID, service), nil, 200, &flows); err != nil {
		return err
	}
	if len(flows) != 1 {
		return fmt.Errorf("artifact %d has %d flows of %s, want 1", art.ID, len(flows), service)
	}
	for _, d := range flows[0].Deployments {
		for _, status := range []string{"STARTED", "COMPLETED"} {
			if err := do("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": status}, 200, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventStream is an open GET /api/events/stream, read by a goroutine.
type eventStream struct {
	frames chan sseFrame
	ended  chan error // receives once, when the stream ends
}

// sseFrame is one event as the stream sent it: its id, event and data
// fields.
type sseFrame struct {
	id, event, data string
}

// openEventStream connects to the event stream of the server at base,
// from the start of the log, and reads it until the test ends.
func openEventStream(t *testing.T, base string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/events/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET /api/events/stream = %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	st := &eventStream{frames: make(chan sseFrame, 1000), ended: make(chan error, 1)}
	go func() {
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		var f sseFrame
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				st.ended <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if f != (sseFrame{}) {
					select {
					case st.frames <- f:
					case <-ctx.Done():
						st.ended <- ctx.Err()
						return
					}
				}
				f = sseFrame{}
			case strings.HasPrefix(line, ":"): // a comment: the heartbeat
			default:
				field, value, _ := strings.Cut(line, ": ")
				switch field {
				case "id":
					f.id = value
				case "event":
					f.event = value
				case "data":
					f.data += value
				}
			}
		}
	}()
	return st
}

// next returns the event the stream sends next, checking that its id and
// event fields agree with the event its data holds. It fails the test if
// none comes before deadline.
func (st *eventStream) next(t *testing.T, deadline time.Time) deploydb.Event {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case f := <-st.frames:
		var ev deploydb.Event
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("stream data %q: %v", f.data, err)
		}
		if f.id != itoa(ev.ID) || f.event != string(ev.Type) {
			t.Fatalf("stream id %q and event %q do not match the data %s", f.id, f.event, f.data)
		}
		return ev
	case err := <-st.ended:
		t.Fatalf("the stream ended: %v", err)
	case <-timer.C:
		t.Fatalf("no event on the stream by %s, though the log holds more", deadline.Format(time.TimeOnly+".000"))
	}
	panic("unreachable")
}

// nextN returns the next n events the stream sends, all before deadline.
func (st *eventStream) nextN(t *testing.T, n int, deadline time.Time) []deploydb.Event {
	t.Helper()
	out := make([]deploydb.Event, 0, n)
	for range n {
		out = append(out, st.next(t, deadline))
	}
	return out
}

// quiet fails the test if the stream has sent an event not yet read. The
// stream sends in id order, so a stray event before the last one read
// would have been read in its place; quiet catches one after it that has
// already arrived.
func (st *eventStream) quiet(t *testing.T) {
	t.Helper()
	select {
	case f := <-st.frames:
		t.Fatalf("unexpected event on the stream: id %s %s %s", f.id, f.event, f.data)
	default:
	}
}
