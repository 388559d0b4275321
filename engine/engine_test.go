package engine_test

import (
	"errors"
	"fmt"
	"slices"
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

var artifact = deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.2.3", SourceURL: "https://repo.example/billing-1.2.3.jar", CreatedAt: t0}

// stage returns a pipeline stage in env with the given promotions.
func stage(env string, promotions ...string) deploydb.PipelineStage {
	return deploydb.PipelineStage{Environment: env, Promotions: promotions}
}

// withStrategy returns s with its failure strategy set.
func withStrategy(s deploydb.PipelineStage, fs deploydb.FailureStrategy) deploydb.PipelineStage {
	s.FailureStrategy = fs
	return s
}

// oneServiceConfig returns a config whose one service, billing, consumes
// artifact through a pipeline of stages.
func oneServiceConfig(stages ...deploydb.PipelineStage) *deploydb.Config {
	return &deploydb.Config{
		Checksum: "sum-1",
		Services: map[string]*deploydb.Service{
			"billing": {Ident: "billing", Artifacts: []string{"com.example:billing"}, Pipelines: []string{"p"}},
		},
		Pipelines: map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: stages}},
	}
}

// assignIDs gives a new flow the ids a store would: flow id, then
// deployment and result ids from one increasing counter.
func assignIDs(f *deploydb.Flow, id int64) {
	f.ID = id
	f.Artifact.ID = 7
	next := id * 100
	for i := range f.Deployments {
		d := &f.Deployments[i]
		next++
		d.ID, d.Flow, d.Artifact = next, id, f.Artifact
		for j := range d.Promotions {
			next++
			d.Promotions[j].ID, d.Promotions[j].Deployment = next, d.ID
		}
	}
}

// mustNewFlow returns the flow of billing through stages, with ids, not
// started.
func mustNewFlow(tb testing.TB, stages ...deploydb.PipelineStage) *deploydb.Flow {
	tb.Helper()
	flows, err := engine.NewFlows(oneServiceConfig(stages...), artifact, t0)
	if err != nil {
		tb.Fatalf("NewFlows: %v", err)
	}
	assignIDs(flows[0], 1)
	mustInvariants(tb, flows[0])
	return flows[0]
}

// mustStartedFlow returns mustNewFlow's flow after Start.
func mustStartedFlow(tb testing.TB, stages ...deploydb.PipelineStage) *deploydb.Flow {
	tb.Helper()
	f := mustNewFlow(tb, stages...)
	engine.Start(engine.NewPlan(f, t0))
	mustInvariants(tb, f)
	return f
}

func mustInvariants(tb testing.TB, f *deploydb.Flow) {
	tb.Helper()
	if err := engine.CheckInvariants(f); err != nil {
		tb.Fatalf("invariants: %v", err)
	}
}

// mustReport applies a deployment report that must succeed, on a new plan.
func mustReport(tb testing.TB, f *deploydb.Flow, i int, s deploydb.DeploymentStatus) *engine.Plan {
	tb.Helper()
	p := engine.NewPlan(f, at(1))
	if err := engine.ReportDeployment(p, f.Deployments[i].ID, s); err != nil {
		tb.Fatalf("ReportDeployment(%d, %s): %v", i, s, err)
	}
	mustInvariants(tb, f)
	return p
}

// mustPromote applies a promotion report that must succeed, on a new plan.
func mustPromote(tb testing.TB, f *deploydb.Flow, i int, name string, s deploydb.PromotionStatus) *engine.Plan {
	tb.Helper()
	p := engine.NewPlan(f, at(2))
	if _, err := engine.ReportPromotion(p, f.Deployments[i].ID, name, s, ""); err != nil {
		tb.Fatalf("ReportPromotion(%d, %s, %s): %v", i, name, s, err)
	}
	mustInvariants(tb, f)
	return p
}

func cloneFlow(f *deploydb.Flow) *deploydb.Flow {
	c := *f
	c.Deployments = slices.Clone(f.Deployments)
	for i := range c.Deployments {
		c.Deployments[i].Promotions = slices.Clone(f.Deployments[i].Promotions)
	}
	return &c
}

// ev is what a test says about an emitted event.
type ev struct {
	Type   deploydb.EventType
	Env    string // of the deployment snapshot; "" for flow events
	Status string
	Quiet  bool
}

// summarize checks that every event is about f and that each deployment
// snapshot agrees with the event's status, and returns the events as evs.
func summarize(tb testing.TB, f *deploydb.Flow, events []engine.Emitted) []ev {
	tb.Helper()
	out := []ev{}
	for _, e := range events {
		if e.Flow != f.ID {
			tb.Errorf("%s: Flow = %d, want %d", e.Type, e.Flow, f.ID)
		}
		x := ev{Type: e.Type, Status: e.Status, Quiet: e.Quiet}
		switch {
		case e.Type == deploydb.EventFlowCompleted:
			if e.Deployment != nil || e.Result != nil {
				tb.Errorf("%s carries a deployment or result", e.Type)
			}
		case e.Deployment == nil:
			tb.Errorf("%s carries no deployment", e.Type)
		default:
			x.Env = e.Deployment.Environment
			if string(e.Deployment.Status) != e.Status {
				tb.Errorf("%s: Status %s but snapshot status %s", e.Type, e.Status, e.Deployment.Status)
			}
		}
		if (e.Result != nil) != (e.Type == deploydb.EventPromotionCompleted) {
			tb.Errorf("%s: Result = %v", e.Type, e.Result)
		}
		out = append(out, x)
	}
	return out
}

func wantError(tb testing.TB, err error, code string) *deploydb.Error {
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

// NewFlows.

func TestNewFlows(t *testing.T) {
	t.Parallel()

	t.Run("ErrNotConsumed", func(t *testing.T) {
		t.Parallel()
		cfg := oneServiceConfig(stage("integ"))
		a := artifact
		a.Name = "ledger"
		flows, err := engine.NewFlows(cfg, a, t0)
		wantError(t, err, deploydb.ENOTFOUND)
		if flows != nil {
			t.Errorf("flows = %v, want nil", flows)
		}
	})

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		cfg := &deploydb.Config{
			Checksum: "sum-1",
			Services: map[string]*deploydb.Service{
				"billing": {Ident: "billing", Artifacts: []string{"com.example:billing"}, Pipelines: []string{"p"},
					Promotions: []string{"smoke", "perf"}, FailureStrategy: deploydb.FailureIgnore},
			},
			Pipelines: map[string]*deploydb.Pipeline{"p": {Ident: "p", Environments: []deploydb.PipelineStage{
				stage("integ", "perf", "manual", "smoke"),
				withStrategy(stage("prod"), deploydb.FailureRollback),
			}}},
		}
		flows, err := engine.NewFlows(cfg, artifact, t0)
		if err != nil {
			t.Fatal(err)
		}
		results := func(names ...string) []deploydb.PromotionResult {
			out := []deploydb.PromotionResult{}
			for _, n := range names {
				out = append(out, deploydb.PromotionResult{Promotion: n, Status: deploydb.PromotionNotStarted, CreatedAt: t0, UpdatedAt: t0})
			}
			return out
		}
		dep := func(env string, pos int, fs deploydb.FailureStrategy, promotions []deploydb.PromotionResult) deploydb.Deployment {
			return deploydb.Deployment{Artifact: artifact, Service: "billing", Environment: env, Status: deploydb.DeploymentNotStarted,
				Reason: deploydb.ReasonPipeline, Position: pos, FailureStrategy: fs, Promotions: promotions, CreatedAt: t0, UpdatedAt: t0}
		}
		want := []*deploydb.Flow{{
			Artifact: artifact, Service: "billing", Pipeline: "p", Status: deploydb.FlowCreated, ConfigChecksum: "sum-1",
			CreatedAt: t0, UpdatedAt: t0,
			Deployments: []deploydb.Deployment{
				// The union of service and stage promotions, service first,
				// de-duplicated; the service's strategy where the stage sets
				// none.
				dep("integ", 0, deploydb.FailureIgnore, results("smoke", "perf", "manual")),
				dep("prod", 1, deploydb.FailureRollback, results("smoke", "perf")),
			},
		}}
		if diff := cmp.Diff(want, flows); diff != "" {
			t.Errorf("flows (-want +got):\n%s", diff)
		}
		assignIDs(flows[0], 1)
		mustInvariants(t, flows[0])
	})

	t.Run("DefaultStrategyAndNoPromotions", func(t *testing.T) {
		t.Parallel()
		f := mustNewFlow(t, stage("integ"), withStrategy(stage("prod"), deploydb.FailureIgnore))
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
		flows, err := engine.NewFlows(cfg, artifact, t0)
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
		want := []got{
			{Service: "billing", Pipeline: "long", Envs: []string{"integ", "staging", "prod"}},
			{Service: "reports", Pipeline: "short", Envs: []string{"prod"}},
		}
		if diff := cmp.Diff(want, gots); diff != "" {
			t.Errorf("flows (-want +got):\n%s", diff)
		}
	})
}

// Start.

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		f := mustNewFlow(t, stage("integ", "smoke"), stage("prod"))
		p := engine.NewPlan(f, at(5))
		engine.Start(p)
		mustInvariants(t, f)
		want := []ev{{Type: deploydb.EventDeploymentCreated, Env: "integ", Status: "CREATED"}}
		if diff := cmp.Diff(want, summarize(t, f, p.Events)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		d := f.Deployments[0]
		if d.Status != deploydb.DeploymentCreated || d.UpdatedAt != at(5) {
			t.Errorf("deployment 0 = %s at %v, want CREATED at %v", d.Status, d.UpdatedAt, at(5))
		}
		if f.Deployments[1].Status != deploydb.DeploymentNotStarted {
			t.Errorf("deployment 1 = %s, want NOT_STARTED", f.Deployments[1].Status)
		}
		if d.Promotions[0].Status != deploydb.PromotionNotStarted {
			t.Errorf("result = %s, want NOT_STARTED until the deployment completes", d.Promotions[0].Status)
		}
		if got := ids(p.ChangedDeployments()); !slices.Equal(got, []int64{d.ID}) {
			t.Errorf("ChangedDeployments = %v, want [%d]", got, d.ID)
		}
		if got := p.ChangedResults(); len(got) != 0 {
			t.Errorf("ChangedResults = %v, want none", got)
		}
		if p.FlowChanged() {
			t.Error("FlowChanged = true, want false")
		}
	})

	t.Run("NoDeployments", func(t *testing.T) {
		t.Parallel()
		f := mustNewFlow(t)
		p := engine.NewPlan(f, t0)
		engine.Start(p)
		if len(p.Events) != 0 || len(p.ChangedDeployments()) != 0 || p.FlowChanged() {
			t.Errorf("Start of an empty flow changed something: %+v", p.Events)
		}
	})
}

func ids(ds []*deploydb.Deployment) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.ID)
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

// ReportDeployment.

// flowWith returns a flow of integ (promotion smoke) then prod, and the id
// of a deployment in status s, reached the way the engine reaches it where
// it can.
func flowWith(tb testing.TB, s deploydb.DeploymentStatus) (*deploydb.Flow, int64) {
	tb.Helper()
	f := mustStartedFlow(tb, stage("integ", "smoke"), stage("prod"))
	switch s {
	case deploydb.DeploymentNotStarted:
		return f, f.Deployments[1].ID
	case deploydb.DeploymentCreated:
	case deploydb.DeploymentStarted:
		mustReport(tb, f, 0, deploydb.DeploymentStarted)
	case deploydb.DeploymentCompleted:
		mustReport(tb, f, 0, deploydb.DeploymentCompleted)
	case deploydb.DeploymentSuccess:
		mustReport(tb, f, 0, deploydb.DeploymentCompleted)
		mustPromote(tb, f, 0, "smoke", deploydb.PromotionSuccess)
	case deploydb.DeploymentFailed:
		mustReport(tb, f, 0, deploydb.DeploymentFailed)
	case deploydb.DeploymentSuperseded, deploydb.DeploymentCancelled:
		// Operator actions and supersession are not the engine's yet:
		// write the state they leave.
		f = mustNewFlow(tb, stage("integ", "smoke"), stage("prod"))
		for i := range f.Deployments {
			f.Deployments[i].Status = s
		}
		f.Status = deploydb.FlowStatus(s)
		mustInvariants(tb, f)
	default:
		tb.Fatalf("no setup for %s", s)
	}
	if got := f.Deployments[0].Status; got != s {
		tb.Fatalf("setup reached %s, want %s", got, s)
	}
	return f, f.Deployments[0].ID
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
				f, id := flowWith(t, from)
				before := cloneFlow(f)
				p := engine.NewPlan(f, at(10))
				err := engine.ReportDeployment(p, id, to)
				switch {
				case !to.Valid():
					wantError(t, err, deploydb.EBADREQUEST)
				case !allowed[[2]deploydb.DeploymentStatus{from, to}]:
					e := wantError(t, err, deploydb.ECONFLICT)
					var cur *deploydb.Deployment
					for i := range before.Deployments {
						if before.Deployments[i].ID == id {
							cur = &before.Deployments[i]
						}
					}
					if diff := cmp.Diff(cur, e.Current); diff != "" {
						t.Errorf("Current (-want +got):\n%s", diff)
					}
				default:
					if err != nil {
						t.Fatalf("err = %v, want nil", err)
					}
					mustInvariants(t, f)
					if got := f.Deployments[0].Status; got != to {
						t.Errorf("status = %s, want %s", got, to)
					}
					if len(p.Events) == 0 {
						t.Error("no event")
					}
					return
				}
				if diff := cmp.Diff(before, f); diff != "" {
					t.Errorf("a refused report changed the flow (-before +after):\n%s", diff)
				}
				if len(p.Events) != 0 || len(p.ChangedDeployments()) != 0 || len(p.ChangedResults()) != 0 || p.FlowChanged() {
					t.Errorf("a refused report left changes in the plan: %+v", p.Events)
				}
			})
		}
	}
}

func TestReportDeployment(t *testing.T) {
	t.Parallel()
	const (
		created   = deploydb.EventDeploymentCreated
		started   = deploydb.EventDeploymentStarted
		completed = deploydb.EventDeploymentCompleted
		failed    = deploydb.EventDeploymentFailed
		verified  = deploydb.EventDeploymentVerified
		flowDone  = deploydb.EventFlowCompleted
	)
	tests := []struct {
		name     string
		stages   []deploydb.PipelineStage
		before   []deploydb.DeploymentStatus // reported on deployment 0 first
		report   deploydb.DeploymentStatus
		want     []ev
		wantFlow deploydb.FlowStatus
		wantDeps []deploydb.DeploymentStatus
	}{{
		name:     "Started",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke"), stage("prod")},
		report:   deploydb.DeploymentStarted,
		want:     []ev{{started, "integ", "STARTED", false}},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"STARTED", "NOT_STARTED"},
	}, {
		name:     "CompletedAwaitsPromotions",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("prod")},
		before:   []deploydb.DeploymentStatus{deploydb.DeploymentStarted},
		report:   deploydb.DeploymentCompleted,
		want:     []ev{{completed, "integ", "COMPLETED", false}},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"COMPLETED", "NOT_STARTED"},
	}, {
		name:   "CompletedWithoutPromotions",
		stages: []deploydb.PipelineStage{stage("integ"), stage("staging"), stage("prod")},
		report: deploydb.DeploymentCompleted,
		want: []ev{
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
		want: []ev{
			{completed, "prod", "COMPLETED", false},
			{verified, "prod", "SUCCESS", false},
			{flowDone, "", "SUCCESS", false},
		},
		wantFlow: deploydb.FlowSuccess,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS"},
	}, {
		name:     "FailedNotify",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke"), stage("prod")},
		report:   deploydb.DeploymentFailed,
		want:     []ev{{failed, "integ", "FAILED", false}},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}, {
		name:     "FailedRollbackNotifies",
		stages:   []deploydb.PipelineStage{withStrategy(stage("integ"), deploydb.FailureRollback), stage("prod")},
		before:   []deploydb.DeploymentStatus{deploydb.DeploymentStarted},
		report:   deploydb.DeploymentFailed,
		want:     []ev{{failed, "integ", "FAILED", false}},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}, {
		name:     "FailedIgnoreIsQuiet",
		stages:   []deploydb.PipelineStage{withStrategy(stage("integ"), deploydb.FailureIgnore), stage("prod")},
		report:   deploydb.DeploymentFailed,
		want:     []ev{{failed, "integ", "FAILED", true}},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustStartedFlow(t, tt.stages...)
			for _, s := range tt.before {
				mustReport(t, f, 0, s)
			}
			p := engine.NewPlan(f, at(10))
			if err := engine.ReportDeployment(p, f.Deployments[0].ID, tt.report); err != nil {
				t.Fatal(err)
			}
			mustInvariants(t, f)
			if diff := cmp.Diff(tt.want, summarize(t, f, p.Events)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if f.Status != tt.wantFlow {
				t.Errorf("flow = %s, want %s", f.Status, tt.wantFlow)
			}
			var deps []deploydb.DeploymentStatus
			for _, d := range f.Deployments {
				deps = append(deps, d.Status)
			}
			if diff := cmp.Diff(tt.wantDeps, deps); diff != "" {
				t.Errorf("deployments (-want +got):\n%s", diff)
			}
			if p.FlowChanged() != (tt.wantFlow != deploydb.FlowCreated) {
				t.Errorf("FlowChanged = %v", p.FlowChanged())
			}
			if p.FlowChanged() && f.UpdatedAt != at(10) {
				t.Errorf("flow UpdatedAt = %v, want %v", f.UpdatedAt, at(10))
			}
		})
	}
}

func TestReportDeploymentSnapshots(t *testing.T) {
	t.Parallel()

	t.Run("CompletedThenVerified", func(t *testing.T) {
		t.Parallel()
		f := mustStartedFlow(t, stage("integ"), stage("prod", "smoke"))
		p := engine.NewPlan(f, at(10))
		if err := engine.ReportDeployment(p, f.Deployments[0].ID, deploydb.DeploymentCompleted); err != nil {
			t.Fatal(err)
		}
		// Each snapshot is the deployment as it was right after that
		// step, and stays so when the flow moves on.
		want0 := f.Deployments[0]
		want0.Status = deploydb.DeploymentCompleted
		if diff := cmp.Diff(&want0, p.Events[0].Deployment); diff != "" {
			t.Errorf("completed snapshot (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&f.Deployments[0], p.Events[1].Deployment); diff != "" {
			t.Errorf("verified snapshot (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&f.Deployments[1], p.Events[2].Deployment); diff != "" {
			t.Errorf("created snapshot (-want +got):\n%s", diff)
		}
		f.Deployments[1].Promotions[0].InfoURL = "mutated"
		f.Deployments[1].Status = deploydb.DeploymentFailed
		if s := p.Events[2].Deployment; s.Status != deploydb.DeploymentCreated || s.Promotions[0].InfoURL != "" {
			t.Errorf("snapshot shares memory with the flow: %+v", s)
		}
		if got, want := ids(p.ChangedDeployments()), []int64{f.Deployments[0].ID, f.Deployments[1].ID}; !slices.Equal(got, want) {
			t.Errorf("ChangedDeployments = %v, want %v", got, want)
		}
	})

	t.Run("CompletedStartsResults", func(t *testing.T) {
		t.Parallel()
		f := mustStartedFlow(t, stage("integ", "smoke", "perf"), stage("prod"))
		p := engine.NewPlan(f, at(10))
		if err := engine.ReportDeployment(p, f.Deployments[0].ID, deploydb.DeploymentCompleted); err != nil {
			t.Fatal(err)
		}
		snap := p.Events[0].Deployment
		for _, d := range []*deploydb.Deployment{&f.Deployments[0], snap} {
			for _, r := range d.Promotions {
				if r.Status != deploydb.PromotionStarted || r.UpdatedAt != at(10) {
					t.Errorf("result %s = %s at %v, want STARTED at %v", r.Promotion, r.Status, r.UpdatedAt, at(10))
				}
			}
		}
		d := &f.Deployments[0]
		if got, want := resultIDs(p.ChangedResults()), []int64{d.Promotions[0].ID, d.Promotions[1].ID}; !slices.Equal(got, want) {
			t.Errorf("ChangedResults = %v, want %v", got, want)
		}
		if got, want := ids(p.ChangedDeployments()), []int64{d.ID}; !slices.Equal(got, want) {
			t.Errorf("ChangedDeployments = %v, want %v", got, want)
		}
		if p.FlowChanged() {
			t.Error("FlowChanged = true")
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		f := mustStartedFlow(t, stage("integ"))
		before := cloneFlow(f)
		p := engine.NewPlan(f, at(10))
		wantError(t, engine.ReportDeployment(p, 999, deploydb.DeploymentStarted), deploydb.ENOTFOUND)
		if diff := cmp.Diff(before, f); diff != "" {
			t.Errorf("flow changed (-before +after):\n%s", diff)
		}
	})
}

// ReportPromotion.

func TestReportPromotion(t *testing.T) {
	t.Parallel()
	const (
		created   = deploydb.EventDeploymentCreated
		failed    = deploydb.EventDeploymentFailed
		verified  = deploydb.EventDeploymentVerified
		promoted  = deploydb.EventPromotionCompleted
		flowDone  = deploydb.EventFlowCompleted
		completed = deploydb.DeploymentCompleted
	)

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
		{name: "ErrStatusNotReportable", complete: true, promotion: "smoke", status: deploydb.PromotionStarted, code: deploydb.ECONFLICT},
		{name: "ErrBadStatus", complete: true, promotion: "smoke", status: "MAYBE", code: deploydb.EBADREQUEST},
		{name: "ErrNotCompleted", promotion: "smoke", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
		{name: "ErrNextNotStarted", complete: true, deployIdx: 1, promotion: "manual2", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
		{name: "ErrAlreadyReported", complete: true, success: []string{"smoke"}, promotion: "smoke", status: deploydb.PromotionFailed, code: deploydb.ECONFLICT},
		{name: "ErrAfterSuccess", complete: true, success: []string{"smoke", "perf"}, promotion: "perf", status: deploydb.PromotionSuccess, code: deploydb.ECONFLICT},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustStartedFlow(t, stage("integ", "smoke", "perf"), stage("prod", "manual2"))
			if tt.complete {
				mustReport(t, f, 0, completed)
			}
			for _, name := range tt.success {
				mustPromote(t, f, 0, name, deploydb.PromotionSuccess)
			}
			id := int64(999)
			if tt.deployIdx >= 0 {
				id = f.Deployments[tt.deployIdx].ID
			}
			before := cloneFlow(f)
			p := engine.NewPlan(f, at(10))
			res, err := engine.ReportPromotion(p, id, tt.promotion, tt.status, "https://ci.example/1")
			e := wantError(t, err, tt.code)
			if res != nil {
				t.Errorf("result = %+v, want nil", res)
			}
			if tt.code == deploydb.ECONFLICT {
				if diff := cmp.Diff(&before.Deployments[tt.deployIdx], e.Current); diff != "" {
					t.Errorf("Current (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, f); diff != "" {
				t.Errorf("flow changed (-before +after):\n%s", diff)
			}
			if len(p.Events) != 0 || len(p.ChangedResults()) != 0 || len(p.ChangedDeployments()) != 0 || p.FlowChanged() {
				t.Errorf("a refused report left changes in the plan: %+v", p.Events)
			}
		})
	}

	okTests := []struct {
		name     string
		stages   []deploydb.PipelineStage
		success  []string // reported SUCCESS on deployment 0 before
		report   string
		status   deploydb.PromotionStatus
		want     []ev
		wantFlow deploydb.FlowStatus
		wantDeps []deploydb.DeploymentStatus
	}{{
		name:     "SuccessAnotherPending",
		stages:   []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("prod")},
		report:   "perf",
		status:   deploydb.PromotionSuccess,
		want:     []ev{{promoted, "integ", "COMPLETED", false}},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"COMPLETED", "NOT_STARTED"},
	}, {
		name:    "SuccessLastPending",
		stages:  []deploydb.PipelineStage{stage("integ", "smoke", "perf"), stage("staging"), stage("prod")},
		success: []string{"smoke"},
		report:  "perf",
		status:  deploydb.PromotionSuccess,
		want: []ev{
			{promoted, "integ", "SUCCESS", false},
			{verified, "integ", "SUCCESS", false},
			{created, "staging", "CREATED", false},
		},
		wantFlow: deploydb.FlowCreated,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS", "CREATED", "NOT_STARTED"},
	}, {
		name:   "SuccessLastEnvironment",
		stages: []deploydb.PipelineStage{stage("prod", "smoke")},
		report: "smoke",
		status: deploydb.PromotionSuccess,
		want: []ev{
			{promoted, "prod", "SUCCESS", false},
			{verified, "prod", "SUCCESS", false},
			{flowDone, "", "SUCCESS", false},
		},
		wantFlow: deploydb.FlowSuccess,
		wantDeps: []deploydb.DeploymentStatus{"SUCCESS"},
	}, {
		name:    "Failed",
		stages:  []deploydb.PipelineStage{stage("integ", "smoke", "perf", "soak"), stage("prod")},
		success: []string{"smoke"},
		report:  "perf",
		status:  deploydb.PromotionFailed,
		want: []ev{
			{promoted, "integ", "FAILED", false},
			{failed, "integ", "FAILED", false},
		},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}, {
		name:   "FailedIgnoreIsQuiet",
		stages: []deploydb.PipelineStage{withStrategy(stage("integ", "smoke"), deploydb.FailureIgnore), stage("prod")},
		report: "smoke",
		status: deploydb.PromotionFailed,
		want: []ev{
			{promoted, "integ", "FAILED", false},
			{failed, "integ", "FAILED", true},
		},
		wantFlow: deploydb.FlowFailed,
		wantDeps: []deploydb.DeploymentStatus{"FAILED", "NOT_STARTED"},
	}}
	for _, tt := range okTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustStartedFlow(t, tt.stages...)
			mustReport(t, f, 0, completed)
			for _, name := range tt.success {
				mustPromote(t, f, 0, name, deploydb.PromotionSuccess)
			}
			before := cloneFlow(f)
			p := engine.NewPlan(f, at(10))
			res, err := engine.ReportPromotion(p, f.Deployments[0].ID, tt.report, tt.status, "https://ci.example/7")
			if err != nil {
				t.Fatal(err)
			}
			mustInvariants(t, f)
			if diff := cmp.Diff(tt.want, summarize(t, f, p.Events)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if f.Status != tt.wantFlow {
				t.Errorf("flow = %s, want %s", f.Status, tt.wantFlow)
			}
			var deps []deploydb.DeploymentStatus
			for _, d := range f.Deployments {
				deps = append(deps, d.Status)
			}
			if diff := cmp.Diff(tt.wantDeps, deps); diff != "" {
				t.Errorf("deployments (-want +got):\n%s", diff)
			}

			// The result is returned, recorded, snapshotted, and the only
			// result that changed.
			var stored *deploydb.PromotionResult
			for j := range f.Deployments[0].Promotions {
				if r := &f.Deployments[0].Promotions[j]; r.Promotion == tt.report {
					stored = r
				}
			}
			if stored.Status != tt.status || stored.InfoURL != "https://ci.example/7" || stored.UpdatedAt != at(10) {
				t.Errorf("stored result = %+v", stored)
			}
			if diff := cmp.Diff(stored, res); diff != "" {
				t.Errorf("returned result (-stored +returned):\n%s", diff)
			}
			if diff := cmp.Diff(stored, p.Events[0].Result); diff != "" {
				t.Errorf("event result (-stored +event):\n%s", diff)
			}
			res.InfoURL = "mutated"
			if stored.InfoURL == "mutated" {
				t.Error("the returned result shares memory with the flow")
			}
			if got := resultIDs(p.ChangedResults()); !slices.Equal(got, []int64{stored.ID}) {
				t.Errorf("ChangedResults = %v, want [%d]", got, stored.ID)
			}
			if p.FlowChanged() != (tt.wantFlow != deploydb.FlowCreated) {
				t.Errorf("FlowChanged = %v", p.FlowChanged())
			}
			var wantChanged []int64
			for i, d := range f.Deployments {
				if d.Status != before.Deployments[i].Status {
					wantChanged = append(wantChanged, d.ID)
				}
			}
			if got := ids(p.ChangedDeployments()); !slices.Equal(got, wantChanged) {
				t.Errorf("ChangedDeployments = %v, want %v", got, wantChanged)
			}
		})
	}
}

// CheckInvariants: it must be able to fail, or the tests that rely on it
// prove nothing.

// dep is a deployment's status and its results' statuses.
type dep struct {
	status  deploydb.DeploymentStatus
	results []deploydb.PromotionStatus
}

func d(s deploydb.DeploymentStatus, results ...deploydb.PromotionStatus) dep {
	return dep{status: s, results: results}
}

func flowOf(s deploydb.FlowStatus, deps ...dep) *deploydb.Flow {
	f := &deploydb.Flow{ID: 1, Service: "billing", Status: s}
	for i, x := range deps {
		dd := deploydb.Deployment{ID: int64(10 + i), Flow: 1, Service: "billing", Status: x.status, Position: i, Promotions: []deploydb.PromotionResult{}}
		for j, r := range x.results {
			dd.Promotions = append(dd.Promotions, deploydb.PromotionResult{ID: int64(100 + 10*i + j), Deployment: dd.ID, Promotion: fmt.Sprint("p", j), Status: r})
		}
		f.Deployments = append(f.Deployments, dd)
	}
	return f
}

func TestCheckInvariants(t *testing.T) {
	t.Parallel()
	const (
		NS  = deploydb.DeploymentNotStarted
		CR  = deploydb.DeploymentCreated
		ST  = deploydb.DeploymentStarted
		CO  = deploydb.DeploymentCompleted
		OK  = deploydb.DeploymentSuccess
		FA  = deploydb.DeploymentFailed
		SU  = deploydb.DeploymentSuperseded
		CA  = deploydb.DeploymentCancelled
		rNS = deploydb.PromotionNotStarted
		rST = deploydb.PromotionStarted
		rOK = deploydb.PromotionSuccess
		rFA = deploydb.PromotionFailed
	)
	valid := map[string]*deploydb.Flow{
		"New":                  flowOf(deploydb.FlowCreated, d(NS, rNS), d(NS)),
		"Created":              flowOf(deploydb.FlowCreated, d(CR, rNS), d(NS)),
		"Started":              flowOf(deploydb.FlowCreated, d(ST, rNS), d(NS)),
		"Completed":            flowOf(deploydb.FlowCreated, d(CO, rST, rOK), d(NS)),
		"WaitingAfterSuccess":  flowOf(deploydb.FlowCreated, d(OK, rOK), d(NS), d(NS)),
		"Success":              flowOf(deploydb.FlowSuccess, d(OK, rOK), d(OK)),
		"FailedByOrchestrator": flowOf(deploydb.FlowFailed, d(OK), d(FA, rNS, rNS), d(NS)),
		"FailedByPromotion":    flowOf(deploydb.FlowFailed, d(FA, rOK, rFA, rST), d(NS)),
		"Superseded":           flowOf(deploydb.FlowSuperseded, d(OK), d(SU), d(SU)),
		"Cancelled":            flowOf(deploydb.FlowCancelled, d(CA), d(CA)),
		"Empty":                flowOf(deploydb.FlowCreated),
	}
	for name, f := range valid {
		t.Run("OK"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckInvariants(f); err != nil {
				t.Errorf("CheckInvariants = %v, want nil", err)
			}
		})
	}
	dupID := flowOf(deploydb.FlowCreated, d(CR), d(NS))
	dupID.Deployments[1].ID = dupID.Deployments[0].ID
	otherFlow := flowOf(deploydb.FlowCreated, d(CR), d(NS))
	otherFlow.Deployments[1].Flow = 2
	outOfOrder := flowOf(deploydb.FlowCreated, d(CR), d(NS))
	outOfOrder.Deployments[0].Position = 3
	broken := map[string]*deploydb.Flow{
		"TwoActive":                 flowOf(deploydb.FlowCreated, d(CR), d(ST)),
		"ActiveAfterNotStarted":     flowOf(deploydb.FlowCreated, d(NS), d(CR)),
		"SuccessAfterUnfinished":    flowOf(deploydb.FlowCreated, d(CR), d(OK)),
		"SuccessWithPendingResult":  flowOf(deploydb.FlowCreated, d(OK, rST), d(CR)),
		"ResultBeforeCompleted":     flowOf(deploydb.FlowCreated, d(ST, rST), d(NS)),
		"CompletedNothingPending":   flowOf(deploydb.FlowCreated, d(CO, rOK), d(NS)),
		"CompletedNoPromotions":     flowOf(deploydb.FlowCreated, d(CO), d(NS)),
		"CompletedWithFailedResult": flowOf(deploydb.FlowCreated, d(CO, rFA, rST), d(NS)),
		"FailedTwoFailedResults":    flowOf(deploydb.FlowFailed, d(FA, rFA, rFA)),
		"FailedSomeNotStarted":      flowOf(deploydb.FlowFailed, d(FA, rFA, rNS)),
		"TerminalWithActive":        flowOf(deploydb.FlowCancelled, d(CA), d(CR)),
		"FailedFlowNoFailed":        flowOf(deploydb.FlowFailed, d(OK), d(NS)),
		"FailedFlowTwoFailed":       flowOf(deploydb.FlowFailed, d(FA), d(FA)),
		"FailedFlowStartedAfter":    flowOf(deploydb.FlowFailed, d(FA), d(CR)),
		"SuccessFlowUnfinished":     flowOf(deploydb.FlowSuccess, d(OK), d(CR)),
		"CreatedFlowAllSuccess":     flowOf(deploydb.FlowCreated, d(OK), d(OK)),
		"CreatedFlowFailed":         flowOf(deploydb.FlowCreated, d(FA), d(NS)),
		"SupersededFlowWaiting":     flowOf(deploydb.FlowSuperseded, d(SU), d(NS)),
		"CancelledFlowAllSuccess":   flowOf(deploydb.FlowCancelled, d(OK)),
		"UnknownDeploymentStatus":   flowOf(deploydb.FlowCreated, d("DEPLOYED")),
		"UnknownFlowStatus":         flowOf("RUNNING", d(CR)),
		"UnknownResultStatus":       flowOf(deploydb.FlowCreated, d(CO, "FAILURE", rST)),
		"DuplicateDeploymentID":     dupID,
		"DeploymentOfOtherFlow":     otherFlow,
		"OutOfOrder":                outOfOrder,
	}
	for name, f := range broken {
		t.Run("Err"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckInvariants(f); err == nil {
				t.Errorf("CheckInvariants = nil, want an error for %+v", f)
			}
		})
	}
}

// The property: any sequence of reports, valid or not, keeps the
// invariants, refuses exactly what the rules refuse without touching
// anything, and announces every change.

var promotionPool = []string{"smoke", "perf", "manual", "soak", "canary"}

func TestPropertyReports(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		f := drawStartedFlow(rt)
		steps := rapid.IntRange(0, 60).Draw(rt, "steps")
		for step := range steps {
			applyRandomCommand(rt, f, at(int64(step+1)))
		}
	})
}

func drawStartedFlow(rt *rapid.T) *deploydb.Flow {
	names := rapid.SliceOfNDistinct(rapid.SampledFrom(promotionPool), 0, 3, rapid.ID[string])
	strategies := rapid.SampledFrom([]deploydb.FailureStrategy{"", deploydb.FailureNotify, deploydb.FailureRollback, deploydb.FailureIgnore})
	svc := &deploydb.Service{Ident: "billing", Artifacts: []string{"com.example:billing"}, Pipelines: []string{"p"},
		Promotions:      rapid.SliceOfNDistinct(rapid.SampledFrom(promotionPool), 0, 1, rapid.ID[string]).Draw(rt, "servicePromotions"),
		FailureStrategy: strategies.Draw(rt, "serviceStrategy")}
	n := rapid.IntRange(1, 5).Draw(rt, "environments")
	pl := &deploydb.Pipeline{Ident: "p"}
	for i := range n {
		pl.Environments = append(pl.Environments, deploydb.PipelineStage{
			Environment:     fmt.Sprint("env", i),
			Promotions:      names.Draw(rt, fmt.Sprint("promotions", i)),
			FailureStrategy: strategies.Draw(rt, fmt.Sprint("strategy", i)),
		})
	}
	cfg := &deploydb.Config{Checksum: "sum", Services: map[string]*deploydb.Service{"billing": svc}, Pipelines: map[string]*deploydb.Pipeline{"p": pl}}
	flows, err := engine.NewFlows(cfg, artifact, t0)
	if err != nil {
		rt.Fatalf("NewFlows: %v", err)
	}
	f := flows[0]
	assignIDs(f, 1)
	if err := engine.CheckInvariants(f); err != nil {
		rt.Fatalf("invariants after NewFlows: %v", err)
	}
	for _, d := range f.Deployments {
		if len(d.Promotions) > 4 {
			rt.Fatalf("deployment %s has %d promotions", d.Environment, len(d.Promotions))
		}
	}
	before := cloneFlow(f)
	p := engine.NewPlan(f, at(0))
	engine.Start(p)
	checkStep(rt, before, f, p, nil)
	return f
}

// applyRandomCommand draws one report, applies it to f on a new plan, as a
// store does, and checks the outcome.
func applyRandomCommand(rt *rapid.T, f *deploydb.Flow, now deploydb.Time) {
	// Aim at the active deployment half of the time, so that flows get
	// far; otherwise at any deployment, or at one that does not exist.
	targets := []int64{999, 0}
	for _, d := range f.Deployments {
		targets = append(targets, d.ID)
	}
	id := rapid.SampledFrom(targets).Draw(rt, "deployment")
	if rapid.Bool().Draw(rt, "aimAtActive") {
		for _, d := range f.Deployments {
			if d.Status.Active() {
				id = d.ID
			}
		}
	}
	before := cloneFlow(f)
	p := engine.NewPlan(f, now)
	var err error
	var wantCode string
	if rapid.IntRange(0, 2).Draw(rt, "kind") == 0 {
		// Mostly what moves a flow on, sometimes anything at all.
		var status deploydb.DeploymentStatus
		switch w := rapid.IntRange(0, 19).Draw(rt, "statusWeight"); {
		case w < 3:
			status = rapid.SampledFrom(append(slices.Clone(deploydb.DeploymentStatuses), "BOGUS", "", "completed")).Draw(rt, "status")
		case w < 13:
			status = deploydb.DeploymentCompleted
		case w < 18:
			status = deploydb.DeploymentStarted
		default:
			status = deploydb.DeploymentFailed
		}
		wantCode = expectDeploymentReport(before, id, status)
		err = engine.ReportDeployment(p, id, status)
	} else {
		name := rapid.SampledFrom(append(slices.Clone(promotionPool), "unknown")).Draw(rt, "promotion")
		if d := find(before, id); d != nil && len(d.Promotions) > 0 && rapid.Bool().Draw(rt, "attached") {
			name = rapid.SampledFrom(d.Promotions).Draw(rt, "attachedPromotion").Promotion
		}
		var status deploydb.PromotionStatus
		switch w := rapid.IntRange(0, 19).Draw(rt, "promotionStatusWeight"); {
		case w < 2:
			status = rapid.SampledFrom([]deploydb.PromotionStatus{deploydb.PromotionNotStarted, deploydb.PromotionStarted, "FAILURE", ""}).Draw(rt, "promotionStatus")
		case w < 18:
			status = deploydb.PromotionSuccess
		default:
			status = deploydb.PromotionFailed
		}
		wantCode = expectPromotionReport(before, id, name, status)
		var res *deploydb.PromotionResult
		res, err = engine.ReportPromotion(p, id, name, status, "https://ci.example/x")
		if err == nil {
			r := findResult(f, id, name)
			if r == nil || res == nil || !cmp.Equal(*r, *res) {
				rt.Fatalf("ReportPromotion returned %+v, flow holds %+v", res, r)
			}
		} else if res != nil {
			rt.Fatalf("ReportPromotion returned %+v with error %v", res, err)
		}
	}
	if got := deploydb.ErrorCode(err); got != wantCode {
		rt.Fatalf("error code = %q (%v), want %q", got, err, wantCode)
	}
	if err != nil {
		var e *deploydb.Error
		errors.As(err, &e)
		if e.Code == deploydb.ECONFLICT {
			if diff := cmp.Diff(find(before, id), e.Current); diff != "" {
				rt.Fatalf("ECONFLICT Current (-want +got):\n%s", diff)
			}
		}
	}
	checkStep(rt, before, f, p, err)
}

// expectDeploymentReport returns the error code DESIGN.md §3 prescribes.
func expectDeploymentReport(f *deploydb.Flow, id int64, s deploydb.DeploymentStatus) string {
	d := find(f, id)
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

// expectPromotionReport returns the error code DESIGN.md §3 and §4
// prescribe.
func expectPromotionReport(f *deploydb.Flow, id int64, name string, s deploydb.PromotionStatus) string {
	d := find(f, id)
	r := findResult(f, id, name)
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

func find(f *deploydb.Flow, id int64) *deploydb.Deployment {
	for i := range f.Deployments {
		if f.Deployments[i].ID == id {
			return &f.Deployments[i]
		}
	}
	return nil
}

func findResult(f *deploydb.Flow, id int64, name string) *deploydb.PromotionResult {
	if d := find(f, id); d != nil {
		for j := range d.Promotions {
			if d.Promotions[j].Promotion == name {
				return &d.Promotions[j]
			}
		}
	}
	return nil
}

// checkStep checks one command's outcome: before is the flow before it, f
// after, p its plan and err its error.
func checkStep(rt *rapid.T, before, f *deploydb.Flow, p *engine.Plan, err error) {
	if err := engine.CheckInvariants(f); err != nil {
		rt.Fatalf("invariants: %v\nflow: %+v", err, f)
	}
	if err != nil {
		if diff := cmp.Diff(before, f); diff != "" {
			rt.Fatalf("refused command (%v) changed the flow (-before +after):\n%s", err, diff)
		}
		if len(p.Events) != 0 || len(p.ChangedDeployments()) != 0 || len(p.ChangedResults()) != 0 || p.FlowChanged() {
			rt.Fatalf("refused command (%v) left changes in the plan: %+v", err, p.Events)
		}
		return
	}

	// The engine does not yet hold deployments for busy, locked or frozen
	// environments: a flow in progress always has one deployment active.
	if f.Status == deploydb.FlowCreated {
		active := 0
		for _, d := range f.Deployments {
			if d.Status.Active() {
				active++
			}
		}
		if active != 1 {
			rt.Fatalf("flow in progress with %d active deployments", active)
		}
	}

	// What changed is exactly what the plan says changed, stamped now.
	var wantDeps, wantResults []int64
	for i := range f.Deployments {
		a, b := &before.Deployments[i], &f.Deployments[i]
		if a.Status != b.Status || a.UpdatedAt != b.UpdatedAt {
			wantDeps = append(wantDeps, b.ID)
			if b.UpdatedAt != p.Now {
				rt.Fatalf("deployment %d changed at %v, not now (%v)", b.ID, b.UpdatedAt, p.Now)
			}
		}
		for j := range b.Promotions {
			if !cmp.Equal(a.Promotions[j], b.Promotions[j]) {
				wantResults = append(wantResults, b.Promotions[j].ID)
				if b.Promotions[j].UpdatedAt != p.Now {
					rt.Fatalf("result %d changed at %v, not now", b.Promotions[j].ID, b.Promotions[j].UpdatedAt)
				}
			}
		}
		// Nothing else about a deployment changes.
		a2, b2 := *a, *b
		a2.Status, a2.UpdatedAt, a2.Promotions = "", deploydb.Time{}, nil
		b2.Status, b2.UpdatedAt, b2.Promotions = "", deploydb.Time{}, nil
		if diff := cmp.Diff(a2, b2); diff != "" {
			rt.Fatalf("deployment %d changed beyond status (-before +after):\n%s", b.ID, diff)
		}
	}
	if got := ids(p.ChangedDeployments()); !slices.Equal(got, wantDeps) {
		rt.Fatalf("ChangedDeployments = %v, what changed: %v", got, wantDeps)
	}
	if got := resultIDs(p.ChangedResults()); !slices.Equal(got, wantResults) {
		rt.Fatalf("ChangedResults = %v, what changed: %v", got, wantResults)
	}
	flowChanged := before.Status != f.Status || before.UpdatedAt != f.UpdatedAt
	if p.FlowChanged() != flowChanged {
		rt.Fatalf("FlowChanged = %v, but the flow row changed: %v", p.FlowChanged(), flowChanged)
	}
	if len(wantDeps)+len(wantResults) == 0 && !flowChanged {
		rt.Fatalf("an accepted command changed nothing")
	}

	// Every change is announced, and the last event about each deployment
	// shows it as it is now.
	last := map[int64]*deploydb.Deployment{}
	for _, e := range p.Events {
		if e.Flow != f.ID {
			rt.Fatalf("%s about flow %d, want %d", e.Type, e.Flow, f.ID)
		}
		if e.Type == deploydb.EventFlowCompleted {
			if e.Deployment != nil || e.Status != string(f.Status) || f.Status != deploydb.FlowSuccess {
				rt.Fatalf("flow.completed %+v, flow %s", e, f.Status)
			}
			continue
		}
		if e.Deployment == nil || string(e.Deployment.Status) != e.Status {
			rt.Fatalf("%s: snapshot %+v, status %s", e.Type, e.Deployment, e.Status)
		}
		last[e.Deployment.ID] = e.Deployment
		wantQuiet := e.Type == deploydb.EventDeploymentFailed && e.Deployment.FailureStrategy == deploydb.FailureIgnore
		if e.Quiet != wantQuiet {
			rt.Fatalf("%s Quiet = %v with failure strategy %q", e.Type, e.Quiet, e.Deployment.FailureStrategy)
		}
		if (e.Result != nil) != (e.Type == deploydb.EventPromotionCompleted) {
			rt.Fatalf("%s: Result %+v", e.Type, e.Result)
		}
		if e.Result != nil {
			if r := findResult(f, e.Deployment.ID, e.Result.Promotion); r == nil || !cmp.Equal(*r, *e.Result) {
				rt.Fatalf("promotion.completed result %+v, flow holds %+v", e.Result, r)
			}
		}
	}
	for _, id := range wantDeps {
		got, ok := last[id]
		if !ok {
			rt.Fatalf("deployment %d changed without an event", id)
		}
		if diff := cmp.Diff(find(f, id), got); diff != "" {
			rt.Fatalf("last event about deployment %d (-now +snapshot):\n%s", id, diff)
		}
	}
	if flowChanged && len(p.Events) == 0 {
		rt.Fatalf("flow changed without an event")
	}
	if (before.Status != deploydb.FlowSuccess && f.Status == deploydb.FlowSuccess) != slices.ContainsFunc(p.Events, func(e engine.Emitted) bool { return e.Type == deploydb.EventFlowCompleted }) {
		rt.Fatalf("flow.completed emitted iff the flow succeeded: flow %s -> %s", before.Status, f.Status)
	}
}
