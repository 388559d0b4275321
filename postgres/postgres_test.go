package postgres_test

import (
	"context"
	"database/sql"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres"
	"github.com/deploydb/deploydb/postgres/pgtest"
	"github.com/deploydb/deploydb/storetest"
)

// freshSchema returns the URL of an empty schema of t's own, with a small
// pool: subtests run in parallel.
func freshSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, postgres.PoolMaxConnsParam, "4")
}

// mustOpen opens the store at u and closes it when the test ends.
func mustOpen(tb testing.TB, u string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// TestStore runs the store conformance suite, each subtest in a schema of
// its own.
func TestStore(t *testing.T) {
	pgtest.Database(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
		s := mustOpen(t, freshSchema(t))
		s.Now = now
		return s
	})
}

// appliedMigrations returns the number of migration rows goose keeps in
// the schema of u.
func appliedMigrations(t *testing.T, u string) int {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	q.Del(postgres.PoolMaxConnsParam) // the store's, not the server's
	pu.RawQuery = q.Encode()
	db, err := sql.Open("pgx", pu.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenConcurrently opens a fresh schema from several stores at once, as
// replicas starting together do: the migration lock makes every one
// succeed, and the migrations are applied once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	const n = 4
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), u)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
			continue
		}
		if err := stores[i].Close(); err != nil {
			t.Errorf("close %d: %v", i, err)
		}
	}
	// goose's initial version row, and one row per migration.
	if got, want := appliedMigrations(t, u), 2; got != want {
		t.Errorf("%d rows in goose_db_version, want %d", got, want)
	}
}

// TestOpenUpToDate checks that opening a migrated schema applies nothing
// and keeps what it holds.
func TestOpenUpToDate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := freshSchema(t)
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.PublishArtifact(ctx, storetest.Model(), storetest.Artifact("billing", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, u)
	s = mustOpen(t, u)
	if after := appliedMigrations(t, u); after != before {
		t.Errorf("opening an up-to-date schema: %d rows in goose_db_version, was %d", after, before)
	}
	if _, err := s.FindArtifact(ctx, a.ID); err != nil {
		t.Errorf("artifact published before reopening: %v", err)
	}
}

// TestOpenErrors checks what Open says of a bad URL and of a database that
// does not answer.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		code      string
	}{
		{"BadURL", "postgres://%zz", deploydb.EINVALID},
		{"BadPoolSize", "postgres://127.0.0.1:1/x?" + postgres.PoolMaxConnsParam + "=none", deploydb.EINVALID},
		{"Unreachable", "postgres://deploydb@127.0.0.1:1/x?connect_timeout=5", deploydb.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.Open(t.Context(), tc.url)
			if code := deploydb.ErrorCode(err); code != tc.code {
				t.Errorf("got %v, want %s", err, tc.code)
			}
		})
	}
}

// TestTwoHandles races reports through two stores open on one schema, as
// two replicas would: the write lock lets exactly one win.
func TestTwoHandles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := freshSchema(t)
	cfg := storetest.Model()
	s1, s2 := mustOpen(t, u), mustOpen(t, u)
	_, flows, err := s1.PublishArtifact(ctx, cfg, storetest.Artifact("billing", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	id := flows[0].Deployments[0].ID

	const n = 20
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			<-start
			_, errs[i] = s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: id, Status: deploydb.DeploymentStarted, Actor: "jenkins"})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch deploydb.ErrorCode(err) {
		case "":
			won++
		case deploydb.ECONFLICT:
		default:
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d racers won, want 1", won)
	}
	evs, err := s2.FindEvents(ctx, deploydb.EventFilter{Deployment: id, Limit: deploydb.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, ev := range evs {
		if ev.Type == deploydb.EventDeploymentStarted {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d deployment.started events, want 1", started)
	}
}

// contents is everything a store shows through its interface.
type contents struct {
	Artifacts      []*deploydb.Artifact
	Flows          []*deploydb.Flow
	Deployments    []*deploydb.Deployment
	Events         []*deploydb.Event
	Deliveries     []*deploydb.Delivery
	Attempts       map[int64][]*deploydb.Attempt
	NextDeliveryAt time.Time
	Status         []*deploydb.StatusCell
	Locks          map[string]*deploydb.Lock
}

func read(t *testing.T, s deploydb.Store) contents {
	t.Helper()
	ctx := t.Context()
	all := deploydb.Page{Size: deploydb.MaxPageSize}
	var c contents
	var err error
	if c.Artifacts, err = s.FindArtifacts(ctx, deploydb.ArtifactFilter{Page: all}); err != nil {
		t.Fatal(err)
	}
	if c.Flows, err = s.FindFlows(ctx, deploydb.FlowFilter{Page: all}); err != nil {
		t.Fatal(err)
	}
	if c.Deployments, err = s.FindDeployments(ctx, deploydb.DeploymentFilter{Page: all}); err != nil {
		t.Fatal(err)
	}
	if c.Events, err = s.FindEvents(ctx, deploydb.EventFilter{Limit: deploydb.MaxPageSize}); err != nil {
		t.Fatal(err)
	}
	if c.Deliveries, err = s.FindDeliveries(ctx, deploydb.DeliveryFilter{Page: all}); err != nil {
		t.Fatal(err)
	}
	c.Attempts = map[int64][]*deploydb.Attempt{}
	for _, d := range c.Deliveries {
		if c.Attempts[d.ID], err = s.FindAttempts(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	if c.NextDeliveryAt, err = s.NextDeliveryAt(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Status, err = s.FindStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Locks, err = s.FindLocks(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReopen checks that what a store acknowledged is there after it is
// closed and the database opened again, and that ids go on increasing.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := freshSchema(t)
	clock := storetest.NewClock(time.Date(2026, time.April, 1, 8, 30, 0, 0, time.UTC))
	cfg := storetest.Model()

	s, err := postgres.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = clock.Now
	a, flows, err := s.PublishArtifact(ctx, cfg, storetest.Artifact("shared", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	billing, search := flows[0].Deployments[0].ID, flows[1].Deployments[0].ID
	if _, err := s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: billing, Status: deploydb.DeploymentCompleted, Actor: "jenkins"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportPromotion(ctx, cfg, deploydb.PromotionReport{Deployment: billing, Promotion: "smoke", Status: deploydb.PromotionSuccess, InfoURL: "https://ci.example.com/1", Actor: "tests"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: search, Status: deploydb.DeploymentFailed, Actor: "jenkins"}); err != nil {
		t.Fatal(err)
	}
	// A lock, and a deployment waiting for it.
	if _, err := s.LockEnvironment(ctx, cfg, "integ", deploydb.Action{Actor: "alice", Reason: "incident 42"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PublishArtifact(ctx, cfg, storetest.Artifact("search", "1.0.1"), "ci"); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueDeliveries(ctx, clock.Now(), 2)
	if err != nil || len(due) != 2 {
		t.Fatalf("due deliveries: %v, %v; want 2", due, err)
	}
	if err := s.RecordAttempt(ctx, deploydb.AttemptResult{Attempt: deploydb.Attempt{Delivery: due[0].ID, StatusCode: 204, Latency: time.Millisecond, CreatedAt: deploydb.NewTime(clock.Now())}, Done: true, Status: deploydb.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, deploydb.AttemptResult{Attempt: deploydb.Attempt{Delivery: due[1].ID, StatusCode: 503, Latency: time.Millisecond, CreatedAt: deploydb.NewTime(clock.Now())}, NextAttemptAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	before := read(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path)
	s.Now = clock.Now
	after := read(t, s)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the store changed across Close and Open (-before +after):\n%s", diff)
	}

	// Writing goes on where it left off, with ids never reused.
	clock.Advance(time.Second)
	a2, flows2, err := s.PublishArtifact(ctx, cfg, storetest.Artifact("billing", "2.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if a2.ID <= a.ID || flows2[0].ID <= flows[1].ID || flows2[0].Deployments[0].ID <= flows[1].Deployments[2].ID {
		t.Errorf("ids after reopening: artifact %d, flow %d, deployment %d; want above %d, %d, %d",
			a2.ID, flows2[0].ID, flows2[0].Deployments[0].ID, a.ID, flows[1].ID, flows[1].Deployments[2].ID)
	}
	if _, _, err := s.PublishArtifact(ctx, cfg, storetest.Artifact("shared", "1.0.0"), "ci"); deploydb.ErrorCode(err) != deploydb.ECONFLICT {
		t.Errorf("republishing an artifact stored before reopening: %v, want %s", err, deploydb.ECONFLICT)
	}
}

// A commit in one process wakes the dispatcher and the live views of every
// other process on the database (LISTEN/NOTIFY), not only its own.
func TestCommitsWakeOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := freshSchema(t)
	s1, s2 := mustOpen(t, u), mustOpen(t, u)
	waitWake := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no wake-up within 10 s", what)
		}
	}
	// s2 listens from Open on: each round is answered by s1's
	// notification. (Two rounds: a stray wake could answer one.)
	// (Two services: each publish activates an environment, and so
	// enqueues deliveries.)
	for _, name := range []string{"billing", "ledger"} {
		select {
		case <-s2.DeliveriesReady():
		default:
		}
		events := s2.EventsCommitted()
		if _, _, err := s1.PublishArtifact(ctx, storetest.Model(), storetest.Artifact(name, "1.0.0"), "ci"); err != nil {
			t.Fatal(err)
		}
		waitWake("events committed by the other process", events)
		waitWake("deliveries enqueued by the other process", s2.DeliveriesReady())
	}
}
