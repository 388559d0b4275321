package insights_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/insights"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	success = deploydb.DeploymentSuccess
	failed  = deploydb.DeploymentFailed
)

// TestDORA checks each figure against answers worked out by hand, over a
// constructed history of one environment: a week, four services.
func TestDORA(t *testing.T) {
	from, to := at("2026-01-01T00:00:00Z"), at("2026-01-08T00:00:00Z") // 7 days
	ds := []insights.Finished{
		// Before the window: not counted.
		{Service: "billing", Status: success, Reason: deploydb.ReasonPipeline, FinishedAt: at("2025-12-31T23:59:00Z"), OldestCommit: at("2025-12-31T20:00:00Z")},
		// 1. lead 2 h (7,200 s).
		{Service: "billing", Status: success, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-01T10:00:00Z"), OldestCommit: at("2026-01-01T08:00:00Z")},
		// 2. failed; billing recovers with 3, 1.5 h later (5,400 s).
		{Service: "billing", Status: failed, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-02T12:00:00Z")},
		// 3. a rollback (rework); lead 2 days (172,800 s).
		{Service: "billing", Status: success, Reason: deploydb.ReasonRollback, FinishedAt: at("2026-01-02T13:30:00Z"), OldestCommit: at("2025-12-31T13:30:00Z")},
		// 4. a hotfix (rework) without commits: no lead time.
		{Service: "checkout", Status: success, Reason: deploydb.ReasonHotfix, FinishedAt: at("2026-01-03T00:00:00Z")},
		// 5 and 6. a tie: catalog fails and succeeds at the same instant:
		// recovered in 0 s; the success's lead is 1 h (3,600 s).
		{Service: "catalog", Status: failed, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-04T10:00:00Z")},
		{Service: "catalog", Status: success, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-04T10:00:00Z"), OldestCommit: at("2026-01-04T09:00:00Z")},
		// 7. failed, and no success of search after it: unrecovered.
		{Service: "search", Status: failed, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-05T00:00:00Z")},
		// Cancelled: not a finished deployment for the metrics.
		{Service: "search", Status: deploydb.DeploymentCancelled, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-06T00:00:00Z")},
		// 8. failed in the window; checkout recovers after it, 2 h later
		// (7,200 s).
		{Service: "checkout", Status: failed, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-07T23:00:00Z")},
		// After the window (to is excluded): not counted, but it is
		// checkout's recovery.
		{Service: "checkout", Status: success, Reason: deploydb.ReasonPipeline, FinishedAt: at("2026-01-08T01:00:00Z"), OldestCommit: at("2026-01-07T00:00:00Z")},
	}
	got := insights.ComputeDORA(ds, from, to)

	// Successful in the window: 1, 3, 4, 6. Failed: 2, 5, 7, 8.
	want := insights.DORA{
		From: deploydb.NewTime(from), To: deploydb.NewTime(to),
		DeploymentFrequency: insights.Frequency{PerDay: 4.0 / 7, Successful: 4, Days: 7},
		// Leads 3,600, 7,200, 172,800: the median 7,200.
		LeadTime:          insights.LeadTime{MedianSeconds: f(7200), Deployments: 3, WithoutCommits: 1},
		ChangeFailureRate: insights.FailureRate{Rate: f(0.5), Failed: 4, Successful: 4},
		// Recoveries 0, 5,400, 7,200: the median 5,400; search's is not one.
		RecoveryTime: insights.RecoveryTime{MedianSeconds: f(5400), Recovered: 3, Unrecovered: 1},
		ReworkRate:   insights.ReworkRate{Rate: f(0.25), Rework: 2, Total: 8},
	}
	check(t, got, want)
}

// TestDORAEmpty: a window without deployments has a frequency of 0 and no
// other figure, with counts of 0.
func TestDORAEmpty(t *testing.T) {
	from, to := at("2026-02-01T00:00:00Z"), at("2026-02-03T00:00:00Z")
	ds := []insights.Finished{
		{Service: "billing", Status: success, FinishedAt: at("2026-01-31T23:59:59Z")},
		{Service: "billing", Status: failed, FinishedAt: at("2026-02-03T00:00:00Z")}, // to is excluded
	}
	check(t, insights.ComputeDORA(ds, from, to), insights.DORA{From: deploydb.NewTime(from), To: deploydb.NewTime(to), DeploymentFrequency: insights.Frequency{Days: 2}})
	check(t, insights.ComputeDORA(nil, from, to), insights.DORA{From: deploydb.NewTime(from), To: deploydb.NewTime(to), DeploymentFrequency: insights.Frequency{Days: 2}})
}

// TestDORAEvenMedian: the median of an even count is the mean of the two
// middle values; a window of failures alone has a failure rate of 1 and
// none recovered.
func TestDORAEvenMedian(t *testing.T) {
	from, to := at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")
	ds := []insights.Finished{
		{Service: "a", Status: success, FinishedAt: at("2026-03-01T01:00:00Z"), OldestCommit: at("2026-03-01T00:58:20Z")}, // 100 s
		{Service: "b", Status: success, FinishedAt: at("2026-03-01T02:00:00Z"), OldestCommit: at("2026-03-01T01:55:00Z")}, // 300 s
	}
	got := insights.ComputeDORA(ds, from, to)
	if got.LeadTime.MedianSeconds == nil || *got.LeadTime.MedianSeconds != 200 {
		t.Errorf("median lead time of 100 and 300 s = %v, want 200", got.LeadTime.MedianSeconds)
	}
	fails := []insights.Finished{{Service: "a", Status: failed, FinishedAt: at("2026-03-01T05:00:00Z")}}
	got = insights.ComputeDORA(fails, from, to)
	check(t, got, insights.DORA{From: deploydb.NewTime(from), To: deploydb.NewTime(to), DeploymentFrequency: insights.Frequency{Days: 1},
		ChangeFailureRate: insights.FailureRate{Rate: f(1), Failed: 1},
		RecoveryTime:      insights.RecoveryTime{Unrecovered: 1},
		ReworkRate:        insights.ReworkRate{Rate: f(0), Total: 1}})
}

func f(v float64) *float64 { return &v }

func check(t *testing.T, got, want insights.DORA) {
	t.Helper()
	eq := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	eqp := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || eq(*a, *b)) }
	s := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	if !got.From.Equal(want.From.Time) || !got.To.Equal(want.To.Time) {
		t.Errorf("window %s–%s, want %s–%s", got.From, got.To, want.From, want.To)
	}
	if g, w := got.DeploymentFrequency, want.DeploymentFrequency; !eq(g.PerDay, w.PerDay) || g.Successful != w.Successful || !eq(g.Days, w.Days) {
		t.Errorf("deployment frequency %+v, want %+v", g, w)
	}
	if g, w := got.LeadTime, want.LeadTime; !eqp(g.MedianSeconds, w.MedianSeconds) || g.Deployments != w.Deployments || g.WithoutCommits != w.WithoutCommits {
		t.Errorf("lead time median %s of %d (%d without commits), want %s of %d (%d)", s(g.MedianSeconds), g.Deployments, g.WithoutCommits, s(w.MedianSeconds), w.Deployments, w.WithoutCommits)
	}
	if g, w := got.ChangeFailureRate, want.ChangeFailureRate; !eqp(g.Rate, w.Rate) || g.Failed != w.Failed || g.Successful != w.Successful {
		t.Errorf("change failure rate %s (%d failed, %d successful), want %s (%d, %d)", s(g.Rate), g.Failed, g.Successful, s(w.Rate), w.Failed, w.Successful)
	}
	if g, w := got.RecoveryTime, want.RecoveryTime; !eqp(g.MedianSeconds, w.MedianSeconds) || g.Recovered != w.Recovered || g.Unrecovered != w.Unrecovered {
		t.Errorf("recovery time median %s (%d recovered, %d not), want %s (%d, %d)", s(g.MedianSeconds), g.Recovered, g.Unrecovered, s(w.MedianSeconds), w.Recovered, w.Unrecovered)
	}
	if g, w := got.ReworkRate, want.ReworkRate; !eqp(g.Rate, w.Rate) || g.Rework != w.Rework || g.Total != w.Total {
		t.Errorf("rework rate %s (%d of %d), want %s (%d of %d)", s(g.Rate), g.Rework, g.Total, s(w.Rate), w.Rework, w.Total)
	}
}
