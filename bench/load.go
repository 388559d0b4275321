package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of write requests.
const (
	kindPublish   = "publish"   // POST /api/artifacts
	kindStarted   = "started"   // PATCH /api/deployments/{id} STARTED
	kindCompleted = "completed" // PATCH /api/deployments/{id} COMPLETED
	kindPromotion = "promotion" // POST /api/deployments/{id}/promotions
)

// kindAll is every kind together.
const kindAll = "all"

// WriteOptions shapes the mixed write load.
type WriteOptions struct {
	// Clients is how many requests are in flight at most.
	Clients int
	// Warmup runs before the measured Duration and is not counted.
	Warmup, Duration time.Duration
	// Tag starts every version the load publishes, so that its flows are
	// told from the history's.
	Tag string
	// Hooks makes the orchestrator learn of each deployment from the
	// deployment.created hook, as a real one does: the load then waits
	// for the webhooks, and MaxFlows bounds the flows in progress. Without
	// it each client drives one flow at a time, as fast as the API
	// answers: it learns the flow's deployments from GET
	// /api/flows?artifact= after publishing, and reports on each
	// deployment as soon as DeployDB created it.
	Hooks    bool
	MaxFlows int
	// Drain is the most the load waits, after Duration, for the calls
	// the deployments it created in the window owe the orchestrator.
	Drain time.Duration
}

// WriteResult is what the mixed write load measured.
type WriteResult struct {
	Seconds float64 `json:"seconds"`
	// Writes counts the write requests answered 2xx in the measured
	// window, by kind.
	Writes int64            `json:"writes"`
	ByKind map[string]int64 `json:"byKind"`
	// Latency is each kind's, of the requests sent in the window (those
	// answered after it too).
	Latency map[string]*Sample `json:"-"`
	// Errors counts the write requests that failed, warm-up included.
	Errors int64  `json:"errors"`
	Error  string `json:"firstError,omitempty"`
	// Flows counts the flows that went through their whole pipeline in
	// the window.
	Flows int64 `json:"flows"`
	// Calls counts the orchestrator hook's first attempts that arrived
	// for the deployments the load's writes created in the window (the
	// 2xx of the write that created one came in the window), and Missing
	// those that had not arrived Waited seconds after the load.
	Calls   int     `json:"calls"`
	Missing int     `json:"missing"`
	Waited  float64 `json:"waitedSeconds"`
	// Upper and Lower bound the time from the commit that queued each of
	// those calls to its arrival: from the event's time (taken before the
	// commit) and from when the client got the 2xx (after it). A call
	// that never arrived is Never in Upper, and the time waited for it
	// in Lower.
	Upper, Lower *Sample `json:"-"`
	// Reads counts the GET /api/flows?artifact= of the API-driven load.
	Reads int64 `json:"reads"`
	// Idle lists the services idle after the load: those whose last flow
	// the load finished, or never touched.
	Idle []string `json:"-"`
}

// WritesPerSec returns the mixed write rate.
func (r *WriteResult) WritesPerSec() float64 { return float64(r.Writes) / r.Seconds }

// writeLoad drives flows as an orchestrator, test jobs and approvers do:
// the CI publishes a new version of an idle service; the orchestrator,
// called by the deployment.created hook, reports STARTED then COMPLETED;
// test jobs and approvers report each promotion result SUCCESS, which
// makes DeployDB create the next environment's deployment and call the
// orchestrator again, until the flow is done.
type writeLoad struct {
	c    *client
	m    *Model
	o    WriteOptions
	svcs map[string]*Service

	idle     chan string
	tasks    chan Call
	inflight atomic.Int64
	seq      atomic.Int64

	t0, t1 time.Time // the measured window

	mu    sync.Mutex
	acks  map[string]time.Time // artifact/environment: when the 2xx that queued its deployment.created arrived
	calls map[string]Call      // artifact/environment: the first call of the orchestrator hook that arrived
	res   WriteResult
}

func ackKey(artifact int64, env string) string { return strconv.FormatInt(artifact, 10) + "/" + env }

// runWrites runs the mixed write load against the server c calls, on the
// services idle (no flow in progress), with the orchestrator's calls
// coming through rcv.
func runWrites(ctx context.Context, c *client, rcv *Receiver, m *Model, idle []string, o WriteOptions) (*WriteResult, error) {
	if o.MaxFlows <= 0 {
		o.MaxFlows = 4 * o.Clients
	}
	w := &writeLoad{c: c, m: m, o: o, svcs: map[string]*Service{}, idle: make(chan string, len(idle)), tasks: make(chan Call, 1<<16),
		acks: map[string]time.Time{}, calls: map[string]Call{}}
	w.res.ByKind, w.res.Latency = map[string]int64{}, map[string]*Sample{}
	for _, k := range []string{kindPublish, kindStarted, kindCompleted, kindPromotion, kindAll} {
		w.res.Latency[k] = &Sample{}
	}
	w.res.Upper, w.res.Lower = &Sample{}, &Sample{}
	for i := range m.Services {
		w.svcs[m.Services[i].Name] = &m.Services[i]
	}
	rng := rand.New(rand.NewPCG(uint64(len(idle)), 1))
	for _, i := range rng.Perm(len(idle)) {
		w.idle <- idle[i]
	}
	w.t0 = time.Now().Add(o.Warmup)
	w.t1 = w.t0.Add(o.Duration)
	rcv.OnCall(func(call Call) {
		if !isRunTag(call.Version, o.Tag) {
			return
		}
		k := ackKey(call.Artifact, call.Environment)
		w.mu.Lock()
		if _, ok := w.calls[k]; !ok {
			w.calls[k] = call
		}
		w.mu.Unlock()
		if !o.Hooks {
			return
		}
		select {
		case w.tasks <- call:
		default: // never: the queue holds more than the load can start
		}
	})
	defer rcv.OnCall(nil)
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.Hooks {
				w.worker(ctx)
			} else {
				w.flows(ctx)
			}
		}()
	}
	wg.Wait()
	w.res.Seconds = o.Duration.Seconds()
	for len(w.idle) > 0 {
		w.res.Idle = append(w.res.Idle, <-w.idle)
	}
	// Each deployment the window's writes created owes the orchestrator a
	// call: those still on their way are the slowest, so wait for them
	// rather than leave them out.
	ended := time.Now()
	for w.late() > 0 && time.Since(ended) < o.Drain && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	now := time.Now()
	w.res.Waited = now.Sub(ended).Seconds()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ack := range w.acks {
		if !w.inWindow(ack) {
			continue
		}
		call, ok := w.calls[k]
		if !ok {
			w.res.Missing++
			w.res.Upper.Add(Never)
			w.res.Lower.Add(now.Sub(ack))
			continue
		}
		w.res.Calls++
		w.res.Upper.Add(call.At.Sub(call.EventTime))
		w.res.Lower.Add(call.At.Sub(ack))
	}
	return &w.res, ctx.Err()
}

// inWindow reports whether t is in the measured window.
func (w *writeLoad) inWindow(t time.Time) bool { return !t.Before(w.t0) && t.Before(w.t1) }

// late counts the deployments created in the window whose call has not
// arrived yet.
func (w *writeLoad) late() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k, ack := range w.acks {
		if _, ok := w.calls[k]; !ok && w.inWindow(ack) {
			n++
		}
	}
	return n
}

// flows publishes a new version of an idle service and drives its flow
// through the pipeline, again and again.
func (w *writeLoad) flows(ctx context.Context) {
	for ctx.Err() == nil && time.Now().Before(w.t1) {
		var svc string
		select {
		case svc = <-w.idle:
		default:
			time.Sleep(time.Millisecond)
			continue
		}
		artifact, ok := w.publish(ctx, svc)
		if !ok {
			continue
		}
		var flows []struct {
			Deployments []struct {
				ID          int64
				Environment string
			}
		}
		err := w.c.getJSON(ctx, "/api/flows?artifact="+strconv.FormatInt(artifact, 10), &flows)
		w.mu.Lock()
		w.res.Reads++
		w.mu.Unlock()
		if err == nil && len(flows) != 1 {
			err = fmt.Errorf("artifact %d has %d flows, want 1", artifact, len(flows))
		}
		if err != nil {
			w.fail(err)
			continue
		}
		done := false
		for _, d := range flows[0].Deployments {
			if done, ok = w.drive(ctx, Call{Deployment: d.ID, Artifact: artifact, Service: svc, Environment: d.Environment}); !ok {
				break
			}
		}
		if done {
			w.idle <- svc
		}
	}
}

func (w *writeLoad) fail(err error) {
	if isCanceled(err) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Errors++
	if w.res.Error == "" {
		w.res.Error = err.Error()
	}
}

// worker drives deployments the orchestrator is called for, and publishes
// a new version when none waits and the flows in progress allow.
func (w *writeLoad) worker(ctx context.Context) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil && time.Now().Before(w.t1) {
		select {
		case call := <-w.tasks:
			w.hooked(ctx, call)
			continue
		default:
		}
		if w.inflight.Load() < int64(w.o.MaxFlows) {
			select {
			case svc := <-w.idle:
				if _, ok := w.publish(ctx, svc); ok {
					w.inflight.Add(1)
				}
				continue
			default:
			}
		}
		select {
		case call := <-w.tasks:
			w.hooked(ctx, call)
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// write makes one write request and counts it; it returns the answer's
// body, and false when the load should give up on the flow.
func (w *writeLoad) write(ctx context.Context, kind, actor, method, path string, body any, want int) ([]byte, time.Time, bool) {
	if !time.Now().Before(w.t1) {
		return nil, time.Time{}, false
	}
	start := time.Now()
	b, err := w.c.do(ctx, actor, method, path, body, want)
	done := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if !isCanceled(err) {
			w.res.Errors++
			if w.res.Error == "" {
				w.res.Error = err.Error()
			}
		}
		return nil, done, false
	}
	// The rate counts what the window saw answered; the latency every
	// request sent in it, so that the slowest, answered after it, count.
	if w.inWindow(done) {
		w.res.Writes++
		w.res.ByKind[kind]++
	}
	if w.inWindow(start) {
		w.res.Latency[kind].Add(done.Sub(start))
		w.res.Latency[kindAll].Add(done.Sub(start))
	}
	return b, done, true
}

// publish publishes a new version of service name and returns the
// artifact's id.
func (w *writeLoad) publish(ctx context.Context, name string) (int64, bool) {
	s := w.svcs[name]
	v := fmt.Sprintf("%s.%d", w.o.Tag, w.seq.Add(1))
	b, done, ok := w.write(ctx, kindPublish, ActorCI, http.MethodPost, "/api/artifacts", map[string]string{
		"group": s.Group, "name": s.Artifact, "version": v,
		"sourceUrl": fmt.Sprintf("https://repo.example.com/%s/%s/%s/%s-%s.jar", s.Group, s.Artifact, v, s.Artifact, v),
	}, http.StatusCreated)
	if !ok {
		return 0, false // the service is left out: its flow may be half made
	}
	var a struct{ ID int64 }
	if json.Unmarshal(b, &a) != nil || a.ID == 0 {
		return 0, false
	}
	first := w.m.Pipeline(s.Pipeline).Stages[0].Environment
	w.mu.Lock()
	w.acks[ackKey(a.ID, first)] = done
	w.mu.Unlock()
	return a.ID, true
}

// hooked drives the deployment the orchestrator was called for, and puts
// its service back among the idle ones when that ended the flow.
func (w *writeLoad) hooked(ctx context.Context, call Call) {
	if done, ok := w.drive(ctx, call); ok && done {
		w.inflight.Add(-1)
		w.idle <- call.Service
	}
}

// drive takes a deployment through its reports: STARTED, COMPLETED, then
// each promotion result. It reports whether they were all answered 2xx,
// and whether that ended the flow.
func (w *writeLoad) drive(ctx context.Context, call Call) (done, ok bool) {
	s := w.svcs[call.Service]
	if s == nil {
		return false, false
	}
	stages := w.m.Pipeline(s.Pipeline).Stages
	pos := -1
	for i, st := range stages {
		if st.Environment == call.Environment {
			pos = i
		}
	}
	path := "/api/deployments/" + strconv.FormatInt(call.Deployment, 10)
	if _, _, ok := w.write(ctx, kindStarted, ActorOrchestrator, http.MethodPatch, path, map[string]string{"status": "STARTED"}, http.StatusOK); !ok {
		return false, false
	}
	_, last, ok := w.write(ctx, kindCompleted, ActorOrchestrator, http.MethodPatch, path, map[string]string{"status": "COMPLETED"}, http.StatusOK)
	if !ok {
		return false, false
	}
	for _, name := range w.m.StagePromotions(s, call.Environment) {
		actor, info := ActorTests, fmt.Sprintf("https://ci.example.com/job/%s/%d/", name, call.Deployment)
		if w.m.PromotionType(name) == "manual" {
			actor, info = ActorApprover, ""
		}
		if _, last, ok = w.write(ctx, kindPromotion, actor, http.MethodPost, path+"/promotions",
			map[string]string{"name": name, "status": "SUCCESS", "infoUrl": info}, http.StatusCreated); !ok {
			return false, false
		}
	}
	// The last report verified the deployment: DeployDB created the next
	// one, or the flow is done.
	if pos >= 0 && pos+1 < len(stages) {
		w.mu.Lock()
		w.acks[ackKey(call.Artifact, stages[pos+1].Environment)] = last
		w.mu.Unlock()
		return false, true
	}
	w.mu.Lock()
	if w.inWindow(last) {
		w.res.Flows++
	}
	w.mu.Unlock()
	return true, true
}

// ReadResult is what reading one endpoint measured.
type ReadResult struct {
	Name    string `json:"name"`
	Example string `json:"example"`
	// Requests counts those sent in the measured window and answered
	// 200; Errors those that failed, warm-up included.
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	Errors   int     `json:"errors"`
	Error    string  `json:"firstError,omitempty"`
	Bytes    int64   `json:"meanBytes"`
	Latency  *Sample `json:"-"`
	// ServerCPU and BenchCPU are the cores the server and the benchmark
	// kept busy on average, warm-up included.
	ServerCPU float64 `json:"serverCPU"`
	BenchCPU  float64 `json:"benchCPU"`
}

// runReads reads the paths next returns with clients concurrent clients
// for warmup + d, and measures the requests sent after the warm-up (to
// their answer, which may come after d: the slowest count too). Errors
// of those are counted, not measured.
func runReads(ctx context.Context, c *client, name string, next func(*rand.Rand) string, clients int, warmup, d time.Duration) *ReadResult {
	res := &ReadResult{Name: name, Latency: &Sample{}, Seconds: d.Seconds(), Example: next(rand.New(rand.NewPCG(1, 1)))}
	t0 := time.Now().Add(warmup)
	t1 := t0.Add(d)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 2))
			var s Sample
			var n, errs int
			var size int64
			var first string
			var buf bytes.Buffer
			for ctx.Err() == nil {
				path := next(rng)
				start := time.Now()
				if !start.Before(t1) {
					break
				}
				b, err := c.doInto(ctx, ActorReader, http.MethodGet, path, nil, http.StatusOK, &buf)
				done := time.Now()
				if isCanceled(err) {
					continue
				}
				if err != nil { // warm-up included
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				if start.Before(t0) {
					continue
				}
				s.Add(done.Sub(start))
				n++
				size += int64(len(b))
			}
			mu.Lock()
			res.Latency.Merge(&s)
			res.Requests += n
			res.Errors += errs
			total += size
			if res.Error == "" {
				res.Error = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if res.Requests > 0 {
		res.Bytes = total / int64(res.Requests)
	}
	return res
}
