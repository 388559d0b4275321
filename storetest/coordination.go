package storetest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// inInteg returns the hooks of Model's integ for events that every hook
// hears: the environment's, then the global one.
func inInteg() []string { return []string{HookIntegA, HookIntegB, HookGlobal} }

// inStaging returns the hooks of Model's staging for events that every hook
// hears.
func inStaging() []string { return []string{HookStaging, HookGlobal} }

const superseded = deploydb.DeploymentSuperseded

// clone returns a deep copy of a flow, to edit into what it should become.
func clone(fl *deploydb.Flow) *deploydb.Flow {
	c := *fl
	c.Deployments = make([]deploydb.Deployment, len(fl.Deployments))
	for i, d := range fl.Deployments {
		d.Promotions = append([]deploydb.PromotionResult{}, d.Promotions...)
		c.Deployments[i] = d
	}
	return &c
}

// wantWaiting fails the test unless deployment id is due and waits,
// NOT_STARTED, saying why with a Waiting that starts with prefix. It
// returns the deployment.
func (f *fixture) wantWaiting(id int64, prefix string) *deploydb.Deployment {
	f.t.Helper()
	d := f.deployment(id)
	if d.Status != notStarted || d.DueAt.IsZero() || !strings.HasPrefix(d.Waiting, prefix) {
		f.t.Errorf("deployment %d is %s, due at %s, waiting %q; want it NOT_STARTED, due, waiting %q...", id, d.Status, d.DueAt, d.Waiting, prefix)
	}
	return d
}

// busy is the start of Waiting of a deployment that waits for deployment
// id to leave its environment.
func busy(id int64) string { return "busy: deployment " + strconv.FormatInt(id, 10) + " " }

func testCoordination(t *testing.T, open Opener) {
	t.Run("Supersede", func(t *testing.T) {
		// Three versions of billing: 1.0.0 takes integ, 2.0.0 and 3.0.0
		// wait for it. When 1.0.0 is verified there, the newest, 3.0.0,
		// takes integ and 2.0.0 is superseded: its flow ends, never to
		// be deployed anywhere.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		integ1 := v1.Deployments[0].ID
		var waiting []*deploydb.Flow
		for _, v := range []string{"2.0.0", "3.0.0"} {
			now := f.tick()
			after := f.lastEvent()
			a, fl := f.publishOne("billing", v)
			// Due now, but integ is busy: nothing is created.
			want := newFlow("billing", *a, f.cfg.Checksum, now)
			want.Deployments[0].Status, want.Deployments[0].ActivatedAt = notStarted, deploydb.Time{}
			if got := fl.Deployments[0].Waiting; !strings.HasPrefix(got, busy(integ1)) {
				t.Errorf("%s in integ waits %q, want %q...", v, got, busy(integ1))
			}
			want.Deployments[0].Waiting = fl.Deployments[0].Waiting
			if diff := cmp.Diff(want, fl, ignoreIDs()); diff != "" {
				t.Errorf("flow of %s (-want +got):\n%s", v, diff)
			}
			if diff := cmp.Diff(fl, f.flow(fl.ID)); diff != "" {
				t.Errorf("flow read back differs from the one returned (-returned +read):\n%s", diff)
			}
			wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventArtifactPublished: 1}, f.countEvents(after))
			wantCounts(t, "deliveries", map[deploydb.EventType]int{}, f.countDeliveries(after))
			waiting = append(waiting, fl)
		}
		v2, v3 := waiting[0], waiting[1]

		f.report(integ1, completed)
		evs := f.happen(func() { f.promote(integ1, "smoke", deploydb.PromotionSuccess) },
			promoted(&v1.Deployments[0], "smoke", deploydb.PromotionSuccess, success, actorTests, inInteg()...),
			about(deploydb.EventDeploymentVerified, &v1.Deployments[0], success, actorTests, inInteg()...),
			about(deploydb.EventDeploymentCreated, &v1.Deployments[1], created, actorTests, inStaging()...),
			about(deploydb.EventDeploymentCreated, &v3.Deployments[0], created, actorTests, inInteg()...),
			// Only the deployment that was due is announced.
			about(deploydb.EventDeploymentSuperseded, &v2.Deployments[0], superseded, actorTests, inInteg()...),
			about(deploydb.EventDeploymentSuperseded, &v2.Deployments[1], superseded, actorTests),
			about(deploydb.EventDeploymentSuperseded, &v2.Deployments[2], superseded, actorTests))
		now := f.now()
		if d := evs[4].Detail; !strings.Contains(d, "3.0.0") {
			t.Errorf("deployment.superseded detail %q does not say what superseded it (3.0.0)", d)
		}

		f.wantStatuses(v1.ID, deploydb.FlowCreated, success, created, notStarted)
		want := clone(v2)
		want.Status, want.UpdatedAt = deploydb.FlowSuperseded, now
		for i := range want.Deployments {
			d := &want.Deployments[i]
			d.Moved(superseded, now)
			d.Waiting = ""
		}
		if diff := cmp.Diff(want, f.flow(v2.ID)); diff != "" {
			t.Errorf("superseded flow (-want +got):\n%s", diff)
		}
		// 3.0.0 was due since it was published.
		want = clone(v3)
		want.Deployments[0].Moved(created, now)
		want.Deployments[0].Waiting = ""
		if diff := cmp.Diff(want, f.flow(v3.ID)); diff != "" {
			t.Errorf("activated flow (-want +got):\n%s", diff)
		}
	})

	t.Run("FailureFreesEnvironment", func(t *testing.T) {
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.tick()
		_, v2 := f.publishOne("billing", "2.0.0")
		f.wantWaiting(v2.Deployments[0].ID, busy(v1.Deployments[0].ID))
		f.report(v1.Deployments[0].ID, started)
		f.happen(func() { f.report(v1.Deployments[0].ID, failed) },
			about(deploydb.EventDeploymentFailed, &v1.Deployments[0], failed, actorOrchestrator, inInteg()...),
			about(deploydb.EventDeploymentCreated, &v2.Deployments[0], created, actorOrchestrator, inInteg()...))
		f.wantStatuses(v1.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
		f.wantStatuses(v2.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})

	t.Run("NextEnvironmentBusy", func(t *testing.T) {
		// 1.0.0 in staging and 2.0.0 in integ are active at once; 2.0.0
		// verified in integ waits for 1.0.0 to leave staging.
		f := newFixture(t, open)
		_, v1 := f.publishOne("billing", "1.0.0")
		f.verify(v1.Deployments[0].ID)
		_, v2 := f.publishOne("billing", "2.0.0")
		f.wantStatuses(v1.ID, deploydb.FlowCreated, success, created, notStarted)
		f.wantStatuses(v2.ID, deploydb.FlowCreated, created, notStarted, notStarted)

		f.report(v2.Deployments[0].ID, completed)
		f.happen(func() { f.promote(v2.Deployments[0].ID, "smoke", deploydb.PromotionSuccess) },
			promoted(&v2.Deployments[0], "smoke", deploydb.PromotionSuccess, success, actorTests, inInteg()...),
			about(deploydb.EventDeploymentVerified, &v2.Deployments[0], success, actorTests, inInteg()...))
		f.wantWaiting(v2.Deployments[1].ID, busy(v1.Deployments[1].ID))
		if d := f.deployment(v2.Deployments[1].ID); !d.DueAt.Equal(f.now().Time) {
			t.Errorf("staging due at %s, want %s, when integ was verified", d.DueAt, f.now())
		}

		staging1 := v1.Deployments[1].ID
		f.report(staging1, completed)
		f.promote(staging1, "smoke", deploydb.PromotionSuccess)
		f.happen(func() { f.promote(staging1, "approval", deploydb.PromotionSuccess) },
			promoted(&v1.Deployments[1], "approval", deploydb.PromotionSuccess, success, actorTests, inStaging()...),
			about(deploydb.EventDeploymentVerified, &v1.Deployments[1], success, actorTests, inStaging()...),
			about(deploydb.EventDeploymentCreated, &v1.Deployments[2], created, actorTests, HookProd, HookGlobal),
			about(deploydb.EventDeploymentCreated, &v2.Deployments[1], created, actorTests, inStaging()...))
		f.wantStatuses(v1.ID, deploydb.FlowCreated, success, success, created)
		f.wantStatuses(v2.ID, deploydb.FlowCreated, success, created, notStarted)
	})

	t.Run("ServicesIndependent", func(t *testing.T) {
		// Promotion is per service: moving billing never moves search,
		// and billing being busy in an environment never holds search
		// there.
		f := newFixture(t, open)
		_, flows := f.publish("shared", "1.0.0")
		billing, search := flows[0], flows[1]
		f.wantStatuses(billing.ID, deploydb.FlowCreated, created, notStarted, notStarted)
		f.wantStatuses(search.ID, deploydb.FlowCreated, created, notStarted, notStarted)

		after := f.lastEvent()
		f.tick()
		f.verify(billing.Deployments[0].ID)
		if diff := cmp.Diff(search, f.flow(search.ID)); diff != "" {
			t.Errorf("verifying billing changed search's flow (-before +after):\n%s", diff)
		}
		for _, ev := range f.events(after) {
			if ev.Service != "billing" {
				t.Errorf("verifying billing recorded %s about %s", ev.Type, ev.Service)
			}
		}

		before := f.flow(billing.ID)
		after = f.lastEvent()
		f.tick()
		f.report(search.Deployments[0].ID, failed)
		if diff := cmp.Diff(before, f.flow(billing.ID)); diff != "" {
			t.Errorf("search failing changed billing's flow (-before +after):\n%s", diff)
		}
		for _, ev := range f.events(after) {
			if ev.Service != "search" {
				t.Errorf("search failing recorded %s about %s", ev.Type, ev.Service)
			}
		}

		// billing 2.0.0 is active in integ; search 2.0.0 is not held by
		// it.
		_, b2 := f.publishOne("billing", "2.0.0")
		_, s2 := f.publishOne("search", "2.0.0")
		f.wantStatuses(b2.ID, deploydb.FlowCreated, created, notStarted, notStarted)
		f.wantStatuses(s2.ID, deploydb.FlowCreated, created, notStarted, notStarted)
	})
}
