package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/deploydb/deploydb"
)

// BenchShape is the size of the configuration and history the benchmarks
// run against (DESIGN.md §10: 1,000 services × 20 environments).
type BenchShape struct {
	// Services and Environments of the configuration; each service's
	// pipeline goes through 3 to 5 of the environments.
	Services, Environments int
	// Rounds is how many artifacts of every service are published and
	// taken through its pipeline before the benchmarks start: the
	// history. The last round leaves some services in flight, failed or
	// awaiting promotions, so that every kind of status cell is there.
	Rounds int
}

// DefaultBenchShape returns the shape the benchmarks run against: 1,000
// services × 20 environments with 2 rounds of history (8,000
// deployments), or 1 round under -short (4,000), which builds in half the
// time.
func DefaultBenchShape() BenchShape {
	s := BenchShape{Services: 1000, Environments: 20, Rounds: 2}
	if testing.Short() {
		s.Rounds = 1
	}
	return s
}

// BenchHook is the URL of the global hook of BenchConfig; BenchJenkins that
// of its hook object on deployment.created in production environments;
// BenchCDEvents that of its CDEvents hook object on deployment.completed.
const (
	BenchHook     = "http://hooks.bench.test/events"
	BenchJenkins  = "http://jenkins.bench.test/job/deploy/buildWithParameters"
	BenchCDEvents = "http://events.bench.test/cdevents"
)

// benchPipelines is the number of pipelines of BenchConfig.
const benchPipelines = 10

// BenchConfig returns the configuration of a benchmark model: environments
// e00, e01, ... (the last quarter production); pipelines p0 to p9 of 3, 4
// or 5 of them, the second stage of even pipelines with promotion smoke
// and the last stage of every third with promotion verify (both basic);
// services s0000, s0001, ... on pipelines in turn, each consuming
// com.bench:<service>. With hooks, a global bare hook (BenchHook) fires on
// every event, and production environments call a Jenkins-like hook
// object (BenchJenkins, with a templated query, header and body) on
// deployment.created, and a global CDEvents hook object (BenchCDEvents)
// sends service.deployed or service.upgraded on deployment.completed.
func BenchConfig(shape BenchShape, hooks bool) *deploydb.Config {
	cfg := &deploydb.Config{
		Checksum:     "sha256:bench",
		Dir:          "bench",
		Services:     map[string]*deploydb.Service{},
		Environments: map[string]*deploydb.Environment{},
		Pipelines:    map[string]*deploydb.Pipeline{},
		Promotions: map[string]*deploydb.Promotion{
			"smoke":  {Ident: "smoke", Type: deploydb.PromotionTypeBasic},
			"verify": {Ident: "verify", Type: deploydb.PromotionTypeBasic},
		},
	}
	var jenkins deploydb.Hook
	if hooks {
		jenkins = benchJenkinsHook()
		global, bus := deploydb.Hook{Name: BenchHook, URL: BenchHook}, benchCDEventsHook()
		cfg.Webhook = deploydb.Webhook{}
		for _, e := range deploydb.WebhookEvents {
			cfg.Webhook[e] = []deploydb.Hook{global}
		}
		cfg.Webhook[deploydb.EventDeploymentCompleted] = append(cfg.Webhook[deploydb.EventDeploymentCompleted], bus)
		cfg.HookNamed = map[string]*deploydb.Hook{global.Name: &global, jenkins.Name: &jenkins, bus.Name: &bus}
	}
	for i := range shape.Environments {
		e := &deploydb.Environment{Ident: benchEnv(i), Description: "Environment " + benchEnv(i), Production: i >= shape.Environments*3/4}
		if hooks && e.Production {
			e.Webhook = deploydb.Webhook{deploydb.EventDeploymentCreated: {jenkins}}
		}
		cfg.Environments[e.Ident] = e
	}
	for k := range benchPipelines {
		p := &deploydb.Pipeline{Ident: fmt.Sprintf("p%d", k)}
		n := 3 + k%3
		for j := range n {
			st := deploydb.PipelineStage{Environment: benchEnv((k + 4*j) % shape.Environments)}
			if j == 1 && k%2 == 0 {
				st.Promotions = []string{"smoke"}
			}
			if j == n-1 && k%3 == 0 {
				st.Promotions = append(st.Promotions, "verify")
			}
			p.Environments = append(p.Environments, st)
		}
		cfg.Pipelines[p.Ident] = p
	}
	for i := range shape.Services {
		s := BenchService(i)
		cfg.Services[s] = &deploydb.Service{Ident: s, Description: "Service " + s,
			Artifacts: []string{benchGroup + ":" + s}, Pipelines: []string{fmt.Sprintf("p%d", i%benchPipelines)}}
	}
	return cfg
}

// benchJenkinsHook is a hook object as examples/jenkins writes one: the
// deployment in the query, a Basic authorization header and a JSON body.
func benchJenkinsHook() deploydb.Hook {
	url := BenchJenkins + `?SERVICE={{urlquery .Service}}&ENVIRONMENT={{urlquery .Environment}}&VERSION={{urlquery .Artifact.Version}}` +
		`&ARTIFACT_URL={{urlquery .Artifact.SourceURL}}&DEPLOYMENT_ID={{.Deployment.ID}}`
	auth := `Basic {{base64 (printf "%s:%s" "deploydb" "0123456789abcdef")}}`
	body := `{"service": {{json .Service}}, "environment": {{json .Environment}}, "version": {{json .Artifact.Version}}, "deployment": {{.Deployment.ID}}, "actor": {{json .Actor}}}`
	parse := func(name, text string) *template.Template {
		t, err := deploydb.ParseHookTemplate(name, text, nil)
		if err != nil {
			panic(fmt.Sprintf("storetest: bench hook %s: %v", name, err))
		}
		return t
	}
	u := parse("url", url)
	return deploydb.Hook{Name: "jenkins-deploy", URL: url, Display: url, Method: "POST", Body: body, BodyShown: body, ContentType: "application/json",
		Headers: []deploydb.HookHeader{{Name: "Authorization", Value: auth}}, Events: []deploydb.EventType{deploydb.EventDeploymentCreated},
		Templates: &deploydb.HookTemplates{URL: u, Shown: u, Headers: []*template.Template{parse("header", auth)}, Body: parse("body", body)}}
}

// benchCDEventsHook is a hook object of format cdevents, as one that feeds
// an event bus: the service in the URL, a routing header.
func benchCDEventsHook() deploydb.Hook {
	url := BenchCDEvents + `/{{urlquery .Service}}`
	parse := func(name, text string) *template.Template {
		t, err := deploydb.ParseHookTemplate(name, text, nil)
		if err != nil {
			panic(fmt.Sprintf("storetest: bench hook %s: %v", name, err))
		}
		return t
	}
	u := parse("url", url)
	return deploydb.Hook{Name: "event-bus", URL: url, Format: deploydb.HookFormatCDEvents,
		Headers: []deploydb.HookHeader{{Name: "X-Route", Value: "deploy.{{.Environment}}"}}, Events: []deploydb.EventType{deploydb.EventDeploymentCompleted},
		Templates: &deploydb.HookTemplates{URL: u, Shown: u, Headers: []*template.Template{parse("header", "deploy.{{.Environment}}")}}}
}

const benchGroup = "com.bench"

func benchEnv(i int) string { return fmt.Sprintf("e%02d", i) }

// BenchService names the i-th service of BenchConfig.
func BenchService(i int) string { return fmt.Sprintf("s%04d", i) }

// BenchArtifact returns the artifact of service svc at version.
func BenchArtifact(svc, version string) deploydb.Artifact {
	return deploydb.Artifact{Group: benchGroup, Name: svc, Version: version,
		SourceURL: "https://repo.bench.test/com/bench/" + svc + "/" + version + "/" + svc + "-" + version + ".jar"}
}

// BenchModel is a store that holds a benchmark model.
type BenchModel struct {
	Store deploydb.Store
	Clock *Clock
	Shape BenchShape
	// Config is BenchConfig with hooks, for the benchmarks; the history
	// was made under Quiet, the same without hooks, so that the outbox
	// starts empty.
	Config, Quiet *deploydb.Config
	// Deployments are the ids of the deployments of the history, in an
	// order that strides across it.
	Deployments []int64
	// Done are the services whose flows are all finished: nothing of
	// theirs is in flight or waits.
	Done []string

	// What the write benchmarks left, for their next run on the model
	// (-count): the number of artifacts they published, BenchPublish's
	// last flow of each service, and where BenchReport is in each of its
	// services' flows.
	published atomic.Int64
	first     map[string]int64
	cursors   []*reportCursor
}

// version returns a version no artifact of the model has yet.
func (m *BenchModel) version() string {
	return fmt.Sprintf("2.%d.0", m.published.Add(1))
}

// Actors of the benchmark model's writes.
const (
	benchCI           = "ci"
	benchOrchestrator = "orchestrator"
	benchTests        = "tests"
)

// NewBenchModel builds a model of shape in s, a new and empty store whose
// times come from clock, through the Store interface: each round publishes
// an artifact of every service and takes it through its pipeline
// (COMPLETED, then each promotion SUCCESS). In the last round, a tenth of
// the services (benchSpecial 0) stay in flight in their first environment
// (CREATED), a tenth (1) fail in their second, and a tenth (2) wait for
// their promotions in their second when it has some.
func NewBenchModel(tb testing.TB, s deploydb.Store, clock *Clock, shape BenchShape) *BenchModel {
	tb.Helper()
	ctx := context.Background()
	m := &BenchModel{Store: s, Clock: clock, Shape: shape, Config: BenchConfig(shape, true), Quiet: BenchConfig(shape, false)}
	cfg := m.Quiet
	report := func(id int64, st deploydb.DeploymentStatus) {
		if _, err := s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: id, Status: st, Actor: benchOrchestrator}); err != nil {
			tb.Fatalf("bench model: report %s of deployment %d: %v", st, id, err)
		}
	}
	for r := range shape.Rounds {
		last := r == shape.Rounds-1
		flows := make([]*deploydb.Flow, shape.Services)
		for i := range shape.Services {
			clock.Advance(benchStep)
			_, fs, err := s.PublishArtifact(ctx, cfg, BenchArtifact(BenchService(i), fmt.Sprintf("1.%d.0", r)), benchCI)
			if err != nil || len(fs) != 1 {
				tb.Fatalf("bench model: publish %s: %d flows, %v", BenchService(i), len(fs), err)
			}
			flows[i] = fs[0]
		}
		for stage := range 5 {
			for i, f := range flows {
				if stage >= len(f.Deployments) {
					continue
				}
				special := benchSpecial(i)
				d := f.Deployments[stage]
				st := cfg.Pipelines[cfg.Services[f.Service].Pipeline()].Environments[stage]
				clock.Advance(benchStep)
				switch {
				case last && special == 0:
					continue
				case last && special == 1 && stage == 1:
					report(d.ID, deploydb.DeploymentStarted)
					report(d.ID, deploydb.DeploymentFailed)
					m.Deployments = append(m.Deployments, d.ID)
					continue
				case last && special == 1 && stage > 1:
					continue
				case last && special == 2 && stage == 1 && len(st.Promotions) > 0:
					report(d.ID, deploydb.DeploymentCompleted)
					m.Deployments = append(m.Deployments, d.ID)
					continue
				case last && special == 2 && stage > 1 && len(f.Deployments[1].Promotions) > 0:
					continue
				}
				report(d.ID, deploydb.DeploymentCompleted)
				for _, p := range st.Promotions {
					if _, err := s.ReportPromotion(ctx, cfg, deploydb.PromotionReport{Deployment: d.ID, Promotion: p, Status: deploydb.PromotionSuccess, Actor: benchTests}); err != nil {
						tb.Fatalf("bench model: report %s of deployment %d: %v", p, d.ID, err)
					}
				}
				m.Deployments = append(m.Deployments, d.ID)
			}
		}
	}
	for i := range shape.Services {
		svc := BenchService(i)
		if sp := benchSpecial(i); sp > 2 || sp == 2 && len(cfg.Pipelines[cfg.Services[svc].Pipeline()].Environments[1].Promotions) == 0 {
			m.Done = append(m.Done, svc)
		}
	}
	// Reads stride across the history, as a dashboard's readers do, not
	// along the insertion order that keeps the same pages warm.
	stride := make([]int64, 0, len(m.Deployments))
	for k := range 7 {
		for j := k; j < len(m.Deployments); j += 7 {
			stride = append(stride, m.Deployments[j])
		}
	}
	m.Deployments = stride
	return m
}

// benchSpecial says what the last round of NewBenchModel leaves service i
// in: 0 in flight, 1 failed, 2 awaiting promotions, else done. Services of
// every pipeline are among each.
func benchSpecial(i int) int { return (i / benchPipelines) % 10 }

// benchStep is how far the model's clock moves between two writes.
const benchStep = 1500 * time.Millisecond
