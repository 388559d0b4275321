package storetest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// BenchOpener returns a new, empty store for a benchmark, which takes every
// time it records from now. It closes the store with b.Cleanup.
type BenchOpener func(b *testing.B, now func() time.Time) deploydb.Store

// Bench runs the benchmarks of the store's hot paths (DESIGN.md §10), the
// guards that keep them from getting slower unnoticed, on a store from
// open holding a model of DefaultBenchShape() (built once, through the Store
// interface, before the first benchmark):
//
//   - FindStatus: the status matrix (GET /api/status);
//   - FindDeployment: one deployment with its promotion results, ids
//     taken across the history;
//   - FindDeploymentConcurrent: the same from 4 goroutines per CPU at
//     once, as the API's clients read;
//   - Tick: what the timer asks after every commit (soaks due,
//     deployments waiting for a freeze), which must not grow with the
//     history;
//   - PublishArtifact: a write that creates a flow and activates its first
//     deployment, with the webhook deliveries it owes;
//   - ReportDeployment: an orchestrator's report, STARTED and COMPLETED in
//     turn (a COMPLETED one verifies the deployment and activates the
//     next);
//   - ReportDeploymentConcurrent: the reports of ReportDeployment and
//     the publishes that start the next flows, from 16 goroutines per
//     CPU at once, as the server's clients send them: the writes share
//     transactions (group commit), each in a savepoint;
//   - ClaimDeliveries: a dispatcher's claim of 13 to 16 deliveries (its
//     free workers), on a store of its own with 1,000 pending.
//
// Reads run before writes, so that they see the model as built. Every
// benchmark reports allocations; run them with -benchtime=20x for a short
// check, -count for comparisons.
func Bench(b *testing.B, open BenchOpener) {
	parent := b
	var m *BenchModel
	model := func(b *testing.B) *BenchModel {
		// Built by the first benchmark -bench selects that needs it,
		// before its timer starts; closed when Bench's b ends.
		if m == nil {
			clock := NewClock(start())
			m = NewBenchModel(b, open(parent, clock.Now), clock, DefaultBenchShape())
		}
		return m
	}
	b.Run("FindStatus", func(b *testing.B) { BenchFindStatus(b, model(b)) })
	b.Run("FindStatusAt", func(b *testing.B) { BenchFindStatusAt(b, model(b)) })
	b.Run("FindDeployment", func(b *testing.B) { BenchFindDeployment(b, model(b)) })
	b.Run("FindDeploymentConcurrent", func(b *testing.B) { BenchFindDeploymentConcurrent(b, model(b)) })
	b.Run("Tick", func(b *testing.B) { BenchTick(b, model(b)) })
	b.Run("PublishArtifact", func(b *testing.B) { BenchPublish(b, model(b)) })
	b.Run("ReportDeployment", func(b *testing.B) { BenchReport(b, model(b)) })
	b.Run("ReportDeploymentConcurrent", func(b *testing.B) { BenchReportConcurrent(b, model(b)) })
	b.Run("ClaimDeliveries", func(b *testing.B) { benchClaim(b, open) })
}

// BenchFindStatus reads the status matrix of m.
func BenchFindStatus(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	b.ReportAllocs()
	cells := 0
	for b.Loop() {
		cs, err := m.Store.FindStatus(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cells = len(cs)
	}
	b.ReportMetric(float64(cells), "cells")
}

// BenchFindStatusAt reads the status matrix of m as it was half way
// through its history (GET /api/status?at=).
func BenchFindStatusAt(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	first, err := m.Store.FindDeployments(ctx, deploydb.DeploymentFilter{Ascending: true, Page: deploydb.Page{Size: 1}})
	if err != nil || len(first) == 0 {
		b.Fatalf("the model's first deployment: %v", err)
	}
	at := first[0].CreatedAt.Add(m.Clock.Now().Sub(first[0].CreatedAt.Time) / 2)
	b.ReportAllocs()
	cells := 0
	for b.Loop() {
		cs, err := m.Store.FindStatusAt(ctx, deploydb.StatusAtFilter{At: at})
		if err != nil {
			b.Fatal(err)
		}
		cells = len(cs)
	}
	b.ReportMetric(float64(cells), "cells")
}

// BenchFindDeployment reads deployments of m by id, across its history.
func BenchFindDeployment(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		if _, err := m.Store.FindDeployment(ctx, m.Deployments[i%len(m.Deployments)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchTick runs the timer's Tick on m, as the server does after every
// commit.
func BenchTick(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := m.Store.Tick(ctx, m.Config); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchFindDeploymentConcurrent reads deployments of m by id, across its
// history, from 4 goroutines per CPU at once.
func BenchFindDeploymentConcurrent(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	defer reportCPU(b)()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if _, err := m.Store.FindDeployment(ctx, m.Deployments[i%len(m.Deployments)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchPublish publishes a new artifact of a service of m whose flows are
// done and whose pipeline has promotions (each publish activates its first
// deployment), under m.Config, so with the webhook deliveries the events
// owe. Once every such service has published, the timer stops while the
// flow of its last publish is cancelled, which frees its environment and
// leaves the service as it was for the next publish.
func BenchPublish(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	// Services on pipelines with promotions: BenchReport has the others.
	var svcs []string
	for _, svc := range m.Done {
		if hasPromotions(m.Config.Pipelines[m.Config.Services[svc].Pipeline()]) {
			svcs = append(svcs, svc)
		}
	}
	if m.first == nil {
		m.first = map[string]int64{}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		svc := svcs[i%len(svcs)]
		if id := m.first[svc]; id != 0 {
			b.StopTimer()
			if _, err := m.Store.CancelFlow(ctx, m.Config, id, deploydb.Action{Actor: benchCI, Reason: "benchmark"}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		m.Clock.Advance(benchStep)
		_, flows, err := m.Store.PublishArtifact(ctx, m.Config, BenchArtifact(svc, m.version()), benchCI)
		if err != nil {
			b.Fatal(err)
		}
		if len(flows) != 1 || flows[0].Deployments[0].Status != deploydb.DeploymentCreated {
			b.Fatalf("publish of %s: %d flows, first deployment not activated", svc, len(flows))
		}
		m.first[svc] = flows[0].ID
		i++
	}
}

// reportCursor is where BenchReport is in the flow of one service.
type reportCursor struct {
	svc    string
	flow   *deploydb.Flow
	stage  int
	status deploydb.DeploymentStatus // the next to report
}

// BenchReport reports STARTED then COMPLETED of the active deployment of
// a service of m whose pipeline has no promotions, then of the next
// service's: each COMPLETED verifies the deployment and activates the next
// of its flow. Half the reports are COMPLETED whatever the number of
// iterations. When a flow is through, the timer stops while a new
// artifact of the service is published.
func BenchReport(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	reportCursors(b, m)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := m.cursors[(i/2)%len(m.cursors)]
		if c.flow == nil || c.stage == len(c.flow.Deployments) {
			b.StopTimer()
			if err := c.publish(ctx, m); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := c.report(ctx, m); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// reportCursors returns the cursors of the services of m whose pipelines
// have no promotions, made the first time.
func reportCursors(b *testing.B, m *BenchModel) []*reportCursor {
	if m.cursors == nil {
		for _, svc := range m.Done {
			if !hasPromotions(m.Config.Pipelines[m.Config.Services[svc].Pipeline()]) {
				m.cursors = append(m.cursors, &reportCursor{svc: svc})
			}
		}
	}
	if len(m.cursors) == 0 {
		b.Fatal("no service of the model has a pipeline without promotions")
	}
	return m.cursors
}

// publish publishes a new artifact of c's service and moves c to the first
// deployment of its flow.
func (c *reportCursor) publish(ctx context.Context, m *BenchModel) error {
	m.Clock.Advance(benchStep)
	_, flows, err := m.Store.PublishArtifact(ctx, m.Config, BenchArtifact(c.svc, m.version()), benchCI)
	if err != nil {
		return fmt.Errorf("publish %s: %w", c.svc, err)
	} else if len(flows) != 1 {
		return fmt.Errorf("publish %s: %d flows, want 1", c.svc, len(flows))
	}
	c.flow, c.stage, c.status = flows[0], 0, deploydb.DeploymentStarted
	return nil
}

// report reports the next status of c's deployment and moves c on.
func (c *reportCursor) report(ctx context.Context, m *BenchModel) error {
	m.Clock.Advance(benchStep)
	d, err := m.Store.ReportDeployment(ctx, m.Config, deploydb.DeploymentReport{Deployment: c.flow.Deployments[c.stage].ID, Status: c.status, Actor: benchOrchestrator})
	if err != nil {
		return err
	}
	if c.status == deploydb.DeploymentStarted {
		c.status = deploydb.DeploymentCompleted
	} else {
		if d.Status != deploydb.DeploymentSuccess {
			return fmt.Errorf("deployment %d is %s after COMPLETED, want SUCCESS", d.ID, d.Status)
		}
		c.stage, c.status = c.stage+1, deploydb.DeploymentStarted
	}
	return nil
}

// BenchReportConcurrent runs the writes of BenchReport from 16 goroutines
// per CPU at once (fewer if the model has not enough services for them),
// each driving the flows of services of its own: the store commits them
// together (group commit). A publish that starts a service's next flow
// counts as one of the writes: ns/op is the time of a write of the mix.
func BenchReportConcurrent(b *testing.B, m *BenchModel) {
	ctx := context.Background()
	cursors := reportCursors(b, m)
	// Each goroutine needs services of its own.
	perCPU := min(16, len(cursors)/runtime.GOMAXPROCS(0))
	if perCPU == 0 {
		b.Skipf("%d services without promotions for %d CPUs", len(cursors), runtime.GOMAXPROCS(0))
	}
	goroutines := perCPU * runtime.GOMAXPROCS(0)
	var next atomic.Int64
	b.ReportAllocs()
	defer reportCPU(b)()
	b.SetParallelism(perCPU)
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1)-1) % goroutines
		var mine []*reportCursor
		for i := g; i < len(cursors); i += goroutines {
			mine = append(mine, cursors[i])
		}
		i := 0
		for pb.Next() {
			c := mine[(i/2)%len(mine)]
			var err error
			if c.flow == nil || c.stage == len(c.flow.Deployments) {
				err = c.publish(ctx, m)
			} else {
				err = c.report(ctx, m)
				i++
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchPending is the number of pending deliveries ClaimDeliveries finds.
const benchPending = 1000

// benchClaim claims deliveries as the dispatcher does (16 at a time, with
// a lease), from an outbox of benchPending pending deliveries on a store of
// its own. Each claim is made a lease later than the one before, so that
// every claimed delivery is due again: the outbox stays as it is.
func benchClaim(b *testing.B, open BenchOpener) {
	ctx := context.Background()
	clock := NewClock(start())
	s := open(b, clock.Now)
	// Each service publishes, then its first deployment is STARTED and
	// COMPLETED: deployment.created, .started, .completed, .verified and
	// the next one's .created, each owing a call to the global hook.
	const services = 200
	cfg := BenchConfig(BenchShape{Services: services, Environments: 20}, true)
	first := make([]int64, services)
	pending := 0
	for i := 0; pending < benchPending; i++ {
		if i == 3*services {
			b.Fatalf("only %d deliveries pending after %d writes", pending, i)
		}
		k := i % services
		clock.Advance(benchStep)
		var err error
		switch i / services {
		case 0:
			var flows []*deploydb.Flow
			_, flows, err = s.PublishArtifact(ctx, cfg, BenchArtifact(BenchService(k), "1.0.0"), benchCI)
			if err == nil {
				first[k] = flows[0].Deployments[0].ID
			}
		case 1:
			_, err = s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: first[k], Status: deploydb.DeploymentStarted, Actor: benchOrchestrator})
		case 2:
			_, err = s.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: first[k], Status: deploydb.DeploymentCompleted, Actor: benchOrchestrator})
		}
		if err != nil {
			b.Fatal(err)
		}
		st, err := s.OutboxStats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		pending = int(st.Pending)
	}
	const lease = time.Minute
	now := clock.Now()
	b.ReportAllocs()
	// Up to 16, as many as a dispatcher's free workers: a limit that
	// changes from claim to claim, which once made SQLite plan the claim
	// anew each time (limitClause).
	n := 0
	for b.Loop() {
		now = now.Add(lease + time.Millisecond)
		limit := 16 - n%4
		n++
		ds, err := s.ClaimDeliveries(ctx, now, limit, lease)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) != limit {
			b.Fatalf("claimed %d deliveries, want %d", len(ds), limit)
		}
	}
}

// hasPromotions reports whether a stage of p has promotions.
func hasPromotions(p *deploydb.Pipeline) bool {
	for _, st := range p.Environments {
		if len(st.Promotions) > 0 {
			return true
		}
	}
	return false
}

// reportCPU starts counting the CPU time the process uses; the function it
// returns reports it per iteration (cpu-ns/op): on a machine shared with
// other work, a cost that the wall time of a write, its fsync and the
// other work's share of the CPUs do not hide. It covers every goroutine
// of the process (a store's own, the benchmark's), as the server's CPU
// does.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
