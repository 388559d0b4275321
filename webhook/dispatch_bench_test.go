package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// benchHooksPerEvent is how many hooks hear each deployment.created in the
// dispatcher benchmarks: one publish owes that many calls.
const benchHooksPerEvent = 8

// benchReceiver is a local webhook receiver that answers 204 at once and
// counts the calls, each Webhook-Id once (a retry or a repeat after a
// lost record is not a new call).
type benchReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	seen  map[string]bool
	want  int
	all   chan struct{} // closed once want distinct calls arrived
	calls atomic.Int64
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	r := &benchReceiver{seen: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		id := req.Header.Get(webhook.HeaderID)
		r.mu.Lock()
		if !r.seen[id] {
			r.seen[id] = true
			if len(r.seen) == r.want && r.all != nil {
				close(r.all)
			}
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(r.Close)
	return r
}

// expect resets the receiver to wait for n distinct calls.
func (r *benchReceiver) expect(n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.want, r.all = map[string]bool{}, n, make(chan struct{})
	if n == 0 {
		close(r.all)
	}
	return r.all
}

// benchDispatchConfig is a config of services services, s0 to s<n-1>,
// each consuming its own artifact (com.example:s<i>) through the test
// pipeline, and benchHooksPerEvent named global hooks on
// deployment.created, all calling rcv: the first publish of each service
// owes benchHooksPerEvent calls.
func benchDispatchConfig(rcv *benchReceiver, services int) *deploydb.Config {
	var hs []deploydb.Hook
	for i := range benchHooksPerEvent {
		hs = append(hs, deploydb.Hook{Name: fmt.Sprintf("h%d", i), URL: fmt.Sprintf("%s/hook/%d", rcv.URL, i)})
	}
	cfg := newConfig(nil, deploydb.Webhook{deploydb.EventDeploymentCreated: hs})
	cfg.Services = map[string]*deploydb.Service{}
	for i := range services {
		svc := fmt.Sprintf("s%d", i)
		cfg.Services[svc] = &deploydb.Service{Ident: svc, Artifacts: []string{"com.example:" + svc}, Pipelines: []string{"main"}}
	}
	return cfg
}

// benchPublish publishes the artifact of service i of benchDispatchConfig.
func benchPublish(s deploydb.Store, cfg *deploydb.Config, i int) error {
	svc := fmt.Sprintf("s%d", i)
	_, _, err := s.PublishArtifact(context.Background(), cfg, deploydb.Artifact{Group: "com.example", Name: svc, Version: "1.0.0", SourceURL: sourceURL}, "ci")
	return err
}

// BenchmarkDispatcher measures the dispatcher's throughput (DESIGN.md §10:
// thousands of deliveries per second to a local receiver): b.N calls are
// queued while no dispatcher runs (an outbox backlog, as after an
// outage), then one dispatcher with the default settings delivers them
// all and records every attempt. One op is one delivery; deliveries/s is
// the same figure as a rate. Run it with -benchtime=5000x for a backlog
// the size the deploydb-bench tool drains.
func BenchmarkDispatcher(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, filepath.Join(b.TempDir(), "deploydb.db"))
	rcv := newBenchReceiver(b)
	publishes := (b.N + benchHooksPerEvent - 1) / benchHooksPerEvent
	cfg := benchDispatchConfig(rcv, publishes)
	// Queued by concurrent publishers, so that group commit makes short
	// work of it.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= publishes {
					return
				}
				if err := benchPublish(s, cfg, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	st, err := s.OutboxStats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	all := rcv.expect(int(st.Pending))
	d := webhook.NewDispatcher(s, nil, nil)
	b.ResetTimer()
	start := time.Now()
	stop := startDispatcherWith(b, d, nil)
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("not all of %d calls arrived within 5 minutes", st.Pending)
	}
	// Every attempt recorded: the outbox is empty.
	if !poll(func() bool {
		st, err := s.OutboxStats(ctx)
		return err == nil && st.Pending == 0
	}) {
		b.Fatal("attempts still unrecorded 30 s after the last call arrived")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(float64(st.Pending)/elapsed.Seconds(), "deliveries/s")
	if n := rcv.calls.Load(); n != st.Pending {
		b.ReportMetric(float64(n-st.Pending), "repeats")
	}
}

// BenchmarkDispatcherLatency measures how soon after a commit that owes
// webhook calls their first attempts arrive at a local receiver (DESIGN.md
// §10: within 50 ms p99), one publish at a time with the dispatcher
// running: one op is a publish and the arrival of the benchHooksPerEvent
// calls it owes.
func BenchmarkDispatcherLatency(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "deploydb.db"))
	rcv := newBenchReceiver(b)
	cfg := benchDispatchConfig(rcv, b.N)
	startDispatcherWith(b, webhook.NewDispatcher(s, nil, nil), nil)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		all := rcv.expect(benchHooksPerEvent)
		if err := benchPublish(s, cfg, i); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("the calls of publish %d did not arrive within a minute", i)
		}
		lat = append(lat, time.Since(committed))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50-after-commit")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99-after-commit")
	}
}
