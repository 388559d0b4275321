package main

import (
	"bytes"
	"fmt"
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
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
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
