package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// Environment variables of the crash test: the seed to replay a failure
// with, and how many times to kill the server (the default is
// crashKillsDefault: 5, or 50 with the build tag crash).
const (
	envCrashSeed  = "DEPLOYDB_CRASH_SEED"
	envCrashKills = "DEPLOYDB_CRASH_KILLS"
)

// TestCrashSQLite kills a server on a SQLite file with SIGKILL, at random
// moments under a concurrent write load, and restarts it each time; see
// testCrash for what it checks.
func TestCrashSQLite(t *testing.T) {
	t.Parallel()
	testCrash(t, filepath.Join(t.TempDir(), "deploydb.db"))
}

// TestCrashPostgres is TestCrashSQLite on PostgreSQL.
func TestCrashPostgres(t *testing.T) {
	t.Parallel()
	testCrash(t, pgtest.Schema(t))
}

// testCrash runs a write load (publishes; deployments started, completed
// and failed; promotion results; an environment locked and unlocked)
// against a real `deploydb serve` process on database, kills it with
// SIGKILL at random moments (crashKills times) and restarts it on the same
// database each time. After the last restart it checks that:
//
//   - every write that got a 2xx is there, in the state it was
//     acknowledged with or one the state machine leads to from it, and is
//     in the event log;
//   - the invariants of DESIGN.md §3 hold (engine.CheckServiceInvariants):
//     at most one active deployment per service and environment, statuses
//     and promotion results that agree, no promotion result, deployment,
//     flow or delivery without what it belongs to (in SQL);
//   - no flow is stuck (crashStuck says what that means), and every flow
//     in progress can indeed be driven to its end through the API;
//   - every event a hook subscribes to has its delivery in the outbox, and
//     every delivery reached the receiver (by webhook-id), those owed when
//     a kill cut the process short included.
//
// The seed of the random moments and choices is logged; set
// DEPLOYDB_CRASH_SEED to it to replay a failure (as far as the timing of
// processes allows).
func testCrash(t *testing.T, database string) {
	seed := crashSeed(t)
	kills := crashKills(t)
	t.Logf("seed %d (replay with %s=%d), %d kills", seed, envCrashSeed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	recv := newCountingReceiver(t, seed)
	dir := crashConfig(t)
	env := map[string]string{"HOOK": recv.URL}
	// A call cut short by a kill is made again once its lease lapses.
	flags := []string{"--webhook-timeout", "1s", "--webhook-lease", "2s"}

	l := &crashLoad{ledger: newCrashLedger()}
	p := spawn(t, dir, database, env, flags...)
	l.url.Store(&p.URL)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wrng := rand.New(rand.NewPCG(seed, uint64(w+1)))
		wg.Go(func() { l.work(stop, wrng) })
	}
	lrng := rand.New(rand.NewPCG(seed, 100))
	wg.Go(func() { l.locks(stop, lrng) })

	start := time.Now()
	for i := range kills {
		// A random moment: the load runs 0.2 to 1.2 s on this process.
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		p.kill(t)
		t.Logf("kill %d: %s after %d writes acknowledged", i+1, p, l.ledger.acks.Load())
		p = spawn(t, dir, database, env, flags...)
		l.url.Store(&p.URL)
	}
	close(stop)
	wg.Wait()
	t.Logf("load: %d writes acknowledged, %d without an answer, over %d kills in %s; answers by status: %v",
		l.ledger.acks.Load(), l.ledger.lost.Load(), kills, time.Since(start).Round(time.Millisecond), l.ledger.codes)
	if l.ledger.acks.Load() < int64(kills) {
		t.Errorf("only %d writes acknowledged: the load did not run", l.ledger.acks.Load())
	}

	c := api{t: t, url: p.URL}
	phase := time.Now()
	logPhase := func(what string) {
		t.Logf("%s: %s", what, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	s := readCrashState(c)
	l.ledger.check(t, s)
	checkCrashInvariants(t, s)
	checkOutbox(t, s)
	logPhase("acknowledged writes, invariants and outbox checked")
	waitDelivered(t, c, recv)
	logPhase("every delivery delivered")
	crashStuck(t, c, recv)
	logPhase("no flow stuck")

	// Every flow in progress can be driven to its end: nothing is stuck.
	driveToEnd(t, c)
	logPhase("every flow driven to its end")
	s = readCrashState(c)
	checkCrashInvariants(t, s)
	checkOutbox(t, s)
	waitDelivered(t, c, recv)
	logPhase("checked again")
	p.stop(t)
	logPhase("stopped")
	checkSQL(t, database)
	logPhase("checked in SQL")
}

// crashSeed returns the seed of DEPLOYDB_CRASH_SEED, or a new one.
func crashSeed(t *testing.T) uint64 {
	if v := os.Getenv(envCrashSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envCrashSeed, v, err)
		}
		return n
	}
	return rand.Uint64()
}

// crashKills returns how many times to kill the server.
func crashKills(t *testing.T) int {
	if v := os.Getenv(envCrashKills); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envCrashKills, v)
		}
		return n
	}
	return crashKillsDefault
}

// crashServices is how many services the crash test's config has.
const crashServices = 4

// crashConfig writes the crash test's config: crashServices services on
// one pipeline integ (a soak promotion, bake), staging (a basic one,
// smoke), prod (none); one hook object for every event a hook may take.
func crashConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"environments/prod.yml":    "description: Production\nproduction: true\n",
		"pipelines/standard.yml":   "environments:\n  integ: {promotions: [bake]}\n  staging: {promotions: [smoke]}\n  prod: {}\n",
		"promotions/bake.yml":      "type: soak\nattributes: {duration: 300ms}\n",
		"promotions/smoke.yml":     "type: basic\n",
		"webhook/all.yml":          "hooks:\n  - name: all\n    url: '${env:HOOK}/all'\n    events: [" + strings.Join(crashHookEvents, ", ") + "]\n",
	}
	for i := range crashServices {
		files[fmt.Sprintf("services/s%d.yml", i)] = fmt.Sprintf("artifacts: [com.example:s%d]\npipelines: [standard]\n", i)
	}
	writeFiles(t, dir, files)
	return dir
}

// crashHookEvents are the events the crash test's hook takes.
var crashHookEvents = []string{
	"deployment.created", "deployment.started", "deployment.completed", "deployment.failed", "deployment.verified",
	"deployment.superseded", "deployment.cancelled", "promotion.completed", "flow.completed",
	"environment.locked", "environment.unlocked",
}

// countingReceiver is a webhook receiver that counts the calls it answered
// by webhook-id. It takes 0 to 20 ms to answer, so that kills land in the
// middle of calls too.
type countingReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newCountingReceiver(t *testing.T, seed uint64) *countingReceiver {
	r := &countingReceiver{calls: map[string]int{}}
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 200))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		rmu.Lock()
		d := time.Duration(rng.IntN(20)) * time.Millisecond
		rmu.Unlock()
		select {
		case <-time.After(d):
		case <-req.Context().Done():
			return
		}
		r.mu.Lock()
		r.calls[req.Header.Get("Webhook-Id")]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *countingReceiver) answered(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

// crashLoad is the write load of the crash test, sent to whichever server
// process is up.
type crashLoad struct {
	url     atomic.Pointer[string]
	ledger  *crashLedger
	version atomic.Int64
}

// crashLedger records what the load sent and what was acknowledged.
type crashLedger struct {
	acks, lost atomic.Int64

	mu        sync.Mutex
	codes     map[int]int // answers to writes by status code, 0 for none
	artifacts map[int64]deploydb.Artifact
	reports   map[int64][]ackedReport // deployment: the reports acknowledged
	results   map[int64]ackedResult   // promotion result id
	locks     []lockOp                // in the order sent, by one goroutine
}

// ackedReport is a report acknowledged: the status reported, and the
// deployment's status in the answer (SUCCESS for a deployment without
// promotions reported COMPLETED).
type ackedReport struct {
	Reported, Status deploydb.DeploymentStatus
}

type ackedResult struct {
	Deployment int64
	Promotion  string
	Status     deploydb.PromotionStatus
}

// lockOp is one lock (or unlock) of prod, and whether it was answered
// (code, 0 for no answer).
type lockOp struct {
	lock bool
	code int
}

func newCrashLedger() *crashLedger {
	return &crashLedger{codes: map[int]int{}, artifacts: map[int64]deploydb.Artifact{}, reports: map[int64][]ackedReport{}, results: map[int64]ackedResult{}}
}

// send makes one request to the server up now; ok reports a 2xx, whose
// body is decoded into out. A request without an answer is counted lost.
func (l *crashLoad) send(method, path string, body, out any) (code int, ok bool) {
	code, b, err := try(method, *l.url.Load()+path, body)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The server is down: wait a moment for the next one.
		time.Sleep(10 * time.Millisecond)
		return 0, false
	}
	if body != nil {
		l.ledger.mu.Lock()
		l.ledger.codes[code]++
		l.ledger.mu.Unlock()
	}
	if err != nil {
		if body != nil {
			l.ledger.lost.Add(1) // sent, but the kill cut it short
		}
		return 0, false
	}
	if code < 200 || code > 299 {
		return code, false
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return code, false
		}
	}
	if body != nil {
		l.ledger.acks.Add(1)
	}
	return code, true
}

// work sends random writes until stop is closed: publishes, and reports
// that move the newest active deployments on.
func (l *crashLoad) work(stop <-chan struct{}, rng *rand.Rand) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if rng.IntN(4) == 0 || !l.report(rng) {
			l.publish(rng)
		}
	}
}

func (l *crashLoad) publish(rng *rand.Rand) {
	a := deploydb.Artifact{Group: "com.example", Name: fmt.Sprintf("s%d", rng.IntN(crashServices)),
		Version: fmt.Sprintf("1.%d", l.version.Add(1)), SourceURL: "https://ci/a.jar"}
	var got deploydb.Artifact
	if _, ok := l.send("POST", "/api/artifacts", map[string]any{"group": a.Group, "name": a.Name, "version": a.Version, "sourceUrl": a.SourceURL}, &got); !ok {
		return
	}
	l.ledger.mu.Lock()
	defer l.ledger.mu.Unlock()
	l.ledger.artifacts[got.ID] = a
}

// report moves an active deployment on: it reports STARTED, COMPLETED or
// FAILED, or a promotion result. It returns false when it found nothing to
// move.
func (l *crashLoad) report(rng *rand.Rand) bool {
	status := []string{"CREATED", "STARTED", "COMPLETED"}[rng.IntN(3)]
	var ds []deploydb.Deployment
	if _, ok := l.send("GET", "/api/deployments?perPageSize=20&status="+status, nil, &ds); !ok || len(ds) == 0 {
		return false
	}
	d := ds[rng.IntN(len(ds))]
	if d.Status == deploydb.DeploymentCompleted {
		for _, r := range d.Promotions {
			if r.Status != deploydb.PromotionStarted || r.Type == "soak" {
				continue
			}
			st := deploydb.PromotionSuccess
			if rng.IntN(12) == 0 {
				st = deploydb.PromotionFailed
			}
			var got deploydb.PromotionResult
			if _, ok := l.send("POST", fmt.Sprintf("/api/deployments/%d/promotions", d.ID), map[string]any{"name": r.Promotion, "status": st}, &got); ok {
				l.ledger.mu.Lock()
				l.ledger.results[got.ID] = ackedResult{Deployment: d.ID, Promotion: got.Promotion, Status: got.Status}
				l.ledger.mu.Unlock()
			}
			return true
		}
		return false
	}
	to := deploydb.DeploymentCompleted
	switch n := rng.IntN(10); {
	case n == 0:
		to = deploydb.DeploymentFailed
	case n < 6 && d.Status == deploydb.DeploymentCreated:
		to = deploydb.DeploymentStarted
	}
	var got deploydb.Deployment
	if _, ok := l.send("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": to}, &got); ok {
		l.ledger.mu.Lock()
		l.ledger.reports[d.ID] = append(l.ledger.reports[d.ID], ackedReport{Reported: to, Status: got.Status})
		l.ledger.mu.Unlock()
	}
	return true
}

// locks locks and unlocks prod at random until stop is closed.
func (l *crashLoad) locks(stop <-chan struct{}, rng *rand.Rand) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(20+rng.IntN(200)) * time.Millisecond):
		}
		op := lockOp{lock: rng.IntN(2) == 0}
		if op.lock {
			op.code, _ = l.send("POST", "/api/environments/prod/lock", map[string]any{"reason": "crash test"}, nil)
		} else {
			op.code, _ = l.send("DELETE", "/api/environments/prod/lock", struct{}{}, nil)
		}
		l.ledger.mu.Lock()
		l.ledger.locks = append(l.ledger.locks, op)
		l.ledger.mu.Unlock()
	}
}

// crashState is what the server shows after the last restart.
type crashState struct {
	artifacts  map[int64]deploydb.Artifact
	flows      []deploydb.Flow
	deps       map[int64]*deploydb.Deployment
	events     []deploydb.Event
	deliveries []deploydb.DeliveryView
	envs       map[string]engine.EnvState
}

// readCrashState reads everything through the API.
func readCrashState(c api) *crashState {
	c.t.Helper()
	s := &crashState{artifacts: map[int64]deploydb.Artifact{}, deps: map[int64]*deploydb.Deployment{}, envs: map[string]engine.EnvState{}}
	for n := 0; ; n++ {
		var page []deploydb.Artifact
		c.call("GET", fmt.Sprintf("/api/artifacts?perPageSize=1000&pageNumber=%d", n), nil, 200, &page)
		for _, a := range page {
			s.artifacts[a.ID] = a
		}
		if len(page) < 1000 {
			break
		}
	}
	for n := 0; ; n++ {
		var page []deploydb.Flow
		c.call("GET", fmt.Sprintf("/api/flows?order=asc&perPageSize=1000&pageNumber=%d", n), nil, 200, &page)
		s.flows = append(s.flows, page...)
		if len(page) < 1000 {
			break
		}
	}
	for i := range s.flows {
		for j := range s.flows[i].Deployments {
			d := &s.flows[i].Deployments[j]
			s.deps[d.ID] = d
		}
	}
	for after := int64(0); ; {
		var page []deploydb.Event
		c.call("GET", fmt.Sprintf("/api/events?limit=1000&after=%d", after), nil, 200, &page)
		s.events = append(s.events, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	for n := 0; ; n++ {
		var page []deploydb.DeliveryView
		c.call("GET", fmt.Sprintf("/api/webhook-deliveries?perPageSize=1000&pageNumber=%d", n), nil, 200, &page)
		s.deliveries = append(s.deliveries, page...)
		if len(page) < 1000 {
			break
		}
	}
	var envs []struct {
		Ident string         `json:"ident"`
		Lock  *deploydb.Lock `json:"lock"`
	}
	c.call("GET", "/api/environments", nil, 200, &envs)
	for _, e := range envs {
		if l := e.Lock; l != nil {
			// As the store words it (sqlstore: loadPlan).
			s.envs[e.Ident] = engine.EnvState{Locked: true, LockReason: fmt.Sprintf("%s (by %s since %s)", l.Reason, l.Actor, l.CreatedAt)}
		} else {
			s.envs[e.Ident] = engine.EnvState{}
		}
	}
	return s
}

// reachable reports whether the state machine leads from one deployment
// status to another (in any number of steps, or none).
func reachable(from, to deploydb.DeploymentStatus) bool {
	seen := map[deploydb.DeploymentStatus]bool{from: true}
	next := []deploydb.DeploymentStatus{from}
	for len(next) > 0 {
		s := next[0]
		next = next[1:]
		if s == to {
			return true
		}
		for _, n := range deploydb.DeploymentStatuses {
			if _, ok := deploydb.CanTransition(s, n); ok && !seen[n] {
				seen[n] = true
				next = append(next, n)
			}
		}
	}
	return false
}

// check checks that every acknowledged write is in s, with its event.
func (l *crashLedger) check(t *testing.T, s *crashState) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	type key struct {
		typ string
		id  int64
	}
	logged := map[key]bool{}
	for _, e := range s.events {
		logged[key{string(e.Type), e.Deployment}] = true
		if e.Type == deploydb.EventArtifactPublished {
			logged[key{string(e.Type), e.Artifact}] = true
		}
	}
	flowsOf := map[int64]int{}
	for _, f := range s.flows {
		flowsOf[f.Artifact.ID]++
	}
	for id, want := range l.artifacts {
		got, ok := s.artifacts[id]
		switch {
		case !ok:
			t.Errorf("artifact %d (%s:%s) was acknowledged (201) but is gone", id, want.Module(), want.Version)
		case got.Group != want.Group || got.Name != want.Name || got.Version != want.Version || got.SourceURL != want.SourceURL:
			t.Errorf("artifact %d: %+v, acknowledged as %+v", id, got, want)
		case flowsOf[id] != 1:
			t.Errorf("artifact %d (%s): %d flows, want 1", id, want.Module(), flowsOf[id])
		}
		if !logged[key{string(deploydb.EventArtifactPublished), id}] {
			t.Errorf("artifact %d: no artifact.published event", id)
		}
	}
	eventOf := map[deploydb.DeploymentStatus]deploydb.EventType{
		deploydb.DeploymentStarted:   deploydb.EventDeploymentStarted,
		deploydb.DeploymentCompleted: deploydb.EventDeploymentCompleted,
		deploydb.DeploymentFailed:    deploydb.EventDeploymentFailed,
	}
	for id, acked := range l.reports {
		d, ok := s.deps[id]
		if !ok {
			t.Errorf("deployment %d had reports acknowledged (%v) but is gone", id, acked)
			continue
		}
		for _, r := range acked {
			if !reachable(r.Status, d.Status) {
				t.Errorf("deployment %d is %s, but was acknowledged %s, which does not lead there", id, d.Status, r.Status)
			}
			if !logged[key{string(eventOf[r.Reported]), id}] {
				t.Errorf("deployment %d: %s acknowledged, but no %s event", id, r.Reported, eventOf[r.Reported])
			}
		}
	}
	for id, want := range l.results {
		d, ok := s.deps[want.Deployment]
		if !ok {
			t.Errorf("promotion result %d: its deployment %d is gone", id, want.Deployment)
			continue
		}
		i := slices.IndexFunc(d.Promotions, func(r deploydb.PromotionResult) bool { return r.ID == id })
		if i < 0 {
			t.Errorf("promotion result %d (%s of deployment %d) was acknowledged but is gone", id, want.Promotion, want.Deployment)
			continue
		}
		if r := d.Promotions[i]; r.Status != want.Status || r.Promotion != want.Promotion {
			t.Errorf("promotion result %d: %s %s, acknowledged %s %s", id, r.Promotion, r.Status, want.Promotion, want.Status)
		}
		if !logged[key{string(deploydb.EventPromotionCompleted), want.Deployment}] {
			t.Errorf("promotion result %d: no promotion.completed event for deployment %d", id, want.Deployment)
		}
	}
	// The lock of prod: what the last answered op left, or what an op
	// sent after it without an answer may have.
	possible := map[bool]bool{false: true}
	for _, op := range l.locks {
		switch {
		case op.code >= 200 && op.code <= 299:
			possible = map[bool]bool{op.lock: true}
		case op.code == 0:
			possible[op.lock] = true
		}
	}
	if locked := s.envs["prod"].Locked; !possible[locked] {
		t.Errorf("prod locked: %v, but the lock operations answered leave it %v", locked, !locked)
	}
}

// checkCrashInvariants checks the invariants of DESIGN.md §3 on every
// service's flows, and that each deployment has the promotion results its
// pipeline gives it.
func checkCrashInvariants(t *testing.T, s *crashState) {
	t.Helper()
	byService := map[string][]*deploydb.Flow{}
	for i := range s.flows {
		f := &s.flows[i]
		byService[f.Service] = append(byService[f.Service], f)
	}
	for svc, flows := range byService {
		if err := engine.CheckServiceInvariants(flows, s.envs); err != nil {
			t.Errorf("service %s: %v", svc, err)
		}
	}
	want := map[string]string{"integ": "bake", "staging": "smoke", "prod": ""}
	for _, d := range s.deps {
		var got []string
		for _, r := range d.Promotions {
			got = append(got, r.Promotion)
		}
		if strings.Join(got, ",") != want[d.Environment] {
			t.Errorf("deployment %d in %s has promotion results %v, want %q", d.ID, d.Environment, got, want[d.Environment])
		}
	}
}

// checkOutbox checks that every event the hook takes has one delivery
// (and every other event none):
// the outbox row is written with the change, so no crash loses one or
// makes one twice.
func checkOutbox(t *testing.T, s *crashState) {
	t.Helper()
	// The deliveries were read after the events: those of events recorded
	// in between (the timer applies soaks) are not checked.
	var last int64
	if len(s.events) > 0 {
		last = s.events[len(s.events)-1].ID
	}
	byEvent := map[int64]int{}
	read := 0
	for _, d := range s.deliveries {
		if d.Event <= last {
			byEvent[d.Event]++
			read++
		}
	}
	n := 0
	for _, e := range s.events {
		want := 0
		if slices.Contains(crashHookEvents, string(e.Type)) {
			want = 1
		}
		// A superseded flow fires deployment.superseded for the
		// deployment that was due and waited, not for those after it
		// (engine: supersede).
		if d := s.deps[e.Deployment]; e.Type == deploydb.EventDeploymentSuperseded && d != nil && d.DueAt.IsZero() {
			want = 0
		}
		n += want
		if byEvent[e.ID] != want {
			t.Errorf("event %d (%s, deployment %d): %d deliveries, want %d", e.ID, e.Type, e.Deployment, byEvent[e.ID], want)
		}
	}
	if n != read {
		t.Errorf("%d deliveries for %d events the hook takes", read, n)
	}
}

// waitDelivered waits until no delivery is pending, then checks that each
// was delivered and that the receiver answered it (by webhook-id).
func waitDelivered(t *testing.T, c api, recv *countingReceiver) {
	t.Helper()
	var pending []deploydb.DeliveryView
	if !pollUntil(60*time.Second, func() bool {
		c.call("GET", "/api/webhook-deliveries?status=pending&perPageSize=1000", nil, 200, &pending)
		return len(pending) == 0
	}) {
		t.Fatalf("%d deliveries still pending 60 s after the last restart, the first: %+v", len(pending), pending[0])
	}
	var all []deploydb.DeliveryView
	for n := 0; ; n++ {
		var page []deploydb.DeliveryView
		c.call("GET", fmt.Sprintf("/api/webhook-deliveries?perPageSize=1000&pageNumber=%d", n), nil, 200, &page)
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
	}
	for _, d := range all {
		if d.Status != deploydb.DeliveryDelivered {
			t.Errorf("delivery %d (%s): %s after %d attempts: %s", d.ID, d.EventType, d.Status, d.Attempts, d.LastError)
		}
		if n := recv.answered(fmt.Sprintf("dd_%d", d.ID)); n < 1 {
			t.Errorf("delivery %d (%s, deployment %d) is %s but the receiver never answered it", d.ID, d.EventType, d.Deployment, d.Status)
		}
	}
}

// crashStuck checks that no flow is stuck. A flow in progress (CREATED)
// moves when its current deployment (its first one that is not SUCCESS)
// can move:
//
//   - NOT_STARTED: it is due and waits for a busy environment (whose
//     active deployment can move: by this same definition), a lock (an
//     operator lifts it) or a freeze (it ends); engine.CheckServiceInvariants
//     finds one that is not due, or waits for nothing.
//   - CREATED or STARTED: the orchestrator reports; it was told to deploy:
//     the deployment.created call for it was delivered.
//   - COMPLETED: it awaits a result someone can report (basic, manual), or
//     a soak that is not overdue (the timer applies it within a second of
//     its due time).
//
// Terminal flows (SUCCESS, FAILED, SUPERSEDED, CANCELLED) are not stuck.
func crashStuck(t *testing.T, c api, recv *countingReceiver) {
	t.Helper()
	// The timer applies the soaks that came due while the server was down
	// (the checks above took time; one more second is the allowance).
	var s *crashState
	overdue := func() []string {
		var out []string
		for _, f := range s.flows {
			for _, d := range f.Deployments {
				for _, r := range d.Promotions {
					if d.Status == deploydb.DeploymentCompleted && r.Status == deploydb.PromotionStarted && r.Type == "soak" &&
						time.Since(r.DueAt.Time) > time.Second {
						out = append(out, fmt.Sprintf("deployment %d: soak %s due %s", d.ID, r.Promotion, r.DueAt))
					}
				}
			}
		}
		return out
	}
	if !pollUntil(10*time.Second, func() bool { s = readCrashState(c); return len(overdue()) == 0 }) {
		t.Errorf("soaks overdue after the restart: %v", overdue())
	}
	created := map[int64]int64{} // deployment: its deployment.created delivery
	for _, d := range s.deliveries {
		if d.EventType == deploydb.EventDeploymentCreated {
			created[d.Deployment] = d.ID
		}
	}
	for _, f := range s.flows {
		if f.Status != deploydb.FlowCreated {
			continue
		}
		i := slices.IndexFunc(f.Deployments, func(d deploydb.Deployment) bool { return d.Status != deploydb.DeploymentSuccess })
		if i < 0 {
			t.Errorf("flow %d is in progress but every deployment is SUCCESS", f.ID)
			continue
		}
		d := f.Deployments[i]
		switch d.Status {
		case deploydb.DeploymentCreated, deploydb.DeploymentStarted:
			id, ok := created[d.ID]
			if !ok || recv.answered(fmt.Sprintf("dd_%d", id)) == 0 {
				t.Errorf("flow %d is stuck: deployment %d is %s but the orchestrator was never told to deploy it", f.ID, d.ID, d.Status)
			}
		case deploydb.DeploymentCompleted:
			if !slices.ContainsFunc(d.Promotions, func(r deploydb.PromotionResult) bool { return r.Status == deploydb.PromotionStarted }) {
				t.Errorf("flow %d is stuck: deployment %d is COMPLETED but awaits no result", f.ID, d.ID)
			}
		}
	}
}

// driveToEnd unlocks prod and moves every flow in progress on, as an
// orchestrator and test jobs would (every report succeeds), until none is
// left in progress.
func driveToEnd(t *testing.T, c api) {
	t.Helper()
	if code, b := send(t, "DELETE", c.url+"/api/environments/prod/lock", "", nil); code != 204 && code != 404 && code != 409 {
		t.Fatalf("unlock prod: %d %s", code, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var flows []deploydb.Flow
		c.call("GET", "/api/flows?perPageSize=1000", nil, 200, &flows)
		moved, left := 0, 0
		for _, f := range flows {
			if f.Status != deploydb.FlowCreated {
				continue
			}
			left++
			for _, d := range f.Deployments {
				switch d.Status {
				case deploydb.DeploymentCreated, deploydb.DeploymentStarted:
					c.call("PATCH", fmt.Sprintf("/api/deployments/%d", d.ID), map[string]any{"status": "COMPLETED"}, 200, nil)
					moved++
				case deploydb.DeploymentCompleted:
					for _, r := range d.Promotions {
						if r.Status == deploydb.PromotionStarted && r.Type != "soak" {
							c.call("POST", fmt.Sprintf("/api/deployments/%d/promotions", d.ID), map[string]any{"name": r.Promotion, "status": "SUCCESS"}, 201, nil)
							moved++
						}
					}
				}
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flows still in progress 60 s after driving them on began", left)
		}
		if moved == 0 {
			time.Sleep(50 * time.Millisecond) // soaks run their time
		}
	}
}

// checkSQL checks, in the database itself, that nothing lost what it
// belongs to: no promotion result without its deployment, no deployment
// without its flow, no flow without its artifact, no artifact without its
// flow, no delivery or attempt without its event or delivery; on SQLite,
// that the file passes PRAGMA integrity_check.
func checkSQL(t *testing.T, database string) {
	t.Helper()
	driver := "sqlite"
	if isPostgres(database) {
		driver = "pgx"
	}
	db, err := sql.Open(driver, database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	orphans := map[string]string{
		"promotion results without their deployment": `SELECT count(*) FROM promotion_results r WHERE NOT EXISTS (SELECT 1 FROM deployments d WHERE d.id = r.deployment_id)`,
		"deployments without their flow":             `SELECT count(*) FROM deployments d WHERE NOT EXISTS (SELECT 1 FROM flows f WHERE f.id = d.flow_id)`,
		"flows without their artifact":               `SELECT count(*) FROM flows f WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = f.artifact_id)`,
		"artifacts without their flow":               `SELECT count(*) FROM artifacts a WHERE NOT EXISTS (SELECT 1 FROM flows f WHERE f.artifact_id = a.id)`,
		"deliveries without their event":             `SELECT count(*) FROM webhook_deliveries w WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = w.event_id)`,
		"attempts without their delivery":            `SELECT count(*) FROM webhook_attempts a WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.id = a.delivery_id)`,
		"two active deployments of a service in an environment": `SELECT count(*) FROM (SELECT service, environment FROM deployments
			WHERE status IN ('CREATED', 'STARTED', 'COMPLETED') GROUP BY service, environment HAVING count(*) > 1) x`,
	}
	for what, q := range orphans {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Errorf("%s: %v", what, err)
		} else if n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	if driver == "sqlite" {
		var ok string
		if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
			t.Errorf("integrity_check: %q %v", ok, err)
		}
	}
}
