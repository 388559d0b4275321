package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// tickActor is who the events of what time does are recorded as.
const tickActor = "deploydb"

// runTick runs Tick and fails the test unless it says it next has something
// to do at next (the zero time for nothing).
func (f *fixture) runTick(next time.Time) {
	f.t.Helper()
	got, err := f.s.Tick(f.ctx, f.cfg)
	if err != nil {
		f.t.Fatalf("tick: %v", err)
	}
	if !got.Equal(next) || got.IsZero() != next.IsZero() {
		f.t.Errorf("tick at %s: next at %s, want %s", f.clock.Now(), got, next)
	}
}

// at returns a function that sets the clock to t, for happenAt.
func (f *fixture) at(t deploydb.Time) func() deploydb.Time {
	return func() deploydb.Time {
		f.clock.Advance(t.Sub(f.clock.Now()))
		return f.now()
	}
}

// soakDue fails the test unless deployment d awaits its soak result until
// due, and returns it.
func (f *fixture) soakDue(d *deploydb.Deployment, due deploydb.Time) deploydb.PromotionResult {
	f.t.Helper()
	for _, r := range d.Promotions {
		if r.Promotion == "soak" {
			if r.Status != deploydb.PromotionStarted || !r.DueAt.Equal(due.Time) || r.SoakMs != SoakTime.Milliseconds() {
				f.t.Errorf("deployment %d: soak is %s, due at %s, soaks %d ms; want STARTED, due at %s, %d ms",
					d.ID, r.Status, r.DueAt, r.SoakMs, due, SoakTime.Milliseconds())
			}
			return r
		}
	}
	f.t.Fatalf("deployment %d has no soak result: %+v", d.ID, d.Promotions)
	return deploydb.PromotionResult{}
}

func testTick(t *testing.T, open Opener) {
	t.Run("Idle", func(t *testing.T) {
		f := newFixture(t, open)
		f.runTick(time.Time{})
		_, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		before := f.state()
		f.runTick(time.Time{})
		f.unchanged(before)
	})

	t.Run("Soak", func(t *testing.T) {
		// cache soaks in integ: once its deployment has been COMPLETED
		// for SoakTime, the result succeeds by itself, reported by
		// DeployDB, and the flow moves on.
		f := newFixture(t, open)
		_, fl := f.publishOne("cache", "1.0.0")
		integ := fl.Deployments[0].ID
		f.runTick(time.Time{})
		completedAt := f.tick()
		d := f.report(integ, completed)
		due := deploydb.NewTime(completedAt.Add(SoakTime))
		r := f.soakDue(d, due)
		f.wantReadBack(d)

		// Not yet: Tick says when.
		before := f.state()
		f.runTick(due.Time)
		f.clock.Advance(SoakTime / 2)
		f.runTick(due.Time)
		f.at(deploydb.NewTime(due.Add(-time.Millisecond)))()
		f.runTick(due.Time)
		f.unchanged(before)

		f.happenAt(f.at(due), func() { f.runTick(time.Time{}) }, func() []owed {
			return []owed{
				promoted(&fl.Deployments[0], "soak", deploydb.PromotionSuccess, success, tickActor, inInteg()...),
				about(deploydb.EventDeploymentVerified, &fl.Deployments[0], success, tickActor, inInteg()...),
				about(deploydb.EventDeploymentCreated, &fl.Deployments[1], created, tickActor, inStaging()...),
			}
		})
		r.Status, r.ReportedBy, r.DueAt, r.UpdatedAt = deploydb.PromotionSuccess, tickActor, deploydb.Time{}, due
		if diff := cmp.Diff([]deploydb.PromotionResult{r}, f.deployment(integ).Promotions); diff != "" {
			t.Errorf("soak result (-want +got):\n%s", diff)
		}
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)

		// Done once: ticking again changes nothing.
		before = f.state()
		f.tick()
		f.runTick(time.Time{})
		f.unchanged(before)
	})

	t.Run("SoakAndOthers", func(t *testing.T) {
		// In staging cache awaits soak, smoke and approval: it is
		// verified when the last of them succeeds, here the soak.
		f := newFixture(t, open)
		_, fl := f.publishOne("cache", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.at(deploydb.NewTime(f.clock.Now().Add(SoakTime)))()
		f.runTick(time.Time{})
		staging := fl.Deployments[1].ID
		completedAt := f.tick()
		due := deploydb.NewTime(completedAt.Add(SoakTime))
		f.soakDue(f.report(staging, completed), due)
		f.promote(staging, "smoke", deploydb.PromotionSuccess)
		f.promote(staging, "approval", deploydb.PromotionSuccess)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, completed, notStarted)
		f.runTick(due.Time)
		f.at(due)()
		f.runTick(time.Time{})
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, success, created)
	})

	t.Run("SoakFailed", func(t *testing.T) {
		// A deployment that failed another promotion no longer soaks.
		f := newFixture(t, open)
		_, fl := f.publishOne("cache", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.at(deploydb.NewTime(f.clock.Now().Add(SoakTime)))()
		f.runTick(time.Time{})
		staging := fl.Deployments[1].ID
		completedAt := f.tick()
		due := deploydb.NewTime(completedAt.Add(SoakTime))
		f.report(staging, completed)
		f.promote(staging, "smoke", deploydb.PromotionFailed)
		f.wantStatuses(fl.ID, deploydb.FlowFailed, success, failed, notStarted)
		for _, r := range f.deployment(staging).Promotions {
			if !r.DueAt.IsZero() {
				t.Errorf("%s is due at %s after the deployment FAILED, want never", r.Promotion, r.DueAt)
			}
		}
		f.runTick(time.Time{})
		before := f.state()
		f.at(due)()
		f.runTick(time.Time{})
		f.unchanged(before)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Racing ticks apply a due soak once.
		f := newFixture(t, open)
		_, fl := f.publishOne("cache", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.at(deploydb.NewTime(f.clock.Now().Add(SoakTime)))()
		after := f.lastEvent()
		errs := race(racers, func(int) error {
			_, err := f.s.Tick(f.ctx, f.cfg)
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("racer %d: %v", i, err)
			}
		}
		wantCounts(t, "events", map[deploydb.EventType]int{
			deploydb.EventPromotionCompleted: 1, deploydb.EventDeploymentVerified: 1, deploydb.EventDeploymentCreated: 1,
		}, f.countEvents(after))
	})

	t.Run("Freeze", func(t *testing.T) {
		// staging is frozen for the first hour: search, verified in
		// integ, waits for the window to end, and Tick then activates
		// it.
		f := newFixture(t, open)
		from, until := deploydb.NewTime(start().Add(-time.Minute)), deploydb.NewTime(start().Add(time.Hour))
		f.cfg.Environments["staging"].Freezes = []deploydb.Freeze{{Reason: "release freeze", Start: &from, End: &until}}
		_, fl := f.publishOne("search", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.wantWaiting(fl.Deployments[1].ID, "frozen: release freeze")
		f.runTick(until.Time)

		before := f.state()
		f.at(deploydb.NewTime(until.Add(-time.Millisecond)))()
		f.runTick(until.Time)
		f.unchanged(before)

		f.happenAt(f.at(until), func() { f.runTick(time.Time{}) }, func() []owed {
			return []owed{about(deploydb.EventDeploymentCreated, &fl.Deployments[1], created, tickActor, inStaging()...)}
		})
		if d := f.deployment(fl.Deployments[1].ID); d.Waiting != "" {
			t.Errorf("activated deployment still waits: %q", d.Waiting)
		}
	})

	t.Run("FrozenEnvironmentLeftConfig", func(t *testing.T) {
		// staging is frozen while search waits there; then a reload drops
		// staging from the config. Nothing can freeze it any more, so the
		// next Tick activates the waiting deployment instead of leaving it
		// stuck.
		f := newFixture(t, open)
		from, until := deploydb.NewTime(start().Add(-time.Minute)), deploydb.NewTime(start().Add(time.Hour))
		f.cfg.Environments["staging"].Freezes = []deploydb.Freeze{{Reason: "release freeze", Start: &from, End: &until}}
		_, fl := f.publishOne("search", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.wantWaiting(fl.Deployments[1].ID, "frozen: release freeze")
		delete(f.cfg.Environments, "staging")
		if _, err := f.s.Tick(f.ctx, f.cfg); err != nil {
			t.Fatal(err)
		}
		if d := f.deployment(fl.Deployments[1].ID); d.Status != created || d.Waiting != "" {
			t.Errorf("deployment in the dropped environment = %s waiting %q, want CREATED", d.Status, d.Waiting)
		}
	})

	t.Run("FreezeAndLock", func(t *testing.T) {
		// When the freeze ends, a lock still holds.
		f := newFixture(t, open)
		from, until := deploydb.NewTime(start().Add(-time.Minute)), deploydb.NewTime(start().Add(time.Hour))
		f.cfg.Environments["staging"].Freezes = []deploydb.Freeze{{Reason: "release freeze", Start: &from, End: &until}}
		_, fl := f.publishOne("search", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		f.lock("staging", alice())
		f.at(until)()
		f.runTick(time.Time{})
		f.wantWaiting(fl.Deployments[1].ID, "locked: "+alice().Reason)
		f.unlock("staging", alice())
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
	})
}
