package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
)

// cell is what the status matrix should say about one (service,
// environment): deployment ids, 0 for none.
type cell struct {
	current     int64
	since       deploydb.Time
	inFlight    int64
	lastAttempt int64
	lastGood    int64
}

// wantStatus fails the test unless the status matrix has exactly the cells
// want, keyed "service/environment", each deployment as FindDeployment
// returns it without its promotion results. It also fails unless
// StatusChanges names every service whose cells changed since the last
// call (or says all changed), and unless FindStatus of those services
// alone returns just their cells: that is what keeps copies of the matrix
// right.
func (f *fixture) wantStatus(want map[string]cell) {
	f.t.Helper()
	since := f.seenVersion
	if f.seenStatus == nil {
		since = -1 // nothing seen yet
	}
	changes, err := f.s.StatusChanges(f.ctx, since)
	if err != nil {
		f.t.Fatalf("status changes: %v", err)
	}
	cells, err := f.s.FindStatus(f.ctx)
	if err != nil {
		f.t.Fatalf("find status: %v", err)
	}
	if cells == nil {
		f.t.Error("FindStatus returned nil, want a non-nil list")
	}
	if since < 0 && !changes.All {
		f.t.Errorf("StatusChanges since %d = %+v, want All", since, changes)
	}
	if changes.Version < since {
		f.t.Errorf("the status version went back from %d to %d", since, changes.Version)
	}
	if f.seenStatus != nil && !changes.All {
		named := map[string]bool{}
		for _, svc := range changes.Services {
			named[svc] = true
		}
		byService := func(cs []*deploydb.StatusCell) map[string][]*deploydb.StatusCell {
			m := map[string][]*deploydb.StatusCell{}
			for _, c := range cs {
				m[c.Service] = append(m[c.Service], c)
			}
			return m
		}
		before, now := byService(f.seenStatus), byService(cells)
		for svc := range now {
			if diff := cmp.Diff(before[svc], now[svc]); diff != "" && !named[svc] {
				f.t.Errorf("the status of %s changed since version %d, but StatusChanges %+v does not name it (-before +now):\n%s", svc, since, changes, diff)
			}
		}
		for svc := range before {
			if now[svc] == nil && !named[svc] {
				f.t.Errorf("the status of %s went since version %d, but StatusChanges %+v does not name it", svc, since, changes)
			}
		}
		if len(changes.Services) > 0 {
			some, err := f.s.FindStatus(f.ctx, changes.Services...)
			if err != nil {
				f.t.Fatalf("find status of %v: %v", changes.Services, err)
			}
			var want []*deploydb.StatusCell
			for _, svc := range changes.Services {
				want = append(want, now[svc]...)
			}
			if diff := cmp.Diff(want, some); diff != "" {
				f.t.Errorf("FindStatus(%v) (-want +got):\n%s", changes.Services, diff)
			}
		}
	}
	f.seenStatus, f.seenVersion = cells, changes.Version
	dep := func(id int64) *deploydb.Deployment {
		if id == 0 {
			return nil
		}
		d := f.deployment(id)
		d.Promotions = []deploydb.PromotionResult{}
		return d
	}
	wantCells := map[string]*deploydb.StatusCell{}
	for key, c := range want {
		wc := &deploydb.StatusCell{Current: dep(c.current), CurrentSince: c.since, InFlight: dep(c.inFlight), LastAttempt: dep(c.lastAttempt), LastGood: dep(c.lastGood)}
		for i := range key {
			if key[i] == '/' {
				wc.Service, wc.Environment = key[:i], key[i+1:]
			}
		}
		wantCells[key] = wc
	}
	got := map[string]*deploydb.StatusCell{}
	for _, c := range cells {
		key := c.Service + "/" + c.Environment
		if got[key] != nil {
			f.t.Errorf("two cells for %s", key)
		}
		got[key] = c
	}
	if diff := cmp.Diff(wantCells, got); diff != "" {
		f.t.Errorf("status matrix (-want +got):\n%s", diff)
	}
	// The matrix as of now, worked out from the history, is the one
	// kept; and so it must be later, for this instant (checked when the
	// test ends: wantStatusAt).
	f.wantStatusAt(f.clock.Now(), cells)
	f.statusHistory = append(f.statusHistory, statusAt{f.clock.Now(), cells, f.lastEvent()})
}

// statusAt is the status matrix as FindStatus returned it at an instant,
// after event lastEvent.
type statusAt struct {
	at        time.Time
	cells     []*deploydb.StatusCell
	lastEvent int64
}

// wantStatusAt fails the test unless FindStatusAt(at) returns cells, the
// matrix as FindStatus returned it then. Every deployment's UpdatedAt is
// when it was last changed, which may be a change of when it is due or
// why it waits: the history keeps the times of its steps only.
func (f *fixture) wantStatusAt(at time.Time, want []*deploydb.StatusCell) {
	f.t.Helper()
	got, err := f.s.FindStatusAt(f.ctx, deploydb.StatusAtFilter{At: at})
	if err != nil {
		f.t.Fatalf("find status at %s: %v", at, err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(deploydb.Deployment{}, "UpdatedAt", "DueAt", "Waiting")); diff != "" {
		f.t.Errorf("status matrix at %s from the history (-kept then +worked out):\n%s", deploydb.NewTime(at), diff)
	}
}

func testFindStatus(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		// billing in integ through a sequence: what runs there (current,
		// since when), what is being deployed (in flight), an attempt
		// that failed before it completed (last attempt) and the last
		// known good.
		f := newFixture(t, open)
		f.wantStatus(map[string]cell{})

		_, v1 := f.publishOne("billing", "1.0.0")
		integ1 := v1.Deployments[0].ID
		f.wantStatus(map[string]cell{"billing/integ": {inFlight: integ1}})

		f.tick()
		f.report(integ1, started)
		f.wantStatus(map[string]cell{"billing/integ": {inFlight: integ1}})

		completedAt := f.tick()
		f.report(integ1, completed)
		f.wantStatus(map[string]cell{"billing/integ": {current: integ1, since: completedAt, inFlight: integ1}})

		// Verified: current since it was deployed, no longer in flight;
		// staging has its first deployment in flight.
		f.tick()
		f.promote(integ1, "smoke", deploydb.PromotionSuccess)
		staging1 := v1.Deployments[1].ID
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ1, since: completedAt, lastGood: integ1},
			"billing/staging": {inFlight: staging1},
		})

		// 2.0.0 fails before it completes: 1.0.0 still runs, but the
		// failed attempt leaves integ uncertain.
		f.tick()
		_, v2 := f.publishOne("billing", "2.0.0")
		integ2 := v2.Deployments[0].ID
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ1, since: completedAt, inFlight: integ2, lastGood: integ1},
			"billing/staging": {inFlight: staging1},
		})
		f.tick()
		f.report(integ2, started)
		f.report(integ2, failed)
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ1, since: completedAt, lastAttempt: integ2, lastGood: integ1},
			"billing/staging": {inFlight: staging1},
		})

		// 3.0.0 completes: it runs now, and the failed attempt is past.
		f.tick()
		_, v3 := f.publishOne("billing", "3.0.0")
		integ3 := v3.Deployments[0].ID
		completedAt3 := f.tick()
		f.report(integ3, completed)
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ3, since: completedAt3, inFlight: integ3, lastGood: integ1},
			"billing/staging": {inFlight: staging1},
		})

		// ... and fails its promotion: it still runs, FAILED; 1.0.0 is
		// still the last known good.
		f.tick()
		f.promote(integ3, "smoke", deploydb.PromotionFailed)
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ3, since: completedAt3, lastGood: integ1},
			"billing/staging": {inFlight: staging1},
		})

		// 4.0.0 is verified: current and last known good.
		f.tick()
		_, v4 := f.publishOne("billing", "4.0.0")
		integ4 := v4.Deployments[0].ID
		completedAt4 := f.tick()
		f.report(integ4, completed)
		f.tick()
		f.promote(integ4, "smoke", deploydb.PromotionSuccess)
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: integ4, since: completedAt4, lastGood: integ4},
			"billing/staging": {inFlight: staging1},
		})
	})

	t.Run("VerifiedAtOnce", func(t *testing.T) {
		// search has no promotions in integ: completed is verified at
		// once, and that ends a failed attempt's uncertainty too.
		f := newFixture(t, open)
		_, v1 := f.publishOne("search", "1.0.0")
		integ1 := v1.Deployments[0].ID
		f.report(integ1, failed)
		f.wantStatus(map[string]cell{"search/integ": {lastAttempt: integ1}})
		_, v2 := f.publishOne("search", "2.0.0")
		integ2 := v2.Deployments[0].ID
		completedAt := f.tick()
		f.report(integ2, completed)
		f.wantStatus(map[string]cell{
			"search/integ":   {current: integ2, since: completedAt, lastGood: integ2},
			"search/staging": {inFlight: v2.Deployments[1].ID},
		})
	})

	t.Run("Services", func(t *testing.T) {
		// One cell per service and environment that has seen a
		// deployment; waiting and superseded deployments are never in
		// flight.
		f := newFixture(t, open)
		_, shared := f.publish("shared", "1.0.0")
		_, b2 := f.publishOne("billing", "2.0.0")
		_, b3 := f.publishOne("billing", "3.0.0")
		f.wantStatus(map[string]cell{
			"billing/integ": {inFlight: shared[0].Deployments[0].ID},
			"search/integ":  {inFlight: shared[1].Deployments[0].ID},
		})
		completedAt := f.tick()
		f.verify(shared[0].Deployments[0].ID)
		f.wantStatuses(b2.ID, deploydb.FlowSuperseded, superseded, superseded, superseded)
		f.wantStatus(map[string]cell{
			"billing/integ":   {current: shared[0].Deployments[0].ID, since: completedAt, inFlight: b3.Deployments[0].ID, lastGood: shared[0].Deployments[0].ID},
			"billing/staging": {inFlight: shared[0].Deployments[1].ID},
			"search/integ":    {inFlight: shared[1].Deployments[0].ID},
		})
	})

	t.Run("Cancelled", func(t *testing.T) {
		// A cancelled deployment is no longer in flight.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.report(v1.Deployments[0].ID, started)
		if _, err := f.s.CancelFlow(f.ctx, f.cfg, v1.ID, alice()); err != nil {
			t.Fatal(err)
		}
		f.wantStatus(map[string]cell{"billing/integ": {}})
	})

	t.Run("Version", func(t *testing.T) {
		// The status version moves on with every write that changes the
		// matrix or the locks, and stays where it is for reads and for
		// writes that were refused. A lock changes more than rows.
		f := newFixture(t, open)
		version := func() int64 {
			t.Helper()
			c, err := f.s.StatusChanges(f.ctx, -1)
			if err != nil {
				t.Fatalf("status changes: %v", err)
			}
			return c.Version
		}
		moved := func(what string, do func()) {
			t.Helper()
			before := version()
			do()
			if after := version(); after <= before {
				t.Errorf("%s: status version %d, then %d; want it to move on", what, before, after)
			}
		}
		stayed := func(what string, do func()) {
			t.Helper()
			before := version()
			do()
			if after := version(); after != before {
				t.Errorf("%s: status version %d, then %d; want it to stay", what, before, after)
			}
		}
		var v1 *deploydb.Flow
		moved("publish", func() { _, v1 = f.publishOne("billing", "1.0.0") })
		integ1 := v1.Deployments[0].ID
		moved("started", func() { f.report(integ1, started) })
		stayed("reads", func() {
			f.deployment(integ1)
			if _, err := f.s.FindStatus(f.ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.FindLocks(f.ctx); err != nil {
				t.Fatal(err)
			}
		})
		stayed("a refused report", func() {
			if _, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: integ1, Status: deploydb.DeploymentCreated, Actor: actorOrchestrator}); err == nil {
				t.Fatal("reporting STARTED -> CREATED succeeded")
			}
		})
		before := version()
		moved("lock", func() { f.lock("staging", alice()) })
		if c, err := f.s.StatusChanges(f.ctx, before); err != nil || !c.All {
			t.Errorf("changes of a lock: %+v, %v; want All", c, err)
		}
		moved("unlock", func() { f.unlock("staging", alice()) })
		moved("completed", func() { f.report(integ1, completed) })
		// A version from elsewhere (a restored backup) says nothing.
		if c, err := f.s.StatusChanges(f.ctx, version()+1000); err != nil || !c.All {
			t.Errorf("changes since a version ahead of the database: %+v, %v; want All", c, err)
		}
		many := make([]string, deploydb.MaxStatusServices+1)
		for i := range many {
			many[i] = fmt.Sprintf("service-%d", i)
		}
		if _, err := f.s.FindStatus(f.ctx, many...); deploydb.ErrorCode(err) != deploydb.EINVALID {
			t.Errorf("the status of %d services: %v, want EINVALID", len(many), err)
		}
		moved("promotion", func() { f.promote(integ1, "smoke", deploydb.PromotionSuccess) })
	})

	t.Run("Rollback", func(t *testing.T) {
		// ledger 2.0.0 fails in integ and 1.0.0 is rolled back: in
		// flight, and current again once verified.
		f := newFixture(t, open)
		_, v1 := f.publishOne("ledger", "1.0.0")
		integ1 := v1.Deployments[0].ID
		completedAt := f.tick()
		f.report(integ1, completed)
		_, v2 := f.publishOne("ledger", "2.0.0")
		f.report(v2.Deployments[0].ID, failed)
		rb := f.newest().Deployments[0].ID
		f.wantStatus(map[string]cell{
			"ledger/integ":   {current: integ1, since: completedAt, inFlight: rb, lastAttempt: v2.Deployments[0].ID, lastGood: integ1},
			"ledger/staging": {inFlight: v1.Deployments[1].ID},
		})
		rolledBackAt := f.tick()
		f.report(rb, completed)
		f.wantStatus(map[string]cell{
			"ledger/integ":   {current: rb, since: rolledBackAt, lastGood: rb},
			"ledger/staging": {inFlight: v1.Deployments[1].ID},
		})
	})
}
