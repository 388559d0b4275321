package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
)

// contentType returns the 0.3 content type of webhook calls on event t,
// spelled out.
func contentType(t deploydb.EventType) string {
	return map[deploydb.EventType]string{
		deploydb.EventDeploymentCreated:    "application/vnd.deploydb.deploymentcreated.v1+json",
		deploydb.EventDeploymentStarted:    "application/vnd.deploydb.deploymentstarted.v1+json",
		deploydb.EventDeploymentCompleted:  "application/vnd.deploydb.deploymentcompleted.v1+json",
		deploydb.EventDeploymentFailed:     "application/vnd.deploydb.deploymentfailed.v1+json",
		deploydb.EventDeploymentVerified:   "application/vnd.deploydb.deploymentverified.v1+json",
		deploydb.EventDeploymentSuperseded: "application/vnd.deploydb.deploymentsuperseded.v1+json",
		deploydb.EventPromotionCompleted:   "application/vnd.deploydb.promotioncompleted.v1+json",
		deploydb.EventFlowCompleted:        "application/vnd.deploydb.flowcompleted.v1+json",
		deploydb.EventDeploymentCancelled:  "application/vnd.deploydb.deploymentcancelled.v1+json",
		deploydb.EventEnvironmentLocked:    "application/vnd.deploydb.environmentlocked.v1+json",
		deploydb.EventEnvironmentUnlocked:  "application/vnd.deploydb.environmentunlocked.v1+json",
	}[t]
}

// owed is an event a change must record (ID, Detail and CreatedAt aside),
// with the webhook calls it owes.
type owed struct {
	deploydb.Event
	hooks []string // recipients, in order
	// promotion and result are set on promotion events.
	promotion string
	result    deploydb.PromotionStatus
}

// because returns o with reason, as the events an operator's action causes
// carry the reason the operator gave.
func (o owed) because(reason string) owed {
	o.Reason = reason
	return o
}

// about returns the event typ that a change by actor records about
// deployment d, which is status after the change, owing calls to hooks.
func about(typ deploydb.EventType, d *deploydb.Deployment, status deploydb.DeploymentStatus, actor string, hooks ...string) owed {
	return owed{Event: deploydb.Event{Type: typ, Service: d.Service, Environment: d.Environment, Artifact: d.Artifact.ID, Flow: d.Flow,
		Deployment: d.ID, Status: string(status), Actor: actor}, hooks: hooks}
}

// promoted returns the promotion.completed event of result promotion of
// deployment d reported by actor, which left d status.
func promoted(d *deploydb.Deployment, promotion string, result deploydb.PromotionStatus, status deploydb.DeploymentStatus, actor string, hooks ...string) owed {
	o := about(deploydb.EventPromotionCompleted, d, status, actor, hooks...)
	o.promotion, o.result = promotion, result
	return o
}

// happen advances the clock, runs do, and fails the test unless exactly
// the events want were recorded, in order and at the new time, each with
// exactly its webhook deliveries. It returns the events.
func (f *fixture) happen(do func(), want ...owed) []*deploydb.Event {
	f.t.Helper()
	return f.happenThen(do, func() []owed { return want })
}

// happenThen is happen for events that can only be told once do has run
// (about a flow do creates).
func (f *fixture) happenThen(do func(), want func() []owed) []*deploydb.Event {
	f.t.Helper()
	return f.happenAt(f.tick, do, want)
}

// happenAt is happenThen with the clock moved by at, which returns the new
// time.
func (f *fixture) happenAt(at func() deploydb.Time, do func(), want func() []owed) []*deploydb.Event {
	f.t.Helper()
	after := f.lastEvent()
	now := at()
	do()
	wantEvs := []*deploydb.Event{}
	var ws []wantEvent
	for _, w := range want() {
		ev := w.Event
		ev.CreatedAt = now
		wantEvs = append(wantEvs, &ev)
		ws = append(ws, wantEvent{typ: w.Type, env: w.Environment, deployment: w.Deployment, status: w.Status, hooks: w.hooks, promotion: w.promotion, result: w.result})
	}
	evs := f.events(after)
	if diff := cmp.Diff(wantEvs, evs, cmpopts.IgnoreFields(deploydb.Event{}, "ID", "Detail")); diff != "" {
		f.t.Fatalf("events (-want +got):\n%s", diff)
	}
	f.wantDeliveries(after, evs, ws)
	return evs
}

// wantEvent is an event a step must record, and the webhook calls it owes.
type wantEvent struct {
	typ        deploydb.EventType
	env        string
	deployment int64
	status     string
	hooks      []string // recipients, in order
	// promotion and result are set on promotion events.
	promotion string
	result    deploydb.PromotionStatus
}

// step advances the clock, runs do, and fails the test unless exactly the
// events want were recorded (for flow fl, by actor, at the new time), each
// with exactly its webhook deliveries in the outbox.
func (f *fixture) step(fl *deploydb.Flow, actor string, do func(), want ...wantEvent) {
	f.t.Helper()
	after := f.lastEvent()
	now := f.tick()
	do()

	var wantEvs []*deploydb.Event
	for _, w := range want {
		ev := &deploydb.Event{Type: w.typ, Service: fl.Service, Environment: w.env, Artifact: fl.Artifact.ID, Flow: fl.ID,
			Deployment: w.deployment, Status: w.status, Actor: actor, CreatedAt: now}
		wantEvs = append(wantEvs, ev)
	}
	evs := f.events(after)
	if diff := cmp.Diff(wantEvs, evs, cmpopts.IgnoreFields(deploydb.Event{}, "ID", "Detail")); diff != "" {
		f.t.Fatalf("events (-want +got):\n%s", diff)
	}
	f.wantDeliveries(after, evs, want)
}

// wantDeliveries fails the test unless the deliveries of the events after
// id are exactly those want says evs owe.
func (f *fixture) wantDeliveries(after int64, evs []*deploydb.Event, want []wantEvent) {
	f.t.Helper()
	byEvent := map[int64][]*deploydb.Delivery{}
	for _, d := range f.deliveries(deploydb.DeliveryFilter{}) {
		if d.Event > after {
			byEvent[d.Event] = append(byEvent[d.Event], d)
		}
	}
	for i, ev := range evs {
		got := byEvent[ev.ID]
		delete(byEvent, ev.ID)
		var wantDs []*deploydb.Delivery
		queue := ev.Deployment
		if queue == 0 && ev.Flow != 0 {
			// Flow events queue behind the flow's last deployment.
			ds := f.flow(ev.Flow).Deployments
			queue = ds[len(ds)-1].ID
		}
		for _, u := range want[i].hooks {
			wantDs = append(wantDs, &deploydb.Delivery{
				Event: ev.ID, EventType: ev.Type, Deployment: queue, Hook: u, URL: u, ShownURL: u, Method: "POST",
				ContentType: contentType(ev.Type), Status: deploydb.DeliveryPending,
				NextAttemptAt: ev.CreatedAt, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
			})
		}
		if diff := cmp.Diff(wantDs, got, cmpopts.IgnoreFields(deploydb.Delivery{}, "ID", "Body")); diff != "" {
			f.t.Errorf("deliveries of %s event %d (-want +got):\n%s", ev.Type, ev.ID, diff)
			continue
		}
		for _, d := range got {
			f.wantBody(d, ev, want[i])
		}
	}
	for id, ds := range byEvent {
		f.t.Errorf("%d deliveries of event %d that is not among the step's events", len(ds), id)
	}
}

// wantBody checks that a delivery's body is the payload of its event,
// rendered from the deployment as it was right after the change.
func (f *fixture) wantBody(d *deploydb.Delivery, ev *deploydb.Event, w wantEvent) {
	f.t.Helper()
	if ev.Deployment == 0 {
		if !json.Valid(d.Body) {
			f.t.Errorf("delivery %d: body is not JSON: %q", d.ID, d.Body)
		}
		return
	}
	type result struct {
		Promotion string                   `json:"promotion"`
		Status    deploydb.PromotionStatus `json:"status"`
	}
	type payload struct {
		ID          int64
		Service     string
		Environment string
		Status      string
		Artifact    struct{ ID int64 }
		Result      *result `json:"promotionResult"`
	}
	var got payload
	if err := json.Unmarshal(d.Body, &got); err != nil {
		f.t.Errorf("delivery %d: body %q: %v", d.ID, d.Body, err)
		return
	}
	want := payload{ID: ev.Deployment, Service: ev.Service, Environment: ev.Environment, Status: ev.Status}
	want.Artifact.ID = ev.Artifact
	if w.promotion != "" {
		want.Result = &result{Promotion: w.promotion, Status: w.result}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("delivery %d: body %s (-want +got):\n%s", d.ID, d.Body, diff)
	}
}

func testEvents(t *testing.T, open Opener) {
	t.Run("Publish", func(t *testing.T) {
		f := newFixture(t, open)
		a, flows := f.publish("shared", "1.0.0")
		now := f.now()
		want := []*deploydb.Event{
			{Type: deploydb.EventArtifactPublished, Artifact: a.ID, Actor: actorCI, CreatedAt: now},
		}
		for _, fl := range flows {
			want = append(want, &deploydb.Event{Type: deploydb.EventDeploymentCreated, Service: fl.Service, Environment: "integ",
				Artifact: a.ID, Flow: fl.ID, Deployment: fl.Deployments[0].ID, Status: string(created), Actor: actorCI, CreatedAt: now})
		}
		if diff := cmp.Diff(want, f.events(0), cmpopts.IgnoreFields(deploydb.Event{}, "ID", "Detail")); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	// EveryChange walks billing through the whole pipeline and checks that
	// each change is recorded as an event, with the webhook calls it owes:
	// the environment's hooks for the event, then the global one.
	t.Run("EveryChange", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		integ, staging, prod := fl.Deployments[0].ID, fl.Deployments[1].ID, fl.Deployments[2].ID
		inInteg := []string{HookIntegA, HookIntegB, HookGlobal}
		inStaging := []string{HookStaging, HookGlobal}
		global := []string{HookGlobal}
		ev := func(typ deploydb.EventType, env string, id int64, status deploydb.DeploymentStatus, hooks []string) wantEvent {
			return wantEvent{typ: typ, env: env, deployment: id, status: string(status), hooks: hooks}
		}
		// A promotion.completed event shows the deployment as the result
		// left it: COMPLETED while results are pending, SUCCESS once all
		// passed.
		promoted := func(env string, id int64, promotion string, after deploydb.DeploymentStatus, hooks []string) wantEvent {
			w := ev(deploydb.EventPromotionCompleted, env, id, after, hooks)
			w.promotion, w.result = promotion, deploydb.PromotionSuccess
			return w
		}
		report := func(id int64, s deploydb.DeploymentStatus) func() { return func() { f.report(id, s) } }
		promote := func(id int64, p string) func() { return func() { f.promote(id, p, deploydb.PromotionSuccess) } }

		f.step(fl, actorOrchestrator, report(integ, started),
			ev(deploydb.EventDeploymentStarted, "integ", integ, started, inInteg))
		f.step(fl, actorOrchestrator, report(integ, completed),
			ev(deploydb.EventDeploymentCompleted, "integ", integ, completed, inInteg))
		f.step(fl, actorTests, promote(integ, "smoke"),
			promoted("integ", integ, "smoke", success, inInteg),
			ev(deploydb.EventDeploymentVerified, "integ", integ, success, inInteg),
			ev(deploydb.EventDeploymentCreated, "staging", staging, created, inStaging))
		f.step(fl, actorOrchestrator, report(staging, completed),
			ev(deploydb.EventDeploymentCompleted, "staging", staging, completed, inStaging))
		f.step(fl, actorTests, promote(staging, "smoke"),
			promoted("staging", staging, "smoke", completed, inStaging))
		f.step(fl, actorTests, promote(staging, "approval"),
			promoted("staging", staging, "approval", success, inStaging),
			ev(deploydb.EventDeploymentVerified, "staging", staging, success, inStaging),
			ev(deploydb.EventDeploymentCreated, "prod", prod, created, []string{HookProd, HookGlobal}))
		// prod has a hook for deployment.created only.
		f.step(fl, actorOrchestrator, report(prod, started),
			ev(deploydb.EventDeploymentStarted, "prod", prod, started, global))
		f.step(fl, actorOrchestrator, report(prod, completed),
			ev(deploydb.EventDeploymentCompleted, "prod", prod, completed, global))
		f.step(fl, actorTests, promote(prod, "smoke"),
			promoted("prod", prod, "smoke", completed, global))
		f.step(fl, actorTests, promote(prod, "approval"),
			promoted("prod", prod, "approval", success, global),
			ev(deploydb.EventDeploymentVerified, "prod", prod, success, global),
			wantEvent{typ: deploydb.EventFlowCompleted, env: "prod", status: string(deploydb.FlowSuccess), hooks: global})

		// Nothing is recorded for reads or refused writes.
		last := f.lastEvent()
		_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: prod, Status: started, Actor: actorOrchestrator})
		wantCode(t, err, deploydb.ECONFLICT)
		if got := f.lastEvent(); got != last {
			t.Errorf("a refused report recorded events up to %d", got)
		}
	})

	t.Run("IDsIncrease", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		var last int64
		for _, ev := range f.events(0) {
			if ev.ID <= last {
				t.Errorf("event id %d after %d, want oldest first with increasing ids", ev.ID, last)
			}
			last = ev.ID
		}
	})

	t.Run("After", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		all := f.events(0)
		if len(all) < 6 {
			t.Fatalf("%d events, want at least 6", len(all))
		}
		for _, i := range []int{0, 3, len(all) - 1} {
			if diff := cmp.Diff(all[i+1:], f.events(all[i].ID)); diff != "" {
				t.Errorf("events after %d (-want +got):\n%s", all[i].ID, diff)
			}
		}
		// Reading with a cursor and a limit pages through every event once.
		var paged []*deploydb.Event
		for after := int64(0); ; {
			evs, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{After: after, Limit: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) > 4 {
				t.Fatalf("%d events with limit 4", len(evs))
			}
			if len(evs) == 0 {
				break
			}
			paged = append(paged, evs...)
			after = evs[len(evs)-1].ID
		}
		if diff := cmp.Diff(all, paged); diff != "" {
			t.Errorf("events read 4 at a time (-want +got):\n%s", diff)
		}
	})

	t.Run("Deployment", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.publish("search", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		id := fl.Deployments[0].ID
		var want []*deploydb.Event
		for _, ev := range f.events(0) {
			if ev.Deployment == id {
				want = append(want, ev)
			}
		}
		// created, completed, promotion.completed, verified
		if len(want) != 4 {
			t.Fatalf("%d events of deployment %d in the log, want 4", len(want), id)
		}
		got, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{Deployment: id, Limit: deploydb.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events of deployment %d (-want +got):\n%s", id, diff)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		f := newFixture(t, open)
		evs, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{Limit: deploydb.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if evs == nil || len(evs) != 0 {
			t.Errorf("events of an empty store: %#v, want an empty, non-nil list", evs)
		}
	})
}

func testWebhooks(t *testing.T, open Opener) {
	inInteg := []string{HookIntegA, HookIntegB, HookGlobal}
	inStaging := []string{HookStaging, HookGlobal}

	t.Run("Publish", func(t *testing.T) {
		f := newFixture(t, open)
		_, flows := f.publish("shared", "1.0.0")
		evs := f.events(0)
		if len(evs) != 1+len(flows) {
			t.Fatalf("%d events, want %d", len(evs), 1+len(flows))
		}
		// artifact.published is recorded, but no hook subscribes to it.
		want := []wantEvent{{typ: deploydb.EventArtifactPublished}}
		for _, fl := range flows {
			want = append(want, wantEvent{typ: deploydb.EventDeploymentCreated, env: "integ", deployment: fl.Deployments[0].ID, status: string(created), hooks: inInteg})
		}
		f.wantDeliveries(0, evs, want)
	})

	t.Run("FailureNotify", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		f.step(fl, actorOrchestrator, func() { f.report(id, failed) },
			wantEvent{typ: deploydb.EventDeploymentFailed, env: "integ", deployment: id, status: string(failed), hooks: inInteg})
	})

	t.Run("FailureIgnore", func(t *testing.T) {
		// batch ignores failures: deployment.failed is recorded, fires
		// nothing, and the flow stops all the same.
		f := newFixture(t, open)
		_, fl := f.publishOne("batch", "1.0.0")
		id := fl.Deployments[0].ID
		f.report(id, started)
		f.step(fl, actorOrchestrator, func() { f.report(id, failed) },
			wantEvent{typ: deploydb.EventDeploymentFailed, env: "integ", deployment: id, status: string(failed)})
		f.wantStatuses(fl.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
	})

	t.Run("PromotionFailed", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		id := fl.Deployments[1].ID
		f.report(id, completed)
		f.step(fl, actorTests, func() { f.promote(id, "smoke", deploydb.PromotionFailed) },
			wantEvent{typ: deploydb.EventPromotionCompleted, env: "staging", deployment: id, status: string(failed), hooks: inStaging,
				promotion: "smoke", result: deploydb.PromotionFailed},
			wantEvent{typ: deploydb.EventDeploymentFailed, env: "staging", deployment: id, status: string(failed), hooks: inStaging})
	})

	t.Run("PromotionFailedIgnore", func(t *testing.T) {
		// The promotion's result is news and fires; the failure it causes
		// is ignored.
		f := newFixture(t, open)
		_, fl := f.publishOne("batch", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		id := fl.Deployments[1].ID
		f.report(id, completed)
		f.step(fl, actorTests, func() { f.promote(id, "approval", deploydb.PromotionFailed) },
			wantEvent{typ: deploydb.EventPromotionCompleted, env: "staging", deployment: id, status: string(failed), hooks: inStaging,
				promotion: "approval", result: deploydb.PromotionFailed},
			wantEvent{typ: deploydb.EventDeploymentFailed, env: "staging", deployment: id, status: string(failed)})
	})

	t.Run("FailureStrategyPerStage", func(t *testing.T) {
		// batch ignores failures, but pipeline standard notifies in prod.
		f := newFixture(t, open)
		_, fl := f.publishOne("batch", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		f.verify(fl.Deployments[1].ID)
		id := fl.Deployments[2].ID
		f.step(fl, actorOrchestrator, func() { f.report(id, failed) },
			wantEvent{typ: deploydb.EventDeploymentFailed, env: "prod", deployment: id, status: string(failed), hooks: []string{HookGlobal}})
	})

	t.Run("DeliveriesReady", func(t *testing.T) {
		f := newFixture(t, open)
		ready := f.s.DeliveriesReady()
		if ready == nil {
			t.Fatal("DeliveriesReady returned a nil channel")
		}
		select {
		case <-ready:
			t.Error("an empty store signalled deliveries")
		default:
		}
		wait := func(what string) {
			t.Helper()
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Fatalf("no signal within 10s after %s enqueued deliveries", what)
			}
		}
		_, fl := f.publishOne("billing", "1.0.0")
		wait("a publication")
		f.report(fl.Deployments[0].ID, started)
		wait("a report")
	})
}
