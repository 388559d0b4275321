package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// Options shapes a run of the benchmark.
type Options struct {
	// Bin is the deploydb binary to measure.
	Bin string
	// Scales are the histories to measure on, smallest first: deployments
	// of history each.
	Scales []int
	// Dir holds the run's databases and logs (a new temporary directory
	// when empty).
	Dir string
	// Cache keeps generated histories for the next runs ("" keeps none).
	Cache string
	// LinkCache serves a history kept in Cache in place, through a hard
	// link, rather than a copy: for histories too large to copy (10m is
	// about 30 GB). The run's writes then stay in the kept history.
	LinkCache bool
	// Postgres, when set, is the URL of a PostgreSQL database whose limit
	// is measured too.
	Postgres string
	// ProfileDir, when set, receives CPU profiles of the server under each
	// load, from its /debug/pprof/profile (as the ops token).
	ProfileDir string
	// Check runs Check on each history before serving it.
	Check bool
	// GenerateOnly generates the histories into Cache and measures
	// nothing.
	GenerateOnly bool
	Seed         uint64
	// Services is how many services the model has: MaxServices (the
	// targets' 1,000) when 0; fewer only for tests of the benchmark.
	Services int

	LimitTime   time.Duration // each single-row limit
	ReadTime    time.Duration // each read endpoint
	WriteTime   time.Duration // the mixed write load
	HookTime    time.Duration // each orchestrator loop driven by the webhooks
	DrainTime   time.Duration // the most the outbox is given to drain after a write load
	Warmup      time.Duration // before each read and write load
	Readers     int           // concurrent clients of each read endpoint
	Writers     int           // concurrent clients of the write load
	Backlog     int           // webhook calls queued for the throughput
	BacklogTime time.Duration // the most the backlog is given to drain
	Flows       int           // flows in progress at once under the write load
	Starts      int           // start-ups timed, besides the server's own
	// Idle is how long the server is left alone after its start before
	// its resident memory is read: 2 s when 0.
	Idle       time.Duration
	Command    string    // how the run was started, for the report
	Log        io.Writer // progress
	LogPrefix  string
	ServerArgs []string // more arguments of deploydb serve (unused by default)
}

// ScaleLabel names a history of n deployments: 10k, 1m, 10m.
func ScaleLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "m"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// ParseScale reads a history size: 10k, 1m, 10m, or a number.
func ParseScale(arg string) (int, error) {
	s := strings.ToLower(strings.TrimSpace(arg))
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bench: %q is not a history size (10k, 1m, 10m, or a number)", arg)
	}
	return n * mult, nil
}

// Latencies are a sample's percentiles, in milliseconds. A percentile of
// msOf(Never) or more falls on something that never ended (a webhook call
// that never arrived): it is unknown, not that long.
type Latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencies(s *Sample) Latencies {
	return Latencies{N: s.Len(), P50: msOf(s.Percentile(50)), P90: msOf(s.Percentile(90)), P99: msOf(s.Percentile(99)), Max: msOf(s.Max())}
}

// ScaleResult is what the phases of one history measured.
type ScaleResult struct {
	Scale string `json:"scale"`
	// Deployments is the history's size as asked (ScaleLabel names it).
	Deployments int       `json:"deployments"`
	History     *Manifest `json:"history"`
	Generated   bool      `json:"generated"` // false: from the cache
	ReadyMs     []float64 `json:"readyMs"`
	// ReadyBacklogMs is the start-up with the backlog queued.
	ReadyBacklogMs float64 `json:"readyBacklogMs"`
	RSSIdleMB      float64 `json:"rssIdleMB"`
	RSSLoadMB      float64 `json:"rssLoadMB"`
	RSSPeakMB      float64 `json:"rssPeakMB"`
	// RSSError says why the resident memory could not be read, "" when
	// it was.
	RSSError    string               `json:"rssError,omitempty"`
	Reads       []*ReadResult        `json:"reads"`
	ReadLatency map[string]Latencies `json:"readLatency"`
	Writes      []*WritePhase        `json:"writes"`
	Backlog     *BacklogResult       `json:"backlog"`
	Profiles    map[string]string    `json:"profiles,omitempty"`
	Notes       []string             `json:"notes,omitempty"`
}

// The write phases.
const (
	phaseHooksLight = "orchestrator loop, one flow"   // webhook-driven, one client
	phaseHooks      = "orchestrator loop, many flows" // webhook-driven, -writers clients
	phaseWrites     = "mixed writes"                  // API-driven, -writers clients
)

// WritePhase is one write load and what it measured.
type WritePhase struct {
	Name     string               `json:"name"`
	Clients  int                  `json:"clients"`
	Hooks    bool                 `json:"hooks"`
	MaxFlows int                  `json:"maxFlows,omitempty"`
	Result   *WriteResult         `json:"result"`
	Latency  map[string]Latencies `json:"latencyMs"`
	// HookUpper and HookLower bound the time from commit to the first
	// attempt of the orchestrator hook's calls, in ms.
	HookUpper Latencies `json:"hookUpperMs"`
	HookLower Latencies `json:"hookLowerMs"`
	// ServerCPU and BenchCPU are the cores the server and the benchmark
	// (clients and receiver) kept busy on average, warm-up included.
	ServerCPU float64 `json:"serverCPU"`
	BenchCPU  float64 `json:"benchCPU"`
}

// phase returns the write phase of that name, or nil.
func (sr *ScaleResult) phase(name string) *WritePhase {
	for _, w := range sr.Writes {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// Read endpoints, by name.
const (
	readDeployment = "GET /api/deployments/{id}"
	readStatus     = "GET /api/status"
	readHistory    = "GET /api/deployments?service="
	readEvents     = "GET /api/events?after="
)

// Run runs the whole benchmark and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	began := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if len(o.Scales) == 0 {
		return nil, errors.New("bench: no history size")
	}
	slices.Sort(o.Scales)
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "deploydb-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: the run's directory: %w", err)
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: the run's directory: %w", err)
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return nil, fmt.Errorf("bench: the deploydb binary: %w (make build)", err)
	}
	r := &Report{Command: o.Command, Started: began, Machine: Describe(ctx, o.Dir)}

	if o.GenerateOnly && o.Cache == "" {
		return nil, errors.New("bench: generating only needs a cache to keep the histories in")
	}
	if o.GenerateOnly {
		o.LimitTime = 100 * time.Millisecond
	}

	// 1. The limit.
	logf("limit: SQLite single-row commits for %s", o.LimitTime)
	lim, err := SQLiteLimit(ctx, o.Dir, 1, o.LimitTime)
	if err != nil {
		return nil, err
	}
	r.Limits = append(r.Limits, lim)
	r.add(Figure{Name: "SQLite single-row commits (the limit)", Value: lim.TxPerSec, Unit: "tx/s", Note: lim.Settings})
	for _, n := range []int{8, 32} {
		l, err := SQLiteLimit(ctx, o.Dir, n, o.LimitTime/2)
		if err != nil {
			return nil, err
		}
		r.Limits = append(r.Limits, l)
		r.add(Figure{Name: fmt.Sprintf("SQLite %d-row transactions", n), Value: l.RowsPerSec(), Unit: "rows/s", Ratio: l.RowsPerSec() / lim.TxPerSec})
	}
	if o.Postgres != "" {
		logf("limit: PostgreSQL single-row commits for %s", o.LimitTime)
		pl, err := PostgresLimit(ctx, o.Postgres, 1, o.LimitTime)
		if err != nil {
			return nil, err
		}
		r.Limits = append(r.Limits, pl)
		r.add(Figure{Name: "PostgreSQL single-row commits", Value: pl.TxPerSec, Unit: "tx/s", Note: pl.Settings})
	}

	// 2. The model, its receiver and its configuration.
	if o.Services == 0 {
		o.Services = MaxServices
	}
	if o.Idle <= 0 {
		o.Idle = 2 * time.Second
	}
	m, err := NewModel(o.Services, o.Seed)
	if err != nil {
		return nil, err
	}
	tokens, secret := NewTokens(), NewHookSecret()
	rcv, err := NewReceiver(ctx, secret)
	if err != nil {
		return nil, fmt.Errorf("bench: the webhook receiver: %w", err)
	}
	defer rcv.Close()
	env := []string{EnvReceiver + "=" + rcv.URL, EnvHookSecret + "=" + secret}
	getenv := func(k string) string {
		switch k {
		case EnvReceiver:
			return rcv.URL
		case EnvHookSecret:
			return secret
		}
		return os.Getenv(k)
	}
	cfgDir := filepath.Join(o.Dir, "config")
	if err := m.Write(cfgDir, tokens); err != nil {
		return nil, err
	}
	cfg, err := config.LoadWith(cfgDir, config.Options{Getenv: getenv})
	if err != nil {
		return nil, fmt.Errorf("bench: the model's config: %w", err)
	}

	// 3. Each history.
	for _, n := range o.Scales {
		label := ScaleLabel(n)
		sr := &ScaleResult{Scale: label, Deployments: n, ReadLatency: map[string]Latencies{}, Profiles: map[string]string{}}
		r.Scales = append(r.Scales, sr)
		db := filepath.Join(o.Dir, "deploydb-"+label+".db")
		hopts := HistoryOptions{Deployments: n, Seed: o.Seed, End: time.Now().Add(-time.Minute)}
		if sr.History, sr.Generated, err = history(ctx, o, cfg, m, hopts, db, logf); err != nil {
			return r, err
		}
		if o.GenerateOnly {
			removeDB(db)
			continue
		}
		if o.Check {
			logf("%s: checking the history", label)
			if err := Check(ctx, db, cfg); err != nil {
				return r, fmt.Errorf("bench: the %s history fails the check: %w", label, err)
			}
		}
		so := ServerOptions{Bin: o.Bin, Config: cfgDir, Database: db, Log: filepath.Join(o.Dir, "deploydb-"+label+".log"), Env: env}
		// Webhook-Ids name deliveries of one database: those of the
		// last history's are no repeats of this one's.
		rcv.Forget()
		if err := measureScale(ctx, o, sr, so, tokens, rcv, m, logf); err != nil {
			return r, err
		}
		removeDB(db)
	}
	if o.GenerateOnly {
		return r, nil
	}
	// The limit again: other work on the machine may have changed since
	// the run began, and the ratios are to the higher of the two.
	logf("limit: SQLite single-row commits for %s, after the loads", o.LimitTime)
	again, err := SQLiteLimit(ctx, o.Dir, 1, o.LimitTime)
	if err != nil {
		return r, err
	}
	again.After = true
	r.Limits = append(r.Limits, again)
	r.add(Figure{Name: "SQLite single-row commits, after the loads", Value: again.TxPerSec, Unit: "tx/s",
		Note: "the ratios to the limit are to the higher of this and the first"})
	if n := rcv.Bad.Load(); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the receiver got %d orchestrator calls with a bad signature or body: it measured them as never arrived", n))
	}
	if n := rcv.Repeats.Load(); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the receiver got %d repeated attempts of calls it had answered 204 already: not measured", n))
	}
	figures(r, o)
	r.Machine.LoadEnd = loadAverage()
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

// history makes the database of a history of opts at db: copied from the
// cache, or generated (into the cache first when there is one).
func history(ctx context.Context, o Options, cfg *deploydb.Config, m *Model, opts HistoryOptions, db string, logf func(string, ...any)) (*Manifest, bool, error) {
	label := ScaleLabel(opts.Deployments)
	if o.Cache == "" {
		logf("%s: generating the history", label)
		man, err := Generate(ctx, db, cfg, m, opts)
		if err == nil {
			logf("%s: generated %d deployments, %d events in %.0f s", label, man.Rows["deployments"], man.Rows["events"], man.Seconds)
		}
		return man, true, err
	}
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return nil, false, fmt.Errorf("bench: the cache: %w", err)
	}
	name := fmt.Sprintf("history-%s-seed%d-v%d", label, o.Seed, GeneratorVersion)
	if len(m.Services) != MaxServices {
		name += fmt.Sprintf("-%dservices", len(m.Services))
	}
	base := filepath.Join(o.Cache, name)
	man, err := ReadManifest(base + ".json")
	generated := false
	if err != nil || man.GeneratorVersion != GeneratorVersion || man.Deployments != opts.Deployments || man.Seed != opts.Seed || man.Services != len(m.Services) {
		logf("%s: generating the history (kept in %s)", label, o.Cache)
		if man, err = Generate(ctx, base+".db", cfg, m, opts); err != nil {
			return nil, false, err
		}
		if err := WriteManifest(base+".json", man); err != nil {
			return nil, false, err
		}
		generated = true
		logf("%s: generated %d deployments, %d events in %.0f s", label, man.Rows["deployments"], man.Rows["events"], man.Seconds)
	} else {
		logf("%s: history from the cache (%s)", label, base+".db")
	}
	removeDB(db)
	if o.GenerateOnly {
		// Not served: a 10m history is 30 GB, and the disk may hold one.
		return man, generated, nil
	}
	if o.LinkCache {
		// The run's writes go into the kept history.
		if err := os.Link(base+".db", db); err != nil {
			return nil, false, fmt.Errorf("bench: link the kept %s history (-link-cache needs -dir on the cache's file system): %w", label, err)
		}
		logf("%s: serving the kept history in place (-link-cache): the run's writes stay in it", label)
	} else if err := copyFile(base+".db", db); err != nil {
		return nil, false, fmt.Errorf("bench: the %s history from the cache: %w", label, err)
	}
	return man, generated, nil
}

// removeDB removes the SQLite database at path, with its WAL and shared
// memory files.
func removeDB(path string) {
	for _, s := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + s)
	}
}

// copyFile copies the file from to the file to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// measureScale runs the phases on one history: start-ups, read-back,
// reads, writes, the webhook backlog.
func measureScale(ctx context.Context, o Options, sr *ScaleResult, so ServerOptions, tokens Tokens, rcv *Receiver, m *Model, logf func(string, ...any)) error {
	label, man := sr.Scale, sr.History
	// A history made by an older revision lacks the migrations added
	// since: they are applied first, and not timed, so that the start-ups
	// are timed on a database as an upgraded server finds it after its
	// first start (an operator runs deploydb migrate ahead of a deploy).
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, so.Bin, "migrate", "--database", so.Database).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: deploydb migrate: %w: %s", label, err, out)
	}
	logf("%s: migrations applied in %.1f s", label, time.Since(t0).Seconds())
	// Start-up on the existing database.
	for i := range o.Starts {
		s, err := StartServer(ctx, so)
		if err != nil {
			return err
		}
		sr.ReadyMs = append(sr.ReadyMs, msOf(s.Ready))
		s.Stop()
		logf("%s: start %d ready in %.1f ms", label, i+1, msOf(s.Ready))
	}
	s, err := StartServer(ctx, so)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	sr.ReadyMs = append(sr.ReadyMs, msOf(s.Ready))
	c := newClient(s.URL, tokens, max(o.Readers, o.Writers)+4)
	defer c.close()
	// Idle: started, and nothing asked of it for a moment.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.Idle):
	}
	if sr.RSSIdleMB, _, err = s.RSS(); err != nil {
		sr.RSSError = err.Error()
	}
	logf("%s: %.1f MB resident at idle", label, sr.RSSIdleMB)
	if o.LinkCache {
		// An earlier run served in place may have changed it.
		logf("%s: not reading the history back (-link-cache: earlier runs may have written to it)", label)
	} else {
		logf("%s: reading the history back through the API", label)
		if err := verifyHistory(ctx, c, man); err != nil {
			return fmt.Errorf("bench: the %s history does not read back as generated: %w", label, err)
		}
	}

	// Reads, a profile of each endpoint, on tables in the page cache.
	t0 = time.Now()
	if err := WarmCache(ctx, so.Database); err != nil {
		return err
	}
	warm := time.Since(t0).Seconds()
	logf("%s: the tables behind the reads read once, into the page cache, in %.1f s", label, warm)
	sr.Notes = append(sr.Notes, fmt.Sprintf("the tables behind the reads (deployments, artifacts, promotion results and their indexes) were read once before them, into the page cache, in %.1f s", warm))
	maxDep, maxEv := man.Max["deployments"], man.Max["events"]
	services := make([]string, len(m.Services))
	for i := range m.Services {
		services[i] = m.Services[i].Name
	}
	for _, e := range []struct {
		name string
		next func(*rand.Rand) string
	}{
		{readDeployment, func(r *rand.Rand) string { return "/api/deployments/" + strconv.FormatInt(1+r.Int64N(maxDep), 10) }},
		{readStatus, func(*rand.Rand) string { return "/api/status" }},
		{readHistory, func(r *rand.Rand) string { return "/api/deployments?service=" + services[r.IntN(len(services))] }},
		{readEvents, func(r *rand.Rand) string {
			return "/api/events?limit=100&after=" + strconv.FormatInt(r.Int64N(max(1, maxEv-100)), 10)
		}},
	} {
		profile := startProfile(ctx, o, c, "read-"+profileName(e.name)+"-"+label, o.Warmup+o.ReadTime, sr, logf)
		t0, s0, b0 := time.Now(), cpuSeconds(s.PID()), cpuSeconds(0)
		res := runReads(ctx, c, e.name, e.next, o.Readers, o.Warmup, o.ReadTime)
		wall := time.Since(t0).Seconds()
		res.ServerCPU, res.BenchCPU = (cpuSeconds(s.PID())-s0)/wall, (cpuSeconds(0)-b0)/wall
		profile()
		sr.Reads = append(sr.Reads, res)
		sr.ReadLatency[e.name] = latencies(res.Latency)
		l := sr.ReadLatency[e.name]
		logf("%s: %s: %d requests, p50 %.2f ms, p99 %.2f ms, %d B, %d errors %s; CPU: server %.2f, bench %.2f cores",
			label, e.name, res.Requests, l.P50, l.P99, res.Bytes, res.Errors, res.Error, res.ServerCPU, res.BenchCPU)
	}
	profile := func() {}

	// Writes. First the orchestrator loop, driven by the webhooks: one
	// flow at a time (light load: the dispatch delay alone), then as many
	// flows as -flows allows. Then the mixed write load proper, as fast as
	// the API answers.
	phases := []struct {
		name string
		o    WriteOptions
		d    time.Duration
	}{
		{phaseHooksLight, WriteOptions{Clients: 1, Hooks: true, MaxFlows: 1}, o.HookTime},
		{phaseHooks, WriteOptions{Clients: o.Writers, Hooks: true, MaxFlows: o.Flows}, o.HookTime},
		{phaseWrites, WriteOptions{Clients: o.Writers}, o.WriteTime},
	}
	idle := slices.Clone(man.Idle)
	for i, ph := range phases {
		if ph.d <= 0 {
			continue
		}
		wo := ph.o
		wo.Warmup, wo.Duration, wo.Drain = o.Warmup, ph.d, o.DrainTime
		wo.Tag = fmt.Sprintf("9.%d%d", time.Now().Unix(), i)
		if ph.name == phaseWrites {
			profile = startProfile(ctx, o, c, "writes-"+label, o.Warmup+ph.d, sr, logf)
		}
		t0, s0, b0 := time.Now(), cpuSeconds(s.PID()), cpuSeconds(0)
		w, err := runWrites(ctx, c, rcv, m, idle, wo)
		wall := time.Since(t0).Seconds()
		scpu, bcpu := (cpuSeconds(s.PID())-s0)/wall, (cpuSeconds(0)-b0)/wall
		profile()
		profile = func() {}
		if err != nil {
			return err
		}
		// A flow the load left in progress holds its service.
		idle = w.Idle
		wr := &WritePhase{Name: ph.name, Clients: wo.Clients, Hooks: wo.Hooks, MaxFlows: wo.MaxFlows, Result: w, Latency: map[string]Latencies{},
			HookUpper: latencies(w.Upper), HookLower: latencies(w.Lower), ServerCPU: scpu, BenchCPU: bcpu}
		for k, l := range w.Latency {
			wr.Latency[k] = latencies(l)
		}
		sr.Writes = append(sr.Writes, wr)
		logf("%s: %s: %.0f writes/s (%v), %d errors %s; %d flows; %d hook calls (%d missing), commit to call p50 %.1f-%.1f ms, p99 %.1f-%.1f ms; CPU: server %.2f, bench %.2f cores",
			label, ph.name, w.WritesPerSec(), w.ByKind, w.Errors, w.Error, w.Flows, w.Calls, w.Missing, wr.HookLower.P50, wr.HookUpper.P50, wr.HookLower.P99, wr.HookUpper.P99, scpu, bcpu)
		// The next phase starts with an empty outbox, if the dispatcher
		// gets there.
		if n, err := waitOutbox(ctx, c, o.DrainTime); err != nil {
			return err
		} else if n > 0 {
			note := fmt.Sprintf("%d webhook deliveries were still pending %s after the %s load", n, o.DrainTime, ph.name)
			sr.Notes = append(sr.Notes, note)
			logf("%s: %s", label, note)
		}
	}
	if sr.RSSLoadMB, sr.RSSPeakMB, err = s.RSS(); err != nil && sr.RSSError == "" {
		sr.RSSError = err.Error()
	}
	logf("%s: %.1f MB resident after the loads, %.1f MB at the peak", label, sr.RSSLoadMB, sr.RSSPeakMB)

	// The webhook backlog: queued while the server is down, drained after
	// it starts.
	s.Stop()
	stopped = true
	n := o.Backlog
	if d := int(man.Rows["webhook_deliveries"] / 2); n > d {
		n = d
	}
	// Calls of the history: the receiver has not had them yet.
	ids, leftOver, err := QueueBacklog(ctx, so.Database, n, man.Max["webhook_deliveries"], time.Now())
	if err != nil {
		return err
	}
	var bs *Server
	profile = func() {}
	bl, err := drainBacklog(ctx, rcv, ids, leftOver, func() (time.Time, error) {
		var err error
		bs, err = StartServer(ctx, so)
		if err != nil {
			return time.Time{}, err
		}
		// About as long as the drain at a thousand calls a second.
		pc := newClient(bs.URL, tokens, 2)
		p := startProfile(ctx, o, pc, "webhooks-"+label, time.Duration(n/1000+1)*time.Second, sr, logf)
		profile = func() { p(); pc.close() }
		return bs.Start, nil
	}, o.BacklogTime)
	profile()
	if bs != nil {
		sr.ReadyBacklogMs = msOf(bs.Ready)
		bs.Stop()
	}
	if err != nil {
		return err
	}
	sr.Backlog = bl
	logf("%s: backlog: %d of %d calls delivered (%d of the %d of the backlog) at %.0f/s (%.1f s from start-up)", label, bl.Delivered, bl.Queued, bl.OfBacklog, len(ids), bl.PerSec, bl.Drain)
	return nil
}

// profileName is a read endpoint's name in file names.
func profileName(endpoint string) string {
	switch endpoint {
	case readDeployment:
		return "deployment"
	case readStatus:
		return "status"
	case readHistory:
		return "history"
	case readEvents:
		return "events"
	}
	return "other"
}

// waitOutbox waits until no webhook delivery is pending, at most timeout,
// and returns how many still are (1,000 meaning at least that many).
func waitOutbox(ctx context.Context, c *client, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		var pending []struct{ ID int64 }
		if err := c.getJSON(ctx, "/api/webhook-deliveries?status=pending&perPageSize=1000", &pending); err != nil {
			return 0, fmt.Errorf("bench: waiting for the webhook outbox to drain: %w", err)
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			return len(pending), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startProfile fetches a CPU profile of the server for d (when the run
// keeps profiles) in the background; the returned function waits for it.
// d = 0 does nothing.
func startProfile(ctx context.Context, o Options, c *client, name string, d time.Duration, sr *ScaleResult, logf func(string, ...any)) func() {
	if o.ProfileDir == "" || d <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d.Seconds()))
		b, err := c.do(ctx, ActorOps, http.MethodGet, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil, http.StatusOK)
		if err != nil {
			logf("profile %s: %v (this deploydb serves no /debug/pprof/profile?)", name, err)
			return
		}
		path := filepath.Join(o.ProfileDir, "cpu-"+name+".pprof")
		if err := os.MkdirAll(o.ProfileDir, 0o755); err == nil {
			if err := os.WriteFile(path, b, 0o644); err == nil {
				sr.Profiles[name] = path
				logf("profile %s: %s", name, path)
			}
		}
	}()
	return func() { <-done }
}
