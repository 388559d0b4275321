package bench

import (
	"strings"
	"testing"
	"time"
)

// sampleOf returns a sample of n durations of d each.
func sampleOf(n int, d time.Duration) *Sample {
	var s Sample
	for range n {
		s.Add(d)
	}
	return &s
}

// scaleResult returns what a run on a history of n deployments might
// have measured: every figure within its target, with enough samples.
func scaleResult(n int) *ScaleResult {
	read := func(name string) *ReadResult {
		return &ReadResult{Name: name, Requests: 500, Seconds: 5, Latency: sampleOf(500, time.Millisecond)}
	}
	sr := &ScaleResult{Scale: ScaleLabel(n), Deployments: n, ReadLatency: map[string]Latencies{},
		ReadyMs: []float64{50, 60}, RSSIdleMB: 30, RSSLoadMB: 40, RSSPeakMB: 45,
		Backlog: &BacklogResult{Queued: 5000, Delivered: 5000, OfBacklog: 5000, Seconds: 2, PerSec: 2500}}
	for _, name := range []string{readStatus, readDeployment} {
		rr := read(name)
		sr.Reads = append(sr.Reads, rr)
		sr.ReadLatency[name] = latencies(rr.Latency)
	}
	w := &WriteResult{Seconds: 10, Writes: 10_000, ByKind: map[string]int64{}, Calls: 500}
	sr.Writes = append(sr.Writes, &WritePhase{Name: phaseWrites, Clients: 16, Result: w,
		Latency:   map[string]Latencies{kindAll: latencies(sampleOf(10_000, 5*time.Millisecond))},
		HookUpper: latencies(sampleOf(500, 10*time.Millisecond)), HookLower: latencies(sampleOf(500, 5*time.Millisecond))})
	return sr
}

// judged runs figures on a run of those histories with a limit of 1,000
// single-row transactions per second and returns the figures by name and
// history.
func judged(t *testing.T, scales ...*ScaleResult) map[string]Figure {
	t.Helper()
	r := &Report{Limits: []Limit{{Store: "sqlite", RowsPerTx: 1, TxPerSec: 1000}}, Scales: scales}
	figures(r, Options{Readers: 2})
	out := map[string]Figure{}
	for _, f := range r.Figures {
		out[f.Name+" @"+f.Scale] = f
	}
	return out
}

func TestFigures(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		fs := judged(t, scaleResult(BaseScale), scaleResult(TargetScale))
		for _, name := range []string{"Mixed writes @10k", "GET /api/status p99 @10m", "GET /api/deployments/{id} p99 @10m",
			"GET /api/status p50 growth @10m / 10k", "Webhook commit → first attempt p99, mixed writes @10k",
			"Webhook deliveries to a local receiver @10k", "Ready after start @10k", "Resident memory at idle @10k"} {
			if f, ok := fs[name]; !ok || f.Result != Pass {
				t.Errorf("%s: %+v, want a pass", name, f)
			}
		}
		if f := fs["Mixed writes @10k"]; f.Ratio != 1 {
			t.Errorf("mixed writes ratio %v, want 1 (1,000 writes/s over a limit of 1,000 tx/s)", f.Ratio)
		}
	})
	t.Run("LimitAfter", func(t *testing.T) {
		r := &Report{Limits: []Limit{{Store: "sqlite", RowsPerTx: 1, TxPerSec: 1000}, {Store: "sqlite", RowsPerTx: 8, TxPerSec: 500},
			{Store: "sqlite", RowsPerTx: 1, TxPerSec: 4000, After: true}}, Scales: []*ScaleResult{scaleResult(BaseScale)}}
		figures(r, Options{})
		for _, f := range r.Figures {
			if f.Name == "Mixed writes" && (f.Ratio != 0.25 || f.Result != Fail) {
				t.Errorf("mixed writes: %+v, want a ratio of 0.25 to the higher limit, a FAIL", f)
			}
		}
	})
	t.Run("NotAt10M", func(t *testing.T) {
		fs := judged(t, scaleResult(BaseScale), scaleResult(1_000_000))
		for _, name := range []string{"GET /api/status p99 @10k", "GET /api/status p99 @1m", "GET /api/deployments/{id} p99 @10k",
			"GET /api/status p50 growth @1m / 10k", "GET /api/deployments/{id} p50 growth @1m / 10k"} {
			if f := fs[name]; f.Result != NotAt10M || f.Note == "" {
				t.Errorf("%s: %+v, want %q with a note", name, f, NotAt10M)
			}
		}
	})
	t.Run("ErrWrites", func(t *testing.T) {
		sr := scaleResult(BaseScale)
		w := sr.phase(phaseWrites).Result
		w.Errors, w.Error = 3, "PATCH /api/deployments/7: 500"
		f := judged(t, sr)["Mixed writes @10k"]
		if f.Result != Fail || !strings.Contains(f.Note, "3 errors") {
			t.Errorf("a write load with errors: %+v, want FAIL and the errors in the note", f)
		}
		if f := judged(t, sr)["Webhook commit → first attempt p99, mixed writes @10k"]; f.Result == Pass {
			t.Errorf("webhook delay of a load with errors: %+v, want no pass", f)
		}
	})
	t.Run("ErrReads", func(t *testing.T) {
		sr := scaleResult(TargetScale)
		sr.Reads[0].Errors, sr.Reads[0].Error = 1, "GET /api/status: 503"
		if f := judged(t, sr)["GET /api/status p99 @10m"]; f.Result != Fail || !strings.Contains(f.Note, "503") {
			t.Errorf("a read load with errors: %+v, want FAIL", f)
		}
		// Nothing answered: no p99 of 0 ms passes.
		sr = scaleResult(TargetScale)
		sr.Reads[1].Latency, sr.Reads[1].Requests = &Sample{}, 0
		sr.ReadLatency[readDeployment] = latencies(sr.Reads[1].Latency)
		if f := judged(t, sr)["GET /api/deployments/{id} p99 @10m"]; f.Result != Fail {
			t.Errorf("a read load with nothing answered: %+v, want FAIL", f)
		}
	})
	t.Run("FewSamples", func(t *testing.T) {
		sr := scaleResult(TargetScale)
		sr.Reads[0].Latency = sampleOf(40, time.Millisecond)
		sr.ReadLatency[readStatus] = latencies(sr.Reads[0].Latency)
		if f := judged(t, sr)["GET /api/status p99 @10m"]; !strings.Contains(f.Note, "only 40 samples") {
			t.Errorf("a p99 of 40 samples: %+v, want a note that says so", f)
		}
	})
	t.Run("HookBounds", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			lo, up   time.Duration
			missing  int
			want     Result
			wantNote string
		}{
			{"Pass", 5 * time.Millisecond, 40 * time.Millisecond, 0, Pass, "between 5.0 and 40.0 ms"},
			{"Open", 5 * time.Millisecond, 60 * time.Millisecond, 0, Open, "between"},
			{"Fail", 55 * time.Millisecond, 60 * time.Millisecond, 0, Fail, "between"},
			// 10 of 500 never arrived: the p99 falls on them.
			{"Missing", 5 * time.Millisecond, 10 * time.Millisecond, 10, Fail, "10 calls had not arrived"},
		} {
			t.Run(c.name, func(t *testing.T) {
				sr := scaleResult(BaseScale)
				ph := sr.phase(phaseWrites)
				up, lo := sampleOf(500-c.missing, c.up), sampleOf(500-c.missing, c.lo)
				for range c.missing {
					up.Add(Never)
					lo.Add(10 * time.Second)
				}
				ph.HookUpper, ph.HookLower = latencies(up), latencies(lo)
				ph.Result.Calls, ph.Result.Missing, ph.Result.Waited = 500-c.missing, c.missing, 10
				f := judged(t, sr)["Webhook commit → first attempt p99, mixed writes @10k"]
				if f.Result != c.want || !strings.Contains(f.Note, c.wantNote) {
					t.Errorf("%+v, want %q and a note with %q", f, c.want, c.wantNote)
				}
			})
		}
		// No deployment created in the window: a FAIL, not a missing figure.
		sr := scaleResult(BaseScale)
		ph := sr.phase(phaseWrites)
		ph.Result.Calls, ph.HookUpper, ph.HookLower = 0, Latencies{}, Latencies{}
		if f, ok := judged(t, sr)["Webhook commit → first attempt p99, mixed writes @10k"]; !ok || f.Result != Fail {
			t.Errorf("no call to measure: %+v, want FAIL", f)
		}
	})
	t.Run("BacklogTimedOut", func(t *testing.T) {
		sr := scaleResult(BaseScale)
		sr.Backlog = &BacklogResult{Queued: 5000, Delivered: 200, OfBacklog: 200, Seconds: 10, PerSec: 20, TimedOut: true, Timeout: 10}
		if f := judged(t, sr)["Webhook deliveries to a local receiver @10k"]; f.Result != Fail || !strings.Contains(f.Note, "timed out") {
			t.Errorf("a backlog that timed out: %+v, want FAIL and a note that says so", f)
		}
	})
	t.Run("ErrMemory", func(t *testing.T) {
		sr := scaleResult(BaseScale)
		sr.RSSIdleMB, sr.RSSError = 0, "bench: resident memory: no such file"
		if f, ok := judged(t, sr)["Resident memory at idle @10k"]; !ok || f.Result != Fail {
			t.Errorf("memory not read: %+v, want FAIL", f)
		}
	})
}
