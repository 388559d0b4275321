package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// Database opens a store on one database, the same at each call (a file, a
// schema), with now as its clock. The suite closes what it opens.
type Database func(t *testing.T, now func() time.Time) deploydb.Store

// RunDatabase runs the checks that open one database more than once:
// what was acknowledged is there after reopening, two stores on one
// database race as two processes would, a soak outlives a restart. fresh
// returns a new, empty database.
func RunDatabase(t *testing.T, fresh func(t *testing.T) Database) {
	t.Run("Reopen", func(t *testing.T) { testReopen(t, closing(fresh(t))) })
	t.Run("TwoHandles", func(t *testing.T) { testTwoHandles(t, closing(fresh(t))) })
	t.Run("SoakSurvivesRestart", func(t *testing.T) { testSoakSurvivesRestart(t, closing(fresh(t))) })
}

// closing wraps open so that every store it opens is closed when the test
// ends, once, however often the test closed it itself.
func closing(open Database) Database {
	return func(t *testing.T, now func() time.Time) deploydb.Store {
		t.Helper()
		s := open(t, now)
		var once sync.Once
		c := &closer{Store: s, once: &once}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
}

// closer closes its store once.
type closer struct {
	deploydb.Store
	once *sync.Once
	err  error
}

func (c *closer) Close() error {
	c.once.Do(func() { c.err = c.Store.Close() })
	return c.err
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

func readAll(t *testing.T, s deploydb.Store) contents {
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

// testReopen checks that what a store acknowledged is there after it is
// closed and the database opened again, and that ids go on increasing.
func testReopen(t *testing.T, open Database) {
	ctx := t.Context()
	clock := NewClock(time.Date(2026, time.April, 1, 8, 30, 0, 0, time.UTC))
	cfg := Model()

	s := open(t, clock.Now)
	a, flows, err := s.PublishArtifact(ctx, cfg, Artifact("shared", "1.0.0"), "ci")
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
	if _, _, err := s.PublishArtifact(ctx, cfg, Artifact("search", "1.0.1"), "ci"); err != nil {
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
	before := readAll(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, clock.Now)
	after := readAll(t, s)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the store changed across Close and Open (-before +after):\n%s", diff)
	}

	// Writing goes on where it left off, with ids never reused.
	clock.Advance(time.Second)
	a2, flows2, err := s.PublishArtifact(ctx, cfg, Artifact("billing", "2.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if a2.ID <= a.ID || flows2[0].ID <= flows[1].ID || flows2[0].Deployments[0].ID <= flows[1].Deployments[2].ID {
		t.Errorf("ids after reopening: artifact %d, flow %d, deployment %d; want above %d, %d, %d",
			a2.ID, flows2[0].ID, flows2[0].Deployments[0].ID, a.ID, flows[1].ID, flows[1].Deployments[2].ID)
	}
	if _, _, err := s.PublishArtifact(ctx, cfg, Artifact("shared", "1.0.0"), "ci"); deploydb.ErrorCode(err) != deploydb.ECONFLICT {
		t.Errorf("republishing an artifact stored before reopening: %v, want %s", err, deploydb.ECONFLICT)
	}
}

// testTwoHandles races reports through two stores open on one database, as two
// processes would: exactly one wins.
func testTwoHandles(t *testing.T, open Database) {
	ctx := t.Context()
	cfg := Model()
	s1, s2 := open(t, time.Now), open(t, time.Now)
	_, flows, err := s1.PublishArtifact(ctx, cfg, Artifact("billing", "1.0.0"), "ci")
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

// testSoakSurvivesRestart checks that a soak running when the store is
// closed succeeds when its time is up after the database is opened again, and
// that a lock holds across the restart.
func testSoakSurvivesRestart(t *testing.T, open Database) {
	ctx := t.Context()
	clock := NewClock(time.Date(2026, time.April, 1, 8, 30, 0, 0, time.UTC))
	cfg := Model()

	s := open(t, clock.Now)
	_, flows, err := s.PublishArtifact(ctx, cfg, Artifact("cache", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	integ, staging := flows[0].Deployments[0].ID, flows[0].Deployments[1].ID
	if _, err := s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: integ, Status: deploydb.DeploymentCompleted, Actor: "jenkins"}); err != nil {
		t.Fatal(err)
	}
	due := clock.Now().Add(SoakTime)
	if _, err := s.LockEnvironment(ctx, cfg, "staging", deploydb.Action{Actor: "alice", Reason: "incident 42"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(SoakTime)
	s = open(t, clock.Now)
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
