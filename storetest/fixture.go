package storetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
)

// Actors of the suite's writes.
const (
	actorCI           = "ci"
	actorOrchestrator = "jenkins"
	actorTests        = "smoke-tests"
)

// fixture is one subtest's store with its clock and config.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	s     deploydb.Store
	clock *Clock
	cfg   *deploydb.Config

	// The status matrix and its version as wantStatus last saw them.
	seenStatus  []*deploydb.StatusCell
	seenVersion int64
	// statusHistory is every matrix wantStatus saw, with when.
	statusHistory []statusAt
}

// newFixture marks t parallel and opens a fresh store on a new Clock. When
// the test ends, every flow it left in the store must keep the engine's
// invariants.
func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	t.Parallel()
	c := NewClock(start())
	s := open(t, c.Now)
	if s == nil {
		t.Fatal("opener returned a nil store")
	}
	f := &fixture{t: t, ctx: t.Context(), s: s, clock: c, cfg: Model()}
	// Registered after the opener's cleanup, so it runs while the store is
	// still open; t.Context() is cancelled by then.
	t.Cleanup(func() { f.checkInvariants(context.Background()) })
	t.Cleanup(func() {
		// Each matrix the test saw, worked out again from the history
		// as it is at the end.
		if t.Failed() {
			return
		}
		f.ctx = context.Background()
		for _, h := range f.statusHistory {
			// A change at the same instant after the matrix was read
			// makes the instant say something else.
			if next := f.events(h.lastEvent); len(next) > 0 && !next[0].CreatedAt.After(h.at) {
				continue
			}
			f.wantStatusAt(h.at, h.cells)
		}
	})
	return f
}

// checkInvariants fails the test unless the flows in the store keep the
// invariants of the state machine, each service's flows together (at most
// one active deployment per environment, nothing left waiting for a free
// environment, ...).
func (f *fixture) checkInvariants(ctx context.Context) {
	f.t.Helper()
	flows, err := f.s.FindFlows(ctx, deploydb.FlowFilter{Ascending: true, Page: pageAll()})
	if err != nil {
		f.t.Errorf("find flows: %v", err)
		return
	}
	byService := map[string][]*deploydb.Flow{}
	var services []string
	for _, fl := range flows {
		if byService[fl.Service] == nil {
			services = append(services, fl.Service)
		}
		byService[fl.Service] = append(byService[fl.Service], fl)
	}
	for _, s := range services {
		if err := engine.CheckServiceInvariants(byService[s], nil); err != nil {
			f.t.Errorf("flows of %s break the invariants:\n%v", s, err)
		}
	}
}

// now returns the clock's time as stores record it.
func (f *fixture) now() deploydb.Time { return deploydb.NewTime(f.clock.Now()) }

// tick advances the clock by a step that is not a whole number of
// milliseconds and returns the new time as stores record it.
func (f *fixture) tick() deploydb.Time {
	f.clock.Advance(1250*time.Millisecond + 700*time.Microsecond)
	return f.now()
}

// pageAll is a page large enough for every list the suite makes.
func pageAll() deploydb.Page { return deploydb.Page{Size: deploydb.MaxPageSize} }

// publish publishes Artifact(name, version) as actorCI.
func (f *fixture) publish(name, version string) (*deploydb.Artifact, []*deploydb.Flow) {
	f.t.Helper()
	a, flows, err := f.s.PublishArtifact(f.ctx, f.cfg, Artifact(name, version), actorCI)
	if err != nil {
		f.t.Fatalf("publish %s %s: %v", name, version, err)
	}
	return a, flows
}

// publishOne publishes an artifact that exactly one service consumes.
func (f *fixture) publishOne(name, version string) (*deploydb.Artifact, *deploydb.Flow) {
	f.t.Helper()
	a, flows := f.publish(name, version)
	if len(flows) != 1 {
		f.t.Fatalf("publish %s %s: %d flows, want 1", name, version, len(flows))
	}
	if len(flows[0].Deployments) != 3 {
		f.t.Fatalf("publish %s %s: %d deployments, want 3", name, version, len(flows[0].Deployments))
	}
	return a, flows[0]
}

// report reports status for deployment id as actorOrchestrator.
func (f *fixture) report(id int64, status deploydb.DeploymentStatus) *deploydb.Deployment {
	f.t.Helper()
	d, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: status, Actor: actorOrchestrator})
	if err != nil {
		f.t.Fatalf("report deployment %d %s: %v", id, status, err)
	}
	return d
}

// promote reports the result of promotion for deployment id as actorTests.
func (f *fixture) promote(id int64, promotion string, status deploydb.PromotionStatus) *deploydb.PromotionResult {
	f.t.Helper()
	r, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: id, Promotion: promotion, Status: status, InfoURL: infoURL(id, promotion), Actor: actorTests})
	if err != nil {
		f.t.Fatalf("report promotion %s of deployment %d %s: %v", promotion, id, status, err)
	}
	return r
}

func infoURL(id int64, promotion string) string {
	return "https://ci.example.com/job/" + promotion + "/" + strconv.FormatInt(id, 10)
}

// verify completes deployment id and reports every promotion SUCCESS.
func (f *fixture) verify(id int64) {
	f.t.Helper()
	d := f.report(id, deploydb.DeploymentCompleted)
	for _, r := range d.Promotions {
		f.promote(id, r.Promotion, deploydb.PromotionSuccess)
	}
	if d := f.deployment(id); d.Status != deploydb.DeploymentSuccess {
		f.t.Fatalf("deployment %d is %s after every promotion succeeded, want SUCCESS", id, d.Status)
	}
}

func (f *fixture) deployment(id int64) *deploydb.Deployment {
	f.t.Helper()
	d, err := f.s.FindDeployment(f.ctx, id)
	if err != nil {
		f.t.Fatalf("find deployment %d: %v", id, err)
	}
	return d
}

func (f *fixture) flow(id int64) *deploydb.Flow {
	f.t.Helper()
	fl, err := f.s.FindFlow(f.ctx, id)
	if err != nil {
		f.t.Fatalf("find flow %d: %v", id, err)
	}
	return fl
}

// events returns the events after id, oldest first.
func (f *fixture) events(after int64) []*deploydb.Event {
	f.t.Helper()
	evs, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{After: after, Limit: deploydb.MaxPageSize})
	if err != nil {
		f.t.Fatalf("find events: %v", err)
	}
	return evs
}

// lastEvent returns the id of the newest event, 0 if there is none.
func (f *fixture) lastEvent() int64 {
	f.t.Helper()
	evs := f.events(0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].ID
}

// deliveries returns the deliveries that match filter, oldest first.
func (f *fixture) deliveries(filter deploydb.DeliveryFilter) []*deploydb.Delivery {
	f.t.Helper()
	if filter.Page == (deploydb.Page{}) {
		filter.Page = pageAll()
	}
	ds, err := f.s.FindDeliveries(f.ctx, filter)
	if err != nil {
		f.t.Fatalf("find deliveries: %v", err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// state is everything the suite can see in a store.
type state struct {
	Artifacts  []*deploydb.Artifact
	Flows      []*deploydb.Flow
	Events     []*deploydb.Event
	Deliveries []*deploydb.Delivery
}

func (f *fixture) state() state {
	f.t.Helper()
	var st state
	var err error
	if st.Artifacts, err = f.s.FindArtifacts(f.ctx, deploydb.ArtifactFilter{Page: pageAll()}); err != nil {
		f.t.Fatalf("find artifacts: %v", err)
	}
	if st.Flows, err = f.s.FindFlows(f.ctx, deploydb.FlowFilter{Page: pageAll()}); err != nil {
		f.t.Fatalf("find flows: %v", err)
	}
	st.Events = f.events(0)
	st.Deliveries = f.deliveries(deploydb.DeliveryFilter{})
	return st
}

// unchanged fails the test if the store's state differs from before.
func (f *fixture) unchanged(before state) {
	f.t.Helper()
	if diff := cmp.Diff(before, f.state()); diff != "" {
		f.t.Errorf("a failed call changed the store (-before +after):\n%s", diff)
	}
}

// wantCode fails the test unless err is a *deploydb.Error with code, and
// returns it.
func wantCode(t testing.TB, err error, code string) *deploydb.Error {
	t.Helper()
	var e *deploydb.Error
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	} else if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want a *deploydb.Error with code %s", err, err, code)
	} else if e.Code != code {
		t.Fatalf("got error code %s (%v), want %s", e.Code, err, code)
	}
	return e
}

// wantCurrent fails the test unless a conflict carries the deployment as it
// is now in the store.
func (f *fixture) wantCurrent(e *deploydb.Error, id int64) {
	f.t.Helper()
	cur, ok := e.Current.(*deploydb.Deployment)
	if !ok {
		f.t.Fatalf("conflict Current is %T, want *deploydb.Deployment", e.Current)
	}
	if diff := cmp.Diff(f.deployment(id), cur); diff != "" {
		f.t.Errorf("conflict Current differs from the stored deployment (-stored +current):\n%s", diff)
	}
}

// ignoreIDs compares flows, deployments and results without their
// store-assigned ids; checkIDs checks those separately.
func ignoreIDs() cmp.Option {
	return cmp.Options{
		cmpopts.IgnoreFields(deploydb.Flow{}, "ID"),
		cmpopts.IgnoreFields(deploydb.Deployment{}, "ID", "Flow"),
		cmpopts.IgnoreFields(deploydb.PromotionResult{}, "ID", "Deployment"),
	}
}

// ids tracks the last id seen of each kind, to check they increase.
type ids struct{ flow, deployment, result int64 }

// check fails the test unless the flows' ids are set, increase (flows in
// order, deployments in pipeline order, results in order) past the last
// ones seen, and link results to deployments and deployments to flows.
func (last *ids) check(t testing.TB, flows []*deploydb.Flow) {
	t.Helper()
	for _, fl := range flows {
		if fl.ID <= last.flow {
			t.Errorf("flow id %d after %d, want increasing ids", fl.ID, last.flow)
		}
		last.flow = fl.ID
		for i, d := range fl.Deployments {
			if d.ID <= last.deployment {
				t.Errorf("flow %d: deployment id %d after %d, want increasing ids", fl.ID, d.ID, last.deployment)
			}
			last.deployment = d.ID
			if d.Flow != fl.ID {
				t.Errorf("deployment %d: flow %d, want %d", d.ID, d.Flow, fl.ID)
			}
			if d.Position != i {
				t.Errorf("deployment %d: position %d, want %d", d.ID, d.Position, i)
			}
			for _, r := range d.Promotions {
				if r.ID <= last.result {
					t.Errorf("deployment %d: promotion result id %d after %d, want increasing ids", d.ID, r.ID, last.result)
				}
				last.result = r.ID
				if r.Deployment != d.ID {
					t.Errorf("promotion result %d: deployment %d, want %d", r.ID, r.Deployment, d.ID)
				}
			}
		}
	}
}

// layout is what Model gives each service in each environment of pipeline
// standard: the promotions (the service's plus the stage's, de-duplicated)
// and the failure strategy.
func layout(service string) []struct {
	env        string
	promotions []string
	strategy   deploydb.FailureStrategy
} {
	type stage = struct {
		env        string
		promotions []string
		strategy   deploydb.FailureStrategy
	}
	switch service {
	case "billing":
		return []stage{
			{"integ", []string{"smoke"}, deploydb.FailureNotify},
			{"staging", []string{"smoke", "approval"}, deploydb.FailureNotify},
			{"prod", []string{"smoke", "approval"}, deploydb.FailureNotify},
		}
	case "search":
		return []stage{
			{"integ", nil, deploydb.FailureNotify},
			{"staging", []string{"smoke", "approval"}, deploydb.FailureNotify},
			{"prod", []string{"approval"}, deploydb.FailureNotify},
		}
	case "batch":
		return []stage{
			{"integ", nil, deploydb.FailureIgnore},
			{"staging", []string{"smoke", "approval"}, deploydb.FailureIgnore},
			{"prod", []string{"approval"}, deploydb.FailureNotify},
		}
	case "ledger":
		return []stage{
			{"integ", nil, deploydb.FailureRollback},
			{"staging", []string{"smoke", "approval"}, deploydb.FailureRollback},
			{"prod", []string{"approval"}, deploydb.FailureNotify},
		}
	case "cache":
		return []stage{
			{"integ", []string{"soak"}, deploydb.FailureNotify},
			{"staging", []string{"soak", "smoke", "approval"}, deploydb.FailureNotify},
			{"prod", []string{"soak", "approval"}, deploydb.FailureNotify},
		}
	}
	panic("storetest: no layout for service " + service)
}

// newFlow returns the flow of service for artifact a as it is right after
// publication at now into a free first environment (ids left zero): the
// first environment due and CREATED, the others NOT_STARTED, every
// promotion result NOT_STARTED.
func newFlow(service string, a deploydb.Artifact, checksum string, now deploydb.Time) *deploydb.Flow {
	fl := &deploydb.Flow{
		Artifact:       a,
		Service:        service,
		Pipeline:       "standard",
		Reason:         deploydb.ReasonPipeline,
		Status:         deploydb.FlowCreated,
		ConfigChecksum: checksum,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	for pos := range layout(service) {
		d := newDeployment(service, pos, deploydb.ReasonPipeline, a, now)
		if pos == 0 {
			d.Status, d.DueAt, d.ActivatedAt = deploydb.DeploymentCreated, now, now
		}
		fl.Deployments = append(fl.Deployments, d)
	}
	return fl
}

// newDeployment returns the deployment of artifact a for service at
// position pos of pipeline standard as it is created at now (ids left
// zero): NOT_STARTED, not due, every promotion result NOT_STARTED.
func newDeployment(service string, pos int, reason deploydb.Reason, a deploydb.Artifact, now deploydb.Time) deploydb.Deployment {
	st := layout(service)[pos]
	d := deploydb.Deployment{
		Artifact:        a,
		Service:         service,
		Environment:     st.env,
		Status:          deploydb.DeploymentNotStarted,
		Reason:          reason,
		Promotions:      []deploydb.PromotionResult{},
		Position:        pos,
		FailureStrategy: st.strategy,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	for _, p := range st.promotions {
		r := deploydb.PromotionResult{Promotion: p, Type: Model().Promotions[p].Type, Status: deploydb.PromotionNotStarted, CreatedAt: now, UpdatedAt: now}
		if r.Type == deploydb.PromotionTypeSoak {
			r.SoakMs = SoakTime.Milliseconds()
		}
		d.Promotions = append(d.Promotions, r)
	}
	return d
}
