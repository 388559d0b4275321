package engine_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
)

// Fixtures.

var t0 = deploydb.UnixMilli(1_700_000_000_000)

// at returns t0 plus ms milliseconds.
func at(ms int64) deploydb.Time { return deploydb.UnixMilli(1_700_000_000_000 + ms) }

const service = "billing"

// soakMs is the duration of config's soak promotion.
const soakMs = 10 * 60 * 1000

// art returns version v, with id, of the artifact billing consumes.
func art(id int64, v string) deploydb.Artifact {
	return deploydb.Artifact{ID: id, Group: "com.example", Name: "billing", Version: v,
		SourceURL: "https://repo.example/billing-" + v + ".jar", CreatedAt: t0}
}

var (
	v1 = art(1, "1.0.1")
	v2 = art(2, "1.0.2")
	v3 = art(3, "1.0.3")
	v9 = art(9, "0.9.9")
)

// stage returns a pipeline stage in env with the given promotions.
func stage(env string, promotions ...string) deploydb.PipelineStage {
	return deploydb.PipelineStage{Environment: env, Promotions: promotions}
}

// withStrategy returns s with its failure strategy set.
func withStrategy(s deploydb.PipelineStage, fs deploydb.FailureStrategy) deploydb.PipelineStage {
	s.FailureStrategy = fs
	return s
}

// config returns a config whose one service, billing, consumes
// com.example:billing through a pipeline of stages. Promotion soak is a
// soak of soakMs and approval is manual; any other promotion is basic.
func config(stages ...deploydb.PipelineStage) *deploydb.Config {
	envs := map[string]*deploydb.Environment{}
	for _, s := range stages {
		envs[s.Environment] = &deploydb.Environment{Ident: s.Environment}
	}
	return &deploydb.Config{
		Checksum:     "sum-1",
		Services:     map[string]*deploydb.Service{service: {Ident: service, Artifacts: []string{"com.example:billing"}, Pipelines: []string{"p"}}},
		Environments: envs,
		Pipelines:    map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: stages}},
		Promotions: map[string]*deploydb.Promotion{
			"soak":     {Ident: "soak", Type: deploydb.PromotionTypeSoak, Attributes: map[string]any{"duration": "10m"}},
			"approval": {Ident: "approval", Type: deploydb.PromotionTypeManual},
		},
	}
}

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// world is a store in miniature: the flows of billing, the state of its
// environments and its last known good artifacts. Each command runs on a
// plan over every flow, as a store runs it in a transaction; a command
// that succeeds is committed, and the invariants are checked.
type world struct {
	t        fataler
	cfg      *deploydb.Config
	flows    []*deploydb.Flow
	envs     map[string]engine.EnvState
	lastGood map[string]*deploydb.Artifact
	lastID   int64
	clock    int64
	// last is the plan of the last committed command.
	last *engine.Plan
	// inserted, when set, records the rows insert writes, as written.
	inserted *rows
}

func newWorld(t fataler, cfg *deploydb.Config) *world {
	return &world{t: t, cfg: cfg, envs: map[string]engine.EnvState{}, lastGood: map[string]*deploydb.Artifact{}, lastID: 100}
}

func (w *world) nextID() int64 {
	w.lastID++
	return w.lastID
}

// now is the time of the next command.
func (w *world) now() deploydb.Time { return at(w.clock + 1000) }

// insert gives a new flow the ids a store would: from one increasing
// counter, so that newer rows have higher ids.
func (w *world) insert(f *deploydb.Flow) {
	f.ID = w.nextID()
	if w.inserted != nil {
		w.inserted.flows[f.ID] = flowRow(f)
	}
	for i := range f.Deployments {
		w.insertDeployment(f.ID, &f.Deployments[i])
	}
}

func (w *world) insertDeployment(flow int64, d *deploydb.Deployment) {
	d.ID, d.Flow = w.nextID(), flow
	for j := range d.Promotions {
		d.Promotions[j].ID, d.Promotions[j].Deployment = w.nextID(), d.ID
	}
	if w.inserted != nil {
		w.inserted.addDeployment(d)
	}
}

// plan loads a plan over every flow, and extra, at the next instant.
func (w *world) plan(extra ...*deploydb.Flow) *engine.Plan {
	w.clock += 1000
	p := engine.NewPlan(service, append(slices.Clone(w.flows), extra...), at(w.clock))
	maps.Copy(p.Envs, w.envs)
	maps.Copy(p.LastGood, w.lastGood)
	return p
}

// commit does what a store does once a command succeeded: it creates and
// adopts the rollback flows the plan asks for, keeps the flows and the last
// known good, and checks the invariants.
func (w *world) commit(p *engine.Plan) {
	w.t.Helper()
	for len(p.Rollbacks) > 0 {
		rb := p.Rollbacks[0]
		p.Rollbacks = p.Rollbacks[1:]
		f, err := engine.NewSingleFlow(w.cfg, service, rb.Environment, deploydb.ReasonRollback, rb.Artifact, p.Now)
		if err != nil {
			w.t.Fatalf("rollback flow: %v", err)
		}
		w.insert(f)
		engine.Adopt(p, f)
	}
	w.flows = p.Flows
	w.lastGood = maps.Clone(p.LastGood)
	w.last = p
	if err := engine.CheckPlan(p); err != nil {
		w.t.Fatalf("invariants: %v\n%s", err, dump(p.Flows))
	}
}

// do runs a command that must succeed, and commits it.
func (w *world) do(what string, cmd func(p *engine.Plan) error) *engine.Plan {
	w.t.Helper()
	p := w.plan()
	if err := cmd(p); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	w.commit(p)
	return p
}

// refuse runs a command that must fail, checks that it changed nothing,
// and returns its error.
func (w *world) refuse(cmd func(p *engine.Plan) error) error {
	w.t.Helper()
	before := cloneFlows(w.flows)
	lastGood := maps.Clone(w.lastGood)
	p := w.plan()
	err := cmd(p)
	if err == nil {
		w.t.Fatalf("command succeeded, want an error")
	}
	if msg := unchanged(before, lastGood, p); msg != "" {
		w.t.Fatalf("refused command (%v) %s", err, msg)
	}
	return err
}

// unchanged returns what a refused command on plan p changed, or "".
func unchanged(before []*deploydb.Flow, lastGood map[string]*deploydb.Artifact, p *engine.Plan) string {
	if diff := cmp.Diff(before, p.Flows); diff != "" {
		return "changed the flows (-before +after):\n" + diff
	}
	if diff := cmp.Diff(lastGood, p.LastGood); diff != "" {
		return "changed the last known good (-before +after):\n" + diff
	}
	if len(p.Events) != 0 || len(p.Rollbacks) != 0 || len(p.ChangedFlows()) != 0 || len(p.ChangedDeployments()) != 0 || len(p.ChangedResults()) != 0 {
		return fmt.Sprintf("left changes in the plan: events %+v, rollbacks %+v", p.Events, p.Rollbacks)
	}
	return ""
}

func (w *world) publish(a deploydb.Artifact) *deploydb.Flow { return w.publishWith(w.cfg, a) }

// publishWith publishes a under cfg: the flow is inserted and started.
func (w *world) publishWith(cfg *deploydb.Config, a deploydb.Artifact) *deploydb.Flow {
	w.t.Helper()
	flows, err := engine.NewFlows(cfg, a, w.now())
	if err != nil {
		w.t.Fatalf("NewFlows: %v", err)
	}
	f := flows[0]
	w.insert(f)
	p := w.plan(f)
	engine.Start(p, f.ID)
	w.commit(p)
	return f
}

func (w *world) report(id int64, s deploydb.DeploymentStatus) *engine.Plan {
	w.t.Helper()
	return w.do(fmt.Sprintf("report %s on deployment %d", s, id), func(p *engine.Plan) error {
		return engine.ReportDeployment(p, id, s)
	})
}

func (w *world) promote(id int64, name string, s deploydb.PromotionStatus) *engine.Plan {
	w.t.Helper()
	return w.do(fmt.Sprintf("report %s %s on deployment %d", name, s, id), func(p *engine.Plan) error {
		_, err := engine.ReportPromotion(p, id, name, s, "https://ci.example/"+name, "tester", engine.Approver{})
		return err
	})
}

func (w *world) cancel(flow int64) *engine.Plan {
	w.t.Helper()
	return w.do(fmt.Sprintf("cancel flow %d", flow), func(p *engine.Plan) error { return engine.Cancel(p, flow) })
}

// retry retries deployment id as a store does, and returns the new
// deployment.
func (w *world) retry(id int64) *deploydb.Deployment {
	w.t.Helper()
	var nid int64
	w.do(fmt.Sprintf("retry deployment %d", id), func(p *engine.Plan) error {
		if err := engine.CheckRetry(p, id); err != nil {
			return err
		}
		f, d := p.Deployment(id)
		nd := engine.NewRetry(d, p.Now)
		w.insertDeployment(f.ID, &nd)
		nid = nd.ID
		engine.Retry(p, f.ID, nd)
		return nil
	})
	return w.dep(nid)
}

// adopt creates a rollback or hotfix flow of a to env, as a store does.
func (w *world) adopt(reason deploydb.Reason, env string, a deploydb.Artifact) *deploydb.Flow {
	w.t.Helper()
	f, err := engine.NewSingleFlow(w.cfg, service, env, reason, a, w.now())
	if err != nil {
		w.t.Fatalf("NewSingleFlow: %v", err)
	}
	w.insert(f)
	w.do("adopt", func(p *engine.Plan) error {
		engine.Adopt(p, f)
		return nil
	})
	return f
}

// setEnv changes what holds activation in env and schedules it.
func (w *world) setEnv(env string, st engine.EnvState) *engine.Plan {
	w.t.Helper()
	w.envs[env] = st
	return w.do("schedule "+env, func(p *engine.Plan) error {
		engine.Schedule(p, env)
		return nil
	})
}

// dep returns the deployment with id.
func (w *world) dep(id int64) *deploydb.Deployment {
	w.t.Helper()
	for _, f := range w.flows {
		for i := range f.Deployments {
			if f.Deployments[i].ID == id {
				return &f.Deployments[i]
			}
		}
	}
	w.t.Fatalf("no deployment %d", id)
	return nil
}

// in returns the latest deployment of f in env.
func (w *world) in(f *deploydb.Flow, env string) *deploydb.Deployment {
	w.t.Helper()
	var out *deploydb.Deployment
	for i := range f.Deployments {
		if d := &f.Deployments[i]; d.Environment == env && (out == nil || d.ID > out.ID) {
			out = d
		}
	}
	if out == nil {
		w.t.Fatalf("flow %d has no deployment in %s", f.ID, env)
	}
	return out
}

func cloneFlow(f *deploydb.Flow) *deploydb.Flow {
	c := *f
	c.Deployments = slices.Clone(f.Deployments)
	for i := range c.Deployments {
		c.Deployments[i].Promotions = slices.Clone(f.Deployments[i].Promotions)
	}
	return &c
}

func cloneFlows(flows []*deploydb.Flow) []*deploydb.Flow {
	out := make([]*deploydb.Flow, 0, len(flows))
	for _, f := range flows {
		out = append(out, cloneFlow(f))
	}
	return out
}

// dump shows flows for a failure message.
func dump(flows []*deploydb.Flow) string {
	var b strings.Builder
	for _, f := range flows {
		fmt.Fprintf(&b, "flow %d %s %s %s\n", f.ID, f.Reason, f.Artifact.Version, f.Status)
		for _, d := range f.Deployments {
			fmt.Fprintf(&b, "  deployment %d pos %d %s %s %s due=%v waiting=%q strategy=%s", d.ID, d.Position, d.Environment, d.Reason, d.Status, !d.DueAt.IsZero(), d.Waiting, d.FailureStrategy)
			for _, r := range d.Promotions {
				fmt.Fprintf(&b, " [%s %s]", r.Promotion, r.Status)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func statuses(f *deploydb.Flow) []deploydb.DeploymentStatus {
	var out []deploydb.DeploymentStatus
	for _, d := range f.Deployments {
		out = append(out, d.Status)
	}
	return out
}

func ids(ds []*deploydb.Deployment) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func flowIDs(fs []*deploydb.Flow) []int64 {
	var out []int64
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func resultIDs(rs []*deploydb.PromotionResult) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// ev is what a test says about an emitted event: Dep is the deployment it
// is about, Flow that of a flow event.
type ev struct {
	Type   deploydb.EventType
	Dep    int64
	Flow   int64
	Status string
	Quiet  bool
}

const (
	created    = deploydb.EventDeploymentCreated
	started    = deploydb.EventDeploymentStarted
	completed  = deploydb.EventDeploymentCompleted
	failed     = deploydb.EventDeploymentFailed
	verified   = deploydb.EventDeploymentVerified
	superseded = deploydb.EventDeploymentSuperseded
	cancelled  = deploydb.EventDeploymentCancelled
	promoted   = deploydb.EventPromotionCompleted
	flowDone   = deploydb.EventFlowCompleted
)

// events checks that p's events are well formed and returns them as evs.
func events(tb fataler, p *engine.Plan) []ev {
	tb.Helper()
	out := []ev{}
	for _, e := range p.Events {
		x := ev{Type: e.Type, Status: e.Status, Quiet: e.Quiet}
		switch {
		case e.Type == flowDone:
			x.Flow = e.Flow
			if e.Deployment != nil || e.Result != nil {
				tb.Fatalf("%s carries a deployment or result", e.Type)
			}
		case e.Deployment == nil:
			tb.Fatalf("%s carries no deployment", e.Type)
		default:
			x.Dep = e.Deployment.ID
			if string(e.Deployment.Status) != e.Status || e.Deployment.Environment != e.Environment || e.Deployment.Flow != e.Flow {
				tb.Fatalf("%s: status %s, environment %s, flow %d but snapshot %+v", e.Type, e.Status, e.Environment, e.Flow, e.Deployment)
			}
		}
		if (e.Result != nil) != (e.Type == promoted) {
			tb.Fatalf("%s: Result = %+v", e.Type, e.Result)
		}
		out = append(out, x)
	}
	return out
}

// detail returns the detail of the event of type t about deployment id.
func detail(tb fataler, p *engine.Plan, t deploydb.EventType, id int64) string {
	tb.Helper()
	for _, e := range p.Events {
		if e.Type == t && e.Deployment != nil && e.Deployment.ID == id {
			return e.Detail
		}
	}
	tb.Fatalf("no %s about deployment %d in %+v", t, id, p.Events)
	return ""
}

func wantError(tb fataler, err error, code string) *deploydb.Error {
	tb.Helper()
	var e *deploydb.Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %v, want a *deploydb.Error with code %s", err, code)
	}
	if e.Code != code {
		tb.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}

func wantDiff(t *testing.T, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// NewFlows and NewSingleFlow.

func TestNewFlows(t *testing.T) {
	t.Parallel()

	t.Run("ErrNotConsumed", func(t *testing.T) {
		t.Parallel()
		a := v1
		a.Name = "ledger"
		flows, err := engine.NewFlows(config(stage("integ")), a, t0)
		wantError(t, err, deploydb.ENOTFOUND)
		if flows != nil {
			t.Errorf("flows = %v, want nil", flows)
		}
	})

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		cfg := config(stage("integ", "perf", "approval", "smoke", "soak"), withStrategy(stage("prod"), deploydb.FailureRollback))
		cfg.Services[service].Promotions = []string{"smoke", "perf"}
		cfg.Services[service].FailureStrategy = deploydb.FailureIgnore
		flows, err := engine.NewFlows(cfg, v1, t0)
		if err != nil {
			t.Fatal(err)
		}
		result := func(name, typ string, soak int64) deploydb.PromotionResult {
			return deploydb.PromotionResult{Promotion: name, Type: typ, SoakMs: soak, Status: deploydb.PromotionNotStarted, CreatedAt: t0, UpdatedAt: t0}
		}
		dep := func(env string, pos int, fs deploydb.FailureStrategy, promotions ...deploydb.PromotionResult) deploydb.Deployment {
			return deploydb.Deployment{Artifact: v1, Service: service, Environment: env, Status: deploydb.DeploymentNotStarted,
				Reason: deploydb.ReasonPipeline, Position: pos, FailureStrategy: fs, Promotions: promotions, CreatedAt: t0, UpdatedAt: t0}
		}
		want := []*deploydb.Flow{{
			Artifact: v1, Service: service, Pipeline: "p", Reason: deploydb.ReasonPipeline, Status: deploydb.FlowCreated, ConfigChecksum: "sum-1",
			CreatedAt: t0, UpdatedAt: t0,
			Deployments: []deploydb.Deployment{
				// The union of service and stage promotions, service first,
				// de-duplicated, with their types; the service's strategy
				// where the stage sets none.
				dep("integ", 0, deploydb.FailureIgnore, result("smoke", "basic", 0), result("perf", "basic", 0),
					result("approval", "manual", 0), result("soak", "soak", soakMs)),
				dep("prod", 1, deploydb.FailureRollback, result("smoke", "basic", 0), result("perf", "basic", 0)),
			},
		}}
		wantDiff(t, "flows", want, flows)
		w := newWorld(t, cfg)
		w.insert(flows[0])
		if err := engine.CheckInvariants(flows[0]); err != nil {
			t.Error(err)
		}
	})

	t.Run("DefaultStrategyAndNoPromotions", func(t *testing.T) {
		t.Parallel()
		flows, err := engine.NewFlows(config(stage("integ"), withStrategy(stage("prod"), deploydb.FailureIgnore)), v1, t0)
		if err != nil {
			t.Fatal(err)
		}
		f := flows[0]
		if got := []deploydb.FailureStrategy{f.Deployments[0].FailureStrategy, f.Deployments[1].FailureStrategy}; !slices.Equal(got, []deploydb.FailureStrategy{deploydb.FailureNotify, deploydb.FailureIgnore}) {
			t.Errorf("strategies = %v, want [notify ignore]", got)
		}
		// An empty list, not nil: JSON clients get [] (DESIGN.md §4).
		if p := f.Deployments[0].Promotions; p == nil || len(p) != 0 {
			t.Errorf("promotions = %#v, want empty non-nil", p)
		}
	})

	t.Run("TwoConsumingServices", func(t *testing.T) {
		t.Parallel()
		cfg := &deploydb.Config{
			Checksum: "sum-2",
			Services: map[string]*deploydb.Service{
				"reports": {Ident: "reports", Artifacts: []string{"com.example:other", "com.example:billing"}, Pipelines: []string{"short"}},
				"billing": {Ident: "billing", Artifacts: []string{"com.example:billing"}, Pipelines: []string{"long"}},
				"ledger":  {Ident: "ledger", Artifacts: []string{"com.example:ledger"}, Pipelines: []string{"long"}},
			},
			Pipelines: map[string]*deploydb.Pipeline{
				"long":  {Ident: "long", Environments: []deploydb.PipelineStage{stage("integ"), stage("staging"), stage("prod")}},
				"short": {Ident: "short", Environments: []deploydb.PipelineStage{stage("prod")}},
			},
		}
		flows, err := engine.NewFlows(cfg, v1, t0)
		if err != nil {
			t.Fatal(err)
		}
		type got struct {
			Service, Pipeline string
			Envs              []string
		}
		var gots []got
		for _, f := range flows {
			g := got{Service: f.Service, Pipeline: f.Pipeline}
			for _, d := range f.Deployments {
				g.Envs = append(g.Envs, d.Environment)
				if d.Service != f.Service {
					t.Errorf("deployment of %s in flow of %s", d.Service, f.Service)
				}
			}
			gots = append(gots, g)
		}
		wantDiff(t, "flows", []got{
			{Service: "billing", Pipeline: "long", Envs: []string{"integ", "staging", "prod"}},
			{Service: "reports", Pipeline: "short", Envs: []string{"prod"}},
		}, gots)
	})
}

func TestNewSingleFlow(t *testing.T) {
	t.Parallel()
	cfg := config(stage("integ", "smoke"), withStrategy(stage("prod", "soak"), deploydb.FailureRollback))
	cfg.Services[service].Promotions = []string{"perf"}

	for _, reason := range []deploydb.Reason{deploydb.ReasonRollback, deploydb.ReasonHotfix} {
		t.Run(string(reason), func(t *testing.T) {
			t.Parallel()
			f, err := engine.NewSingleFlow(cfg, service, "prod", reason, v9, at(3))
			if err != nil {
				t.Fatal(err)
			}
			// A failing rollback only notifies, so that it cannot roll
			// back again; a hotfix keeps the stage's strategy.
			strategy := deploydb.FailureRollback
			if reason == deploydb.ReasonRollback {
				strategy = deploydb.FailureNotify
			}
			want := &deploydb.Flow{Artifact: v9, Service: service, Pipeline: "p", Reason: reason, Status: deploydb.FlowCreated,
				ConfigChecksum: "sum-1", CreatedAt: at(3), UpdatedAt: at(3),
				Deployments: []deploydb.Deployment{{Artifact: v9, Service: service, Environment: "prod", Status: deploydb.DeploymentNotStarted,
					Reason: reason, Position: 1, FailureStrategy: strategy, CreatedAt: at(3), UpdatedAt: at(3),
					Promotions: []deploydb.PromotionResult{
						{Promotion: "perf", Type: "basic", Status: deploydb.PromotionNotStarted, CreatedAt: at(3), UpdatedAt: at(3)},
						{Promotion: "soak", Type: "soak", SoakMs: soakMs, Status: deploydb.PromotionNotStarted, CreatedAt: at(3), UpdatedAt: at(3)},
					}}}}
			wantDiff(t, "flow", want, f)
		})
	}

	t.Run("ErrUnknownService", func(t *testing.T) {
		t.Parallel()
		_, err := engine.NewSingleFlow(cfg, "ledger", "prod", deploydb.ReasonHotfix, v9, t0)
		wantError(t, err, deploydb.ENOTFOUND)
	})
	t.Run("ErrEnvironmentNotInPipeline", func(t *testing.T) {
		t.Parallel()
		_, err := engine.NewSingleFlow(cfg, service, "staging", deploydb.ReasonHotfix, v9, t0)
		wantError(t, err, deploydb.EINVALID)
	})
}

// Start.

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ", "smoke"), stage("prod")))
		f := w.publish(v1)
		p := w.last
		d := &f.Deployments[0]
		wantDiff(t, "events", []ev{{Type: created, Dep: d.ID, Status: "CREATED"}}, events(t, p))
		if d.Status != deploydb.DeploymentCreated || d.UpdatedAt != p.Now || d.DueAt != p.Now || d.Waiting != "" {
			t.Errorf("deployment 0 = %s at %v, due %v, waiting %q; want CREATED, due and updated at %v", d.Status, d.UpdatedAt, d.DueAt, d.Waiting, p.Now)
		}
		if n := f.Deployments[1]; n.Status != deploydb.DeploymentNotStarted || !n.DueAt.IsZero() {
			t.Errorf("deployment 1 = %s due %v, want NOT_STARTED and not due", n.Status, n.DueAt)
		}
		if d.Promotions[0].Status != deploydb.PromotionNotStarted {
			t.Errorf("result = %s, want NOT_STARTED until the deployment completes", d.Promotions[0].Status)
		}
		wantDiff(t, "ChangedDeployments", []int64{d.ID}, ids(p.ChangedDeployments()))
		wantDiff(t, "ChangedResults", []int64(nil), resultIDs(p.ChangedResults()))
		wantDiff(t, "ChangedFlows", []int64(nil), flowIDs(p.ChangedFlows()))
	})

	t.Run("NoDeploymentsOrUnknownFlow", func(t *testing.T) {
		t.Parallel()
		flows, err := engine.NewFlows(config(), v1, t0)
		if err != nil {
			t.Fatal(err)
		}
		f := flows[0]
		f.ID = 1
		before := cloneFlow(f)
		p := engine.NewPlan(service, []*deploydb.Flow{f}, t0)
		engine.Start(p, 1)
		engine.Start(p, 2)
		if msg := unchanged([]*deploydb.Flow{before}, map[string]*deploydb.Artifact{}, p); msg != "" {
			t.Errorf("Start %s", msg)
		}
	})
}

// ReportDeployment.

// withDeploymentIn returns a world whose pipeline is integ (promotion
// smoke) then prod, and the id of a deployment in status s, reached the
// way the engine reaches it.
func withDeploymentIn(tb fataler, s deploydb.DeploymentStatus) (*world, int64) {
	tb.Helper()
	w := newWorld(tb, config(stage("integ", "smoke"), stage("prod")))
	f := w.publish(v1)
	id := f.Deployments[0].ID
	switch s {
	case deploydb.DeploymentNotStarted:
		id = f.Deployments[1].ID
	case deploydb.DeploymentCreated:
	case deploydb.DeploymentStarted:
		w.report(id, deploydb.DeploymentStarted)
	case deploydb.DeploymentCompleted:
		w.report(id, deploydb.DeploymentCompleted)
	case deploydb.DeploymentSuccess:
		w.report(id, deploydb.DeploymentCompleted)
		w.promote(id, "smoke", deploydb.PromotionSuccess)
	case deploydb.DeploymentFailed:
		w.report(id, deploydb.DeploymentFailed)
	case deploydb.DeploymentSuperseded:
		// v2 waits behind v1 in integ, v3 too; v3 takes integ when v1
		// leaves it, and v2 is superseded.
		g := w.publish(v2)
		w.publish(v3)
		w.report(id, deploydb.DeploymentFailed)
		id = g.Deployments[0].ID
	case deploydb.DeploymentCancelled:
		w.cancel(f.ID)
	default:
		tb.Fatalf("no setup for %s", s)
	}
	if got := w.dep(id).Status; got != s {
		tb.Fatalf("setup reached %s, want %s", got, s)
	}
	return w, id
}

func TestReportDeploymentTransitions(t *testing.T) {
	t.Parallel()
	// DESIGN.md §3: what an orchestrator may report, from where.
	allowed := map[[2]deploydb.DeploymentStatus]bool{
		{deploydb.DeploymentCreated, deploydb.DeploymentStarted}:   true,
		{deploydb.DeploymentCreated, deploydb.DeploymentCompleted}: true,
		{deploydb.DeploymentCreated, deploydb.DeploymentFailed}:    true,
		{deploydb.DeploymentStarted, deploydb.DeploymentCompleted}: true,
		{deploydb.DeploymentStarted, deploydb.DeploymentFailed}:    true,
	}
	reports := append(slices.Clone(deploydb.DeploymentStatuses), "", "BOGUS", "completed")
	for _, from := range deploydb.DeploymentStatuses {
		for _, to := range reports {
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				t.Parallel()
				w, id := withDeploymentIn(t, from)
				if allowed[[2]deploydb.DeploymentStatus{from, to}] {
					p := w.report(id, to)
					if got := w.dep(id).Status; got != to {
						t.Errorf("status = %s, want %s", got, to)
					}
					if len(p.Events) == 0 {
						t.Error("no event")
					}
					return
				}
				cur := *w.dep(id)
				err := w.refuse(func(p *engine.Plan) error { return engine.ReportDeployment(p, id, to) })
				if !to.Valid() {
					wantError(t, err, deploydb.EBADREQUEST)
					return
				}
				e := wantError(t, err, deploydb.ECONFLICT)
				wantDiff(t, "Current", &cur, e.Current)
			})
		}
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		w, _ := withDeploymentIn(t, deploydb.DeploymentCreated)
		err := w.refuse(func(p *engine.Plan) error { return engine.ReportDeployment(p, 999, deploydb.DeploymentStarted) })
		wantError(t, err, deploydb.ENOTFOUND)
	})
}

func TestReportDeployment(t *testing.T) {
	t.Parallel()
	type want struct {
		Type   deploydb.EventType
		Env    string // "" for flow.completed
		Status string
		Quiet  bool
	}
	tests := []struct {
		name       string
		stages     []deploydb.PipelineStage
		before     []deploydb.DeploymentStatus // reported on deployment 0 first
		report     deploydb.DeploymentStatus
		want       []want
		wantFlow   deploydb.FlowStatus
		wantDeps   []deploydb.DeploymentStatus
		wantDetail string // of deployment.failed
	}{{
		name:     "Started",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke"), stage("prod")},
		report:   deploydb.DeploymentStarted,
		want:     []want{{started, "integ", "STARTED", false}},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"STARTED", "NOT_STARTED"},
	}, {
		name:     "CompletedAwaitsPromotions",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("prod")},
		before:   []deploydb.DeploymentStatus{deploydb.DeploymentStarted},
		report:   deploydb.DeploymentCompleted,
		want:     []want{{completed, "integ", "COMPLETED", false}},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"COMPLETED", "NOT_STARTED"},
	}, {
		name:   "CompletedWithoutPromotions",
		stages: []deploydb.PipelineStage{stage("integ"), stage("staging"), stage("prod")},
		report: deploydb.DeploymentCompleted,
		want: []want{
			{completed, "integ", "COMPLETED", false},
			{verified, "integ", "SUCCESS", false},
			{created, "staging", "CREATED", false},
		},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CREATED", "NOT_STARTED"},
	}, {
		name:   "CompletedLastEnvironment",
		stages: []deploydb.PipelineStage{stage("prod")},
		before: []deploydb.DeploymentStatus{deploydb.DeploymentStarted},
		report: deploydb.DeploymentCompleted,
		want: []want{
			{completed, "prod", "COMPLETED", false},
			{verified, "prod", "SUCCESS", false},
			{flowDone, "prod", "SUCCESS", false},
		},
		wantFlow: deploydb.FlowSuccess,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS"},
	}, {
		name:       "FailedNotify",
		stages:     []deploydb.PipelineStage{stage("integ", "smoke"), stage("prod")},
		report:     deploydb.DeploymentFailed,
		want:       []want{{failed, "integ", "FAILED", false}},
		wantFlow:   deploydb.FlowFailed,
		wantDeps:   []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
		wantDetail: "the orchestrator reported the deployment FAILED",
	}, {
		name:       "FailedIgnoreIsQuiet",
		stages:     []deploydb.PipelineStage{withStrategy(stage("integ"), deploydb.FailureIgnore), stage("prod")},
		report:     deploydb.DeploymentFailed,
		want:       []want{{failed, "integ", "FAILED", true}},
		wantFlow:   deploydb.FlowFailed,
		wantDeps:   []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
		wantDetail: "the orchestrator reported the deployment FAILED; failure strategy ignore: nothing fired",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(tt.stages...))
			f := w.publish(v1)
			for _, s := range tt.before {
				w.report(f.Deployments[0].ID, s)
			}
			p := w.report(f.Deployments[0].ID, tt.report)
			var got []want
			for _, e := range p.Events {
				got = append(got, want{e.Type, e.Environment, e.Status, e.Quiet})
				if e.Type == failed && e.Detail != tt.wantDetail {
					t.Errorf("detail = %q, want %q", e.Detail, tt.wantDetail)
				}
			}
			events(t, p)
			wantDiff(t, "events", tt.want, got)
			if f.Status != tt.wantFlow {
				t.Errorf("flow = %s, want %s", f.Status, tt.wantFlow)
			}
			wantDiff(t, "deployments", tt.wantDeps, statuses(f))
			var wantFlows []int64
			if tt.wantFlow != deploydb.FlowCreated {
				wantFlows = []int64{f.ID}
				if f.UpdatedAt != p.Now {
					t.Errorf("flow UpdatedAt = %v, want %v", f.UpdatedAt, p.Now)
				}
			}
			wantDiff(t, "ChangedFlows", wantFlows, flowIDs(p.ChangedFlows()))
		})
	}
}

func TestReportDeploymentSnapshots(t *testing.T) {
	t.Parallel()

	t.Run("CompletedThenVerified", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod", "smoke")))
		f := w.publish(v1)
		p := w.report(f.Deployments[0].ID, deploydb.DeploymentCompleted)
		// Each snapshot is the deployment as it was right after that
		// step, and stays so when the flow moves on.
		want0 := f.Deployments[0]
		want0.Status, want0.FinishedAt = deploydb.DeploymentCompleted, deploydb.Time{}
		wantDiff(t, "completed snapshot", &want0, p.Events[0].Deployment)
		wantDiff(t, "verified snapshot", &f.Deployments[0], p.Events[1].Deployment)
		wantDiff(t, "created snapshot", &f.Deployments[1], p.Events[2].Deployment)
		f.Deployments[1].Promotions[0].InfoURL = "mutated"
		f.Deployments[1].Status = deploydb.DeploymentFailed
		if s := p.Events[2].Deployment; s.Status != deploydb.DeploymentCreated || s.Promotions[0].InfoURL != "" {
			t.Errorf("snapshot shares memory with the flow: %+v", s)
		}
		wantDiff(t, "ChangedDeployments", []int64{f.Deployments[0].ID, f.Deployments[1].ID}, ids(p.ChangedDeployments()))
	})

	t.Run("CompletedStartsResults", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ", "smoke", "perf"), stage("prod")))
		f := w.publish(v1)
		p := w.report(f.Deployments[0].ID, deploydb.DeploymentCompleted)
		snap := p.Events[0].Deployment
		for _, d := range []*deploydb.Deployment{&f.Deployments[0], snap} {
			for _, r := range d.Promotions {
				if r.Status != deploydb.PromotionStarted || r.UpdatedAt != p.Now || !r.DueAt.IsZero() {
					t.Errorf("result %s = %s at %v due %v, want STARTED at %v, not due", r.Promotion, r.Status, r.UpdatedAt, r.DueAt, p.Now)
				}
			}
		}
		d := &f.Deployments[0]
		wantDiff(t, "ChangedResults", []int64{d.Promotions[0].ID, d.Promotions[1].ID}, resultIDs(p.ChangedResults()))
		wantDiff(t, "ChangedDeployments", []int64{d.ID}, ids(p.ChangedDeployments()))
		wantDiff(t, "ChangedFlows", []int64(nil), flowIDs(p.ChangedFlows()))
	})
}

// ReportPromotion.

func TestReportPromotion(t *testing.T) {
	t.Parallel()

	errTests := []struct {
		name      string
		complete  bool     // report deployment 0 COMPLETED first
		success   []string // then report these promotions SUCCESS
		deployIdx int      // -1: an unknown deployment
		promotion string
		status    deploydb.PromotionStatus
		code      string
	}{
		{name: "ErrUnknownDeployment", complete: true, deployIdx: -1, promotion: "smoke", status: deploydb.PromotionSuccess, code: deploydb.ENOTFOUND},
		{name: "ErrNotAttached", complete: true, promotion: "manual", status: deploydb.PromotionSuccess, code: deploydb.ENOTFOUND},
		{name: "ErrNotAttachedHere", complete: true, deployIdx: 1, promotion: "smoke", status: deploydb.PromotionSuccess, code: deploydb.ENOTFOUND},
		{name: "ErrNotStartedNotReportable", complete: true, promotion: "smoke", status: deploydb.PromotionNotStarted, code: deploydb.ECONFLICT},
		{name: "ErrStartedNotReportable", complete: true, promotion: "smoke", status: deploydb.PromotionStarted, code: deploydb.ECONFLICT},
		{name: "ErrBadStatus", complete: true, promotion: "smoke", status: "MAYBE", code: deploydb.EBADREQUEST},
		{name: "ErrAliasNotParsed", complete: true, promotion: "smoke", status: "FAILURE", code: deploydb.EBADREQUEST},
		{name: "ErrNotCompleted", promotion: "smoke", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
		{name: "ErrNextNotStarted", complete: true, deployIdx: 1, promotion: "approval", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
		{name: "ErrAlreadyReported", complete: true, success: []string{"smoke"}, promotion: "smoke", status: deploydb.PromotionFailed, code: deploydb.ECONFLICT},
		{name: "ErrAfterSuccess", complete: true, success: []string{"smoke", "perf"}, promotion: "perf", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ", "smoke", "perf"), stage("prod", "approval")))
			f := w.publish(v1)
			if tt.complete {
				w.report(f.Deployments[0].ID, deploydb.DeploymentCompleted)
			}
			for _, name := range tt.success {
				w.promote(f.Deployments[0].ID, name, deploydb.PromotionSuccess)
			}
			id := int64(999)
			if tt.deployIdx >= 0 {
				id = f.Deployments[tt.deployIdx].ID
			}
			var cur deploydb.Deployment
			if tt.deployIdx >= 0 {
				cur = *w.dep(id)
			}
			var res *deploydb.PromotionResult
			err := w.refuse(func(p *engine.Plan) error {
				var err error
				res, err = engine.ReportPromotion(p, id, tt.promotion, tt.status, "https://ci.example/1", "tester", engine.Approver{})
				return err
			})
			e := wantError(t, err, tt.code)
			if res != nil {
				t.Errorf("result = %+v, want nil", res)
			}
			if tt.code == deploydb.ECONFLICT {
				wantDiff(t, "Current", &cur, e.Current)
			}
		})
	}

	okTests := []struct {
		name     string
		stages   []deploydb.PipelineStage
		success  []string // reported SUCCESS on deployment 0 before
		report   string
		status   deploydb.PromotionStatus
		want     []deploydb.EventType
		wantFlow deploydb.FlowStatus
		wantDeps []deploydb.DeploymentStatus
	}{{
		name:     "SuccessAnotherPending",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("prod")},
		report:   "perf",
		status:   deploydb.PromotionSuccess,
		want:     []deploydb.EventType{promoted},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"COMPLETED", "NOT_STARTED"},
	}, {
		name:     "SuccessLastPending",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("staging"), stage("prod")},
		success:  []string{"smoke"},
		report:   "perf",
		status:   deploydb.PromotionSuccess,
		want:     []deploydb.EventType{promoted, verified, created},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CREATED", "NOT_STARTED"},
	}, {
		name:     "SuccessLastEnvironment",
		stages:   []deploydb.PipelineStage{stage("prod", "approval")},
		report:   "approval",
		status:   deploydb.PromotionSuccess,
		want:     []deploydb.EventType{promoted, verified, flowDone},
		wantFlow: deploydb.FlowSuccess,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS"},
	}, {
		name:     "SoakReportedEarly",
		stages:   []deploydb.PipelineStage{stage("integ", "soak"), stage("prod")},
		report:   "soak",
		status:   deploydb.PromotionSuccess,
		want:     []deploydb.EventType{promoted, verified, created},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CREATED"},
	}, {
		name:     "Failed",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf", "soak"), stage("prod")},
		success:  []string{"smoke"},
		report:   "perf",
		status:   deploydb.PromotionFailed,
		want:     []deploydb.EventType{promoted, failed},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}, {
		name:     "FailedIgnore",
		stages:   []deploydb.PipelineStage{withStrategy(stage("integ", "smoke"), deploydb.FailureIgnore), stage("prod")},
		report:   "smoke",
		status:   deploydb.PromotionFailed,
		want:     []deploydb.EventType{promoted, failed},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}}
	for _, tt := range okTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(tt.stages...))
			f := w.publish(v1)
			id := f.Deployments[0].ID
			w.report(id, deploydb.DeploymentCompleted)
			for _, name := range tt.success {
				w.promote(id, name, deploydb.PromotionSuccess)
			}
			before := cloneFlow(f)
			var res *deploydb.PromotionResult
			p := w.do("report", func(p *engine.Plan) error {
				var err error
				res, err = engine.ReportPromotion(p, id, tt.report, tt.status, "https://ci.example/7", "alice", engine.Approver{})
				return err
			})
			var got []deploydb.EventType
			for _, e := range events(t, p) {
				got = append(got, e.Type)
			}
			wantDiff(t, "events", tt.want, got)
			// promotion.completed shows the deployment as the result
			// left it: COMPLETED while results are pending, SUCCESS once
			// verified, FAILED.
			if e := p.Events[0]; e.Status != string(w.dep(id).Status) {
				t.Errorf("promotion.completed status %s, deployment %s", e.Status, w.dep(id).Status)
			}
			if f.Status != tt.wantFlow {
				t.Errorf("flow = %s, want %s", f.Status, tt.wantFlow)
			}
			wantDiff(t, "deployments", tt.wantDeps, statuses(f))

			// The result is returned, recorded with who reported it,
			// snapshotted, and changed.
			var stored *deploydb.PromotionResult
			for j := range f.Deployments[0].Promotions {
				if r := &f.Deployments[0].Promotions[j]; r.Promotion == tt.report {
					stored = r
				}
			}
			if stored.Status != tt.status || stored.InfoURL != "https://ci.example/7" || stored.ReportedBy != "alice" || stored.UpdatedAt != p.Now || !stored.DueAt.IsZero() {
				t.Errorf("stored result = %+v", stored)
			}
			wantDiff(t, "returned result", stored, res)
			wantDiff(t, "event result", stored, p.Events[0].Result)
			res.InfoURL = "mutated"
			if stored.InfoURL == "mutated" {
				t.Error("the returned result shares memory with the flow")
			}
			var wantResults, wantDeps []int64
			for i, d := range f.Deployments {
				if !cmp.Equal(d, before.Deployments[i], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Promotions" }, cmp.Ignore())) {
					wantDeps = append(wantDeps, d.ID)
				}
				for j, r := range d.Promotions {
					if r != before.Deployments[i].Promotions[j] {
						wantResults = append(wantResults, r.ID)
					}
				}
			}
			wantDiff(t, "ChangedResults", wantResults, resultIDs(p.ChangedResults()))
			wantDiff(t, "ChangedDeployments", wantDeps, ids(p.ChangedDeployments()))
			var wantFlows []int64
			if tt.wantFlow != deploydb.FlowCreated {
				wantFlows = []int64{f.ID}
			}
			wantDiff(t, "ChangedFlows", wantFlows, flowIDs(p.ChangedFlows()))
		})
	}
}

// Soak promotions.

func TestSoak(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*world, *deploydb.Deployment) {
		w := newWorld(t, config(stage("integ", "smoke", "soak"), stage("prod")))
		f := w.publish(v1)
		d := &f.Deployments[0]
		p := w.report(d.ID, deploydb.DeploymentCompleted)
		// The soak result comes due its duration after the deployment
		// completed; other results are never due.
		if got, want := d.Promotions[1].DueAt, deploydb.UnixMilli(p.Now.UnixMilli()+soakMs); got != want {
			t.Errorf("soak DueAt = %v, want %v", got, want)
		}
		if !d.Promotions[0].DueAt.IsZero() {
			t.Errorf("smoke DueAt = %v, want none", d.Promotions[0].DueAt)
		}
		if s := p.Events[0].Deployment.Promotions[1].DueAt; s != d.Promotions[1].DueAt {
			t.Errorf("completed snapshot soak DueAt = %v", s)
		}
		return w, d
	}

	t.Run("Succeeds", func(t *testing.T) {
		t.Parallel()
		w, d := setup(t)
		w.promote(d.ID, "smoke", deploydb.PromotionSuccess)
		p := w.do("soak", func(p *engine.Plan) error {
			_, err := engine.ReportPromotion(p, d.ID, "soak", deploydb.PromotionSuccess, "", "deploydb", engine.Approver{})
			return err
		})
		d = w.dep(d.ID)
		if d.Status != deploydb.DeploymentSuccess || !d.Promotions[1].DueAt.IsZero() || d.Promotions[1].ReportedBy != "deploydb" {
			t.Errorf("after soak: %s, soak %+v", d.Status, d.Promotions[1])
		}
		wantDiff(t, "ChangedResults", []int64{d.Promotions[1].ID}, resultIDs(p.ChangedResults()))
	})

	t.Run("FailureClearsDue", func(t *testing.T) {
		t.Parallel()
		w, d := setup(t)
		// A soak of a failed deployment never comes due: the timer must
		// not keep finding it.
		p := w.promote(d.ID, "smoke", deploydb.PromotionFailed)
		d = w.dep(d.ID)
		if r := d.Promotions[1]; r.Status != deploydb.PromotionStarted || !r.DueAt.IsZero() || r.UpdatedAt != p.Now {
			t.Errorf("soak after failure = %+v, want STARTED, not due, updated now", r)
		}
		wantDiff(t, "ChangedResults", []int64{d.Promotions[0].ID, d.Promotions[1].ID}, resultIDs(p.ChangedResults()))
	})
}

// Coordination: serialization, supersede, environment states.

func TestSerialization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// free makes flow a leave integ; it returns the plan that did.
		free func(w *world, a *deploydb.Flow) *engine.Plan
		// want are the events of that plan, given a's and b's
		// deployments in integ and a's in prod.
		want func(ai, ap, bi int64) []ev
	}{{
		name: "Verified",
		free: func(w *world, a *deploydb.Flow) *engine.Plan {
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			return w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionSuccess)
		},
		want: func(ai, ap, bi int64) []ev {
			return []ev{{Type: promoted, Dep: ai, Status: "SUCCESS"}, {Type: verified, Dep: ai, Status: "SUCCESS"},
				{Type: created, Dep: ap, Status: "CREATED"}, {Type: created, Dep: bi, Status: "CREATED"}}
		},
	}, {
		name: "Failed",
		free: func(w *world, a *deploydb.Flow) *engine.Plan {
			w.report(a.Deployments[0].ID, deploydb.DeploymentStarted)
			return w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
		},
		want: func(ai, ap, bi int64) []ev {
			return []ev{{Type: failed, Dep: ai, Status: "FAILED"}, {Type: created, Dep: bi, Status: "CREATED"}}
		},
	}, {
		name: "FailedByPromotion",
		free: func(w *world, a *deploydb.Flow) *engine.Plan {
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			return w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionFailed)
		},
		want: func(ai, ap, bi int64) []ev {
			return []ev{{Type: promoted, Dep: ai, Status: "FAILED"}, {Type: failed, Dep: ai, Status: "FAILED"}, {Type: created, Dep: bi, Status: "CREATED"}}
		},
	}, {
		name: "Cancelled",
		free: func(w *world, a *deploydb.Flow) *engine.Plan { return w.cancel(a.ID) },
		want: func(ai, ap, bi int64) []ev {
			return []ev{{Type: cancelled, Dep: ai, Status: "CANCELLED"}, {Type: cancelled, Dep: ap, Status: "CANCELLED", Quiet: true},
				{Type: created, Dep: bi, Status: "CREATED"}}
		},
	}, {
		name: "CancelledWhileCompletedThenVerified",
		free: func(w *world, a *deploydb.Flow) *engine.Plan {
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.cancel(a.ID)
			// The COMPLETED deployment still holds integ.
			if b := w.flows[len(w.flows)-1]; b.Deployments[0].Status != deploydb.DeploymentNotStarted {
				w.t.Fatalf("b's integ %s while a's COMPLETED one holds it", b.Deployments[0].Status)
			}
			return w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionSuccess)
		},
		want: func(ai, ap, bi int64) []ev {
			// The cancelled flow does not move on to prod.
			return []ev{{Type: promoted, Dep: ai, Status: "SUCCESS"}, {Type: verified, Dep: ai, Status: "SUCCESS"}, {Type: created, Dep: bi, Status: "CREATED"}}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ", "smoke"), stage("prod")))
			a := w.publish(v1)
			ai := a.Deployments[0].ID
			b := w.publish(v2)
			bi := &b.Deployments[0]
			// b is due in integ, and waits for a there.
			wantDiff(t, "events of b's publish", []ev{}, events(t, w.last))
			wantDiff(t, "ChangedDeployments of b's publish", []int64{bi.ID}, ids(w.last.ChangedDeployments()))
			if bi.Status != deploydb.DeploymentNotStarted || bi.DueAt != w.last.Now || !strings.HasPrefix(bi.Waiting, fmt.Sprintf("busy: deployment %d of 1.0.1 is active in integ", ai)) {
				t.Fatalf("b in integ = %s, due %v, waiting %q", bi.Status, bi.DueAt, bi.Waiting)
			}
			dueAt := bi.DueAt
			p := tt.free(w, a)
			wantDiff(t, "events", tt.want(ai, a.Deployments[1].ID, bi.ID), events(t, p))
			if bi.Status != deploydb.DeploymentCreated || bi.Waiting != "" || bi.DueAt != dueAt || bi.UpdatedAt != p.Now {
				t.Errorf("b in integ = %s, waiting %q, due %v (want %v), updated %v", bi.Status, bi.Waiting, bi.DueAt, dueAt, bi.UpdatedAt)
			}
			if b.Status != deploydb.FlowCreated {
				t.Errorf("b = %s", b.Status)
			}
		})
	}

	t.Run("WaitingReasonFollowsTheHolder", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		a := w.publish(v1)
		b := w.publish(v2)
		w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted) // a moves to prod, b takes integ
		c := w.publish(v3)
		if got, want := c.Deployments[0].Waiting, fmt.Sprintf("busy: deployment %d of 1.0.2 is active in integ", b.Deployments[0].ID); got != want {
			t.Errorf("c waits %q, want %q", got, want)
		}
	})
}

func TestSupersede(t *testing.T) {
	t.Parallel()
	w := newWorld(t, config(stage("integ"), stage("staging"), stage("prod")))
	a := w.publish(v1)
	b := w.publish(v2)
	c := w.publish(v3)
	bi, ci := b.Deployments[0].ID, c.Deployments[0].ID
	ai, as := a.Deployments[0].ID, a.Deployments[1].ID
	p := w.report(ai, deploydb.DeploymentCompleted)
	// a moves on; the newest waiting flow, c, takes integ; b, older and
	// waiting, is superseded: its deployment that was due loudly, the rest
	// quietly.
	wantDiff(t, "events", []ev{
		{Type: completed, Dep: ai, Status: "COMPLETED"},
		{Type: verified, Dep: ai, Status: "SUCCESS"},
		{Type: created, Dep: as, Status: "CREATED"},
		{Type: created, Dep: ci, Status: "CREATED"},
		{Type: superseded, Dep: bi, Status: "SUPERSEDED"},
		{Type: superseded, Dep: b.Deployments[1].ID, Status: "SUPERSEDED", Quiet: true},
		{Type: superseded, Dep: b.Deployments[2].ID, Status: "SUPERSEDED", Quiet: true},
	}, events(t, p))
	if want := fmt.Sprintf("superseded by 1.0.3 (flow %d, deployment %d)", c.ID, ci); detail(t, p, superseded, bi) != want {
		t.Errorf("detail = %q, want %q", detail(t, p, superseded, bi), want)
	}
	if b.Status != deploydb.FlowSuperseded || b.UpdatedAt != p.Now {
		t.Errorf("b = %s at %v", b.Status, b.UpdatedAt)
	}
	for _, d := range b.Deployments {
		if d.Waiting != "" {
			t.Errorf("superseded deployment %d still waits %q", d.ID, d.Waiting)
		}
	}
	wantDiff(t, "ChangedFlows", []int64{b.ID}, flowIDs(p.ChangedFlows()))
	wantDiff(t, "ChangedDeployments", []int64{ai, as, bi, b.Deployments[1].ID, b.Deployments[2].ID, ci}, ids(p.ChangedDeployments()))

	// The superseded flow is finished.
	err := w.refuse(func(p *engine.Plan) error { return engine.Cancel(p, b.ID) })
	wantError(t, err, deploydb.ECONFLICT)

	// c follows a into staging: it waits there, and nothing is superseded
	// with a single flow waiting.
	w.report(ci, deploydb.DeploymentCompleted)
	if d := c.Deployments[1]; d.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(d.Waiting, fmt.Sprintf("busy: deployment %d ", as)) {
		t.Errorf("c in staging = %s waiting %q", d.Status, d.Waiting)
	}
	p = w.report(as, deploydb.DeploymentCompleted)
	wantDiff(t, "events", []ev{
		{Type: completed, Dep: as, Status: "COMPLETED"},
		{Type: verified, Dep: as, Status: "SUCCESS"},
		{Type: created, Dep: a.Deployments[2].ID, Status: "CREATED"},
		{Type: created, Dep: c.Deployments[1].ID, Status: "CREATED"},
	}, events(t, p))
}

func TestEnvironmentStates(t *testing.T) {
	t.Parallel()
	locked := engine.EnvState{Locked: true, LockReason: "incident 42"}
	frozen := engine.EnvState{Frozen: true, FreezeReason: "release freeze"}
	both := engine.EnvState{Locked: true, LockReason: "incident 42", Frozen: true, FreezeReason: "release freeze"}
	tests := []struct {
		name  string
		state engine.EnvState
		// then are the states set one after the other, with the reason
		// the deployment waits for after each ("" once activated).
		then []engine.EnvState
		want []string
	}{
		{name: "Locked", state: locked, then: []engine.EnvState{{}}, want: []string{""}},
		{name: "Frozen", state: frozen, then: []engine.EnvState{{}}, want: []string{""}},
		{name: "LockedAndFrozen", state: both, then: []engine.EnvState{frozen, {}}, want: []string{"frozen: release freeze", ""}},
		{name: "Relocked", state: locked, then: []engine.EnvState{{Locked: true, LockReason: "incident 43"}, {}}, want: []string{"locked: incident 43", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ"), stage("prod")))
			w.envs["prod"] = tt.state
			a := w.publish(v1)
			d := &a.Deployments[1]
			p := w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			why := "locked: incident 42"
			if !tt.state.Locked {
				why = "frozen: release freeze"
			}
			if d.Status != deploydb.DeploymentNotStarted || d.Waiting != why || d.DueAt != p.Now {
				t.Fatalf("prod = %s waiting %q due %v, want NOT_STARTED waiting %q due %v", d.Status, d.Waiting, d.DueAt, why, p.Now)
			}
			wantDiff(t, "events", []ev{{Type: completed, Dep: a.Deployments[0].ID, Status: "COMPLETED"}, {Type: verified, Dep: a.Deployments[0].ID, Status: "SUCCESS"}}, events(t, p))

			// Scheduling with nothing new changes nothing.
			p = w.setEnv("prod", tt.state)
			if len(p.Events) != 0 || len(p.ChangedDeployments()) != 0 {
				t.Errorf("schedule without change: events %+v, changed %v", p.Events, ids(p.ChangedDeployments()))
			}
			for i, st := range tt.then {
				p = w.setEnv("prod", st)
				if tt.want[i] != "" {
					if d.Status != deploydb.DeploymentNotStarted || d.Waiting != tt.want[i] {
						t.Errorf("step %d: prod = %s waiting %q, want %q", i, d.Status, d.Waiting, tt.want[i])
					}
					wantDiff(t, "ChangedDeployments", []int64{d.ID}, ids(p.ChangedDeployments()))
					wantDiff(t, "events", []ev{}, events(t, p))
					continue
				}
				wantDiff(t, "events", []ev{{Type: created, Dep: d.ID, Status: "CREATED"}}, events(t, p))
				if d.Status != deploydb.DeploymentCreated || d.Waiting != "" {
					t.Errorf("prod = %s waiting %q, want CREATED", d.Status, d.Waiting)
				}
			}
		})
	}

	t.Run("LockedAtStart", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		w.envs["integ"] = locked
		a := w.publish(v1)
		if d := a.Deployments[0]; d.Status != deploydb.DeploymentNotStarted || d.Waiting != "locked: incident 42" {
			t.Errorf("integ = %s waiting %q", d.Status, d.Waiting)
		}
		wantDiff(t, "events", []ev{}, events(t, w.last))
		w.setEnv("integ", engine.EnvState{})
		if d := a.Deployments[0]; d.Status != deploydb.DeploymentCreated {
			t.Errorf("integ = %s after unlock", d.Status)
		}
	})

	t.Run("NothingRunningIsTouched", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		a := w.publish(v1)
		w.report(a.Deployments[0].ID, deploydb.DeploymentStarted)
		before := cloneFlows(w.flows)
		p := w.setEnv("integ", both)
		if len(p.Events) != 0 || len(p.ChangedDeployments()) != 0 || len(p.ChangedFlows()) != 0 {
			t.Errorf("locking a running environment changed something: %+v", p.Events)
		}
		wantDiff(t, "flows", before, w.flows)
		// It still completes, and the next environment is not held.
		w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
		if d := a.Deployments[1]; d.Status != deploydb.DeploymentCreated {
			t.Errorf("prod = %s", d.Status)
		}
	})

	t.Run("BusyComesFirst", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		a := w.publish(v1)
		w.setEnv("integ", locked)
		b := w.publish(v2)
		if want := fmt.Sprintf("busy: deployment %d ", a.Deployments[0].ID); !strings.HasPrefix(b.Deployments[0].Waiting, want) {
			t.Errorf("b waits %q, want %q...", b.Deployments[0].Waiting, want)
		}
		// a leaves integ: b now waits for the lock.
		w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
		if got := b.Deployments[0].Waiting; got != "locked: incident 42" {
			t.Errorf("b waits %q", got)
		}
	})
}

// Failure strategy rollback, and rollback and hotfix flows.

func TestRollbackStrategy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		lastGood   *deploydb.Artifact
		byResult   bool
		wantDetail string
	}{
		{name: "ToLastGood", lastGood: &v9, wantDetail: "the orchestrator reported the deployment FAILED; failure strategy rollback: rolling back to 0.9.9"},
		{name: "ToLastGoodByResult", lastGood: &v9, byResult: true, wantDetail: `promotion "smoke" FAILED; failure strategy rollback: rolling back to 0.9.9`},
		{name: "NoLastGood", wantDetail: "the orchestrator reported the deployment FAILED; failure strategy rollback: no last known good artifact of billing in integ other than this one, nothing rolled back"},
		{name: "LastGoodIsTheFailedArtifact", lastGood: &v1, byResult: true, wantDetail: `promotion "smoke" FAILED; failure strategy rollback: no last known good artifact of billing in integ other than this one, nothing rolled back`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(withStrategy(stage("integ", "smoke"), deploydb.FailureRollback), stage("prod")))
			if tt.lastGood != nil {
				w.lastGood["integ"] = tt.lastGood
			}
			a := w.publish(v1)
			b := w.publish(v2) // waits behind a in integ
			ai := a.Deployments[0].ID
			p := w.plan()
			var err error
			if tt.byResult {
				if err = engine.ReportDeployment(p, ai, deploydb.DeploymentCompleted); err == nil {
					w.commit(p)
					p = w.plan()
					_, err = engine.ReportPromotion(p, ai, "smoke", deploydb.PromotionFailed, "", "ci", engine.Approver{})
				}
			} else {
				err = engine.ReportDeployment(p, ai, deploydb.DeploymentFailed)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := detail(t, p, failed, ai); got != tt.wantDetail {
				t.Errorf("detail = %q, want %q", got, tt.wantDetail)
			}
			for _, e := range p.Events {
				if e.Quiet {
					t.Errorf("%s is quiet", e.Type)
				}
			}
			if tt.lastGood == nil || tt.lastGood.ID == v1.ID {
				if len(p.Rollbacks) != 0 {
					t.Fatalf("Rollbacks = %+v, want none", p.Rollbacks)
				}
				w.commit(p)
				if len(w.flows) != 2 {
					t.Errorf("%d flows, want no rollback flow", len(w.flows))
				}
				// integ is free: b goes ahead.
				if d := b.Deployments[0]; d.Status != deploydb.DeploymentCreated {
					t.Errorf("b in integ = %s", d.Status)
				}
				return
			}
			wantDiff(t, "Rollbacks", []engine.RollbackRequest{{Environment: "integ", Artifact: *tt.lastGood, Cause: ai}}, p.Rollbacks)
			w.commit(p)
			// The rollback flow takes integ ahead of b, which waits.
			r := w.flows[len(w.flows)-1]
			rd := &r.Deployments[0]
			if r.Reason != deploydb.ReasonRollback || r.Artifact.ID != v9.ID || rd.Reason != deploydb.ReasonRollback || rd.Environment != "integ" ||
				rd.Status != deploydb.DeploymentCreated || rd.FailureStrategy != deploydb.FailureNotify {
				t.Errorf("rollback flow:\n%s", dump([]*deploydb.Flow{r}))
			}
			if e := p.Events[len(p.Events)-1]; e.Type != created || e.Deployment.ID != rd.ID {
				t.Errorf("last event %s about %v, want deployment.created of the rollback", e.Type, e.Deployment)
			}
			if d := b.Deployments[0]; d.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(d.Waiting, fmt.Sprintf("busy: deployment %d ", rd.ID)) {
				t.Errorf("b in integ = %s waiting %q", d.Status, d.Waiting)
			}
			if a.Status != deploydb.FlowFailed {
				t.Errorf("a = %s", a.Status)
			}
			// A failing rollback only notifies.
			p = w.report(rd.ID, deploydb.DeploymentFailed)
			wantDiff(t, "events", []ev{{Type: failed, Dep: rd.ID, Status: "FAILED"}, {Type: created, Dep: b.Deployments[0].ID, Status: "CREATED"}}, events(t, p))
			if len(w.flows) != 3 {
				t.Errorf("%d flows after the rollback failed, want 3", len(w.flows))
			}
		})
	}

	t.Run("VerifiedUpdatesLastGood", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(withStrategy(stage("integ"), deploydb.FailureRollback)))
		w.lastGood["integ"] = &v9
		a := w.publish(v1)
		w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
		if lg := w.lastGood["integ"]; lg == nil || lg.ID != v1.ID {
			t.Fatalf("last good = %+v, want v1", lg)
		}
		b := w.publish(v2)
		w.report(b.Deployments[0].ID, deploydb.DeploymentFailed)
		r := w.flows[len(w.flows)-1]
		if r.Reason != deploydb.ReasonRollback || r.Artifact.ID != v1.ID {
			t.Errorf("rollback to %s, want 1.0.1", r.Artifact.Version)
		}
	})
}

func TestAdopt(t *testing.T) {
	t.Parallel()

	t.Run("FreeEnvironment", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		r := w.adopt(deploydb.ReasonRollback, "prod", v9)
		d := &r.Deployments[0]
		wantDiff(t, "events", []ev{{Type: created, Dep: d.ID, Status: "CREATED"}}, events(t, w.last))
		if d.Position != 1 || d.DueAt != w.last.Now {
			t.Errorf("rollback deployment at %d due %v", d.Position, d.DueAt)
		}
		p := w.report(d.ID, deploydb.DeploymentCompleted)
		wantDiff(t, "events", []ev{{Type: completed, Dep: d.ID, Status: "COMPLETED"}, {Type: verified, Dep: d.ID, Status: "SUCCESS"}, {Type: flowDone, Flow: r.ID, Status: "SUCCESS"}}, events(t, p))
		if r.Status != deploydb.FlowSuccess || w.lastGood["prod"].ID != v9.ID {
			t.Errorf("rollback flow %s, last good %+v", r.Status, w.lastGood["prod"])
		}
	})

	for _, reason := range []deploydb.Reason{deploydb.ReasonHotfix, deploydb.ReasonRollback} {
		t.Run("GoesAheadOfWaitingPipeline"+string(reason), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ"), stage("prod")))
			a := w.publish(v1)
			// h waits behind a; then b, newer, waits too.
			h := w.adopt(reason, "integ", v9)
			hd := &h.Deployments[0]
			if hd.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(hd.Waiting, fmt.Sprintf("busy: deployment %d ", a.Deployments[0].ID)) {
				t.Fatalf("%s = %s waiting %q", reason, hd.Status, hd.Waiting)
			}
			b := w.publish(v2)
			bd := &b.Deployments[0]
			// a leaves integ: h goes first though b is newer, and b is
			// not superseded by it.
			p := w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
			wantDiff(t, "events", []ev{{Type: failed, Dep: a.Deployments[0].ID, Status: "FAILED"}, {Type: created, Dep: hd.ID, Status: "CREATED"}}, events(t, p))
			if bd.Status != deploydb.DeploymentNotStarted || b.Status != deploydb.FlowCreated || !strings.HasPrefix(bd.Waiting, fmt.Sprintf("busy: deployment %d of 0.9.9 is active in integ", hd.ID)) {
				t.Errorf("b = %s, in integ %s waiting %q", b.Status, bd.Status, bd.Waiting)
			}
			// h finishes; b follows.
			w.report(hd.ID, deploydb.DeploymentCompleted)
			if bd.Status != deploydb.DeploymentCreated || h.Status != deploydb.FlowSuccess {
				t.Errorf("b in integ = %s, %s flow %s", bd.Status, reason, h.Status)
			}
		})
	}

	t.Run("NewestOfTwoGoesFirst", func(t *testing.T) {
		// The older of two waiting rollbacks/hotfixes would only deploy
		// what an operator already replaced: it is superseded.
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		a := w.publish(v1)
		h1 := w.adopt(deploydb.ReasonHotfix, "integ", v9)
		h2 := w.adopt(deploydb.ReasonRollback, "integ", v9)
		w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
		if h2.Deployments[0].Status != deploydb.DeploymentCreated || h1.Deployments[0].Status != deploydb.DeploymentSuperseded || h1.Status != deploydb.FlowSuperseded {
			t.Errorf("h1 %s (%s), h2 %s; want h2 activated and h1 superseded\n%s", h1.Deployments[0].Status, h1.Status, h2.Deployments[0].Status, dump(w.flows))
		}
	})

	t.Run("LockedEnvironment", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		w.envs["prod"] = engine.EnvState{Locked: true, LockReason: "audit"}
		h := w.adopt(deploydb.ReasonHotfix, "prod", v9)
		if d := h.Deployments[0]; d.Status != deploydb.DeploymentNotStarted || d.Waiting != "locked: audit" {
			t.Errorf("hotfix = %s waiting %q", d.Status, d.Waiting)
		}
	})
}

// Operator actions: cancel and retry.

func TestCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup brings flow a (integ with smoke, staging, prod; b waits
		// behind it in integ) to the state to cancel.
		setup    func(w *world, a *deploydb.Flow)
		wantDeps []deploydb.DeploymentStatus
		// loud are the indexes of the deployments whose
		// deployment.cancelled fires webhooks.
		loud []int
		// bCreated: b takes integ.
		bCreated bool
	}{
		{name: "Created", setup: func(w *world, a *deploydb.Flow) {},
			wantDeps: []deploydb.DeploymentStatus{"CANCELLED", "CANCELLED", "CANCELLED"}, loud: []int{0}, bCreated: true},
		{name: "Started", setup: func(w *world, a *deploydb.Flow) { w.report(a.Deployments[0].ID, deploydb.DeploymentStarted) },
			wantDeps: []deploydb.DeploymentStatus{"CANCELLED", "CANCELLED", "CANCELLED"}, loud: []int{0}, bCreated: true},
		{name: "CompletedIsKept", setup: func(w *world, a *deploydb.Flow) { w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted) },
			wantDeps: []deploydb.DeploymentStatus{"COMPLETED", "CANCELLED", "CANCELLED"}},
		{name: "Waiting", setup: func(w *world, a *deploydb.Flow) {
			w.setEnv("staging", engine.EnvState{Locked: true, LockReason: "x"})
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionSuccess)
		}, wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CANCELLED", "CANCELLED"}, bCreated: true},
		{name: "Later", setup: func(w *world, a *deploydb.Flow) {
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionSuccess)
			w.report(a.Deployments[1].ID, deploydb.DeploymentStarted)
		}, wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CANCELLED", "CANCELLED"}, loud: []int{1}, bCreated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ", "smoke"), stage("staging"), stage("prod")))
			a := w.publish(v1)
			b := w.publish(v2)
			tt.setup(w, a)
			before := cloneFlow(a)
			p := w.cancel(a.ID)
			wantDiff(t, "deployments", tt.wantDeps, statuses(a))
			if a.Status != deploydb.FlowCancelled || a.UpdatedAt != p.Now {
				t.Errorf("a = %s at %v", a.Status, a.UpdatedAt)
			}
			var want []ev
			var wantChanged []int64
			for i, d := range a.Deployments {
				if d.Status == before.Deployments[i].Status {
					continue
				}
				wantChanged = append(wantChanged, d.ID)
				want = append(want, ev{Type: cancelled, Dep: d.ID, Status: "CANCELLED", Quiet: !slices.Contains(tt.loud, i)})
				if d.Waiting != "" {
					t.Errorf("cancelled deployment %d waits %q", d.ID, d.Waiting)
				}
			}
			bd := &b.Deployments[0]
			if bd.Status == deploydb.DeploymentCreated != tt.bCreated {
				t.Errorf("b in integ = %s, want CREATED: %v", bd.Status, tt.bCreated)
			}
			if bd.Status == deploydb.DeploymentCreated && before.Deployments[0].Status.Active() {
				want = append(want, ev{Type: created, Dep: bd.ID, Status: "CREATED"})
				wantChanged = append(wantChanged, bd.ID)
			}
			wantDiff(t, "events", want, events(t, p))
			wantDiff(t, "ChangedFlows", []int64{a.ID}, flowIDs(p.ChangedFlows()))
			slices.Sort(wantChanged)
			wantDiff(t, "ChangedDeployments", wantChanged, ids(p.ChangedDeployments()))
		})
	}

	t.Run("CompletedFinishes", func(t *testing.T) {
		t.Parallel()
		for _, s := range []deploydb.PromotionStatus{deploydb.PromotionSuccess, deploydb.PromotionFailed} {
			w := newWorld(t, config(withStrategy(stage("integ", "smoke"), deploydb.FailureRollback), stage("prod")))
			w.lastGood["integ"] = &v9
			a := w.publish(v1)
			b := w.publish(v2)
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.cancel(a.ID)
			w.promote(a.Deployments[0].ID, "smoke", s)
			if a.Status != deploydb.FlowCancelled || a.Deployments[1].Status != deploydb.DeploymentCancelled {
				t.Errorf("%s: a = %s, prod %s", s, a.Status, a.Deployments[1].Status)
			}
			want := deploydb.DeploymentCreated
			if s == deploydb.PromotionFailed {
				// The failure strategy still applies: the rollback goes
				// first.
				want = deploydb.DeploymentNotStarted
				if r := w.flows[len(w.flows)-1]; r.Reason != deploydb.ReasonRollback || r.Deployments[0].Status != deploydb.DeploymentCreated {
					t.Errorf("no rollback:\n%s", dump(w.flows))
				}
			}
			if got := b.Deployments[0].Status; got != want {
				t.Errorf("%s: b in integ = %s, want %s", s, got, want)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ")))
		w.publish(v1)
		wantError(t, w.refuse(func(p *engine.Plan) error { return engine.Cancel(p, 999) }), deploydb.ENOTFOUND)
	})

	for _, end := range []deploydb.FlowStatus{deploydb.FlowSuccess, deploydb.FlowFailed, deploydb.FlowCancelled, deploydb.FlowSuperseded} {
		t.Run("ErrFinished"+string(end), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ")))
			a := w.publish(v1)
			switch end {
			case deploydb.FlowSuccess:
				w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			case deploydb.FlowFailed:
				w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
			case deploydb.FlowCancelled:
				w.cancel(a.ID)
			case deploydb.FlowSuperseded:
				a = w.publish(v2)
				w.publish(v3)
				w.report(w.flows[0].Deployments[0].ID, deploydb.DeploymentCompleted)
			}
			if a.Status != end {
				t.Fatalf("setup reached %s", a.Status)
			}
			cur := cloneFlow(a)
			e := wantError(t, w.refuse(func(p *engine.Plan) error { return engine.Cancel(p, a.ID) }), deploydb.ECONFLICT)
			wantDiff(t, "Current", cur, e.Current)
		})
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()

	t.Run("NewRetry", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ", "smoke", "soak"), stage("prod")))
		a := w.publish(v1)
		d := &a.Deployments[0]
		w.report(d.ID, deploydb.DeploymentCompleted)
		w.promote(d.ID, "smoke", deploydb.PromotionFailed)
		got := engine.NewRetry(d, at(99))
		want := *d
		want.ID, want.Status, want.Reason, want.DueAt, want.Waiting = 0, deploydb.DeploymentNotStarted, deploydb.ReasonRetry, deploydb.Time{}, ""
		want.CreatedAt, want.UpdatedAt = at(99), at(99)
		// A new deployment: none of the failed one's steps.
		want.ActivatedAt, want.StartedAt, want.CompletedAt, want.FinishedAt = deploydb.Time{}, deploydb.Time{}, deploydb.Time{}, deploydb.Time{}
		want.Promotions = []deploydb.PromotionResult{
			{Promotion: "smoke", Type: "basic", Status: deploydb.PromotionNotStarted, CreatedAt: at(99), UpdatedAt: at(99)},
			{Promotion: "soak", Type: "soak", SoakMs: soakMs, Status: deploydb.PromotionNotStarted, CreatedAt: at(99), UpdatedAt: at(99)},
		}
		wantDiff(t, "retry", want, got)
	})

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ", "smoke"), stage("prod")))
		a := w.publish(v1)
		old := a.Deployments[0].ID
		w.report(old, deploydb.DeploymentFailed)
		r := w.retry(old)
		p := w.last
		if a.Status != deploydb.FlowCreated || a.UpdatedAt != p.Now {
			t.Errorf("flow = %s at %v, want CREATED again", a.Status, a.UpdatedAt)
		}
		if r.Status != deploydb.DeploymentCreated || r.Reason != deploydb.ReasonRetry || r.Position != 0 || r.DueAt != p.Now || r.ID <= old {
			t.Errorf("retry = %+v", r)
		}
		if w.dep(old).Status != deploydb.DeploymentFailed {
			t.Errorf("retried deployment = %s", w.dep(old).Status)
		}
		wantDiff(t, "events", []ev{{Type: created, Dep: r.ID, Status: "CREATED"}}, events(t, p))
		wantDiff(t, "ChangedFlows", []int64{a.ID}, flowIDs(p.ChangedFlows()))
		wantDiff(t, "ChangedDeployments", []int64{r.ID}, ids(p.ChangedDeployments()))
		wantDiff(t, "order", []int64{old, r.ID, a.Deployments[2].ID}, []int64{a.Deployments[0].ID, a.Deployments[1].ID, a.Deployments[2].ID})
		// The flow goes on from the retry.
		w.report(r.ID, deploydb.DeploymentCompleted)
		w.promote(r.ID, "smoke", deploydb.PromotionSuccess)
		if d := w.in(a, "prod"); d.Status != deploydb.DeploymentCreated {
			t.Errorf("prod = %s", d.Status)
		}
		// The old deployment was retried already.
		e := wantError(t, w.refuse(func(p *engine.Plan) error { return engine.CheckRetry(p, old) }), deploydb.ECONFLICT)
		if !strings.Contains(e.Message, "retried already") {
			t.Errorf("message = %q", e.Message)
		}
	})

	t.Run("WaitsWhenBusy", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, config(stage("integ"), stage("prod")))
		a := w.publish(v1)
		w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
		b := w.publish(v2)
		r := w.retry(a.Deployments[0].ID)
		if r.Status != deploydb.DeploymentNotStarted || !strings.HasPrefix(r.Waiting, fmt.Sprintf("busy: deployment %d ", b.Deployments[0].ID)) {
			t.Fatalf("retry = %s waiting %q", r.Status, r.Waiting)
		}
		wantDiff(t, "events", []ev{}, events(t, w.last))
		w.report(b.Deployments[0].ID, deploydb.DeploymentFailed)
		if r = w.in(a, "integ"); r.Status != deploydb.DeploymentCreated {
			t.Errorf("retry = %s after integ freed", r.Status)
		}
	})

	errTests := []struct {
		name  string
		setup func(w *world, a *deploydb.Flow) int64
		code  string
	}{
		{name: "ErrNotFound", code: deploydb.ENOTFOUND, setup: func(w *world, a *deploydb.Flow) int64 { return 999 }},
		{name: "ErrCreated", code: deploydb.ECONFLICT, setup: func(w *world, a *deploydb.Flow) int64 { return a.Deployments[0].ID }},
		{name: "ErrNotStarted", code: deploydb.ECONFLICT, setup: func(w *world, a *deploydb.Flow) int64 { return a.Deployments[1].ID }},
		{name: "ErrSuccess", code: deploydb.ECONFLICT, setup: func(w *world, a *deploydb.Flow) int64 {
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionSuccess)
			return a.Deployments[0].ID
		}},
		{name: "ErrFlowCancelled", code: deploydb.ECONFLICT, setup: func(w *world, a *deploydb.Flow) int64 {
			// Failed after the flow was cancelled.
			w.report(a.Deployments[0].ID, deploydb.DeploymentCompleted)
			w.cancel(a.ID)
			w.promote(a.Deployments[0].ID, "smoke", deploydb.PromotionFailed)
			return a.Deployments[0].ID
		}},
		{name: "ErrRetriedAgain", code: deploydb.ECONFLICT, setup: func(w *world, a *deploydb.Flow) int64 {
			w.report(a.Deployments[0].ID, deploydb.DeploymentFailed)
			r := w.retry(a.Deployments[0].ID)
			w.report(r.ID, deploydb.DeploymentFailed)
			w.retry(r.ID)
			return r.ID
		}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, config(stage("integ", "smoke"), stage("prod")))
			a := w.publish(v1)
			id := tt.setup(w, a)
			var cur deploydb.Deployment
			if tt.code == deploydb.ECONFLICT {
				cur = *w.dep(id)
			}
			e := wantError(t, w.refuse(func(p *engine.Plan) error { return engine.CheckRetry(p, id) }), tt.code)
			if tt.code == deploydb.ECONFLICT {
				wantDiff(t, "Current", &cur, e.Current)
			}
		})
	}
}

// The property: any sequence of commands on the flows of one service, valid
// or not, keeps the invariants, refuses exactly what the rules refuse
// without touching anything, and says exactly what changed.

// rows are the rows of flows, deployments and promotion results by id, as
// a store keeps them: without their children.
type rows struct {
	flows   map[int64]deploydb.Flow
	deps    map[int64]deploydb.Deployment
	results map[int64]deploydb.PromotionResult
}

func flowRow(f *deploydb.Flow) deploydb.Flow {
	c := *f
	c.Deployments = nil
	return c
}

func (r *rows) addDeployment(d *deploydb.Deployment) {
	c := *d
	c.Promotions = nil
	r.deps[d.ID] = c
	for _, x := range d.Promotions {
		r.results[x.ID] = x
	}
}

func rowsOf(flows []*deploydb.Flow) *rows {
	r := &rows{flows: map[int64]deploydb.Flow{}, deps: map[int64]deploydb.Deployment{}, results: map[int64]deploydb.PromotionResult{}}
	for _, f := range flows {
		r.flows[f.ID] = flowRow(f)
		for i := range f.Deployments {
			r.addDeployment(&f.Deployments[i])
		}
	}
	return r
}

var promotionPool = []string{"smoke", "perf", "approval", "soak"}

func TestPropertyService(t *testing.T) {
	t.Parallel()
	// How often the interesting things happened, shown with -v: a
	// generator that never gets there proves nothing about them.
	stats := map[string]int{}
	defer func() { t.Logf("outcomes: %v", stats) }()
	rapid.Check(t, func(rt *rapid.T) {
		m := drawModel(rt)
		m.stats = stats
		for range rapid.IntRange(1, 3).Draw(rt, "flows") {
			m.publishOne(rt)
		}
		for range rapid.IntRange(0, 50).Draw(rt, "steps") {
			m.step(rt)
		}
	})
}

// model is a world driven by the property test.
type model struct {
	*world
	envNames  []string
	stages    []deploydb.PipelineStage
	artifacts []deploydb.Artifact
	stats     map[string]int
}

func drawModel(rt *rapid.T) *model {
	strategies := rapid.SampledFrom([]deploydb.FailureStrategy{"", deploydb.FailureNotify, deploydb.FailureRollback, deploydb.FailureRollback, deploydb.FailureIgnore})
	names := rapid.SliceOfNDistinct(rapid.SampledFrom(promotionPool), 0, 2, rapid.ID[string])
	m := &model{}
	for i := range rapid.IntRange(1, 4).Draw(rt, "environments") {
		env := fmt.Sprint("env", i)
		m.envNames = append(m.envNames, env)
		m.stages = append(m.stages, deploydb.PipelineStage{Environment: env,
			Promotions: names.Draw(rt, "promotions "+env), FailureStrategy: strategies.Draw(rt, "strategy "+env)})
	}
	cfg := config(m.stages...)
	cfg.Services[service].Promotions = rapid.SliceOfNDistinct(rapid.SampledFrom(promotionPool), 0, 1, rapid.ID[string]).Draw(rt, "servicePromotions")
	cfg.Services[service].FailureStrategy = strategies.Draw(rt, "serviceStrategy")
	m.world = newWorld(rt, cfg)
	// An older artifact may be known good somewhere already.
	old := art(1, "0.9.0")
	m.artifacts = []deploydb.Artifact{old}
	for _, env := range m.envNames {
		if rapid.Bool().Draw(rt, "lastGood "+env) {
			m.lastGood[env] = &old
		}
	}
	return m
}

func (m *model) step(rt *rapid.T) {
	running, awaiting := false, false
	for _, f := range m.flows {
		for _, d := range f.Deployments {
			running = running || d.Status == deploydb.DeploymentCreated || d.Status == deploydb.DeploymentStarted
			awaiting = awaiting || d.Status == deploydb.DeploymentCompleted
		}
	}
	if !running && !awaiting {
		// Reports would all be refused: mostly do what gets things going
		// again.
		switch rapid.IntRange(0, 9).Draw(rt, "idleCommand") {
		case 0, 1, 2, 3:
			m.publishOne(rt)
			return
		case 4, 5:
			m.setEnvState(rt)
			return
		case 6:
			m.adoptOne(rt)
			return
		case 7:
			m.retry(rt)
			return
		}
	}
	switch w := rapid.IntRange(0, 19).Draw(rt, "command"); {
	case w < 13:
		// Reports, mostly where they are awaited.
		switch {
		case running && (!awaiting || rapid.Bool().Draw(rt, "reportDeployment")):
			m.reportDeployment(rt)
		case awaiting:
			m.reportPromotion(rt)
		case rapid.Bool().Draw(rt, "reportDeploymentAnyway"):
			m.reportDeployment(rt)
		default:
			m.reportPromotion(rt)
		}
	case w < 14:
		m.cancel(rt)
	case w < 16:
		m.retry(rt)
	case w < 18:
		m.setEnvState(rt)
	case w < 19:
		m.adoptOne(rt)
	default:
		m.publishOne(rt)
	}
}

// publishOne publishes a new artifact; its flow goes through a random part
// of the pipeline, as if the config had changed in between.
func (m *model) publishOne(rt *rapid.T) {
	a := art(int64(len(m.artifacts)+1), fmt.Sprintf("1.0.%d", len(m.artifacts)))
	m.artifacts = append(m.artifacts, a)
	var stages []deploydb.PipelineStage
	for _, s := range m.stages {
		if rapid.IntRange(0, 3).Draw(rt, "stage "+s.Environment) > 0 {
			stages = append(stages, s)
		}
	}
	if len(stages) == 0 {
		stages = m.stages[len(m.stages)-1:]
	}
	cfg := *m.cfg
	cfg.Pipelines = map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: stages}}
	var f *deploydb.Flow
	m.run(rt, "publish "+a.Version, "", func() []*deploydb.Flow {
		flows, err := engine.NewFlows(&cfg, a, m.now())
		if err != nil {
			rt.Fatalf("NewFlows: %v", err)
		}
		f = flows[0]
		m.insert(f)
		return flows
	}, func(p *engine.Plan) error {
		engine.Start(p, f.ID)
		return nil
	})
}

// drawDeployment returns a deployment id: mostly one that prefer likes,
// if any; otherwise any, or one that does not exist.
func (m *model) drawDeployment(rt *rapid.T, prefer func(d *deploydb.Deployment) bool) int64 {
	all := []int64{999_999}
	var liked []int64
	for _, f := range m.flows {
		for i := range f.Deployments {
			d := &f.Deployments[i]
			all = append(all, d.ID)
			if prefer(d) {
				liked = append(liked, d.ID)
			}
		}
	}
	if len(liked) > 0 && rapid.IntRange(0, 4).Draw(rt, "aim") > 0 {
		return rapid.SampledFrom(liked).Draw(rt, "liked deployment")
	}
	return rapid.SampledFrom(all).Draw(rt, "deployment")
}

// find returns the deployment with id among flows, and its flow, or nils.
func find(flows []*deploydb.Flow, id int64) (*deploydb.Flow, *deploydb.Deployment) {
	for _, f := range flows {
		for i := range f.Deployments {
			if f.Deployments[i].ID == id {
				return f, &f.Deployments[i]
			}
		}
	}
	return nil, nil
}

func findResult(d *deploydb.Deployment, name string) *deploydb.PromotionResult {
	if d != nil {
		for j := range d.Promotions {
			if d.Promotions[j].Promotion == name {
				return &d.Promotions[j]
			}
		}
	}
	return nil
}

func (m *model) reportDeployment(rt *rapid.T) {
	id := m.drawDeployment(rt, func(d *deploydb.Deployment) bool {
		return d.Status == deploydb.DeploymentCreated || d.Status == deploydb.DeploymentStarted
	})
	var s deploydb.DeploymentStatus
	switch w := rapid.IntRange(0, 19).Draw(rt, "statusWeight"); {
	case w < 3:
		s = rapid.SampledFrom(append(slices.Clone(deploydb.DeploymentStatuses), "BOGUS", "", "completed")).Draw(rt, "status")
	case w < 12:
		s = deploydb.DeploymentCompleted
	case w < 16:
		s = deploydb.DeploymentStarted
	default:
		s = deploydb.DeploymentFailed
	}
	_, d := find(m.flows, id)
	var cur *deploydb.Deployment
	if d != nil {
		c := *d
		cur = &c
	}
	err := m.run(rt, fmt.Sprintf("report %s on %d", s, id), expectDeploymentReport(d, s), nil, func(p *engine.Plan) error {
		return engine.ReportDeployment(p, id, s)
	})
	m.checkCurrent(rt, err, cur)
}

// expectDeploymentReport returns the error code DESIGN.md §3 prescribes.
func expectDeploymentReport(d *deploydb.Deployment, s deploydb.DeploymentStatus) string {
	switch {
	case d == nil:
		return deploydb.ENOTFOUND
	case !s.Valid():
		return deploydb.EBADREQUEST
	case s != deploydb.DeploymentStarted && s != deploydb.DeploymentCompleted && s != deploydb.DeploymentFailed:
		return deploydb.ECONFLICT // a status, but not one an orchestrator reports
	case d.Status == deploydb.DeploymentCreated, d.Status == deploydb.DeploymentStarted && s != deploydb.DeploymentStarted:
		return ""
	}
	return deploydb.ECONFLICT
}

func (m *model) reportPromotion(rt *rapid.T) {
	id := m.drawDeployment(rt, func(d *deploydb.Deployment) bool { return d.Status == deploydb.DeploymentCompleted })
	_, d := find(m.flows, id)
	name := rapid.SampledFrom(append(slices.Clone(promotionPool), "unknown")).Draw(rt, "promotion")
	if d != nil && len(d.Promotions) > 0 && rapid.IntRange(0, 4).Draw(rt, "attached") > 0 {
		pending := slices.DeleteFunc(slices.Clone(d.Promotions), func(r deploydb.PromotionResult) bool { return r.Status != deploydb.PromotionStarted })
		if len(pending) == 0 || rapid.IntRange(0, 4).Draw(rt, "pending") == 0 {
			pending = d.Promotions
		}
		name = rapid.SampledFrom(pending).Draw(rt, "attachedPromotion").Promotion
	}
	var s deploydb.PromotionStatus
	switch w := rapid.IntRange(0, 19).Draw(rt, "promotionStatusWeight"); {
	case w < 2:
		s = rapid.SampledFrom([]deploydb.PromotionStatus{deploydb.PromotionNotStarted, deploydb.PromotionStarted, "FAILURE", ""}).Draw(rt, "promotionStatus")
	case w < 17:
		s = deploydb.PromotionSuccess
	default:
		s = deploydb.PromotionFailed
	}
	want := expectPromotionReport(d, findResult(d, name), s)
	var cur *deploydb.Deployment
	if d != nil {
		c := *d
		c.Promotions = slices.Clone(d.Promotions)
		cur = &c
	}
	var res *deploydb.PromotionResult
	err := m.run(rt, fmt.Sprintf("promote %s %s on %d", name, s, id), want, nil, func(p *engine.Plan) error {
		var err error
		res, err = engine.ReportPromotion(p, id, name, s, "https://ci.example/x", "tester", engine.Approver{})
		if err == nil {
			_, d := p.Deployment(id)
			if r := findResult(d, name); res == nil || !cmp.Equal(*r, *res) || r.ReportedBy != "tester" {
				rt.Fatalf("ReportPromotion returned %+v, the flow holds %+v", res, r)
			}
		} else if res != nil {
			rt.Fatalf("ReportPromotion returned %+v with error %v", res, err)
		}
		return err
	})
	m.checkCurrent(rt, err, cur)
}

// expectPromotionReport returns the error code DESIGN.md §3 and §4
// prescribe.
func expectPromotionReport(d *deploydb.Deployment, r *deploydb.PromotionResult, s deploydb.PromotionStatus) string {
	switch {
	case d == nil || r == nil:
		return deploydb.ENOTFOUND
	case s == deploydb.PromotionNotStarted || s == deploydb.PromotionStarted:
		return deploydb.ECONFLICT // a status, but not a result
	case s != deploydb.PromotionSuccess && s != deploydb.PromotionFailed:
		return deploydb.EBADREQUEST
	case d.Status == deploydb.DeploymentCompleted && r.Status == deploydb.PromotionStarted:
		return ""
	}
	return deploydb.ECONFLICT
}

// checkCurrent checks that a conflict carries the current deployment.
func (m *model) checkCurrent(rt *rapid.T, err error, cur *deploydb.Deployment) {
	var e *deploydb.Error
	if errors.As(err, &e) && e.Code == deploydb.ECONFLICT {
		if diff := cmp.Diff(cur, e.Current); diff != "" {
			rt.Fatalf("ECONFLICT Current (-want +got):\n%s", diff)
		}
	}
}

func (m *model) cancel(rt *rapid.T) {
	all := []int64{999_999}
	var open []int64
	for _, f := range m.flows {
		all = append(all, f.ID)
		if f.Status == deploydb.FlowCreated {
			open = append(open, f.ID)
		}
	}
	id := rapid.SampledFrom(all).Draw(rt, "flow")
	if len(open) > 0 && rapid.Bool().Draw(rt, "aimAtOpen") {
		id = rapid.SampledFrom(open).Draw(rt, "open flow")
	}
	want := deploydb.ENOTFOUND
	var cur *deploydb.Flow
	for _, f := range m.flows {
		if f.ID == id {
			cur = cloneFlow(f)
			want = ""
			if f.Status != deploydb.FlowCreated {
				want = deploydb.ECONFLICT
			}
		}
	}
	err := m.run(rt, fmt.Sprintf("cancel %d", id), want, nil, func(p *engine.Plan) error { return engine.Cancel(p, id) })
	var e *deploydb.Error
	if errors.As(err, &e) && e.Code == deploydb.ECONFLICT {
		if diff := cmp.Diff(cur, e.Current); diff != "" {
			rt.Fatalf("ECONFLICT Current (-want +got):\n%s", diff)
		}
	}
}

func (m *model) retry(rt *rapid.T) {
	id := m.drawDeployment(rt, func(d *deploydb.Deployment) bool { return d.Status == deploydb.DeploymentFailed })
	f, d := find(m.flows, id)
	want := ""
	var cur *deploydb.Deployment
	switch {
	case d == nil:
		want = deploydb.ENOTFOUND
	case d.Status != deploydb.DeploymentFailed || f.Status != deploydb.FlowFailed:
		want = deploydb.ECONFLICT
	default:
		for _, o := range f.Deployments {
			if o.Position == d.Position && o.ID > d.ID {
				want = deploydb.ECONFLICT
			}
		}
	}
	if d != nil {
		c := *d
		c.Promotions = slices.Clone(d.Promotions)
		cur = &c
	}
	err := m.run(rt, fmt.Sprintf("retry %d", id), want, nil, func(p *engine.Plan) error {
		if err := engine.CheckRetry(p, id); err != nil {
			return err
		}
		f, d := p.Deployment(id)
		nd := engine.NewRetry(d, p.Now)
		m.insertDeployment(f.ID, &nd)
		engine.Retry(p, f.ID, nd)
		return nil
	})
	m.checkCurrent(rt, err, cur)
}

// setEnvState locks, unlocks, freezes or unfreezes an environment, and
// schedules it as a store does.
func (m *model) setEnvState(rt *rapid.T) {
	env := rapid.SampledFrom(m.envNames).Draw(rt, "env")
	st := m.envs[env]
	switch rapid.IntRange(0, 3).Draw(rt, "envChange") {
	case 0:
		st.Locked, st.LockReason = true, rapid.SampledFrom([]string{"incident 1", "incident 2"}).Draw(rt, "lockReason")
	case 1:
		st.Locked, st.LockReason = false, ""
	case 2:
		st.Frozen, st.FreezeReason = true, rapid.SampledFrom([]string{"weekend", "release"}).Draw(rt, "freezeReason")
	case 3:
		st.Frozen, st.FreezeReason = false, ""
	}
	m.envs[env] = st
	m.run(rt, "schedule "+env, "", nil, func(p *engine.Plan) error {
		engine.Schedule(p, env)
		return nil
	})
}

// adoptOne adopts a new rollback or hotfix flow, as the operator actions
// do.
func (m *model) adoptOne(rt *rapid.T) {
	reason := rapid.SampledFrom([]deploydb.Reason{deploydb.ReasonRollback, deploydb.ReasonHotfix}).Draw(rt, "reason")
	env := rapid.SampledFrom(m.envNames).Draw(rt, "env")
	a := rapid.SampledFrom(m.artifacts).Draw(rt, "artifact")
	m.run(rt, fmt.Sprintf("%s %s to %s", reason, a.Version, env), "", nil, func(p *engine.Plan) error {
		f, err := engine.NewSingleFlow(m.cfg, service, env, reason, a, p.Now)
		if err != nil {
			rt.Fatalf("NewSingleFlow: %v", err)
		}
		m.insert(f)
		engine.Adopt(p, f)
		return nil
	})
}

// run applies one command as a store does: prepare inserts rows and
// returns the flows to load with the others, cmd runs on the plan. A
// command must fail with wantCode ("" for none); a refused one changes
// nothing, an accepted one is committed and its changes checked.
func (m *model) run(rt *rapid.T, what, wantCode string, prepare func() []*deploydb.Flow, cmd func(p *engine.Plan) error) error {
	before := cloneFlows(m.flows)
	lastGood := maps.Clone(m.lastGood)
	m.inserted = rowsOf(m.flows)
	defer func() { m.inserted = nil }()
	var extra []*deploydb.Flow
	if prepare != nil {
		extra = prepare()
	}
	p := m.plan(extra...)
	err := cmd(p)
	if got := deploydb.ErrorCode(err); got != wantCode {
		rt.Fatalf("%s: error code %q (%v), want %q\n%s", what, got, err, wantCode, dump(before))
	}
	if err != nil {
		if msg := unchanged(before, lastGood, p); msg != "" {
			rt.Fatalf("%s: refused (%v) but %s", what, err, msg)
		}
		m.stats["refused "+strings.Fields(what)[0]+" "+deploydb.ErrorCode(err)]++
		return err
	}
	m.stats["ok "+strings.Fields(what)[0]]++
	for _, e := range p.Events {
		m.stats[string(e.Type)]++
	}
	rollbacks := slices.Clone(p.Rollbacks)
	beforeRows := m.inserted
	m.commit(p)
	m.stats["rollback flows"] += len(rollbacks)
	m.checkChanges(rt, what, beforeRows, lastGood, rollbacks, p)
	return nil
}

// reachable reports whether the state machine leads from one deployment
// status to another.
func reachable(from, to deploydb.DeploymentStatus) bool {
	seen := map[deploydb.DeploymentStatus]bool{from: true}
	next := []deploydb.DeploymentStatus{from}
	for len(next) > 0 {
		s := next[0]
		next = next[1:]
		for _, t := range deploydb.DeploymentStatuses {
			if _, ok := deploydb.CanTransition(s, t); ok && !seen[t] {
				if t == to {
					return true
				}
				seen[t] = true
				next = append(next, t)
			}
		}
	}
	return false
}

func priority(r deploydb.Reason) int {
	if r == deploydb.ReasonRollback || r == deploydb.ReasonHotfix {
		return 1
	}
	return 0
}

// checkChanges checks an accepted command: before are the rows before it
// (with those the store inserted for it), lastGood the last known good
// before it, rollbacks the rollbacks it asked for, p its plan, committed.
func (m *model) checkChanges(rt *rapid.T, what string, before *rows, lastGood map[string]*deploydb.Artifact, rollbacks []engine.RollbackRequest, p *engine.Plan) {
	fail := func(format string, args ...any) {
		rt.Fatalf("%s: %s\n%s", what, fmt.Sprintf(format, args...), dump(p.Flows))
	}
	now := p.Now
	after := rowsOf(p.Flows)
	if len(after.flows) != len(before.flows) || len(after.deps) != len(before.deps) || len(after.results) != len(before.results) {
		fail("rows appeared or vanished: %d/%d/%d flows/deployments/results, %d/%d/%d before",
			len(after.flows), len(after.deps), len(after.results), len(before.flows), len(before.deps), len(before.results))
	}

	// What changed, and only how it may change.
	var wantFlows, wantDeps, wantResults []int64
	statusChanged := map[int64]bool{}
	for _, f := range p.Flows {
		bf, ok := before.flows[f.ID]
		if !ok {
			fail("flow %d appeared without being inserted", f.ID)
		}
		if af := after.flows[f.ID]; !cmp.Equal(af, bf) {
			wantFlows = append(wantFlows, f.ID)
			bf2 := bf
			bf2.Status, bf2.UpdatedAt = af.Status, af.UpdatedAt
			if diff := cmp.Diff(bf2, af); diff != "" || af.UpdatedAt != now {
				fail("flow %d changed beyond its status, or not now (-before +after):\n%s", f.ID, cmp.Diff(bf, af))
			}
			if ok := bf.Status == deploydb.FlowCreated || bf.Status == deploydb.FlowFailed && af.Status == deploydb.FlowCreated; !ok {
				fail("flow %d went from %s to %s", f.ID, bf.Status, af.Status)
			}
		}
		for i := range f.Deployments {
			d := &f.Deployments[i]
			bd, ok := before.deps[d.ID]
			if !ok {
				fail("deployment %d appeared without being inserted", d.ID)
			}
			ad := after.deps[d.ID]
			if !cmp.Equal(ad, bd) {
				wantDeps = append(wantDeps, d.ID)
				bd2 := bd
				bd2.Status, bd2.UpdatedAt, bd2.DueAt, bd2.Waiting = ad.Status, ad.UpdatedAt, ad.DueAt, ad.Waiting
				// The time of each step is set once, when the step is
				// taken: at the change's time.
				for _, step := range []struct {
					name   string
					b, a   deploydb.Time
					status deploydb.DeploymentStatus
				}{
					{"activated", bd.ActivatedAt, ad.ActivatedAt, deploydb.DeploymentCreated},
					{"started", bd.StartedAt, ad.StartedAt, deploydb.DeploymentStarted},
					{"completed", bd.CompletedAt, ad.CompletedAt, deploydb.DeploymentCompleted},
					{"finished", bd.FinishedAt, ad.FinishedAt, ""},
				} {
					if !step.b.IsZero() && step.a != step.b {
						fail("deployment %d: its %s time moved from %s to %s", d.ID, step.name, step.b, step.a)
					}
					if step.b.IsZero() && !step.a.IsZero() && step.a != ad.UpdatedAt {
						fail("deployment %d: %s at %s, not at the change (%s)", d.ID, step.name, step.a, ad.UpdatedAt)
					}
				}
				if (ad.Status == deploydb.DeploymentSuccess || ad.Status == deploydb.DeploymentFailed) && ad.FinishedAt.IsZero() {
					fail("deployment %d is %s without a finish time", d.ID, ad.Status)
				}
				bd2.ActivatedAt, bd2.StartedAt, bd2.CompletedAt, bd2.FinishedAt = ad.ActivatedAt, ad.StartedAt, ad.CompletedAt, ad.FinishedAt
				if diff := cmp.Diff(bd2, ad); diff != "" {
					fail("deployment %d changed beyond status, due and waiting (-before +after):\n%s", d.ID, cmp.Diff(bd, ad))
				}
				if (ad.Status != bd.Status || ad.DueAt != bd.DueAt || ad.UpdatedAt != bd.UpdatedAt) && ad.UpdatedAt != now {
					fail("deployment %d changed at %v, not now (%v)", d.ID, ad.UpdatedAt, now)
				}
				if ad.DueAt != bd.DueAt && (!bd.DueAt.IsZero() || ad.DueAt != now) {
					fail("deployment %d due %v, was due %v: a deployment comes due once, now", d.ID, ad.DueAt, bd.DueAt)
				}
				if ad.Status != bd.Status {
					statusChanged[d.ID] = true
					if !reachable(bd.Status, ad.Status) {
						fail("deployment %d went from %s to %s", d.ID, bd.Status, ad.Status)
					}
				}
			}
			for _, r := range d.Promotions {
				br := before.results[r.ID]
				if cmp.Equal(r, br) {
					continue
				}
				wantResults = append(wantResults, r.ID)
				br2 := br
				br2.Status, br2.InfoURL, br2.ReportedBy, br2.DueAt, br2.UpdatedAt = r.Status, r.InfoURL, r.ReportedBy, r.DueAt, r.UpdatedAt
				if diff := cmp.Diff(br2, r); diff != "" || r.UpdatedAt != now {
					fail("result %d changed beyond its outcome, or not now (-before +after):\n%s", r.ID, cmp.Diff(br, r))
				}
				switch {
				case r.Status == br.Status:
				case br.Status == deploydb.PromotionNotStarted && r.Status == deploydb.PromotionStarted:
					// Started when its deployment completed; a soak comes
					// due its duration later.
					if r.SoakMs > 0 && ad.Status == deploydb.DeploymentCompleted {
						if want := deploydb.UnixMilli(now.UnixMilli() + r.SoakMs); r.DueAt != want {
							fail("soak result %d due %v, want %v", r.ID, r.DueAt, want)
						}
					}
				case br.Status == deploydb.PromotionStarted && (r.Status == deploydb.PromotionSuccess || r.Status == deploydb.PromotionFailed):
				default:
					fail("result %d went from %s to %s", r.ID, br.Status, r.Status)
				}
			}
		}
	}
	if got := flowIDs(p.ChangedFlows()); !slices.Equal(got, wantFlows) {
		fail("ChangedFlows = %v, what changed: %v", got, wantFlows)
	}
	if got := ids(p.ChangedDeployments()); !slices.Equal(got, wantDeps) {
		fail("ChangedDeployments = %v, what changed: %v", got, wantDeps)
	}
	if got := resultIDs(p.ChangedResults()); !slices.Equal(got, wantResults) {
		fail("ChangedResults = %v, what changed: %v", got, wantResults)
	}

	// Every status change is announced, once, and the last event about a
	// deployment shows it as it is now.
	last := map[int64]*deploydb.Deployment{}
	seen := map[string]bool{}
	rollingBack := 0
	for _, e := range p.Events {
		if e.Type == flowDone {
			f := m.flowByID(e.Flow)
			if bf := before.flows[e.Flow]; f == nil || f.Status != deploydb.FlowSuccess || bf.Status != deploydb.FlowCreated || e.Status != "SUCCESS" || e.Quiet ||
				e.Environment != f.Deployments[len(f.Deployments)-1].Environment {
				fail("flow.completed %+v", e)
			}
			continue
		}
		s := e.Deployment
		if s == nil || string(s.Status) != e.Status || s.Environment != e.Environment || s.Flow != e.Flow {
			fail("%s: status %s, environment %s, flow %d, snapshot %+v", e.Type, e.Status, e.Environment, e.Flow, s)
		}
		key := fmt.Sprint(e.Type, s.ID)
		if seen[key] {
			fail("%s about deployment %d twice", e.Type, s.ID)
		}
		seen[key] = true
		last[s.ID] = s
		if !statusChanged[s.ID] && e.Type != promoted {
			fail("%s about deployment %d, whose status did not change", e.Type, s.ID)
		}
		wantStatus := map[deploydb.EventType]deploydb.DeploymentStatus{created: "CREATED", started: "STARTED", completed: "COMPLETED",
			verified: "SUCCESS", failed: "FAILED", superseded: "SUPERSEDED", cancelled: "CANCELLED"}[e.Type]
		if wantStatus != "" && s.Status != wantStatus || e.Type == promoted && !oneOfStatus(s.Status, "COMPLETED", "SUCCESS", "FAILED") {
			fail("%s shows deployment %d %s", e.Type, s.ID, s.Status)
		}
		wantQuiet := false
		switch e.Type {
		case failed:
			wantQuiet = s.FailureStrategy == deploydb.FailureIgnore
			if s.FailureStrategy == deploydb.FailureRollback {
				lkg := lastGood[s.Environment]
				switch {
				case lkg != nil && lkg.ID != s.Artifact.ID && strings.HasSuffix(e.Detail, "failure strategy rollback: rolling back to "+lkg.Version):
					rollingBack++
					if !slices.ContainsFunc(rollbacks, func(rb engine.RollbackRequest) bool {
						return rb.Cause == s.ID && rb.Environment == s.Environment && rb.Artifact.ID == lkg.ID
					}) {
						fail("deployment %d rolls back, but Rollbacks = %+v", s.ID, rollbacks)
					}
				case (lkg == nil || lkg.ID == s.Artifact.ID) && strings.Contains(e.Detail, "no last known good artifact"):
				case strings.HasSuffix(e.Detail, "is waiting or running already"):
					// A rollback there was pending already: no second one.
					if engine.PendingRollback(p, s.Environment) == nil || slices.ContainsFunc(rollbacks, func(rb engine.RollbackRequest) bool { return rb.Cause == s.ID }) {
						fail("deployment %d: %q, but pending rollback %v, Rollbacks %+v", s.ID, e.Detail, engine.PendingRollback(p, s.Environment), rollbacks)
					}
				default:
					fail("deployment %d failed with strategy rollback, last good %+v: detail %q", s.ID, lkg, e.Detail)
				}
			}
		case superseded:
			wantQuiet = s.DueAt.IsZero()
			if !strings.HasPrefix(e.Detail, "superseded by ") {
				fail("superseded detail %q", e.Detail)
			}
		case cancelled:
			wantQuiet = !before.deps[s.ID].Status.Active()
		case promoted:
			_, d := find(p.Flows, s.ID)
			if r := findResult(d, e.Result.Promotion); r == nil || !cmp.Equal(*r, *e.Result) {
				fail("promotion.completed result %+v, the flow holds %+v", e.Result, r)
			}
		}
		if e.Quiet != wantQuiet {
			fail("%s about deployment %d: Quiet = %v", e.Type, s.ID, e.Quiet)
		}
		if (e.Result != nil) != (e.Type == promoted) {
			fail("%s: Result %+v", e.Type, e.Result)
		}
	}
	if rollingBack != len(rollbacks) {
		fail("%d rollbacks announced, %d asked for: %+v", rollingBack, len(rollbacks), rollbacks)
	}
	doneFlows := 0
	for id, af := range after.flows {
		if af.Status == deploydb.FlowSuccess && before.flows[id].Status != deploydb.FlowSuccess {
			doneFlows++
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(p.Events), func(e engine.Emitted) bool { return e.Type != flowDone })); n != doneFlows {
		fail("%d flow.completed, %d flows succeeded", n, doneFlows)
	}
	for id := range statusChanged {
		_, d := find(p.Flows, id)
		if diff := cmp.Diff(d, last[id]); diff != "" {
			fail("last event about deployment %d (-now +snapshot):\n%s", id, diff)
		}
	}

	// The rollbacks asked for were adopted: a rollback flow of that
	// artifact to that environment was inserted for this command.
	for _, rb := range rollbacks {
		if !slices.ContainsFunc(p.Flows, func(f *deploydb.Flow) bool {
			return f.Reason == deploydb.ReasonRollback && f.Artifact.ID == rb.Artifact.ID && f.Deployments[0].Environment == rb.Environment && f.CreatedAt == now
		}) {
			fail("rollback %+v was not adopted", rb)
		}
	}

	// The last known good follows the deployments verified.
	wantGood := maps.Clone(lastGood)
	for id := range statusChanged {
		if _, d := find(p.Flows, id); d.Status == deploydb.DeploymentSuccess {
			a := d.Artifact
			wantGood[d.Environment] = &a
		}
	}
	if diff := cmp.Diff(wantGood, p.LastGood); diff != "" {
		fail("LastGood (-want +got):\n%s", diff)
	}

	// Where a deployment was activated, it was the first in line: rollbacks
	// and hotfixes first, then the newest; the older waiting pipeline
	// deployments were superseded, the others wait.
	for id := range statusChanged {
		fw, w := find(p.Flows, id)
		if before.deps[id].Status != deploydb.DeploymentNotStarted || w.Status != deploydb.DeploymentCreated {
			continue
		}
		for _, f := range p.Flows {
			for _, c := range f.Deployments {
				if c.Environment != w.Environment || c.ID == w.ID || c.DueAt.IsZero() {
					continue
				}
				wasWaiting := before.deps[c.ID].Status == deploydb.DeploymentNotStarted && c.Status == deploydb.DeploymentSuperseded
				stillWaiting := f.Status == deploydb.FlowCreated && c.Status == deploydb.DeploymentNotStarted
				if !wasWaiting && !stillWaiting {
					continue
				}
				if pw, pc := priority(w.Reason), priority(c.Reason); pc > pw || pc == pw && c.ID > w.ID {
					fail("deployment %d was activated in %s ahead of deployment %d", w.ID, w.Environment, c.ID)
				}
				shouldSupersede := priority(w.Reason) == priority(c.Reason) && f.ID < fw.ID
				m.stats[fmt.Sprintf("activated ahead of another (superseded %v)", wasWaiting)]++
				if wasWaiting && c.Position > 0 {
					m.stats["superseded after a success"]++
				}
				if wasWaiting != shouldSupersede {
					fail("deployment %d activated in %s; deployment %d waiting there superseded: %v", w.ID, w.Environment, c.ID, wasWaiting)
				}
			}
		}
	}
}

func oneOfStatus(s deploydb.DeploymentStatus, list ...deploydb.DeploymentStatus) bool {
	return slices.Contains(list, s)
}

func (m *model) flowByID(id int64) *deploydb.Flow {
	for _, f := range m.flows {
		if f.ID == id {
			return f
		}
	}
	return nil
}
