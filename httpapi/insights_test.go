package httpapi_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
)

// importLine is one NDJSON line of faas's history: version deployed to env
// with status, from startedAt to finishedAt; commits as JSON or "".
func importLine(version, env, status, reason, startedAt, finishedAt, commits string) string {
	line := fmt.Sprintf(`{"group":"com.example.cucumber","name":"cucumber-artifact","version":%q,"sourceUrl":"https://repo.example.com/cucumber-%s.jar","service":"faas","environment":%q,"status":%q,"reason":%q,"startedAt":%q,"finishedAt":%q`,
		version, version, env, status, reason, startedAt, finishedAt)
	if commits != "" {
		line += `,"commits":` + commits
	}
	return line + "}"
}

// history is faas's October in pre-prod (and integ), worked by hand in
// the tests below.
var history = strings.Join([]string{
	importLine("1.0", "pre-prod", "SUCCESS", "pipeline", "2026-10-01T09:00:00Z", "2026-10-01T10:00:00Z", `[{"sha":"a1","timestamp":"2026-09-30T10:00:00Z"}]`),
	"",
	importLine("1.1", "pre-prod", "FAILED", "pipeline", "2026-10-02T09:00:00Z", "2026-10-02T10:00:00Z", `[{"sha":"b2","timestamp":"2026-10-01T12:00:00Z"},{"sha":"b1","timestamp":"2026-10-01T11:00:00Z"}]`),
	importLine("1.0", "pre-prod", "SUCCESS", "rollback", "2026-10-02T10:30:00Z", "2026-10-02T11:00:00Z", `[{"sha":"a1","timestamp":"2026-09-30T10:00:00Z"}]`),
	importLine("1.2", "integ", "SUCCESS", "pipeline", "2026-10-03T09:00:00Z", "2026-10-03T09:30:00Z", `[{"sha":"c1","timestamp":"2026-10-02T15:00:00Z"}]`),
}, "\n") + "\n"

func TestImportAPI(t *testing.T) {
	s := newServer(t)
	var res deploydb.ImportResult
	s.must(t, 200, "POST", "/api/import", history).json(t, &res)
	if diff := cmp.Diff(deploydb.ImportResult{Imported: 4, ArtifactsCreated: 3, Events: res.Events}, res); diff != "" {
		t.Errorf("import (-want +got):\n%s", diff)
	}
	res = deploydb.ImportResult{}
	s.must(t, 200, "POST", "/api/import", history).json(t, &res)
	if diff := cmp.Diff(deploydb.ImportResult{Unchanged: 4, Events: []int64{}}, res); diff != "" {
		t.Errorf("import again (-want +got):\n%s", diff)
	}
	var a deploydb.Artifact
	s.must(t, 200, "GET", "/api/artifacts/2", nil).json(t, &a)
	if a.Version != "1.1" || len(a.Commits) != 2 || a.Commits[0].SHA != "b2" {
		t.Errorf("artifact 2 = %+v, want 1.1 with commits b2, b1", a)
	}

	// A file with bad lines: each named, nothing imported.
	var before []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments?perPageSize=100", nil).json(t, &before)
	bad := strings.Join([]string{
		importLine("2.0", "pre-prod", "SUCCESS", "pipeline", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", ""),
		`{"group": "com.example.cucumber", "name": 7}`,
		importLine("2.1", "moon", "SUCCESS", "pipeline", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", ""),
		`not json`,
		importLine("2.2", "pre-prod", "SUCCESS", "pipeline", "yesterday", "2026-11-01T10:00:00Z", ""),
	}, "\n")
	r := s.must(t, 422, "POST", "/api/import", bad)
	p := r.problem(t)
	var lines []int
	for _, f := range p.Errors {
		lines = append(lines, f.Line)
	}
	if diff := cmp.Diff([]int{2, 3, 4, 5}, lines); diff != "" {
		t.Errorf("lines with problems (-want +got):\n%s\n%s", diff, r.Body)
	}
	// Line 3 parses: it is checked too, in the same answer.
	if f := p.Errors[1]; f.Line != 3 || f.Field != "environment" {
		t.Errorf("line 3's problem = %+v, want its environment", f)
	}
	// Lines that parse are checked once every line parses: line 3 then.
	bad = strings.Join([]string{
		importLine("2.0", "pre-prod", "SUCCESS", "pipeline", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", ""),
		importLine("2.1", "moon", "SUCCESS", "pipeline", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", ""),
		importLine("1.0", "integ", "SUCCESS", "pipeline", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", `[{"sha":"zz","timestamp":"2026-09-30T10:00:00Z"}]`),
	}, "\n")
	p = s.must(t, 422, "POST", "/api/import", bad).problem(t)
	type problem struct {
		Line  int
		Field string
	}
	var got []problem
	for _, f := range p.Errors {
		got = append(got, problem{f.Line, f.Field})
	}
	if diff := cmp.Diff([]problem{{2, "environment"}, {3, "commits"}}, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if !strings.Contains(p.Detail, "line 2") || !strings.Contains(p.Detail, "nothing was imported") {
		t.Errorf("detail %q does not name line 2 or say nothing was imported", p.Detail)
	}
	var after []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments?perPageSize=100", nil).json(t, &after)
	if len(after) != len(before) {
		t.Errorf("%d deployments after refused imports, want %d", len(after), len(before))
	}
	s.must(t, 422, "POST", "/api/import", "\n\n")
	// A file saved with a byte order mark.
	bom := "\xef\xbb\xbf" + importLine("4.0", "integ", "SUCCESS", "pipeline", "2026-11-02T09:00:00Z", "2026-11-02T10:00:00Z", "") + "\r\n"
	res = deploydb.ImportResult{}
	if s.must(t, 200, "POST", "/api/import", bom).json(t, &res); res.Imported != 1 {
		t.Errorf("a file with a BOM and CRLF: %+v", res)
	}
	// Many bad lines: the first 1,000 listed, all counted.
	many := strings.Repeat("{\"status\": 1}\n", deploydb.MaxImportProblems+5)
	if p := s.must(t, 422, "POST", "/api/import", many).problem(t); len(p.Errors) != deploydb.MaxImportProblems || !strings.Contains(p.Detail, "and 1004 more") {
		t.Errorf("%d problems listed, detail %q", len(p.Errors), p.Detail)
	}
	// Over 32 MiB: refused, naming the import's limit.
	long := `{"pad":"` + strings.Repeat("x", 4000) + `"}` + "\n"
	huge := strings.Repeat(long, httpapi.MaxImportBytes/len(long)+1)
	if p := s.must(t, 413, "POST", "/api/import", huge).problem(t); !strings.Contains(p.Detail, fmt.Sprint(httpapi.MaxImportBytes)) {
		t.Errorf("413 detail %q does not name the import limit", p.Detail)
	}
}

func TestDORAAPI(t *testing.T) {
	s := newServer(t)
	s.must(t, 200, "POST", "/api/import", history)
	// No environment is production yet: one must be named.
	p := s.must(t, 400, "GET", "/api/insights/dora", nil).problem(t)
	if len(p.Errors) != 1 || p.Errors[0].Field != "environment" {
		t.Errorf("problem %+v does not name environment", p)
	}
	s.cfg.Environments["pre-prod"].Production = true

	// October 1 to 8, in pre-prod: 1.0 (SUCCESS, its commit a day
	// before: 24 h), 1.1 (FAILED; recovered by the rollback 1 h later),
	// 1.0 again (SUCCESS, rollback; its commit 2 days and 1 h before).
	var rep httpapi.DORAReport
	s.must(t, 200, "GET", "/api/insights/dora?from=2026-10-01T00:00:00Z&to=2026-10-08T00:00:00Z", nil).json(t, &rep)
	f := func(v float64) *float64 { return &v }
	want := httpapi.DORAReport{Environment: "pre-prod", From: mustTime(t, "2026-10-01T00:00:00Z"), To: mustTime(t, "2026-10-08T00:00:00Z")}
	want.DeploymentFrequency.PerDay, want.DeploymentFrequency.Successful, want.DeploymentFrequency.Days = 2.0/7, 2, 7
	want.LeadTime.MedianSeconds, want.LeadTime.Deployments = f((24*3600+49*3600)/2), 2
	want.ChangeFailureRate.Rate, want.ChangeFailureRate.Failed, want.ChangeFailureRate.Successful = f(1.0/3), 1, 2
	want.RecoveryTime.MedianSeconds, want.RecoveryTime.Recovered = f(3600), 1
	want.ReworkRate.Rate, want.ReworkRate.Rework, want.ReworkRate.Total = f(1.0/3), 1, 3
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("DORA (-want +got):\n%s", diff)
	}
	// integ, one service named: one success, lead time 18 h 30 m.
	s.must(t, 200, "GET", "/api/insights/dora?environment=integ&service=faas&from=2026-10-01T00:00:00Z&to=2026-10-08T00:00:00Z", nil).json(t, &rep)
	if rep.Environment != "integ" || rep.Service != "faas" || rep.DeploymentFrequency.Successful != 1 || *rep.LeadTime.MedianSeconds != 18.5*3600 || rep.ChangeFailureRate.Failed != 0 {
		t.Errorf("integ's DORA = %+v", rep)
	}
	// An empty window: counts of zero, no figure.
	s.must(t, 200, "GET", "/api/insights/dora?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z", nil).json(t, &rep)
	if rep.ReworkRate.Total != 0 || rep.LeadTime.MedianSeconds != nil || rep.ChangeFailureRate.Rate != nil || rep.RecoveryTime.MedianSeconds != nil {
		t.Errorf("empty window = %+v", rep)
	}

	for _, tt := range []struct {
		query string
		code  int
	}{
		{"environment=moon", 404},
		{"service=nobody", 404},
		{"from=last+week", 400},
		{"to=2026-10-01T00:00:00Z&from=2026-10-01T00:00:00Z", 400},
		{"from=2020-01-01T00:00:00Z&to=2026-10-01T00:00:00Z", 400},
	} {
		s.must(t, tt.code, "GET", "/api/insights/dora?"+tt.query, nil).problem(t)
	}
}

func TestDiffAPI(t *testing.T) {
	s := newServer(t)
	s.must(t, 200, "POST", "/api/import", history)
	var d deploydb.EnvironmentDiff
	s.must(t, 200, "GET", "/api/diff?from=integ&to=pre-prod", nil).json(t, &d)
	// integ runs 1.2, pre-prod 1.0 (rolled back to): integ is ahead by
	// the commits of 1.1 and 1.2.
	if len(d.Services) != 1 {
		t.Fatalf("diff = %+v, want faas", d)
	}
	sd := d.Services[0]
	var shas []string
	for _, c := range sd.Commits {
		shas = append(shas, c.SHA)
	}
	if sd.From.Version != "1.2" || sd.To.Version != "1.0" || sd.Direction != deploydb.DiffAhead || !cmp.Equal(shas, []string{"c1", "b2", "b1"}) {
		t.Errorf("faas: %+v, commits %v; want 1.2 ahead of 1.0 by c1, b2, b1", sd, shas)
	}
	s.must(t, 200, "GET", "/api/diff?from=pre-prod&to=integ", nil).json(t, &d)
	if sd := d.Services[0]; sd.Direction != deploydb.DiffBehind || len(sd.Commits) != 3 {
		t.Errorf("reversed: %+v, want behind by 3 commits", sd)
	}
	// The same version on both sides: no difference.
	s.must(t, 200, "POST", "/api/import", importLine("1.2", "pre-prod", "SUCCESS", "pipeline", "2026-10-04T09:00:00Z", "2026-10-04T09:30:00Z", `[{"sha":"c1","timestamp":"2026-10-02T15:00:00Z"}]`))
	s.must(t, 200, "GET", "/api/diff?from=integ&to=pre-prod", nil).json(t, &d)
	if len(d.Services) != 0 {
		t.Errorf("diff = %+v, want none", d)
	}
	s.must(t, 400, "GET", "/api/diff?from=integ", nil).problem(t)
	s.must(t, 400, "GET", "/api/diff?from=integ&to=integ", nil).problem(t)

	// More commits between than a diff lists: the newest, and a mark.
	commits := func(prefix string, n int) string {
		var cs []string
		for i := range n {
			cs = append(cs, fmt.Sprintf(`{"sha":"%s%04d","timestamp":"2026-10-05T00:00:00Z"}`, prefix, i))
		}
		return "[" + strings.Join(cs, ",") + "]"
	}
	s.must(t, 200, "POST", "/api/import", strings.Join([]string{
		importLine("3.0", "integ", "SUCCESS", "pipeline", "2026-10-06T09:00:00Z", "2026-10-06T09:30:00Z", commits("x", 600)),
		importLine("3.1", "integ", "SUCCESS", "pipeline", "2026-10-07T09:00:00Z", "2026-10-07T09:30:00Z", commits("y", 600)),
	}, "\n"))
	s.must(t, 200, "GET", "/api/diff?from=integ&to=pre-prod", nil).json(t, &d)
	if sd := d.Services[0]; len(sd.Commits) != deploydb.MaxDiffCommits || !sd.CommitsTruncated || sd.Commits[0].SHA != "y0000" {
		t.Errorf("%d commits (truncated %t, first %+v), want the newest %d and truncated", len(sd.Commits), sd.CommitsTruncated, sd.Commits[0], deploydb.MaxDiffCommits)
	}
	s.must(t, 404, "GET", "/api/diff?from=integ&to=moon", nil).problem(t)
}

func TestStatusAt(t *testing.T) {
	s := newServer(t)
	s.must(t, 200, "POST", "/api/import", history)
	at := func(ts string) map[string]string {
		t.Helper()
		var st httpapi.Status
		s.must(t, 200, "GET", "/api/status?at="+url.QueryEscape(ts), nil).json(t, &st)
		if st.At == nil || st.At.String() != mustTime(t, ts).String() {
			t.Errorf("at = %v, want %s", st.At, ts)
		}
		out := map[string]string{}
		v := func(d *httpapi.CellDeployment) string {
			if d == nil {
				return "-"
			}
			return d.Artifact.Version + " " + string(d.Status)
		}
		for _, row := range st.Services {
			for _, c := range row.Cells {
				out[c.Environment] = fmt.Sprintf("current %s attempt %s good %s", v(c.Current), v(c.LastAttempt), v(c.LastKnownGood))
			}
		}
		return out
	}
	for _, tt := range []struct {
		at   string
		want map[string]string
	}{
		{"2026-09-01T00:00:00Z", map[string]string{"integ": "current - attempt - good -", "pre-prod": "current - attempt - good -"}},
		{"2026-10-02T10:15:00Z", map[string]string{"integ": "current - attempt - good -", "pre-prod": "current 1.0 SUCCESS attempt 1.1 FAILED good 1.0 SUCCESS"}},
		{"2026-10-02T10:45:00Z", map[string]string{"integ": "current - attempt - good -", "pre-prod": "current 1.0 SUCCESS attempt 1.1 FAILED good 1.0 SUCCESS"}},
		{"2026-10-03T00:00:00Z", map[string]string{"integ": "current - attempt - good -", "pre-prod": "current 1.0 SUCCESS attempt - good 1.0 SUCCESS"}},
		{"2026-10-03T09:30:00Z", map[string]string{"integ": "current 1.2 SUCCESS attempt - good 1.2 SUCCESS", "pre-prod": "current 1.0 SUCCESS attempt - good 1.0 SUCCESS"}},
	} {
		if diff := cmp.Diff(tt.want, at(tt.at)); diff != "" {
			t.Errorf("at %s (-want +got):\n%s", tt.at, diff)
		}
	}
	s.must(t, 400, "GET", "/api/status?at=2999-01-01T00:00:00Z", nil).problem(t)
	s.must(t, 400, "GET", "/api/status?at=now", nil).problem(t)
}

func mustTime(t *testing.T, s string) deploydb.Time {
	t.Helper()
	var tm deploydb.Time
	if err := tm.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestDeploymentsCursor(t *testing.T) {
	s := newServer(t)
	s.must(t, 200, "POST", "/api/import", history)
	var ids []int64
	path := "/api/deployments/by-service/faas?perPageSize=3&from=2026-10-01T00:00:00Z"
	for range 5 {
		r := s.must(t, 200, "GET", path, nil)
		var page []deploydb.Deployment
		r.json(t, &page)
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		next := r.Header.Get(httpapi.HeaderNextCursor)
		if len(page) < 3 {
			if next != "" {
				t.Errorf("a page of %d (not full) has %s %s", len(page), httpapi.HeaderNextCursor, next)
			}
			break
		}
		path = "/api/deployments/by-service/faas?perPageSize=3&from=2026-10-01T00:00:00Z&cursor=" + next
	}
	if diff := cmp.Diff([]int64{4, 3, 2, 1}, ids); diff != "" {
		t.Errorf("ids paged by cursor (-want +got):\n%s", diff)
	}
	var ds []deploydb.Deployment
	s.must(t, 200, "GET", "/api/deployments?environment=pre-prod&status=SUCCESS&to=2026-10-02T00:00:00Z", nil).json(t, &ds)
	if len(ds) != 1 || ds[0].Artifact.Version != "1.0" {
		t.Errorf("pre-prod successes created before October 2: %+v", ds)
	}
	for _, q := range []string{"cursor=2&pageNumber=1", "cursor=x", "from=today", "from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z"} {
		s.must(t, 400, "GET", "/api/deployments?"+q, nil).problem(t)
	}
}
