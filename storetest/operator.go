package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// alice and bob are operators of the suite's operator actions.
func alice() deploydb.Action {
	return deploydb.Action{Actor: "alice", Reason: "incident 42: the build is broken"}
}

func bob() deploydb.Action { return deploydb.Action{Actor: "bob", Reason: "second try"} }

const cancelled = deploydb.DeploymentCancelled

// operatorEvent returns the event an operator action a records about flow
// fl and, for actions on one deployment, deployment d; status is the
// deployment's status (the flow's without one) after the action. Operator
// events fire no webhook: what the action causes fires its own.
func operatorEvent(typ deploydb.EventType, fl *deploydb.Flow, d *deploydb.Deployment, status string, a deploydb.Action) owed {
	ev := deploydb.Event{Type: typ, Service: fl.Service, Artifact: fl.Artifact.ID, Flow: fl.ID, Status: status, Actor: a.Actor, Reason: a.Reason}
	if d != nil {
		ev.Environment, ev.Artifact, ev.Deployment = d.Environment, d.Artifact.ID, d.ID
	}
	return owed{Event: ev}
}

// wantFlowConflict fails the test unless a conflict carries flow id as it
// is now in the store.
func (f *fixture) wantFlowConflict(err error, id int64) {
	f.t.Helper()
	e := wantCode(f.t, err, deploydb.ECONFLICT)
	cur, ok := e.Current.(*deploydb.Flow)
	if !ok {
		f.t.Fatalf("conflict Current is %T, want *deploydb.Flow", e.Current)
	}
	if diff := cmp.Diff(f.flow(id), cur); diff != "" {
		f.t.Errorf("conflict Current differs from the stored flow (-stored +current):\n%s", diff)
	}
}

func testCancelFlow(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		// Cancelling 1.0.0, started in integ, frees integ for 2.0.0.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.report(v1.Deployments[0].ID, started)
		_, v2 := f.publishOne("billing", "2.0.0")
		want := clone(f.flow(v1.ID))
		var got *deploydb.Flow
		f.happen(func() {
			var err error
			if got, err = f.s.CancelFlow(f.ctx, f.cfg, v1.ID, alice()); err != nil {
				t.Fatal(err)
			}
		},
			operatorEvent(deploydb.EventOperatorCancel, v1, nil, string(deploydb.FlowCancelled), alice()),
			// Only what was handed to the orchestrator is announced.
			about(deploydb.EventDeploymentCancelled, &v1.Deployments[0], cancelled, alice().Actor, inInteg()...).because(alice().Reason),
			about(deploydb.EventDeploymentCancelled, &v1.Deployments[1], cancelled, alice().Actor).because(alice().Reason),
			about(deploydb.EventDeploymentCancelled, &v1.Deployments[2], cancelled, alice().Actor).because(alice().Reason),
			about(deploydb.EventDeploymentCreated, &v2.Deployments[0], created, alice().Actor, inInteg()...).because(alice().Reason))
		now := f.now()
		want.Status, want.UpdatedAt = deploydb.FlowCancelled, now
		for i := range want.Deployments {
			want.Deployments[i].Moved(cancelled, now)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cancelled flow (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(got, f.flow(v1.ID)); diff != "" {
			t.Errorf("flow read back differs from the one returned (-returned +read):\n%s", diff)
		}
		f.wantStatuses(v2.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("Waiting", func(t *testing.T) {
		// A flow waiting for its first environment is cancelled quietly
		// and the one it waited for runs on.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		_, v2 := f.publishOne("billing", "2.0.0")
		f.happen(func() {
			if _, err := f.s.CancelFlow(f.ctx, f.cfg, v2.ID, alice()); err != nil {
				t.Fatal(err)
			}
		},
			operatorEvent(deploydb.EventOperatorCancel, v2, nil, string(deploydb.FlowCancelled), alice()),
			about(deploydb.EventDeploymentCancelled, &v2.Deployments[0], cancelled, alice().Actor).because(alice().Reason),
			about(deploydb.EventDeploymentCancelled, &v2.Deployments[1], cancelled, alice().Actor).because(alice().Reason),
			about(deploydb.EventDeploymentCancelled, &v2.Deployments[2], cancelled, alice().Actor).because(alice().Reason))
		fl := f.wantStatuses(v2.ID, deploydb.FlowCancelled, cancelled, cancelled, cancelled)
		if w := fl.Deployments[0].Waiting; w != "" {
			t.Errorf("cancelled deployment still waits: %q", w)
		}
		f.wantStatuses(v1.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("LeavesCompleted", func(t *testing.T) {
		// A deployment that COMPLETED is deployed: cancelling its flow
		// leaves it to its promotions, and its environment stays busy
		// until they decide. The flow goes no further.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		staging1 := v1.Deployments[1].ID
		f.report(staging1, completed)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.verify(v2.Deployments[0].ID)
		f.wantWaiting(v2.Deployments[1].ID, busy(staging1))

		f.happen(func() {
			if _, err := f.s.CancelFlow(f.ctx, f.cfg, v1.ID, alice()); err != nil {
				t.Fatal(err)
			}
		},
			operatorEvent(deploydb.EventOperatorCancel, v1, nil, string(deploydb.FlowCancelled), alice()),
			about(deploydb.EventDeploymentCancelled, &v1.Deployments[2], cancelled, alice().Actor).because(alice().Reason))
		f.wantStatuses(v1.ID, deploydb.FlowCancelled, success, completed, cancelled)
		f.wantWaiting(v2.Deployments[1].ID, busy(staging1))

		f.promote(staging1, "smoke", deploydb.PromotionSuccess)
		f.happen(func() { f.promote(staging1, "approval", deploydb.PromotionSuccess) },
			promoted(&v1.Deployments[1], "approval", deploydb.PromotionSuccess, success, actorTests, inStaging()...),
			about(deploydb.EventDeploymentVerified, &v1.Deployments[1], success, actorTests, inStaging()...),
			about(deploydb.EventDeploymentCreated, &v2.Deployments[1], created, actorTests, inStaging()...))
		f.wantStatuses(v1.ID, deploydb.FlowCancelled, success, success, cancelled)
	})

	for _, tc := range []struct {
		name   string
		finish func(f *fixture) *deploydb.Flow
	}{
		{"ErrSuccess", func(f *fixture) *deploydb.Flow {
			_, fl := f.publishOne("search", "1.0.0")
			for _, d := range fl.Deployments {
				f.verify(d.ID)
			}
			return fl
		}},
		{"ErrFailed", func(f *fixture) *deploydb.Flow {
			_, fl := f.publishOne("billing", "1.0.0")
			f.report(fl.Deployments[0].ID, failed)
			return fl
		}},
		{"ErrCancelled", func(f *fixture) *deploydb.Flow {
			_, fl := f.publishOne("billing", "1.0.0")
			if _, err := f.s.CancelFlow(f.ctx, f.cfg, fl.ID, alice()); err != nil {
				f.t.Fatal(err)
			}
			return fl
		}},
		{"ErrSuperseded", func(f *fixture) *deploydb.Flow {
			_, v1 := f.publishOne("billing", "1.0.0")
			_, v2 := f.publishOne("billing", "2.0.0")
			f.publishOne("billing", "3.0.0")
			f.report(v1.Deployments[0].ID, failed)
			return v2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			fl := tc.finish(f)
			if st := f.flow(fl.ID).Status; !st.Terminal() {
				t.Fatalf("flow %d is %s, want it finished", fl.ID, st)
			}
			before := f.state()
			f.tick()
			got, err := f.s.CancelFlow(f.ctx, f.cfg, fl.ID, bob())
			f.wantFlowConflict(err, fl.ID)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
			f.unchanged(before)
		})
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		before := f.state()
		for _, id := range []int64{fl.ID + 1000, 0, -1} {
			got, err := f.s.CancelFlow(f.ctx, f.cfg, id, alice())
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
		f.unchanged(before)
	})
}

func testRetryDeployment(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		// A failed deployment is retried as a new deployment at the same
		// place in its flow, which goes on from there.
		f := newFixture(t, open)
		a, v1 := f.publishOne("billing", "1.0.0")
		integ := v1.Deployments[0]
		f.report(integ.ID, failed)
		var got *deploydb.Deployment
		f.happenThen(func() {
			var err error
			if got, err = f.s.RetryDeployment(f.ctx, f.cfg, integ.ID, alice()); err != nil {
				t.Fatal(err)
			}
		}, func() []owed {
			return []owed{
				operatorEvent(deploydb.EventOperatorRetry, v1, &integ, string(failed), alice()),
				about(deploydb.EventDeploymentCreated, got, created, alice().Actor, inInteg()...).because(alice().Reason),
			}
		})
		now := f.now()
		want := newDeployment("billing", 0, deploydb.ReasonRetry, *a, now)
		want.Status, want.DueAt, want.ActivatedAt = created, now, now
		if diff := cmp.Diff(&want, got, ignoreIDs()); diff != "" {
			t.Errorf("retry (-want +got):\n%s", diff)
		}
		f.wantReadBack(got)
		fl := f.flow(v1.ID)
		if got.Flow != v1.ID || len(fl.Deployments) != 4 || fl.Deployments[1].ID != got.ID {
			t.Errorf("retry %d in flow %d, flow %d has deployments %+v; want it after the failed one in flow %d", got.ID, got.Flow, v1.ID, fl.Deployments, v1.ID)
		}
		if got.ID <= v1.Deployments[2].ID || got.Promotions[0].ID <= v1.Deployments[2].Promotions[1].ID {
			t.Errorf("retry has ids %d and %d, want new ones", got.ID, got.Promotions[0].ID)
		}
		f.wantStatuses(v1.ID, deploydb.FlowCreated, failed, created, notStarted, notStarted)

		f.verify(got.ID)
		f.wantStatuses(v1.ID, deploydb.FlowCreated, failed, success, created, notStarted)
	})

	t.Run("Waits", func(t *testing.T) {
		// integ is busy with 2.0.0: the retry of 1.0.0 waits for it.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.report(v1.Deployments[0].ID, failed)
		_, v2 := f.publishOne("billing", "2.0.0")
		var got *deploydb.Deployment
		f.happen(func() {
			var err error
			if got, err = f.s.RetryDeployment(f.ctx, f.cfg, v1.Deployments[0].ID, alice()); err != nil {
				t.Fatal(err)
			}
		}, operatorEvent(deploydb.EventOperatorRetry, v1, &v1.Deployments[0], string(failed), alice()))
		f.wantReadBack(got)
		f.wantWaiting(got.ID, busy(v2.Deployments[0].ID))
		f.wantStatuses(v1.ID, deploydb.FlowCreated, failed, notStarted, notStarted, notStarted)

		f.verify(v2.Deployments[0].ID)
		f.wantStatuses(v1.ID, deploydb.FlowCreated, failed, created, notStarted, notStarted)
	})

	for _, tc := range []struct {
		name string
		// deployment returns the deployment to retry, of a flow it makes.
		deployment func(f *fixture) int64
	}{
		{"ErrCreated", func(f *fixture) int64 {
			_, fl := f.publishOne("billing", "1.0.0")
			return fl.Deployments[0].ID
		}},
		{"ErrNotStarted", func(f *fixture) int64 {
			_, fl := f.publishOne("billing", "1.0.0")
			return fl.Deployments[1].ID
		}},
		{"ErrSuccess", func(f *fixture) int64 {
			_, fl := f.publishOne("billing", "1.0.0")
			f.verify(fl.Deployments[0].ID)
			return fl.Deployments[0].ID
		}},
		{"ErrRetriedAlready", func(f *fixture) int64 {
			_, fl := f.publishOne("billing", "1.0.0")
			f.report(fl.Deployments[0].ID, failed)
			if _, err := f.s.RetryDeployment(f.ctx, f.cfg, fl.Deployments[0].ID, alice()); err != nil {
				f.t.Fatal(err)
			}
			return fl.Deployments[0].ID
		}},
		{"ErrRetryFailedAlready", func(f *fixture) int64 {
			// The retry failed too: only the retry may be retried.
			_, fl := f.publishOne("billing", "1.0.0")
			f.report(fl.Deployments[0].ID, failed)
			r, err := f.s.RetryDeployment(f.ctx, f.cfg, fl.Deployments[0].ID, alice())
			if err != nil {
				f.t.Fatal(err)
			}
			f.report(r.ID, failed)
			return fl.Deployments[0].ID
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			id := tc.deployment(f)
			before := f.state()
			f.tick()
			got, err := f.s.RetryDeployment(f.ctx, f.cfg, id, bob())
			f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), id)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
			f.unchanged(before)
		})
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, failed)
		before := f.state()
		for _, id := range []int64{fl.Deployments[2].ID + 1000, 0, -1} {
			got, err := f.s.RetryDeployment(f.ctx, f.cfg, id, alice())
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
		f.unchanged(before)
	})
}

func testRollback(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		// billing notifies on failure; an operator rolls integ back to
		// 1.0.0 after 2.0.0 failed there.
		f := newFixture(t, open)
		a1, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.report(v2.Deployments[0].ID, failed)
		var got *deploydb.Deployment
		f.happenThen(func() {
			var err error
			if got, err = f.s.Rollback(f.ctx, f.cfg, v2.Deployments[0].ID, alice()); err != nil {
				t.Fatal(err)
			}
		}, func() []owed {
			return []owed{
				operatorEvent(deploydb.EventOperatorRollback, v2, &v2.Deployments[0], string(failed), alice()),
				about(deploydb.EventDeploymentCreated, got, created, alice().Actor, inInteg()...).because(alice().Reason),
			}
		})
		want := singleFlow("billing", 0, deploydb.ReasonRollback, *a1, f.cfg.Checksum, f.now())
		if diff := cmp.Diff(&want.Deployments[0], got, ignoreIDs()); diff != "" {
			t.Errorf("rollback (-want +got):\n%s", diff)
		}
		f.wantReadBack(got)
		fl := f.flow(got.Flow)
		if diff := cmp.Diff(want, fl, ignoreIDs()); diff != "" {
			t.Errorf("rollback flow (-want +got):\n%s", diff)
		}
		new(ids).check(t, []*deploydb.Flow{v2, fl})
		f.wantStatuses(v2.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
	})

	t.Run("ErrPending", func(t *testing.T) {
		// A second rollback while the first waits or runs would only
		// queue the same artifact again (a double click).
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.report(v2.Deployments[0].ID, failed)
		first, err := f.s.Rollback(f.ctx, f.cfg, v2.Deployments[0].ID, alice())
		if err != nil {
			t.Fatal(err)
		}
		before := f.state()
		_, err = f.s.Rollback(f.ctx, f.cfg, v2.Deployments[0].ID, alice())
		f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), first.ID)
		f.unchanged(before)
		// Once it is verified, rolling back again is allowed.
		f.verify(first.ID)
		if _, err := f.s.Rollback(f.ctx, f.cfg, v2.Deployments[0].ID, alice()); err != nil {
			t.Fatalf("rollback after the first finished: %v", err)
		}
	})

	t.Run("AheadOfWaiting", func(t *testing.T) {
		// 2.0.0 runs in integ and 3.0.0 waits for it; the rollback
		// waits too, and goes first when integ frees.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.report(v2.Deployments[0].ID, started)
		_, v3 := f.publishOne("billing", "3.0.0")
		var got *deploydb.Deployment
		f.happen(func() {
			var err error
			if got, err = f.s.Rollback(f.ctx, f.cfg, v2.Deployments[0].ID, alice()); err != nil {
				t.Fatal(err)
			}
		}, operatorEvent(deploydb.EventOperatorRollback, v2, &v2.Deployments[0], string(started), alice()))
		f.wantReadBack(got)
		f.wantWaiting(got.ID, busy(v2.Deployments[0].ID))

		f.happen(func() { f.report(v2.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &v2.Deployments[0], failed, actorOrchestrator, inInteg()...),
			about(deploydb.EventDeploymentCreated, got, created, actorOrchestrator, inInteg()...))
		f.wantWaiting(v3.Deployments[0].ID, busy(got.ID))
		f.verify(got.ID)
		f.wantStatuses(v3.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("ErrNoLastGood", func(t *testing.T) {
		// Nothing was verified in integ yet; then nothing in staging,
		// though integ has a last known good.
		f := newFixture(t, open)
		rollback := func(id int64) {
			t.Helper()
			before := f.state()
			f.tick()
			got, err := f.s.Rollback(f.ctx, f.cfg, id, alice())
			f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), id)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
			f.unchanged(before)
		}
		_, v1 := f.publishOne("billing", "1.0.0")
		f.report(v1.Deployments[0].ID, failed)
		rollback(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.verify(v2.Deployments[0].ID)
		f.report(v2.Deployments[1].ID, failed)
		rollback(v2.Deployments[1].ID)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		before := f.state()
		for _, id := range []int64{fl.Deployments[2].ID + 1000, 0, -1} {
			got, err := f.s.Rollback(f.ctx, f.cfg, id, alice())
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
		f.unchanged(before)
	})
}

func testHotfix(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		// 1.0.0 goes straight to prod, out of pipeline order.
		f := newFixture(t, open)
		a1, v1 := f.publishOne("billing", "1.0.0")
		var got *deploydb.Deployment
		f.happenThen(func() {
			var err error
			if got, err = f.s.Hotfix(f.ctx, f.cfg, deploydb.HotfixRequest{Artifact: a1.ID, Service: "billing", Environment: "prod", Action: alice()}); err != nil {
				t.Fatal(err)
			}
		}, func() []owed {
			fl := &deploydb.Flow{ID: got.Flow, Service: "billing", Artifact: *a1}
			return []owed{
				operatorEvent(deploydb.EventOperatorHotfix, fl, got, string(created), alice()),
				about(deploydb.EventDeploymentCreated, got, created, alice().Actor, HookProd, HookGlobal).because(alice().Reason),
			}
		})
		want := singleFlow("billing", 2, deploydb.ReasonHotfix, *a1, f.cfg.Checksum, f.now())
		if diff := cmp.Diff(&want.Deployments[0], got, ignoreIDs()); diff != "" {
			t.Errorf("hotfix (-want +got):\n%s", diff)
		}
		f.wantReadBack(got)
		fl := f.flow(got.Flow)
		if diff := cmp.Diff(want, fl, ignoreIDs()); diff != "" {
			t.Errorf("hotfix flow (-want +got):\n%s", diff)
		}
		if fl.ID <= v1.ID || got.ID <= v1.Deployments[2].ID {
			t.Errorf("hotfix flow %d, deployment %d: want new ids", fl.ID, got.ID)
		}
		// The pipeline flow is not touched.
		f.wantStatuses(v1.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("AheadOfWaiting", func(t *testing.T) {
		// 2.0.0 and 3.0.0 wait for 1.0.0 in integ, and so does a hotfix
		// of 2.0.0. When 1.0.0 fails, the hotfix goes first; when it is
		// verified, the newest waiting flow, 3.0.0, goes next.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		a2, v2 := f.publishOne("billing", "2.0.0")
		_, v3 := f.publishOne("billing", "3.0.0")
		got, err := f.s.Hotfix(f.ctx, f.cfg, deploydb.HotfixRequest{Artifact: a2.ID, Service: "billing", Environment: "integ", Action: alice()})
		if err != nil {
			t.Fatal(err)
		}
		f.wantReadBack(got)
		f.wantWaiting(got.ID, busy(v1.Deployments[0].ID))

		f.report(v1.Deployments[0].ID, failed)
		f.wantStatuses(got.Flow, deploydb.FlowCreated, created)
		f.wantWaiting(v2.Deployments[0].ID, busy(got.ID))
		f.wantWaiting(v3.Deployments[0].ID, busy(got.ID))

		f.verify(got.ID)
		f.wantStatuses(got.Flow, deploydb.FlowSuccess, success)
		f.wantStatuses(v2.ID, deploydb.FlowSuperseded, superseded, superseded, superseded)
		f.wantStatuses(v3.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("ErrUnknownArtifact", func(t *testing.T) {
		f := newFixture(t, open)
		a, _ := f.publishOne("billing", "1.0.0")
		before := f.state()
		got, err := f.s.Hotfix(f.ctx, f.cfg, deploydb.HotfixRequest{Artifact: a.ID + 1000, Service: "billing", Environment: "prod", Action: alice()})
		wantCode(t, err, deploydb.ENOTFOUND)
		if got != nil {
			t.Errorf("returned %+v with an error, want nil", got)
		}
		f.unchanged(before)
	})

	for _, tc := range []struct {
		name, service, artifact, env string
		codes                        []string
	}{
		// search does not consume billing.
		{"ErrNotConsumed", "search", "billing", "integ", []string{deploydb.EINVALID}},
		{"ErrNotInPipeline", "billing", "billing", "qa", []string{deploydb.EINVALID}},
		{"ErrNoEnvironment", "billing", "billing", "", []string{deploydb.EINVALID}},
		// The contract does not say; either says what is wrong.
		{"ErrUnknownService", "payments", "billing", "integ", []string{deploydb.ENOTFOUND, deploydb.EINVALID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			a, _ := f.publishOne(tc.artifact, "1.0.0")
			before := f.state()
			got, err := f.s.Hotfix(f.ctx, f.cfg, deploydb.HotfixRequest{Artifact: a.ID, Service: tc.service, Environment: tc.env, Action: alice()})
			if code := deploydb.ErrorCode(err); !containsString(tc.codes, code) {
				t.Errorf("got %v, want an error with code in %v", err, tc.codes)
			}
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
			f.unchanged(before)
		})
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
