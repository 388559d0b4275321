package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// wantOutbox fails the test unless OutboxStats says pending deliveries are
// pending, the oldest queued at oldest (zero for none).
func (f *fixture) wantOutbox(pending int64, oldest deploydb.Time) {
	f.t.Helper()
	got, err := f.s.OutboxStats(f.ctx)
	if err != nil {
		f.t.Fatalf("outbox stats: %v", err)
	}
	want := deploydb.OutboxStats{Pending: pending}
	if !oldest.IsZero() {
		want.OldestPending = oldest.Time
	}
	if got.Pending != want.Pending || !got.OldestPending.Equal(want.OldestPending) || got.OldestPending.IsZero() != want.OldestPending.IsZero() {
		f.t.Errorf("outbox stats: %d pending, oldest queued at %s; want %d, %s", got.Pending, got.OldestPending, want.Pending, want.OldestPending)
	}
}

// pending returns the pending deliveries, oldest first.
func (f *fixture) pending() []*deploydb.Delivery {
	f.t.Helper()
	return f.deliveries(deploydb.DeliveryFilter{Status: deploydb.DeliveryPending})
}

// wantEventsRecorded fails the test unless EventsRecorded counts exactly
// the events of the store's log, by type: every event this store's commits
// recorded, none of a write that failed.
func (f *fixture) wantEventsRecorded() {
	f.t.Helper()
	want := map[deploydb.EventType]int64{}
	for _, ev := range f.events(0) {
		want[ev.Type]++
	}
	got := f.s.EventsRecorded()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("events recorded, by type (-the event log +EventsRecorded):\n%s", diff)
	}
}

func testStats(t *testing.T, open Opener) {
	t.Run("OutboxStats", func(t *testing.T) {
		f := newFixture(t, open)
		f.wantOutbox(0, deploydb.Time{})

		// Every delivery a publish owes is pending; the oldest is the
		// first one queued.
		first := f.tick()
		_, fl := f.publishOne("billing", "1.0.0")
		queued := f.pending()
		if len(queued) == 0 {
			t.Fatal("a publish queued no delivery")
		}
		f.wantOutbox(int64(len(queued)), first)

		second := f.tick()
		f.report(fl.Deployments[0].ID, started)
		all := f.pending()
		if len(all) <= len(queued) {
			t.Fatalf("a report queued no delivery: %d pending, %d before", len(all), len(queued))
		}
		f.wantOutbox(int64(len(all)), first)

		// A failed attempt that will be retried leaves it pending.
		f.tick()
		f.attempt(queued[0], 503, false, "", f.clock.Now().Add(time.Minute))
		f.wantOutbox(int64(len(all)), first)

		// Once the first ones are done, the oldest is the report's.
		f.attempt(queued[0], 410, true, deploydb.DeliveryFailed, time.Time{})
		for _, d := range queued[1:] {
			f.delivered(d)
		}
		f.wantOutbox(int64(len(all)-len(queued)), second)

		for _, d := range all[len(queued):] {
			f.delivered(d)
		}
		f.wantOutbox(0, deploydb.Time{})

		// A delivery queued again is pending again, and counts from when
		// it was first queued.
		if _, err := f.s.Redeliver(f.ctx, queued[0].ID, deploydb.Action{Actor: actorCI, Reason: "receiver fixed"}); err != nil {
			t.Fatal(err)
		}
		f.wantOutbox(1, first)
	})

	t.Run("EventsRecorded", func(t *testing.T) {
		// Whatever records events (a publish, reports, an operator's
		// lock, the timer applying a soak) counts them by type; a write
		// that is refused counts nothing.
		f := newFixture(t, open)
		f.wantEventsRecorded()
		if _, err := f.s.SyncEnvironments(f.ctx, f.cfg); err != nil {
			t.Fatal(err)
		}
		f.wantEventsRecorded()

		_, fl := f.publishOne("cache", "1.0.0")
		f.wantEventsRecorded()
		integ := fl.Deployments[0].ID
		f.report(integ, started)
		d := f.report(integ, completed)
		f.wantEventsRecorded()

		before := f.s.EventsRecorded()
		if _, _, err := f.s.PublishArtifact(f.ctx, f.cfg, Artifact("cache", "1.0.0"), actorCI); deploydb.ErrorCode(err) != deploydb.ECONFLICT {
			t.Fatalf("publish again: %v, want ECONFLICT", err)
		}
		if _, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: integ, Status: started, Actor: actorOrchestrator}); deploydb.ErrorCode(err) != deploydb.ECONFLICT {
			t.Fatalf("report STARTED after COMPLETED: %v, want ECONFLICT", err)
		}
		if diff := cmp.Diff(before, f.s.EventsRecorded()); diff != "" {
			t.Errorf("refused writes changed the counts (-before +after):\n%s", diff)
		}

		f.lock("prod", deploydb.Action{Actor: actorCI, Reason: "release freeze"})
		f.wantEventsRecorded()

		// The timer's soak: promotion.completed, deployment.verified and
		// the next deployment.created, recorded by Tick.
		var due deploydb.Time
		for _, r := range d.Promotions {
			if r.Promotion == "soak" {
				due = r.DueAt
			}
		}
		if due.IsZero() {
			t.Fatalf("deployment %d awaits no soak: %+v", integ, d.Promotions)
		}
		f.at(due)()
		f.runTick(time.Time{})
		n := f.s.EventsRecorded()
		if n[deploydb.EventPromotionCompleted] != 1 || n[deploydb.EventDeploymentVerified] != 1 || n[deploydb.EventDeploymentCreated] != 2 {
			t.Errorf("after the soak: %v; want 1 promotion.completed, 1 deployment.verified, 2 deployment.created", n)
		}
		f.wantEventsRecorded()

		// The counts are a copy.
		n[deploydb.EventDeploymentCreated] = 100
		f.wantEventsRecorded()
	})
}
