package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// TestFlowEndToEndPostgres runs the end-to-end flow, restart included, on
// PostgreSQL.
func TestFlowEndToEndPostgres(t *testing.T) {
	t.Parallel()
	testFlowEndToEnd(t, pgtest.Schema(t))
}

// TestMigratePostgres checks that `deploydb migrate` applies the
// migrations of a PostgreSQL database, applies nothing the second time
// (exit 0 both times), and never prints the password of the URL.
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	for range 2 {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"migrate", "--database", db}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("migrate: %v\nstderr: %s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "is up to date") {
			t.Errorf("migrate printed %q, want it to say the database is up to date", stdout.String())
		}
		if password != "" && strings.Contains(stdout.String()+stderr.String(), ":"+password+"@") {
			t.Errorf("migrate printed the database password: %q", stdout.String()+stderr.String())
		}
	}
}

// TestMigratePostgresUnreachable checks that a database that does not
// answer makes migrate exit unavailable (7), without printing the password.
func TestMigratePostgresUnreachable(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"migrate", "--database", "postgres://deploydb:s3cret@127.0.0.1:1/deploydb"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if code := cli.ExitCode(err); code != cli.ExitUnavailable {
		t.Errorf("migrate on a database that does not answer: exit %d (%v), want %d", code, err, cli.ExitUnavailable)
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "s3cret") {
		t.Errorf("migrate printed the database password: %q", out)
	}
}

// TestReplicas runs three servers on one PostgreSQL database. Reports of
// one deployment sent to all of them at once have exactly one winner; every
// webhook call is made exactly once, whichever replica enqueued it; a
// replica stopped mid-flow loses nothing: the others carry the flow on and
// deliver what it owed.
func TestReplicas(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	recv := newReceiver(t)
	dir := writeConfig(t)
	env := map[string]string{"HOOK": recv.URL}
	var replicas []*server
	for range 3 {
		replicas = append(replicas, launch(t, dir, db, env))
	}
	apis := make([]api, len(replicas))
	for i, r := range replicas {
		apis[i] = api{t: t, url: r.URL}
	}
	var art deploydb.Artifact
	apis[0].call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	flow := apis[1].flowOf(art.ID)
	integ, staging := flow.Deployments[0].ID, flow.Deployments[1].ID

	// race sends the same report to every replica at once, three times
	// each, and wants exactly one to win.
	race := func(path string, body map[string]any) {
		t.Helper()
		codes := make(chan int, 3*len(replicas))
		var wg sync.WaitGroup
		for i := range 3 * len(replicas) {
			wg.Go(func() {
				code, _ := send(t, "PATCH", replicas[i%len(replicas)].URL+path, "", body)
				codes <- code
			})
		}
		wg.Wait()
		close(codes)
		won := 0
		for c := range codes {
			switch c {
			case 200:
				won++
			case 409:
			default:
				t.Errorf("%s: %d, want 200 or 409", path, c)
			}
		}
		if won != 1 {
			t.Fatalf("%s: %d winners, want exactly 1", path, won)
		}
	}
	race(fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "STARTED"})
	race(fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "COMPLETED"})
	apis[1].call("POST", fmt.Sprintf("/api/deployments/%d/promotions", integ), map[string]any{"name": "smoke", "status": "SUCCESS"}, 201, nil)

	// One replica goes away mid-flow; the others carry on.
	replicas[0].stop()
	apis[2].call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}, 200, nil)
	apis[1].call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "COMPLETED"}, 200, nil)
	apis[2].call("POST", fmt.Sprintf("/api/deployments/%d/promotions", staging), map[string]any{"name": "smoke", "status": "SUCCESS"}, 201, nil)

	// Every call owed is made, exactly once (by webhook-id), whichever
	// replica enqueued it.
	var owed []deploydb.DeliveryView
	deadline := time.Now().Add(20 * time.Second)
	for {
		apis[1].call("GET", "/api/webhook-deliveries?perPageSize=1000", nil, 200, &owed)
		pending := 0
		for _, d := range owed {
			if d.Status != deploydb.DeliveryDelivered {
				pending++
			}
		}
		if pending == 0 && len(owed) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries not delivered after 20 s", pending, len(owed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]int{}
	recv.mu.Lock()
	for _, c := range recv.calls {
		seen[c.Header.Get("Webhook-Id")]++
	}
	recv.mu.Unlock()
	for _, d := range owed {
		id := fmt.Sprintf("dd_%d", d.ID)
		if seen[id] != 1 {
			t.Errorf("delivery %d (%s to %s): received %d times, want exactly once", d.ID, d.EventType, d.Hook, seen[id])
		}
		delete(seen, id)
	}
	for id, n := range seen {
		t.Errorf("call %s (%d times) is not a delivery of the log", id, n)
	}
	// Every replica's event log is the one log.
	var evs0, evs2 []deploydb.Event
	apis[1].call("GET", "/api/events?limit=1000", nil, 200, &evs0)
	apis[2].call("GET", "/api/events?limit=1000", nil, 200, &evs2)
	if len(evs0) == 0 || len(evs0) != len(evs2) {
		t.Errorf("replicas show %d and %d events", len(evs0), len(evs2))
	}
}

// TestCopySQLiteToPostgres moves a flow under way from SQLite to
// PostgreSQL with `deploydb copy`: everything is there with its ids, the
// flow carries on, new ids come after the old ones, and a second copy into
// the now full database is refused.
func TestCopySQLiteToPostgres(t *testing.T) {
	t.Parallel()
	pg := pgtest.Schema(t)
	recv := newReceiver(t)
	dir := writeConfig(t)
	env := map[string]string{"HOOK": recv.URL}
	file := filepath.Join(t.TempDir(), "deploydb.db")
	old := launch(t, dir, file, env)
	c := api{t: t, url: old.URL}
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar",
		"commits": []map[string]any{{"sha": "4f2a9c1", "timestamp": "2026-11-20T10:00:00Z"}}}, 201, &art)
	flow := c.flowOf(art.ID)
	integ := flow.Deployments[0].ID
	for _, st := range []string{"STARTED", "COMPLETED"} {
		c.call("PATCH", fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": st}, 200, nil)
	}
	c.call("POST", fmt.Sprintf("/api/deployments/%d/promotions", integ), map[string]any{"name": "smoke", "status": "SUCCESS"}, 201, nil)
	c.call("POST", "/api/environments/prod/lock", map[string]any{"reason": "moving house"}, 201, nil)
	var before []deploydb.Event
	c.call("GET", "/api/events?limit=1000", nil, 200, &before)
	old.stop()

	var stdout, stderr bytes.Buffer
	copyArgs := []string{"copy", "--from", file, "--to", pg}
	if err := run(t.Context(), copyArgs, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("copy: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 artifacts, 3 deployments") {
		t.Errorf("copy said %q", stdout.String())
	}

	srv := launch(t, dir, pg, env)
	c = api{t: t, url: srv.URL}
	moved := c.flowOf(art.ID)
	if moved.ID != flow.ID || moved.Deployments[0].Status != deploydb.DeploymentSuccess || moved.Deployments[1].Status != deploydb.DeploymentCreated {
		t.Fatalf("flow on PostgreSQL: %+v", moved)
	}
	// The history moved whole: the artifact's commits, each step's time.
	var movedArt deploydb.Artifact
	c.call("GET", fmt.Sprintf("/api/artifacts/%d", art.ID), nil, 200, &movedArt)
	if len(movedArt.Commits) != 1 || movedArt.Commits[0].SHA != "4f2a9c1" {
		t.Errorf("artifact on PostgreSQL: %+v, want its commit", movedArt)
	}
	if d := moved.Deployments[0]; d.ActivatedAt.IsZero() || d.StartedAt.IsZero() || d.CompletedAt.IsZero() || d.FinishedAt.IsZero() {
		t.Errorf("integ on PostgreSQL lost the times of its steps: %+v", d)
	}
	var after []deploydb.Event
	c.call("GET", "/api/events?limit=1000", nil, 200, &after)
	if len(after) != len(before) || after[len(after)-1].ID != before[len(before)-1].ID {
		t.Fatalf("events on PostgreSQL: %d (last %d), want %d (last %d)", len(after), after[len(after)-1].ID, len(before), before[len(before)-1].ID)
	}
	var lock map[string]any
	c.call("GET", "/api/environments/prod", nil, 200, &lock)
	if lock["lock"] == nil {
		t.Errorf("prod's lock did not move: %v", lock)
	}
	// The flow carries on; what it records gets the next ids.
	staging := moved.Deployments[1].ID
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}, 200, nil)
	var latest []deploydb.Event
	c.call("GET", fmt.Sprintf("/api/events?after=%d", before[len(before)-1].ID), nil, 200, &latest)
	if len(latest) == 0 || latest[0].ID <= before[len(before)-1].ID || latest[0].Type != deploydb.EventDeploymentStarted {
		t.Errorf("events after the copy: %+v", latest)
	}
	srv.stop()

	stdout.Reset()
	stderr.Reset()
	err := run(t.Context(), copyArgs, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if code := cli.ExitCode(err); code != cli.ExitConflict {
		t.Errorf("a second copy: exit %d (%v), want %d", code, err, cli.ExitConflict)
	}
}

// With two replicas on one database, a soak promotion that comes due is
// applied once: one result, one promotion.completed, the next environment
// activated once, whichever replica's timer got there first.
func TestReplicasSoak(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ: {promotions: [bake]}\n  staging: {}\n",
		"promotions/bake.yml":      "type: soak\nattributes: {duration: 1s}\n",
	})
	a, b := launch(t, dir, db, nil), launch(t, dir, db, nil)
	ca, cb := api{t: t, url: a.URL}, api{t: t, url: b.URL}
	var art deploydb.Artifact
	ca.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	flow := ca.flowOf(art.ID)
	integ := flow.Deployments[0].ID
	cb.call("PATCH", fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "COMPLETED"}, 200, nil)

	deadline := time.Now().Add(20 * time.Second)
	for {
		flow = cb.flowOf(art.ID)
		if flow.Deployments[0].Status == deploydb.DeploymentSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the soak was not applied within 20 s: %+v", flow.Deployments[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if flow.Deployments[1].Status != deploydb.DeploymentCreated {
		t.Errorf("staging after the soak: %s, want CREATED", flow.Deployments[1].Status)
	}
	for _, typ := range []string{"promotion.completed", "deployment.verified"} {
		var evs []deploydb.Event
		ca.call("GET", "/api/events?type="+typ, nil, 200, &evs)
		if len(evs) != 1 || evs[0].Actor != "deploydb" {
			t.Errorf("%s events: %+v, want one, by deploydb", typ, evs)
		}
	}
	var created []deploydb.Event
	cb.call("GET", "/api/events?type=deployment.created", nil, 200, &created)
	if len(created) != 2 {
		t.Errorf("deployment.created events: %d, want 2 (integ, then staging once)", len(created))
	}
}

// TestReplicasCrash kills replicas with SIGKILL, as a crash would. A
// replica that dies in the middle of a webhook call leaves the delivery to
// the others, which send it (same webhook-id) once its lease lapses; a
// replica that dies under a write load loses no acknowledged write, leaves
// no artifact without its flow, and every call owed for what was recorded
// is made.
func TestReplicasCrash(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	recv := newStallingReceiver(t)
	// 80 services on one pipeline: each publish activates a deployment,
	// and each activation calls the hook.
	dir := t.TempDir()
	files := map[string]string{
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ: {}\n  staging: {}\n",
		"webhook/all.yml":          "hooks:\n  - {name: all, url: '${env:HOOK}/created', events: [deployment.created]}\n",
	}
	for i := range 80 {
		files[fmt.Sprintf("services/s%02d.yml", i)] = fmt.Sprintf("artifacts: [com.example:s%02d]\npipelines: [standard]\n", i)
	}
	writeFiles(t, dir, files)
	env := map[string]string{"HOOK": recv.URL}
	flags := []string{"--webhook-timeout", "5s", "--webhook-lease", "6s"}

	// A replica alone makes the first call, and dies in the middle of it.
	a := spawn(t, dir, db, env, flags...)
	ca := api{t: t, url: a.URL}
	var art deploydb.Artifact
	ca.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "s00", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	var stalled string
	select {
	case stalled = <-recv.arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook call from %s within 20 s\n%s", a, a.logs)
	}
	a.kill(t)
	killedAt := time.Now()

	b := spawn(t, dir, db, env, flags...)
	c := spawn(t, dir, db, env, flags...)
	cb := api{t: t, url: b.URL}
	if !pollUntil(30*time.Second, func() bool { return recv.completed(stalled) > 0 }) {
		t.Fatalf("the call %s cut short by the crash was not made again within 30 s\n%s", stalled, b.logs)
	}
	if waited := time.Since(killedAt); waited > 20*time.Second {
		t.Errorf("the call cut short was made again %s after the crash; the lease is 6 s", waited)
	}

	// A third replica dies under a write load spread over all three.
	d := spawn(t, dir, db, env, flags...)
	urls := []string{b.URL, c.URL, d.URL}
	var (
		mu    sync.Mutex
		acked []int64
		next  int
	)
	var wg sync.WaitGroup
	wg.Go(func() { // kills d while requests and calls are under way
		pollUntil(30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 25
		})
		d.kill(t)
	})
	for range 4 {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= 80 {
					return
				}
				code, body, err := try("POST", urls[i%len(urls)]+"/api/artifacts", map[string]any{
					"group": "com.example", "name": fmt.Sprintf("s%02d", i), "version": "2.0.0", "sourceUrl": "https://ci/b.jar"})
				if err != nil || code != 201 {
					continue // not acknowledged: it may or may not be recorded
				}
				var got deploydb.Artifact
				if err := json.Unmarshal(body, &got); err != nil {
					t.Errorf("publish answer: %v: %s", err, body)
					continue
				}
				mu.Lock()
				acked = append(acked, got.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	d.kill(t)
	if len(acked) < 40 {
		t.Fatalf("only %d of 80 publishes acknowledged", len(acked))
	}

	// Every acknowledged write is there, and every artifact has its flow.
	for _, id := range acked {
		var got deploydb.Artifact
		cb.call("GET", fmt.Sprintf("/api/artifacts/%d", id), nil, 200, &got)
	}
	var stored []deploydb.Artifact
	cb.call("GET", "/api/artifacts?perPageSize=1000", nil, 200, &stored)
	for _, s := range stored {
		if f := cb.flowOf(s.ID); len(f.Deployments) != 2 {
			t.Errorf("artifact %d: flow %+v, want 2 deployments", s.ID, f)
		}
	}

	// Every call owed is made, those cut short by a crash included.
	var owed []deploydb.DeliveryView
	if !pollUntil(30*time.Second, func() bool {
		cb.call("GET", "/api/webhook-deliveries?perPageSize=1000", nil, 200, &owed)
		for _, dl := range owed {
			if dl.Status != deploydb.DeliveryDelivered {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("deliveries not all delivered within 30 s: %+v", owed)
	}
	// One call per deployment.created, for every deployment activated,
	// those of publishes whose answer the crash cut off included.
	var created []deploydb.Event
	cb.call("GET", "/api/events?type=deployment.created&limit=1000", nil, 200, &created)
	if len(owed) != len(created) || len(created) < len(acked) {
		t.Errorf("%d deliveries for %d deployment.created events; %d publishes acknowledged", len(owed), len(created), len(acked))
	}
	for _, dl := range owed {
		id := fmt.Sprintf("dd_%d", dl.ID)
		// At least once; twice only if a crash cut the first call short.
		if n := recv.completed(id); n < 1 || n > 2 {
			t.Errorf("delivery %d (%s): answered %d times, want 1 (or 2 after a crash)", dl.ID, dl.URL, n)
		}
	}
	t.Logf("%d of 80 publishes acknowledged, %d artifacts stored, %d calls made", len(acked), len(stored), len(owed))
}

// stallingReceiver is a webhook receiver whose first call never answers:
// it waits until the caller goes away. Later calls answer 204.
type stallingReceiver struct {
	*httptest.Server
	arrived chan string // the webhook-id of the stalled call

	mu      sync.Mutex
	stalled bool
	done    map[string]int // webhook-id: calls answered
}

func newStallingReceiver(t *testing.T) *stallingReceiver {
	r := &stallingReceiver{arrived: make(chan string, 1), done: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		id := req.Header.Get("Webhook-Id")
		r.mu.Lock()
		first := !r.stalled
		r.stalled = true
		r.mu.Unlock()
		if first {
			r.arrived <- id
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		r.mu.Lock()
		r.done[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *stallingReceiver) completed(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[id]
}

// try is send for calls that may fail: to a server that may be gone.
func try(method, url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}
