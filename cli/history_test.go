package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

func TestStatusAt(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	importHistory(t, env)
	// Day 1, 00:25: billing 1.1 failed in prod at day 1, after 1.0 (hour
	// 1); the rollback to 1.0 (finished day 1 00:30) is being deployed.
	at := week0.Add(day + 25*time.Minute).Format(time.RFC3339)
	r := execute(t, env, "status", "--at", at, "--service", "billing")
	if r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"as it was at " + deploydb.NewTime(week0.Add(day+25*time.Minute)).String(), "billing", "1.0 ✓", "!1.1", "→1.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status --at %s lacks %q:\n%s", at, want, r.stdout)
		}
	}
	r = execute(t, env, "status", "--at", at, "-o", "json")
	var st struct {
		At       string `json:"at"`
		Services []struct {
			Service string `json:"service"`
			Cells   []struct {
				Environment string `json:"environment"`
				Current     *struct {
					Status   string `json:"status"`
					Artifact struct {
						Version string `json:"version"`
					} `json:"artifact"`
				} `json:"current"`
			} `json:"cells"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	// cache 1.0 reached prod on day 4: not yet.
	for _, s := range st.Services {
		for _, c := range s.Cells {
			if s.Service == "cache" && c.Current != nil {
				t.Errorf("cache in %s runs %s at day 1, before any deployment of it", c.Environment, c.Current.Artifact.Version)
			}
		}
	}
	if r := execute(t, env, "status", "--at", "yesterday-ish"); r.code != 2 || !strings.Contains(r.stderr, "--at must be") {
		t.Errorf("a bad --at: exit %d, %s", r.code, r.stderr)
	}
	if r := execute(t, env, "status", "--at", time.Now().Add(time.Hour).Format(time.RFC3339)); r.err == nil || !strings.Contains(r.stderr, "future") {
		t.Errorf("--at in the future: exit %d, %s", r.code, r.stderr)
	}
}

func TestHistoryFilters(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	importHistory(t, env)
	versions := func(args ...string) ([]string, string) {
		t.Helper()
		r := execute(t, env, append([]string{"history", "billing", "-o", "json"}, args...)...)
		if r.err != nil {
			t.Fatalf("history %v: exit %d: %s", args, r.code, r.stderr)
		}
		var ds []deploydb.Deployment
		if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Artifact.Version+" "+d.Environment+" "+string(d.Status))
		}
		return out, r.stderr
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	got, _ := versions("--env", "prod")
	check(got, "1.2 prod SUCCESS", "1.0 prod SUCCESS", "1.1 prod FAILED", "1.0 prod SUCCESS")
	got, _ = versions("--env", "prod", "--status", "failed")
	check(got, "1.1 prod FAILED")
	// Created (started: 10 minutes before the end) in [day 0 11:00, day 2).
	got, _ = versions("--since", week0.Add(11*time.Hour).Format(time.RFC3339), "--until", week0.Add(2*day).Format(time.RFC3339))
	check(got, "1.1 staging SUCCESS", "1.0 prod SUCCESS", "1.1 prod FAILED")

	// Pages of 2, by cursor: every deployment once.
	var all []string
	args := []string{"--per-page", "2"}
	for range 5 {
		page, stderr := versions(args...)
		all = append(all, page...)
		var next int64
		if _, err := fmt.Sscanf(stderr, "more: add --cursor %d", &next); err != nil {
			if len(page) == 2 {
				t.Fatalf("a full page without a cursor: %q", stderr)
			}
			break
		}
		args = []string{"--per-page", "2", "--cursor", fmt.Sprint(next)}
	}
	full, _ := versions()
	check(all, full...)
	if len(all) != 5 {
		t.Errorf("%d deployments of billing, want 5", len(all))
	}
	// Paging by number is hinted by number.
	if r := execute(t, env, "history", "billing", "--per-page", "2", "--page", "1"); r.err != nil || r.stderr != "more: --page 2\n" {
		t.Errorf("history --page 1: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := execute(t, env, "history", "billing", "--since", "a while"); r.code != 2 {
		t.Errorf("a bad --since: exit %d, %s", r.code, r.stderr)
	}
}

func TestImportNotAFile(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	dir := t.TempDir()
	// A directory is the user's mistake (exit 2), not a server that
	// cannot be reached (exit 7, which CI jobs retry).
	if r := execute(t, env, "import", dir); r.code != ExitUsage || !strings.Contains(r.stderr, "is not a file") {
		t.Errorf("import DIR: exit %d, %s", r.code, r.stderr)
	}
	if r := execute(t, env, "import", dir+"/missing.ndjson"); r.code == ExitUnavailable || r.err == nil {
		t.Errorf("import of a missing file: exit %d, %s", r.code, r.stderr)
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-20T14:00:00Z", time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC), true},
		{"2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), true},
		{"2h", now.Add(-2 * time.Hour), true},
		{"3d", now.Add(-72 * time.Hour), true},
		{"1d12h", now.Add(-36 * time.Hour), true},
		{"0h", time.Time{}, false},
		{"-2h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	} {
		got, err := parseWhen("--at", tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v (ok %t)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
