package storetest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// flows returns every flow in the store, oldest first.
func (f *fixture) flows() []*deploydb.Flow {
	f.t.Helper()
	fls, err := f.s.FindFlows(f.ctx, deploydb.FlowFilter{Ascending: true, Page: pageAll()})
	if err != nil {
		f.t.Fatalf("find flows: %v", err)
	}
	return fls
}

// newest returns the newest flow in the store.
func (f *fixture) newest() *deploydb.Flow {
	f.t.Helper()
	fls := f.flows()
	if len(fls) == 0 {
		f.t.Fatal("no flows")
	}
	return fls[len(fls)-1]
}

// singleFlow returns the one-deployment flow that a rollback or hotfix of
// artifact a creates at now for service at position pos of pipeline
// standard, due at now and CREATED (ids left zero). A rollback only
// notifies when it fails, so that it never rolls back again.
func singleFlow(service string, pos int, reason deploydb.Reason, a deploydb.Artifact, checksum string, now deploydb.Time) *deploydb.Flow {
	d := newDeployment(service, pos, reason, a, now)
	d.Status, d.DueAt, d.ActivatedAt = created, now, now
	if reason == deploydb.ReasonRollback {
		d.FailureStrategy = deploydb.FailureNotify
	}
	return &deploydb.Flow{
		Artifact:       a,
		Service:        service,
		Pipeline:       "standard",
		Reason:         reason,
		Status:         deploydb.FlowCreated,
		Deployments:    []deploydb.Deployment{d},
		ConfigChecksum: checksum,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
}

// wantDetail fails the test unless ev's detail contains each of words.
func wantDetail(t *testing.T, ev *deploydb.Event, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(ev.Detail, w) {
			t.Errorf("%s detail %q does not say %q", ev.Type, ev.Detail, w)
		}
	}
}

func testFailureStrategy(t *testing.T, open Opener) {
	t.Run("Notify", func(t *testing.T) {
		// billing notifies: deployment.failed fires, the flow stops, and
		// nothing is rolled back even with a last known good.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.happen(func() { f.report(v2.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &v2.Deployments[0], failed, actorOrchestrator, inInteg()...))
		f.wantStatuses(v2.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
		if n := len(f.flows()); n != 2 {
			t.Errorf("%d flows, want 2: notify rolls nothing back", n)
		}
	})

	t.Run("Ignore", func(t *testing.T) {
		// batch ignores failures in integ: recorded, the flow stops,
		// nothing fires, nothing is rolled back.
		f := newFixture(t, open)
		_, v1 := f.publishOne("batch", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("batch", "2.0.0")
		f.happen(func() { f.report(v2.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &v2.Deployments[0], failed, actorOrchestrator))
		f.wantStatuses(v2.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
		if n := len(f.flows()); n != 2 {
			t.Errorf("%d flows, want 2: ignore rolls nothing back", n)
		}
	})

	t.Run("Rollback", func(t *testing.T) {
		// ledger rolls back: when 2.0.0 fails in integ, 1.0.0, verified
		// there before, is deployed again by a flow of its own.
		f := newFixture(t, open)
		a1, v1 := f.publishOne("ledger", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("ledger", "2.0.0")
		f.report(v2.Deployments[0].ID, started)
		var rb *deploydb.Flow
		evs := f.happenThen(func() {
			f.report(v2.Deployments[0].ID, failed)
			rb = f.newest()
			if len(rb.Deployments) != 1 {
				t.Fatalf("newest flow %d has %d deployments, want the rollback's one", rb.ID, len(rb.Deployments))
			}
		}, func() []owed {
			return []owed{
				about(deploydb.EventDeploymentFailed, &v2.Deployments[0], failed, actorOrchestrator, inInteg()...),
				about(deploydb.EventDeploymentCreated, &rb.Deployments[0], created, actorOrchestrator, inInteg()...),
			}
		})
		wantDetail(t, evs[0], "rollback", "1.0.0")
		now := f.now()
		if diff := cmp.Diff(singleFlow("ledger", 0, deploydb.ReasonRollback, *a1, f.cfg.Checksum, now), rb, ignoreIDs()); diff != "" {
			t.Errorf("rollback flow (-want +got):\n%s", diff)
		}
		new(ids).check(t, []*deploydb.Flow{v2, rb})
		f.wantStatuses(v2.ID, deploydb.FlowFailed, failed, notStarted, notStarted)

		// The rollback is deployed like any other deployment.
		f.verify(rb.Deployments[0].ID)
		f.wantStatuses(rb.ID, deploydb.FlowSuccess, success)
	})

	t.Run("RollbackAheadOfWaiting", func(t *testing.T) {
		// 3.0.0 waits for 2.0.0 in integ; 2.0.0 fails and the rollback to
		// 1.0.0 goes first. 3.0.0 waits on, and takes integ after it.
		f := newFixture(t, open)
		_, v1 := f.publishOne("ledger", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("ledger", "2.0.0")
		_, v3 := f.publishOne("ledger", "3.0.0")
		f.wantWaiting(v3.Deployments[0].ID, busy(v2.Deployments[0].ID))
		f.report(v2.Deployments[0].ID, failed)
		rb := f.newest()
		if rb.Reason != deploydb.ReasonRollback || rb.Artifact.ID != v1.Artifact.ID {
			t.Fatalf("newest flow %d is a %s flow of %s, want the rollback to 1.0.0", rb.ID, rb.Reason, rb.Artifact.Version)
		}
		f.wantStatuses(rb.ID, deploydb.FlowCreated, created)
		f.wantWaiting(v3.Deployments[0].ID, busy(rb.Deployments[0].ID))
		f.wantStatuses(v3.ID, deploydb.FlowCreated, notStarted, notStarted, notStarted)

		f.happen(func() { f.report(rb.Deployments[0].ID, completed) },
			about(deploydb.EventDeploymentCompleted, &rb.Deployments[0], completed, actorOrchestrator, inInteg()...),
			about(deploydb.EventDeploymentVerified, &rb.Deployments[0], success, actorOrchestrator, inInteg()...),
			wantFlowCompleted(rb, actorOrchestrator, inInteg()...),
			about(deploydb.EventDeploymentCreated, &v3.Deployments[0], created, actorOrchestrator, inInteg()...))
	})

	t.Run("RollbackByPromotion", func(t *testing.T) {
		// ledger 2.0.0 fails a promotion in staging, where 1.0.0 was
		// verified: 1.0.0 is deployed there again, with the promotions
		// of staging.
		f := newFixture(t, open)
		a1, v1 := f.publishOne("ledger", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		f.verify(v1.Deployments[1].ID)
		_, v2 := f.publishOne("ledger", "2.0.0")
		f.verify(v2.Deployments[0].ID)
		staging := v2.Deployments[1].ID
		f.report(staging, completed)
		var rb *deploydb.Flow
		evs := f.happenThen(func() {
			f.promote(staging, "smoke", deploydb.PromotionFailed)
			rb = f.newest()
		}, func() []owed {
			return []owed{
				promoted(&v2.Deployments[1], "smoke", deploydb.PromotionFailed, failed, actorTests, inStaging()...),
				about(deploydb.EventDeploymentFailed, &v2.Deployments[1], failed, actorTests, inStaging()...),
				about(deploydb.EventDeploymentCreated, &rb.Deployments[0], created, actorTests, inStaging()...),
			}
		})
		wantDetail(t, evs[1], "rollback", "1.0.0")
		if diff := cmp.Diff(singleFlow("ledger", 1, deploydb.ReasonRollback, *a1, f.cfg.Checksum, f.now()), rb, ignoreIDs()); diff != "" {
			t.Errorf("rollback flow (-want +got):\n%s", diff)
		}
	})

	t.Run("RollbackWithoutLastGood", func(t *testing.T) {
		// Nothing was ever verified in integ: the failure says so, and
		// nothing else happens.
		f := newFixture(t, open)
		_, v1 := f.publishOne("ledger", "1.0.0")
		evs := f.happen(func() { f.report(v1.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &v1.Deployments[0], failed, actorOrchestrator, inInteg()...))
		wantDetail(t, evs[0], "no last known good")
		if n := len(f.flows()); n != 1 {
			t.Errorf("%d flows, want 1: there is nothing to roll back to", n)
		}
	})

	t.Run("RollbackFailed", func(t *testing.T) {
		// A rollback that fails only notifies: it never rolls back again.
		f := newFixture(t, open)
		_, v1 := f.publishOne("ledger", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("ledger", "2.0.0")
		f.report(v2.Deployments[0].ID, failed)
		rb := f.newest()
		f.happen(func() { f.report(rb.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &rb.Deployments[0], failed, actorOrchestrator, inInteg()...))
		f.wantStatuses(rb.ID, deploydb.FlowFailed, failed)
		if n := len(f.flows()); n != 3 {
			t.Errorf("%d flows, want 3: a failed rollback is not rolled back", n)
		}
	})
}

// wantFlowCompleted returns the flow.completed event of flow fl, finished
// in its last deployment's environment by actor.
func wantFlowCompleted(fl *deploydb.Flow, actor string, hooks ...string) owed {
	last := fl.Deployments[len(fl.Deployments)-1]
	return owed{Event: deploydb.Event{Type: deploydb.EventFlowCompleted, Service: fl.Service, Environment: last.Environment,
		Artifact: fl.Artifact.ID, Flow: fl.ID, Status: string(deploydb.FlowSuccess), Actor: actor}, hooks: hooks}
}
