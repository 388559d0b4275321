package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/insights"
)

// historyStart is the start of the constructed history's week.
var historyStart = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// hAt returns historyStart + d as a Time.
func hAt(d time.Duration) deploydb.Time { return deploydb.NewTime(historyStart.Add(d)) }

const day = 24 * time.Hour

// importLine returns a record of the constructed history: service name's
// artifact version deployed to env, finished at finished after a
// 10-minute deployment.
func importLine(line int, name, version, env string, status deploydb.DeploymentStatus, reason deploydb.Reason, finished time.Duration, commits ...deploydb.Commit) deploydb.ImportRecord {
	a := Artifact(name, version)
	return deploydb.ImportRecord{Line: line, Group: a.Group, Name: a.Name, Version: a.Version, SourceURL: a.SourceURL,
		Service: name, Environment: env, Status: status, Reason: reason,
		StartedAt: hAt(finished - 10*time.Minute), FinishedAt: hAt(finished), Commits: commits}
}

// constructedHistory is a week of production deployments of four services,
// from historyStart, with the DORA figures worked out by hand in
// testDORA. The lines are in the order they happened.
func constructedHistory() []deploydb.ImportRecord {
	billing10 := []deploydb.Commit{{SHA: "b10-2", Timestamp: hAt(-1 * time.Hour)}, {SHA: "b10-1", Timestamp: hAt(-2 * time.Hour)}}
	return []deploydb.ImportRecord{
		importLine(1, "cache", "0.9", "prod", success, deploydb.ReasonPipeline, -time.Millisecond), // before the week
		importLine(2, "billing", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour, billing10...),
		importLine(3, "billing", "1.1", "prod", failed, deploydb.ReasonPipeline, day),
		importLine(4, "billing", "1.0", "prod", success, deploydb.ReasonRollback, day+30*time.Minute, billing10...),
		importLine(5, "search", "2.0", "prod", success, deploydb.ReasonPipeline, 2*day),
		importLine(6, "ledger", "3.0", "prod", failed, deploydb.ReasonPipeline, 3*day), // never recovered
		importLine(7, "cache", "1.1", "prod", failed, deploydb.ReasonPipeline, 5*day),
		atOnce(importLine(8, "cache", "1.2", "prod", success, deploydb.ReasonPipeline, 5*day)), // at the same instant
		importLine(9, "search", "2.1", "prod", failed, deploydb.ReasonHotfix, 6*day),
		importLine(10, "cache", "1.3", "prod", success, deploydb.ReasonPipeline, 7*day),  // at the window's end: after it
		importLine(11, "search", "2.2", "prod", success, deploydb.ReasonPipeline, 8*day), // after the week
		importLine(12, "billing", "1.0", "staging", success, deploydb.ReasonPipeline, 30*time.Minute, billing10...),
	}
}

// atOnce makes r a deployment that took no time: it starts when it
// finishes (what two deployments of a cell that end at the same instant
// must be, one at a time).
func atOnce(r deploydb.ImportRecord) deploydb.ImportRecord {
	r.StartedAt = r.FinishedAt
	return r
}

func testHistory(t *testing.T, open Opener) {
	t.Run("StepTimes", func(t *testing.T) {
		f := newFixture(t, open)
		published := f.now()
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		if got := fl.Deployments[0].ActivatedAt; got != published {
			t.Errorf("activated at %s, want %s (published)", got, published)
		}
		startedAt := f.tick()
		f.report(id, started)
		completedAt := f.tick()
		f.verify(id) // integ has no promotions: COMPLETED is SUCCESS
		d := f.deployment(id)
		want := [4]deploydb.Time{published, startedAt, completedAt, completedAt}
		if got := [4]deploydb.Time{d.ActivatedAt, d.StartedAt, d.CompletedAt, d.FinishedAt}; got != want {
			t.Errorf("activated, started, completed, finished = %v, want %v", got, want)
		}
		// staging has smoke and approval: it completes, then finishes.
		staging := fl.Deployments[1].ID
		if d := f.deployment(staging); d.ActivatedAt != completedAt || !d.FinishedAt.IsZero() {
			t.Errorf("staging activated at %s (want %s), finished at %s (want none)", d.ActivatedAt, completedAt, d.FinishedAt)
		}
		completedAt = f.tick()
		f.report(staging, completed)
		failedAt := f.tick()
		f.promote(staging, "smoke", deploydb.PromotionFailed)
		d = f.deployment(staging)
		if d.Status != failed || d.CompletedAt != completedAt || d.FinishedAt != failedAt || !d.StartedAt.IsZero() {
			t.Errorf("staging %s started %s completed %s finished %s; want FAILED, never started, completed %s, finished %s",
				d.Status, d.StartedAt, d.CompletedAt, d.FinishedAt, completedAt, failedAt)
		}
		at := func(tm deploydb.Time) time.Time { return tm.Time }
		for _, tt := range []struct {
			at   time.Time
			want deploydb.DeploymentStatus
		}{
			{at(completedAt).Add(-time.Millisecond), created},
			{at(completedAt), completed},
			{at(failedAt), failed},
		} {
			if got := d.StatusAt(tt.at); got != tt.want {
				t.Errorf("status at %s = %q, want %s", tt.at, got, tt.want)
			}
		}
	})

	t.Run("Commits", func(t *testing.T) {
		f := newFixture(t, open)
		in := Artifact("billing", "1.0.0")
		in.Commits = []deploydb.Commit{{SHA: "c2", Timestamp: f.now()}, {SHA: "c1", Timestamp: hAt(0)}}
		a, _, err := f.s.PublishArtifact(f.ctx, f.cfg, in, actorCI)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(in.Commits, a.Commits); diff != "" {
			t.Errorf("returned commits (-want +got):\n%s", diff)
		}
		got, err := f.s.FindArtifact(f.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("artifact read back (-returned +read):\n%s", diff)
		}
		f.publishOne("billing", "1.0.1") // none
		list, err := f.s.FindArtifacts(f.ctx, deploydb.ArtifactFilter{Page: pageAll()})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || len(list[0].Commits) != 0 || !cmp.Equal(list[1].Commits, in.Commits) {
			t.Errorf("listed artifacts = %+v, want 1.0.1 without commits and 1.0.0 with %v", list, in.Commits)
		}
		if got := a.OldestCommit(); got != hAt(0) {
			t.Errorf("oldest commit %s, want %s", got, hAt(0))
		}

		bad := Artifact("billing", "1.0.2")
		bad.Commits = []deploydb.Commit{{SHA: "ok", Timestamp: f.now()}, {SHA: "", Timestamp: f.now()}, {SHA: "late"}}
		before := f.state()
		_, _, err = f.s.PublishArtifact(f.ctx, f.cfg, bad, actorCI)
		e := wantCode(t, err, deploydb.EINVALID)
		wantFields := []string{"commits[1].sha", "commits[2].timestamp"}
		var fields []string
		for _, fe := range e.Fields {
			fields = append(fields, fe.Field)
		}
		if diff := cmp.Diff(wantFields, fields); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
		f.unchanged(before)
	})

	t.Run("Import", func(t *testing.T) {
		f := newFixture(t, open)
		// What DeployDB ran itself before the import: search 1.9 in prod,
		// now, after the imported week.
		rs := constructedHistory()
		after := f.lastEvent()
		res, err := f.s.Import(f.ctx, f.cfg, rs, "alice")
		if err != nil {
			t.Fatal(err)
		}
		want := deploydb.ImportResult{Imported: 12, ArtifactsCreated: 10, Events: []int64{f.lastEvent()}}
		if diff := cmp.Diff(want, *res); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		evs := f.events(after)
		if len(evs) != 1 || evs[0].Type != deploydb.EventHistoryImported || evs[0].Actor != "alice" || evs[0].ID != res.Events[0] {
			t.Fatalf("events = %+v, want one history.imported by alice", evs)
		}
		if ds := f.deliveries(deploydb.DeliveryFilter{Page: pageAll()}); len(ds) != 0 {
			t.Errorf("%d webhook deliveries queued, want none for imported history", len(ds))
		}

		// Each line is one deployment, as the line says.
		ids := map[int]int64{}
		for _, r := range rs {
			ds, err := f.s.FindDeployments(f.ctx, deploydb.DeploymentFilter{Service: r.Service, Environment: r.Environment, Page: pageAll()})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ds, func(d *deploydb.Deployment) bool {
				return d.Artifact.Version == r.Version && d.FinishedAt == r.FinishedAt
			})
			if i < 0 {
				t.Fatalf("line %d: no deployment of %s %s in %s finished at %s", r.Line, r.Service, r.Version, r.Environment, r.FinishedAt)
			}
			d := ds[i]
			ids[r.Line] = d.ID
			reason := r.Reason
			wantCompleted := deploydb.Time{}
			if r.Status == success {
				wantCompleted = r.FinishedAt
			}
			if d.Status != r.Status || d.Reason != reason || !d.Imported || d.ActivatedAt != r.StartedAt || d.StartedAt != r.StartedAt ||
				d.CompletedAt != wantCompleted || d.CreatedAt != r.StartedAt {
				t.Errorf("line %d: deployment %+v", r.Line, d)
			}
			fl := f.flow(d.Flow)
			if fl.Pipeline != deploydb.ImportedFlowPipeline || fl.Status != deploydb.FlowStatus(r.Status) || len(fl.Deployments) != 1 {
				t.Errorf("line %d: flow %+v", r.Line, fl)
			}
		}
		if ids[2] == ids[4] {
			t.Errorf("lines 2 and 4 (billing 1.0 deployed twice) are one deployment")
		}
		// billing 1.0 is one artifact, with its commits.
		a, err := f.s.FindArtifact(f.ctx, f.deployment(ids[2]).Artifact.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != f.deployment(ids[4]).Artifact.ID || len(a.Commits) != 2 || a.CreatedAt != rs[11].StartedAt || a.PublishedBy != "alice" {
			t.Errorf("billing 1.0 = %+v, want one artifact with 2 commits, created at its first deployment's start %s, by alice", a, rs[11].StartedAt)
		}

		// The status matrix: the latest of each kind, by time.
		f.wantStatus(map[string]cell{
			"billing/prod":    {current: ids[4], since: hAt(day + 30*time.Minute), lastGood: ids[4]},
			"billing/staging": {current: ids[12], since: hAt(30 * time.Minute), lastGood: ids[12]},
			"search/prod":     {current: ids[11], since: hAt(8 * day), lastGood: ids[11]},
			"ledger/prod":     {lastAttempt: ids[6]},
			"cache/prod":      {current: ids[10], since: hAt(7 * day), lastGood: ids[10]},
		})

		// Again: nothing changes.
		before := f.state()
		res, err = f.s.Import(f.ctx, f.cfg, rs, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(deploydb.ImportResult{Unchanged: 12, Events: []int64{}}, *res); diff != "" {
			t.Errorf("second import (-want +got):\n%s", diff)
		}
		f.unchanged(before)
		if evs := f.events(after); len(evs) != 1 {
			t.Errorf("%d events after importing again, want the first import's only", len(evs))
		}

		// The store's own history goes on from there: a rollback of
		// billing in prod goes back to the imported last known good.
		rb, err := f.s.Rollback(f.ctx, f.cfg, ids[4], alice())
		if err != nil {
			t.Fatal(err)
		}
		if rb.Artifact.ID != a.ID {
			t.Errorf("rollback to artifact %d, want the imported billing 1.0 (%d)", rb.Artifact.ID, a.ID)
		}
	})

	t.Run("ImportAnyOrder", func(t *testing.T) {
		// Imported in reverse, the same history leaves the same matrix.
		f := newFixture(t, open)
		rs := constructedHistory()
		slices.Reverse(rs)
		if _, err := f.s.Import(f.ctx, f.cfg, rs, "alice"); err != nil {
			t.Fatal(err)
		}
		cells, err := f.s.FindStatus(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range cells {
			v := func(d *deploydb.Deployment) string {
				if d == nil {
					return "-"
				}
				return d.Artifact.Version + "@" + d.FinishedAt.String()
			}
			got[c.Service+"/"+c.Environment] = fmt.Sprintf("current %s good %s attempt %s", v(c.Current), v(c.LastGood), v(c.LastAttempt))
		}
		want := map[string]string{
			"billing/prod":    "current 1.0@" + hAt(day+30*time.Minute).String() + " good 1.0@" + hAt(day+30*time.Minute).String() + " attempt -",
			"billing/staging": "current 1.0@" + hAt(30*time.Minute).String() + " good 1.0@" + hAt(30*time.Minute).String() + " attempt -",
			"search/prod":     "current 2.2@" + hAt(8*day).String() + " good 2.2@" + hAt(8*day).String() + " attempt -",
			"ledger/prod":     "current - good - attempt 3.0@" + hAt(3*day).String(),
			"cache/prod":      "current 1.3@" + hAt(7*day).String() + " good 1.3@" + hAt(7*day).String() + " attempt -",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("matrix (-want +got):\n%s", diff)
		}
	})

	t.Run("ImportInvalid", func(t *testing.T) {
		f := newFixture(t, open)
		if _, err := f.s.Import(f.ctx, f.cfg, constructedHistory()[:2], "alice"); err != nil {
			t.Fatal(err)
		}
		before := f.state()
		good := importLine(1, "search", "5.0", "prod", success, deploydb.ReasonPipeline, 9*day)
		noEnv := importLine(2, "search", "5.1", "moon", success, deploydb.ReasonPipeline, 9*day+time.Hour)
		badStatus := importLine(3, "search", "5.2", "prod", "COMPLETED", "retry", 9*day+2*time.Hour)
		backwards := importLine(4, "search", "5.3", "prod", success, deploydb.ReasonPipeline, 9*day+3*time.Hour)
		backwards.StartedAt = hAt(10 * day)
		otherURL := importLine(5, "billing", "1.0", "prod", success, deploydb.ReasonPipeline, 9*day)
		otherURL.SourceURL = "https://elsewhere.example.com/billing-1.0.jar"
		first := importLine(6, "search", "6.0", "prod", success, deploydb.ReasonPipeline, 9*day+4*time.Hour)
		second := importLine(7, "search", "6.0", "staging", success, deploydb.ReasonPipeline, 9*day, deploydb.Commit{SHA: "x", Timestamp: hAt(0)})
		third := importLine(8, "search", "6.0", "integ", success, deploydb.ReasonPipeline, 9*day, deploydb.Commit{SHA: "y", Timestamp: hAt(0)})
		_, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{good, noEnv, badStatus, backwards, otherURL, first, second, third}, "alice")
		e := wantCode(t, err, deploydb.EINVALID)
		type problem struct {
			Line  int
			Field string
		}
		var got []problem
		for _, fe := range e.Fields {
			got = append(got, problem{fe.Line, fe.Field})
		}
		want := []problem{{2, "environment"}, {3, "status"}, {3, "reason"}, {4, "finishedAt"}, {5, "sourceUrl"}, {8, "commits"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s\n%v", diff, e.Fields)
		}
		f.unchanged(before)
	})

	t.Run("Filters", func(t *testing.T) {
		f := newFixture(t, open)
		if _, err := f.s.Import(f.ctx, f.cfg, constructedHistory(), "alice"); err != nil {
			t.Fatal(err)
		}
		versions := func(filter deploydb.DeploymentFilter) []string {
			t.Helper()
			ds, err := f.s.FindDeployments(f.ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range ds {
				out = append(out, d.Service+" "+d.Artifact.Version+" "+d.Environment)
			}
			return out
		}
		for _, tt := range []struct {
			name   string
			filter deploydb.DeploymentFilter
			want   []string
		}{
			{"ServiceEnvironment", deploydb.DeploymentFilter{Service: "billing", Environment: "prod", Page: pageAll()}, []string{"billing 1.0 prod", "billing 1.1 prod", "billing 1.0 prod"}},
			{"Status", deploydb.DeploymentFilter{Service: "search", Status: failed, Page: pageAll()}, []string{"search 2.1 prod"}},
			// Created (started, for an imported one) in [day 1, day 6):
			// 10 minutes before they finished.
			{"Range", deploydb.DeploymentFilter{Environment: "prod", From: historyStart.Add(day), To: historyStart.Add(6*day - 10*time.Minute), Ascending: true, Page: pageAll()},
				[]string{"billing 1.0 prod", "search 2.0 prod", "ledger 3.0 prod", "cache 1.1 prod", "cache 1.2 prod"}},
		} {
			if diff := cmp.Diff(tt.want, versions(tt.filter)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
		// Paging by cursor, either way, visits each deployment once.
		for _, asc := range []bool{false, true} {
			all := versions(deploydb.DeploymentFilter{Ascending: asc, Page: pageAll()})
			var paged []string
			cursor := int64(0)
			for range 20 {
				ds, err := f.s.FindDeployments(f.ctx, deploydb.DeploymentFilter{Ascending: asc, Cursor: cursor, Page: deploydb.Page{Size: 5}})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					paged = append(paged, d.Service+" "+d.Artifact.Version+" "+d.Environment)
				}
				if len(ds) < 5 {
					break
				}
				cursor = ds[len(ds)-1].ID
			}
			if diff := cmp.Diff(all, paged); diff != "" || len(all) != 12 {
				t.Errorf("ascending %t: paged by cursor (-all +paged):\n%s", asc, diff)
			}
		}
	})

	t.Run("ImportTies", func(t *testing.T) {
		// Deployments of a cell that end at the same instant, imported in
		// either order: the matrix kept is the one worked out from the
		// history (the one recorded later is the later).
		for _, tt := range []struct {
			name string
			rs   []deploydb.ImportRecord
		}{
			{"SuccessThenFailure", []deploydb.ImportRecord{importLine(1, "search", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour),
				atOnce(importLine(2, "search", "1.1", "prod", failed, deploydb.ReasonPipeline, time.Hour))}},
			{"FailureThenSuccess", []deploydb.ImportRecord{importLine(1, "search", "1.1", "prod", failed, deploydb.ReasonPipeline, time.Hour),
				atOnce(importLine(2, "search", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour))}},
			{"TwoSuccesses", []deploydb.ImportRecord{importLine(1, "search", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour),
				atOnce(importLine(2, "search", "1.1", "prod", success, deploydb.ReasonPipeline, time.Hour))}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, open)
				if _, err := f.s.Import(f.ctx, f.cfg, tt.rs, "alice"); err != nil {
					t.Fatal(err)
				}
				cells, err := f.s.FindStatus(f.ctx)
				if err != nil {
					t.Fatal(err)
				}
				f.wantStatusAt(f.clock.Now(), cells)
			})
		}
	})

	t.Run("ImportTieWithLive", func(t *testing.T) {
		// A live deployment activated and completed at the instant an
		// imported one (that took no time) finishes: at the same instant
		// DeployDB's own deployment is the later, in the matrix kept and
		// in the one worked out from the history, before and after the
		// live one is verified.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.tick()
		f.verify(fl.Deployments[0].ID) // staging is activated now
		staging := fl.Deployments[1].ID
		f.report(staging, completed) // at the same instant
		live := f.deployment(staging)
		rec := atOnce(importLine(1, "billing", "0.9", "staging", success, deploydb.ReasonPipeline, 0))
		rec.StartedAt, rec.FinishedAt = live.CompletedAt, live.CompletedAt
		if _, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{rec}, "alice"); err != nil {
			t.Fatal(err)
		}
		check := func() {
			t.Helper()
			kept, err := f.s.FindStatus(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range kept {
				if c.Environment == "staging" && (c.Current == nil || c.Current.ID != staging) {
					t.Errorf("staging runs %+v, want the live deployment %d", c.Current, staging)
				}
			}
			f.wantStatusAt(f.clock.Now(), kept)
		}
		check()
		f.tick()
		f.promote(staging, "smoke", deploydb.PromotionSuccess)
		f.promote(staging, "approval", deploydb.PromotionSuccess)
		check()
	})

	t.Run("ImportToldOtherwise", func(t *testing.T) {
		// One deployment (artifact, cell and end), two accounts of it: in
		// one file, or a file against what was imported before.
		f := newFixture(t, open)
		rec := importLine(1, "billing", "0.9", "prod", success, deploydb.ReasonPipeline, 10*time.Minute)
		other := rec
		other.Line, other.Status, other.Reason = 2, failed, deploydb.ReasonHotfix
		_, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{rec, other}, "alice")
		if e := wantCode(t, err, deploydb.EINVALID); len(e.Fields) != 1 || e.Fields[0].Line != 2 || !strings.Contains(e.Fields[0].Message, "differs from line 1") {
			t.Errorf("problems %+v, want line 2 differing from line 1", e.Fields)
		}
		if _, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{rec}, "alice"); err != nil {
			t.Fatal(err)
		}
		other.Line = 1
		before := f.state()
		_, err = f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{other}, "alice")
		if e := wantCode(t, err, deploydb.EINVALID); len(e.Fields) != 1 || !strings.Contains(e.Fields[0].Message, "imported before") {
			t.Errorf("problems %+v, want the line differing from what was imported before", e.Fields)
		}
		f.unchanged(before)
	})

	t.Run("ImportsAtOnce", func(t *testing.T) {
		// Two imports at once whose deployments overlap in one cell: one
		// of the two is refused, whichever commits second.
		f := newFixture(t, open)
		for i := range 10 {
			rec := func(v string, from time.Duration) deploydb.ImportRecord {
				r := importLine(1, "billing", v, "prod", success, deploydb.ReasonPipeline, time.Duration(i)*time.Hour+from+10*time.Minute)
				return r
			}
			x, y := rec(fmt.Sprintf("x%d", i), 0), rec(fmt.Sprintf("y%d", i), 5*time.Minute)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for j, r := range []deploydb.ImportRecord{x, y} {
				wg.Go(func() { _, errs[j] = f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{r}, "alice") })
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("pair %d: errors %v and %v, want exactly one refused", i, errs[0], errs[1])
			}
			for _, err := range errs {
				if err != nil {
					wantCode(t, err, deploydb.EINVALID)
				}
			}
		}
	})

	t.Run("ImportOverlaps", func(t *testing.T) {
		f := newFixture(t, open)
		// Within the file.
		long := importLine(1, "search", "1.0", "prod", success, deploydb.ReasonPipeline, 10*time.Hour)
		long.StartedAt = hAt(0)
		_, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{long, importLine(2, "search", "1.1", "prod", success, deploydb.ReasonPipeline, time.Hour)}, "alice")
		if e := wantCode(t, err, deploydb.EINVALID); len(e.Fields) != 1 || e.Fields[0].Line != 2 || !strings.Contains(e.Fields[0].Message, "overlaps line 1") {
			t.Errorf("problems %+v, want line 2 overlapping line 1", e.Fields)
		}
		// With what is stored: an imported deployment, and one DeployDB
		// has in flight.
		if _, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{long}, "alice"); err != nil {
			t.Fatal(err)
		}
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		f.tick()
		f.report(fl.Deployments[1].ID, completed) // awaiting smoke in staging
		f.tick()
		inFlight := importLine(2, "billing", "0.9", "staging", success, deploydb.ReasonPipeline, 0)
		inFlight.StartedAt, inFlight.FinishedAt = deploydb.NewTime(f.clock.Now().Add(-time.Hour)), f.now()
		future := importLine(3, "cache", "0.1", "prod", success, deploydb.ReasonPipeline, 0)
		future.StartedAt, future.FinishedAt = f.now(), deploydb.NewTime(f.clock.Now().Add(time.Hour))
		before := f.state()
		_, err = f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{long, importLine(4, "search", "1.1", "prod", success, deploydb.ReasonPipeline, time.Hour), inFlight, future}, "alice")
		e := wantCode(t, err, deploydb.EINVALID)
		var got []string
		for _, fe := range e.Fields {
			got = append(got, fmt.Sprintf("%d %s", fe.Line, fe.Field))
		}
		if diff := cmp.Diff([]string{"2 startedAt", "3 finishedAt", "4 startedAt"}, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s\n%+v", diff, e.Fields)
		}
		f.unchanged(before)
	})

	t.Run("ImportedNotRetried", func(t *testing.T) {
		f := newFixture(t, open)
		if _, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{importLine(1, "search", "1.1", "prod", failed, deploydb.ReasonPipeline, time.Hour)}, "alice"); err != nil {
			t.Fatal(err)
		}
		ds, err := f.s.FindDeployments(f.ctx, deploydb.DeploymentFilter{Service: "search", Page: pageAll()})
		if err != nil {
			t.Fatal(err)
		}
		before := f.state()
		_, err = f.s.RetryDeployment(f.ctx, f.cfg, ds[0].ID, alice())
		if e := wantCode(t, err, deploydb.ECONFLICT); !strings.Contains(e.Message, "imported") {
			t.Errorf("message %q does not say the deployment was imported", e.Message)
		}
		f.unchanged(before)
	})

	t.Run("RollbackFromImported", func(t *testing.T) {
		// A rollback of what an imported deployment put in prod goes
		// through prod's promotions, as configured: it is DeployDB's own.
		f := newFixture(t, open)
		if _, err := f.s.Import(f.ctx, f.cfg, []deploydb.ImportRecord{
			importLine(1, "billing", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour),
			importLine(2, "billing", "1.1", "prod", success, deploydb.ReasonPipeline, 2*time.Hour),
		}, "alice"); err != nil {
			t.Fatal(err)
		}
		ds, err := f.s.FindDeployments(f.ctx, deploydb.DeploymentFilter{Service: "billing", Page: pageAll()})
		if err != nil {
			t.Fatal(err)
		}
		rb, err := f.s.Rollback(f.ctx, f.cfg, ds[0].ID, alice())
		if err != nil {
			t.Fatal(err)
		}
		fl := f.flow(rb.Flow)
		var promotions []string
		for _, r := range rb.Promotions {
			promotions = append(promotions, r.Promotion)
		}
		if rb.Imported || fl.Pipeline != "standard" || rb.Reason != deploydb.ReasonRollback || rb.FailureStrategy != deploydb.FailureNotify ||
			rb.Artifact.Version != "1.1" || !slices.Equal(promotions, []string{"smoke", "approval"}) || rb.Status != created {
			t.Errorf("rollback %+v (flow pipeline %q, promotions %v), want a live CREATED rollback to 1.1 through billing's smoke and prod's approval", rb, fl.Pipeline, promotions)
		}
	})

	t.Run("StatusAtDeepHistory", func(t *testing.T) {
		// A success, then six failures: what ran, and the last known
		// good, lie further back than the latest few deployments.
		f := newFixture(t, open)
		rs := []deploydb.ImportRecord{importLine(1, "search", "1.0", "prod", success, deploydb.ReasonPipeline, time.Hour)}
		for i := range 6 {
			rs = append(rs, importLine(2+i, "search", fmt.Sprintf("1.%d", i+1), "prod", failed, deploydb.ReasonPipeline, time.Duration(2+i)*time.Hour))
		}
		if _, err := f.s.Import(f.ctx, f.cfg, rs, "alice"); err != nil {
			t.Fatal(err)
		}
		version := func(d *deploydb.Deployment) string {
			if d == nil {
				return "-"
			}
			return d.Artifact.Version + " " + string(d.Status)
		}
		for _, tt := range []struct {
			at   time.Duration
			want string // current, last good, last attempt, in flight
		}{
			{0, ""},
			{time.Hour - 5*time.Minute, "- - - 1.0 STARTED"},
			{90 * time.Minute, "1.0 SUCCESS 1.0 SUCCESS - -"},
			{7*time.Hour + time.Minute, "1.0 SUCCESS 1.0 SUCCESS 1.6 FAILED -"},
			{7*time.Hour - 5*time.Minute, "1.0 SUCCESS 1.0 SUCCESS 1.5 FAILED 1.6 STARTED"},
		} {
			cells, err := f.s.FindStatusAt(f.ctx, deploydb.StatusAtFilter{At: historyStart.Add(tt.at)})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(cells) > 1 {
				t.Fatalf("at %s: %d cells, want one", tt.at, len(cells))
			} else if len(cells) == 1 {
				c := cells[0]
				got = fmt.Sprintf("%s %s %s %s", version(c.Current), version(c.LastGood), version(c.LastAttempt), version(c.InFlight))
			}
			if got != tt.want {
				t.Errorf("at %s: %q, want %q", tt.at, got, tt.want)
			}
		}
	})

	t.Run("FindFinished", func(t *testing.T) {
		f := newFixture(t, open)
		if _, err := f.s.Import(f.ctx, f.cfg, constructedHistory(), "alice"); err != nil {
			t.Fatal(err)
		}
		week := func(service string) deploydb.FinishedFilter {
			return deploydb.FinishedFilter{Environment: "prod", Service: service, From: historyStart, To: historyStart.Add(7 * day)}
		}
		ds, err := f.s.FindFinished(f.ctx, week(""))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, fmt.Sprintf("%s %s %s %s", d.Service, d.Status, d.Reason, d.FinishedAt.Sub(historyStart)))
		}
		want := []string{
			"billing SUCCESS pipeline 1h0m0s",
			"billing FAILED pipeline 24h0m0s",
			"billing SUCCESS rollback 24h30m0s",
			"search SUCCESS pipeline 48h0m0s",
			"ledger FAILED pipeline 72h0m0s",
			"cache FAILED pipeline 120h0m0s",
			"cache SUCCESS pipeline 120h0m0s",
			"search FAILED hotfix 144h0m0s",
			// search's last deployment in the week failed: its next
			// success, after the week, is what it recovers with.
			"search SUCCESS pipeline 192h0m0s",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("finished (-want +got):\n%s", diff)
		}
		if ds[0].OldestCommit != hAt(-2*time.Hour).Time || !ds[3].OldestCommit.IsZero() {
			t.Errorf("oldest commits %s and %s, want %s and none", ds[0].OldestCommit, ds[3].OldestCommit, hAt(-2*time.Hour))
		}

		// The figures, worked out by hand from constructedHistory. In the
		// week: 4 successes (billing 1.0 twice, search 2.0, cache 1.2), 4
		// failures (billing 1.1, ledger 3.0, cache 1.1, search 2.1).
		dora := insights.ComputeDORA(ds, historyStart, historyStart.Add(7*day))
		f64 := func(v float64) *float64 { return &v }
		wantDORA := insights.DORA{
			From: deploydb.NewTime(historyStart), To: deploydb.NewTime(historyStart.Add(7 * day)),
			DeploymentFrequency: insights.Frequency{PerDay: 4.0 / 7, Successful: 4, Days: 7},
			// billing 1.0's oldest commit is 2 h before the week: 3 h
			// and 26 h 30 m; search 2.0 and cache 1.2 carry none.
			LeadTime:          insights.LeadTime{MedianSeconds: f64((3*3600 + 26.5*3600) / 2), Deployments: 2, WithoutCommits: 2},
			ChangeFailureRate: insights.FailureRate{Rate: f64(0.5), Failed: 4, Successful: 4},
			// billing 1.1: 30 min; cache 1.1: 0 (a success at the same
			// instant); search 2.1: 2 days, after the week; ledger 3.0:
			// never.
			RecoveryTime: insights.RecoveryTime{MedianSeconds: f64(1800), Recovered: 3, Unrecovered: 1},
			// the rollback of billing and the hotfix of search.
			ReworkRate: insights.ReworkRate{Rate: f64(2.0 / 8), Rework: 2, Total: 8},
		}
		if diff := cmp.Diff(wantDORA, dora); diff != "" {
			t.Errorf("DORA (-want +got):\n%s", diff)
		}

		// One service: billing.
		ds, err = f.s.FindFinished(f.ctx, week("billing"))
		if err != nil {
			t.Fatal(err)
		}
		dora = insights.ComputeDORA(ds, historyStart, historyStart.Add(7*day))
		if dora.DeploymentFrequency.Successful != 2 || *dora.ChangeFailureRate.Rate != 1.0/3 || *dora.RecoveryTime.MedianSeconds != 1800 || *dora.ReworkRate.Rate != 1.0/3 {
			t.Errorf("billing's DORA = %+v", dora)
		}

		// An empty window: nothing, and no figure.
		ds, err = f.s.FindFinished(f.ctx, deploydb.FinishedFilter{Environment: "prod", From: historyStart.Add(-30 * day), To: historyStart.Add(-7 * day)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 0 {
			t.Errorf("empty window: %+v", ds)
		}
		dora = insights.ComputeDORA(ds, historyStart.Add(-30*day), historyStart.Add(-7*day))
		if dora.DeploymentFrequency.PerDay != 0 || dora.LeadTime.MedianSeconds != nil || dora.ChangeFailureRate.Rate != nil || dora.RecoveryTime.MedianSeconds != nil || dora.ReworkRate.Rate != nil {
			t.Errorf("empty window's DORA = %+v, want no figures", dora)
		}
	})
}
