package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// envEvent returns the event typ an action a records about environment
// env, owing calls to hooks.
func envEvent(typ deploydb.EventType, env string, a deploydb.Action, hooks ...string) owed {
	return owed{Event: deploydb.Event{Type: typ, Environment: env, Actor: a.Actor, Reason: a.Reason}, hooks: hooks}
}

// lock locks env for a and returns the lock.
func (f *fixture) lock(env string, a deploydb.Action) *deploydb.Lock {
	f.t.Helper()
	l, err := f.s.LockEnvironment(f.ctx, f.cfg, env, a)
	if err != nil {
		f.t.Fatalf("lock %s: %v", env, err)
	}
	return l
}

// unlock unlocks env for a.
func (f *fixture) unlock(env string, a deploydb.Action) {
	f.t.Helper()
	if err := f.s.UnlockEnvironment(f.ctx, f.cfg, env, a); err != nil {
		f.t.Fatalf("unlock %s: %v", env, err)
	}
}

// wantLocks fails the test unless the locks in force are want.
func (f *fixture) wantLocks(want map[string]*deploydb.Lock) {
	f.t.Helper()
	got, err := f.s.FindLocks(f.ctx)
	if err != nil {
		f.t.Fatalf("find locks: %v", err)
	}
	if got == nil {
		f.t.Error("FindLocks returned nil, want a map")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("locks (-want +got):\n%s", diff)
	}
}

func testLocks(t *testing.T, open Opener) {
	unlockedBy := deploydb.Action{Actor: "bob", Reason: "incident 42 resolved"}

	t.Run("OK", func(t *testing.T) {
		// A lock holds activation: a deployment that becomes due waits,
		// saying why, and is activated when the lock is released.
		f := newFixture(t, open)
		f.wantLocks(map[string]*deploydb.Lock{})
		var l *deploydb.Lock
		f.happen(func() { l = f.lock("integ", alice()) },
			envEvent(deploydb.EventEnvironmentLocked, "integ", alice(), inInteg()...))
		want := &deploydb.Lock{Environment: "integ", Reason: alice().Reason, Actor: alice().Actor, CreatedAt: f.now()}
		if diff := cmp.Diff(want, l); diff != "" {
			t.Errorf("lock (-want +got):\n%s", diff)
		}
		f.wantLocks(map[string]*deploydb.Lock{"integ": want})

		after := f.lastEvent()
		_, fl := f.publishOne("billing", "1.0.0")
		f.wantWaiting(fl.Deployments[0].ID, "locked: "+alice().Reason)
		if diff := cmp.Diff(fl, f.flow(fl.ID)); diff != "" {
			t.Errorf("flow read back differs from the one returned (-returned +read):\n%s", diff)
		}
		wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventArtifactPublished: 1}, f.countEvents(after))

		f.happen(func() { f.unlock("integ", unlockedBy) },
			envEvent(deploydb.EventEnvironmentUnlocked, "integ", unlockedBy, inInteg()...),
			about(deploydb.EventDeploymentCreated, &fl.Deployments[0], created, unlockedBy.Actor, inInteg()...).because(unlockedBy.Reason))
		f.wantLocks(map[string]*deploydb.Lock{})
		if d := f.deployment(fl.Deployments[0].ID); d.Waiting != "" {
			t.Errorf("activated deployment still waits: %q", d.Waiting)
		}
	})

	t.Run("NothingRunningTouched", func(t *testing.T) {
		// Locking an environment leaves what runs there alone; what
		// waits for it then waits for the lock too.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.report(v1.Deployments[0].ID, started)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.lock("integ", alice())
		f.wantStatuses(v1.ID, deploydb.FlowCreated, started, notStarted, notStarted)
		f.wantWaiting(v2.Deployments[0].ID, busy(v1.Deployments[0].ID))

		f.verify(v1.Deployments[0].ID)
		f.wantStatuses(v1.ID, deploydb.FlowCreated, success, created, notStarted)
		f.wantWaiting(v2.Deployments[0].ID, "locked: "+alice().Reason)

		f.unlock("integ", unlockedBy)
		f.wantStatuses(v2.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("SeveralServices", func(t *testing.T) {
		// A lock holds its environment only; releasing it activates what
		// waited there, of every service.
		f := newFixture(t, open)
		f.lock("staging", alice())
		f.lock("prod", alice())
		_, flows := f.publish("shared", "1.0.0")
		for _, fl := range flows {
			f.verify(fl.Deployments[0].ID)
			f.wantWaiting(fl.Deployments[1].ID, "locked: "+alice().Reason)
		}
		f.unlock("staging", unlockedBy)
		for _, fl := range flows {
			f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
		}
		f.wantLocks(map[string]*deploydb.Lock{"prod": {Environment: "prod", Reason: alice().Reason, Actor: alice().Actor, CreatedAt: deploydb.NewTime(start())}})
	})

	t.Run("ErrLocked", func(t *testing.T) {
		f := newFixture(t, open)
		l := f.lock("prod", alice())
		before := f.state()
		f.tick()
		got, err := f.s.LockEnvironment(f.ctx, f.cfg, "prod", bob())
		e := wantCode(t, err, deploydb.ECONFLICT)
		if got != nil {
			t.Errorf("returned %+v with an error, want nil", got)
		}
		if diff := cmp.Diff(l, e.Current); diff != "" {
			t.Errorf("conflict Current (-lock in force +current):\n%s", diff)
		}
		f.unchanged(before)
		f.wantLocks(map[string]*deploydb.Lock{"prod": l})
	})

	t.Run("ErrUnlockNotLocked", func(t *testing.T) {
		f := newFixture(t, open)
		f.lock("prod", alice())
		f.unlock("prod", unlockedBy)
		before := f.state()
		for _, env := range []string{"prod", "integ", "qa"} {
			err := f.s.UnlockEnvironment(f.ctx, f.cfg, env, unlockedBy)
			wantCode(t, err, deploydb.ENOTFOUND)
		}
		f.unchanged(before)
	})

	t.Run("ErrUnknownEnvironment", func(t *testing.T) {
		f := newFixture(t, open)
		before := f.state()
		got, err := f.s.LockEnvironment(f.ctx, f.cfg, "qa", alice())
		wantCode(t, err, deploydb.ENOTFOUND)
		if got != nil {
			t.Errorf("returned %+v with an error, want nil", got)
		}
		f.unchanged(before)
		f.wantLocks(map[string]*deploydb.Lock{})
	})
}
