package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// historyServer is the real API over a real store, with services billing,
// search, cache and ledger (each consuming com.example:<name>) on a
// pipeline staging → prod, prod marked production: true.
func historyServer(t *testing.T) (Env, *client.Client) {
	t.Helper()
	services := map[string]*deploydb.Service{}
	for _, name := range []string{"billing", "search", "cache", "ledger"} {
		services[name] = &deploydb.Service{Ident: name, Artifacts: []string{"com.example:" + name}, Pipelines: []string{"standard"},
			Promotions: []string{}, FailureStrategy: deploydb.FailureNotify}
	}
	cfg := &deploydb.Config{
		Checksum: "test",
		Services: services,
		Environments: map[string]*deploydb.Environment{
			"staging": {Ident: "staging", Webhook: deploydb.Webhook{}},
			"prod":    {Ident: "prod", Production: true, Webhook: deploydb.Webhook{}},
		},
		Pipelines: map[string]*deploydb.Pipeline{"standard": {Ident: "standard", Environments: []deploydb.PipelineStage{
			{Environment: "staging", Promotions: []string{}}, {Environment: "prod", Promotions: []string{}},
		}}},
		Promotions: map[string]*deploydb.Promotion{},
		Webhook:    deploydb.Webhook{},
	}
	return serveAPI(t, cfg)
}

// week0 is the start of the constructed history: the DORA window is
// [week0, week0+7d).
var week0 = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// deployed is one line of an import file: service's artifact version
// deployed to env, finished at week0+finished after 10 minutes.
type deployed struct {
	service, version, env string
	status                deploydb.DeploymentStatus
	reason                deploydb.Reason
	finished              time.Duration
	commits               []time.Duration // commit times, from week0
}

func (d deployed) line() string {
	rec := deploydb.ImportRecord{Group: "com.example", Name: d.service, Version: d.version,
		SourceURL: "https://repo.example.com/" + d.service + "-" + d.version + ".jar",
		Service:   d.service, Environment: d.env, Status: d.status, Reason: d.reason,
		StartedAt: deploydb.NewTime(week0.Add(d.finished - 10*time.Minute)), FinishedAt: deploydb.NewTime(week0.Add(d.finished))}
	for i, c := range d.commits {
		rec.Commits = append(rec.Commits, deploydb.Commit{SHA: d.service + d.version + "-c" + string(rune('1'+i)), Timestamp: deploydb.NewTime(week0.Add(c))})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const (
	day     = 24 * time.Hour
	success = deploydb.DeploymentSuccess
	failed  = deploydb.DeploymentFailed
)

// history is the constructed history. Over prod in [week0, week0+7d):
//
//   - successful: lines 1, 3, 4, 6: 4 in 7 days, 0.57/day;
//   - lead time: line 1 3h (commits at -2h, -1h), line 3 26h30m (same
//     artifact), line 6 1h; line 4 has no commits: median 3h;
//   - failed: lines 2 and 5, 2 of 6 (33.3%);
//   - recovery: line 2 recovers with line 3 after 30m; line 5 (search)
//     never does (line 8 is billing): median 30m, 1 not yet;
//   - rework: line 3 (rollback) and line 5 (hotfix), 2 of 6 (33.3%).
//
// billing alone: lines 1, 2, 3: 2 successful (0.29/day), lead time median
// (3h + 26h30m)/2 = 14h45m, 1 failed of 3, recovered in 30m, 1 rework of 3.
//
// What runs at the end: billing 1.1 in staging, 1.2 in prod (1.2 brings
// two commits: staging is behind 2); cache 1.1 in staging (one commit
// more), 1.0 in prod (staging is ahead 1); search 2.0 in prod only (its
// 2.1 failed); ledger 3.0 in staging only.
var history = []deployed{
	{"billing", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour, []time.Duration{-time.Hour, -2 * time.Hour}},
	{"billing", "1.1", "prod", failed, deploydb.ReasonPipeline, day, nil},
	{"billing", "1.0", "prod", success, deploydb.ReasonRollback, day + 30*time.Minute, []time.Duration{-time.Hour, -2 * time.Hour}},
	{"search", "2.0", "prod", success, deploydb.ReasonPipeline, 2 * day, nil},
	{"search", "2.1", "prod", failed, deploydb.ReasonHotfix, 3 * day, nil},
	{"cache", "1.0", "prod", success, deploydb.ReasonPipeline, 4 * day, []time.Duration{4*day - time.Hour}},
	{"billing", "1.1", "staging", success, deploydb.ReasonPipeline, 12 * time.Hour, nil},
	{"billing", "1.2", "prod", success, deploydb.ReasonPipeline, 8 * day, []time.Duration{7 * day, 6 * day}},
	{"cache", "1.1", "staging", success, deploydb.ReasonPipeline, 5 * day, []time.Duration{5*day - time.Hour}},
	{"ledger", "3.0", "staging", success, deploydb.ReasonPipeline, 2 * day, nil},
}

// writeFile writes lines, one a line, to a new file and returns its path.
func writeFile(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// importHistory writes history to a file and imports it with the CLI.
func importHistory(t *testing.T, env Env) string {
	t.Helper()
	lines := make([]string, len(history))
	for i, d := range history {
		lines[i] = d.line()
	}
	path := writeFile(t, "history.ndjson", lines...)
	if r := execute(t, env, "import", path); r.err != nil {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	return path
}

func TestImportCommand(t *testing.T) {
	t.Parallel()
	env, c := historyServer(t)
	good := []string{history[0].line(), history[1].line(), "", history[6].line()}
	path := writeFile(t, "good.ndjson", good...)

	t.Run("OK", func(t *testing.T) {
		r := execute(t, env, "import", path)
		if r.err != nil || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		// billing 1.0 and 1.1: two artifacts for three deployments.
		if want := "imported 3 deployments (0 unchanged, 2 artifacts created)\n"; r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
	})
	t.Run("Again", func(t *testing.T) {
		r := execute(t, env, "import", path)
		if want := "imported 0 deployments (3 unchanged, 0 artifacts created)\n"; r.err != nil || r.stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		in := env
		in.Stdin = strings.NewReader(strings.Join(good, "\n"))
		r := execute(t, in, "import", "-", "-o", "json")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var res deploydb.ImportResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		if want := (deploydb.ImportResult{Unchanged: 3, Events: []int64{}}); !cmp.Equal(res, want) {
			t.Errorf("result %+v, want %+v", res, want)
		}
	})
	t.Run("ErrBadLines", func(t *testing.T) {
		bad := history[3]
		bad.status = "DONE"
		unknown := history[3]
		unknown.service = "nope"
		// Line 1 is good and new: it must not be imported either.
		path := writeFile(t, "bad.ndjson", history[4].line(), bad.line(), history[5].line(), unknown.line())
		r := execute(t, env, "import", path)
		if r.code != ExitInvalid || r.stdout != "" {
			t.Errorf("exit %d, stdout %q; want 3 and nothing", r.code, r.stdout)
		}
		want := `deploydb: invalid import: line 2: status must be SUCCESS or FAILED, not "DONE" (and 1 more); nothing was imported
  ` + path + `:2: status: must be SUCCESS or FAILED, not "DONE"
  ` + path + `:4: service: is not a service of the configuration: "nope"
`
		if diff := cmp.Diff(want, r.stderr); diff != "" {
			t.Errorf("stderr (-want +got):\n%s", diff)
		}
		ds, err := c.Deployments(t.Context(), deploydb.DeploymentFilter{Service: "search"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 0 {
			t.Errorf("search has %d deployments after a refused import, want none", len(ds))
		}
	})
	t.Run("ErrNotJSON", func(t *testing.T) {
		in := env
		in.Stdin = strings.NewReader(history[4].line() + "\n{\"status\": 1}\n{not json\n")
		r := execute(t, in, "import", "-")
		want := `deploydb: invalid import: line 2: status must be a string (and 1 more); nothing was imported
  <stdin>:2: status: must be a string
  <stdin>:3: is not valid JSON: invalid character 'n' looking for beginning of object key string
`
		if diff := cmp.Diff(want, r.stderr); r.code != ExitInvalid || diff != "" {
			t.Errorf("exit %d; stderr (-want +got):\n%s", r.code, diff)
		}
	})
	t.Run("ErrNoFile", func(t *testing.T) {
		r := execute(t, env, "import", filepath.Join(t.TempDir(), "missing.ndjson"))
		if r.code != ExitFailure || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		if r := execute(t, env, "import"); r.code != ExitUsage || !strings.Contains(r.stderr, "takes 1 argument(s): FILE") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestDORACommand(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	importHistory(t, env)
	week := []string{"--since", "2026-01-05", "--until", "2026-01-12T00:00:00Z"}

	t.Run("Production", func(t *testing.T) {
		r := execute(t, env, append([]string{"dora"}, week...)...)
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := `DORA  prod  2026-01-05 → 2026-01-12 (7 days)
deployment frequency   0.57/day   (4 successful)
lead time (median)     3h         (3 deployments; 1 without commits)
change failure rate    33.3%      (2 failed of 6)
time to recover        30m        (1 recovered; 1 not yet)
rework rate            33.3%      (2 of 6: rollbacks and hotfixes)
`
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("Service", func(t *testing.T) {
		r := execute(t, env, append([]string{"dora", "--env", "prod", "--service", "billing"}, week...)...)
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := `DORA  prod, service billing  2026-01-05 → 2026-01-12 (7 days)
deployment frequency   0.29/day   (2 successful)
lead time (median)     14h45m     (2 deployments)
change failure rate    33.3%      (1 failed of 3)
time to recover        30m        (1 recovered)
rework rate            33.3%      (1 of 3: rollbacks and hotfixes)
`
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("EmptyWindow", func(t *testing.T) {
		r := execute(t, env, "dora", "--environment", "staging", "--since", "1d", "--until", "2025-06-01T12:00:00Z")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := `DORA  staging  2025-05-31T12:00:00Z → 2025-06-01T12:00:00Z (1 day)
deployment frequency   0.00/day   (0 successful)
lead time (median)     —          (0 deployments)
change failure rate    —          (0 failed of 0)
time to recover        —          (0 recovered)
rework rate            —          (0 of 0: rollbacks and hotfixes)
`
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		r := execute(t, env, append([]string{"dora", "-o", "json"}, week...)...)
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var rep client.DORAReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		if rep.Environment != "prod" || !rep.From.Equal(week0) || rep.LeadTime.MedianSeconds == nil || *rep.LeadTime.MedianSeconds != 3*3600 ||
			rep.RecoveryTime.Unrecovered != 1 || rep.ChangeFailureRate.Failed != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("ErrUnknownEnvironment", func(t *testing.T) {
		r := execute(t, env, "dora", "--environment", "qa")
		if r.code != ExitNotFound || r.stderr != "deploydb: environment \"qa\" not found\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrWindow", func(t *testing.T) {
		r := execute(t, env, "dora", "--since", "2026-01-12", "--until", "2026-01-05")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--since must be before --until") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrSince", func(t *testing.T) {
		r := execute(t, env, "dora", "--since", "a month")
		if r.code != ExitUsage || !strings.Contains(r.stderr, `--since must be an RFC 3339 time, a date, or a duration such as 30d`) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestDiffCommand(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	importHistory(t, env)

	t.Run("Table", func(t *testing.T) {
		r := execute(t, env, "diff", "staging", "prod")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := `SERVICE  staging  prod  COMMITS
billing  1.1      1.2   behind 2
cache    1.1      1.0   ahead 1
ledger   3.0      -     -
search   -        2.0   -
`
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("Commits", func(t *testing.T) {
		r := execute(t, env, "diff", "prod", "staging", "--commits")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := `SERVICE  prod  staging  COMMITS
billing  1.2   1.1      ahead 2
cache    1.0   1.1      behind 1
ledger   -     3.0      -
search   2.0   -        -

billing: 2 commits in prod, not in staging
  billing1.2-c1  2026-01-12T00:00:00Z
  billing1.2-c2  2026-01-11T00:00:00Z

cache: 1 commit in staging, not in prod
  cache1.1-c1  2026-01-09T23:00:00Z
`
		if diff := cmp.Diff(want, r.stdout); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("ErrSameEnvironment", func(t *testing.T) {
		r := execute(t, env, "diff", "prod", "prod")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "FROM and TO are both prod") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		r := execute(t, env, "diff", "staging", "prod", "-o", "json")
		if r.err != nil {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var d deploydb.EnvironmentDiff
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		if d.From != "staging" || d.To != "prod" || len(d.Services) != 4 || d.Services[0].Direction != deploydb.DiffBehind ||
			len(d.Services[0].Commits) != 2 || d.Services[3].From != nil || d.Services[3].To.Version != "2.0" {
			t.Errorf("diff %+v", d)
		}
	})
	t.Run("ErrUnknownEnvironment", func(t *testing.T) {
		r := execute(t, env, "diff", "staging", "qa")
		if r.code != ExitNotFound || r.stderr != "deploydb: environment \"qa\" not found\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		if r := execute(t, env, "diff", "staging"); r.code != ExitUsage || !strings.Contains(r.stderr, "takes 2 argument(s): FROM TO") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestDiffNoDifferences(t *testing.T) {
	t.Parallel()
	env, _ := historyServer(t)
	same := history[0]
	same.env = "staging"
	path := writeFile(t, "same.ndjson", history[0].line(), same.line())
	if r := execute(t, env, "import", path); r.err != nil {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	r := execute(t, env, "diff", "staging", "prod")
	if r.err != nil || r.stdout != "no differences between staging and prod\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = execute(t, env, "diff", "staging", "prod", "-o", "json")
	var d deploydb.EnvironmentDiff
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Services == nil || len(d.Services) != 0 {
		t.Errorf("-o json: %q (%v), want no services", r.stdout, err)
	}
}

func TestDORAWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.November, 26, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name         string
		since, until string
		from, to     time.Time
		err          string
	}{
		{name: "Defaults"},
		{name: "Days", since: "30d", from: now.Add(-30 * day), to: now},
		{name: "Hours", since: "720h", from: now.Add(-30 * day), to: now},
		{name: "DaysAndHours", since: "1d12h", from: now.Add(-36 * time.Hour), to: now},
		{name: "Minutes", since: "90m", from: now.Add(-90 * time.Minute), to: now},
		{name: "DurationBeforeUntil", since: "7d", until: "2026-11-01T00:00:00Z",
			from: time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), to: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{name: "RFC3339", since: "2026-10-01T09:30:00+02:00", from: time.Date(2026, 10, 1, 7, 30, 0, 0, time.UTC)},
		{name: "Dates", since: "2026-10-01", until: "2026-11-01",
			from: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{name: "UntilOnly", until: "2026-11-01T00:00:00.5Z", to: time.Date(2026, 11, 1, 0, 0, 0, 5e8, time.UTC)},
		{name: "ErrUnit", since: "30x", err: `--since must be an RFC 3339 time, a date, or a duration such as 30d, 12h or 1d12h, not "30x"`},
		{name: "ErrWeeks", since: "2w", err: `not "2w"`},
		{name: "ErrFractionalDays", since: "1.5d", err: `not "1.5d"`},
		{name: "ErrNoDays", since: "d", err: `not "d"`},
		{name: "ErrSignedDays", since: "+3d", err: `not "+3d"`},
		{name: "ErrSignAfterDays", since: "1d-2h", err: `not "1d-2h"`},
		{name: "ErrTooManyDays", since: "200000d", err: `not "200000d"`},
		{name: "ErrNegative", since: "-30d", err: `not "-30d"`},
		{name: "ErrNegativeHours", since: "-5h", err: `--since must be a duration greater than zero, not "-5h"`},
		{name: "ErrZero", since: "0d", err: `greater than zero, not "0d"`},
		{name: "UntilDuration", since: "7d", until: "1d", from: now.Add(-8 * day), to: now.Add(-day)},
		{name: "ErrUntil", since: "2026-10-01", until: "soon", err: `--until must be an RFC 3339 time, a date, or a duration before now such as 7d, 12h or 1d12h, not "soon"`},
		{name: "ErrBackwards", since: "2026-11-01", until: "2026-10-01", err: `--since must be before --until`},
		{name: "ErrNoZone", since: "2026-10-01T09:30:00", err: `not "2026-10-01T09:30:00"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			from, to, err := doraWindow(tt.since, tt.until, now)
			if tt.err != "" {
				if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v (exit %d), want a usage error containing %q", err, ExitCode(err), tt.err)
				}
				return
			}
			if err != nil || !from.Equal(tt.from) || !to.Equal(tt.to) {
				t.Errorf("= %s, %s, %v; want %s, %s", from, to, err, tt.from, tt.to)
			}
		})
	}
}

func TestApproxDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                              "0s",
		45 * time.Second:               "45s",
		47 * time.Minute:               "47m",
		5*time.Minute + 30*time.Second: "5m30s",
		3*time.Hour + 12*time.Minute + 29*time.Second: "3h12m",
		3*time.Hour + 59*time.Minute + 30*time.Second: "4h",
		26*time.Hour + 30*time.Minute:                 "1d3h",
		49 * time.Hour:                                "2d1h",
		-90 * time.Second:                             "-1m30s",
	} {
		if got := approxDuration(d); got != want {
			t.Errorf("approxDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
