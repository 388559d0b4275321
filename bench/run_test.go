package bench

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRun runs the whole benchmark briefly against a deploydb built from
// this tree, so that make bench keeps working: every phase runs, the
// history reads back, and each target has its figure.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds deploydb and runs every phase briefly")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "deploydb")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/deploydb/deploydb/cmd/deploydb").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var log bytes.Buffer
	// A model of 40 services, histories of 300 and 600 deployments and
	// the briefest phases: this checks that every phase runs and that
	// the report has its figures, not the numbers (TestFigures judges
	// those).
	o := Options{
		Bin: bin, Scales: []int{600, 300}, Dir: filepath.Join(dir, "run"), Cache: filepath.Join(dir, "cache"), Check: true, Seed: 3, Services: 40,
		LimitTime: 100 * time.Millisecond, ReadTime: 200 * time.Millisecond, WriteTime: 500 * time.Millisecond, HookTime: 300 * time.Millisecond,
		DrainTime: 10 * time.Second, Warmup: 50 * time.Millisecond, Idle: 100 * time.Millisecond, Readers: 2, Writers: 4, Flows: 8,
		Backlog: 30, BacklogTime: 20 * time.Second, Starts: 1, Log: &log,
	}
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SQLite single-row commits", "Mixed writes", "GET /api/status p99", "GET /api/deployments/{id} p99",
		"GET /api/status p50 growth", "Webhook commit → first attempt p99, orchestrator loop, one flow", "Webhook deliveries to a local receiver",
		"Ready after start", "Resident memory at idle"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, table.String())
		}
	}
	if got := []string{r.Scales[0].Scale, r.Scales[1].Scale}; got[0] != "300" || got[1] != "600" {
		t.Errorf("histories measured in the order %v, want the smallest first", got)
	}
	for _, sr := range r.Scales {
		for _, w := range sr.Writes {
			if w.Result.Errors > 0 || w.Result.Writes == 0 {
				t.Errorf("%s, %s: %d writes, %d errors: %s", sr.Scale, w.Name, w.Result.Writes, w.Result.Errors, w.Result.Error)
			}
			if w.Result.Calls == 0 || w.Result.Missing > 0 {
				t.Errorf("%s, %s: %d orchestrator calls, %d missing", sr.Scale, w.Name, w.Result.Calls, w.Result.Missing)
			}
		}
		for _, rr := range sr.Reads {
			if rr.Errors > 0 || rr.Requests == 0 {
				t.Errorf("%s, %s: %d requests, %d errors: %s", sr.Scale, rr.Name, rr.Requests, rr.Errors, rr.Error)
			}
		}
		if sr.Backlog == nil || sr.Backlog.Delivered == 0 || sr.Backlog.TimedOut {
			t.Errorf("%s: backlog %+v", sr.Scale, sr.Backlog)
		}
		if sr.RSSIdleMB == 0 || sr.RSSError != "" {
			t.Errorf("%s: resident memory %.1f MB at idle (%s)", sr.Scale, sr.RSSIdleMB, sr.RSSError)
		}
	}
	if err := r.WriteJSON(filepath.Join(dir, "bench.json")); err != nil {
		t.Fatal(err)
	}
	// A second run takes the histories from the cache.
	o.Scales, o.GenerateOnly, o.Dir = []int{300}, true, filepath.Join(dir, "run2")
	r, err = Run(t.Context(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if r.Scales[0].Generated {
		t.Error("the second run generated the history again")
	}
}
