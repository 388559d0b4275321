package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/storetest"
)

// TestStore runs the store conformance suite, each subtest on its own
// database file.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		s.Now = now
		return s
	})
}

// mustOpen opens the database at path and closes it when the test ends.
func mustOpen(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close %s: %v", path, err)
		}
	})
	return s
}

func TestOpen(t *testing.T) {
	t.Run("ErrEmptyPath", func(t *testing.T) {
		_, err := sqlite.Open(t.Context(), "")
		if code := deploydb.ErrorCode(err); code != deploydb.EINVALID {
			t.Errorf("got %v, want %s", err, deploydb.EINVALID)
		}
	})

	t.Run("ErrDirectoryMissing", func(t *testing.T) {
		_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "deploydb.db"))
		if err == nil {
			t.Error("opened a database in a directory that does not exist")
		}
	})
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

// TestDurability checks that what a store acknowledged is there after it is
// closed and the file opened again, and that ids go on increasing.
func TestDurability(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "deploydb.db")
	clock := storetest.NewClock(time.Date(2026, time.April, 1, 8, 30, 0, 0, time.UTC))
	cfg := storetest.Model()

	s, err := sqlite.Open(ctx, path)
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

// TestTwoHandles races reports through two stores open on one file, as two
// processes would: exactly one wins.
func TestTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "deploydb.db")
	cfg := storetest.Model()
	s1, s2 := mustOpen(t, path), mustOpen(t, path)
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

// TestSoakSurvivesRestart checks that a soak running when the store is
// closed succeeds when its time is up after the file is opened again, and
// that a lock holds across the restart.
func TestSoakSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "deploydb.db")
	clock := storetest.NewClock(time.Date(2026, time.April, 1, 8, 30, 0, 0, time.UTC))
	cfg := storetest.Model()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = clock.Now
	_, flows, err := s.PublishArtifact(ctx, cfg, storetest.Artifact("cache", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	integ, staging := flows[0].Deployments[0].ID, flows[0].Deployments[1].ID
	if _, err := s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: integ, Status: deploydb.DeploymentCompleted, Actor: "jenkins"}); err != nil {
		t.Fatal(err)
	}
	due := clock.Now().Add(storetest.SoakTime)
	if _, err := s.LockEnvironment(ctx, cfg, "staging", deploydb.Action{Actor: "alice", Reason: "incident 42"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(storetest.SoakTime)
	s = mustOpen(t, path)
	s.Now = clock.Now
	next, err := s.Tick(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !next.IsZero() {
		t.Errorf("next tick at %s, want nothing left to do", next)
	}
	d, err := s.FindDeployment(ctx, integ)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != deploydb.DeploymentSuccess || d.Promotions[0].Status != deploydb.PromotionSuccess || !d.UpdatedAt.Equal(due) {
		t.Errorf("after the soak: deployment %s, soak %s, updated at %s; want SUCCESS, SUCCESS at %s", d.Status, d.Promotions[0].Status, d.UpdatedAt, due)
	}
	// staging is still locked: its deployment waits.
	d, err = s.FindDeployment(ctx, staging)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(d.Waiting, "locked: incident 42") {
		t.Errorf("staging is %s, waiting %q; want it waiting for the lock", d.Status, d.Waiting)
	}
}
