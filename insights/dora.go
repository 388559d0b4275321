// Package insights answers the questions people ask of a deployment history
// in retrospectives and audits: the DORA metrics first (issue 10). Its
// functions are pure: the store reads the deployments, these compute.
package insights

import (
	"slices"
	"sort"
	"time"

	"github.com/deploydb/deploydb"
)

// Finished is one deployment that finished (SUCCESS or FAILED) in the
// environment the metrics are for, as the store reads it.
type Finished = deploydb.Finished

// DORA is the four key metrics of DORA, and the rework rate, over the
// deployments to one environment that finished in [From, To). Each figure
// comes with the counts it was computed from; a figure with nothing to
// compute it from (no deployment, no failure) is nil.
type DORA struct {
	From                time.Time    `json:"from"`
	To                  time.Time    `json:"to"`
	DeploymentFrequency Frequency    `json:"deploymentFrequency"`
	LeadTime            LeadTime     `json:"leadTime"`
	ChangeFailureRate   FailureRate  `json:"changeFailureRate"`
	RecoveryTime        RecoveryTime `json:"recoveryTime"`
	ReworkRate          ReworkRate   `json:"reworkRate"`
}

// Frequency is how often deployments succeed: Successful / Days.
type Frequency struct {
	PerDay     float64 `json:"perDay"`
	Successful int     `json:"successful"`
	Days       float64 `json:"days"`
}

// LeadTime is the median, over successful deployments whose artifact
// carries commits, of the time from the oldest commit to the deployment's
// end. Without commits a deployment is counted in WithoutCommits only.
type LeadTime struct {
	MedianSeconds  *float64 `json:"medianSeconds"`
	Deployments    int      `json:"deployments"`
	WithoutCommits int      `json:"withoutCommits"`
}

// FailureRate is Failed / (Failed + Successful).
type FailureRate struct {
	Rate       *float64 `json:"rate"`
	Failed     int      `json:"failed"`
	Successful int      `json:"successful"`
}

// RecoveryTime is the median, over failed deployments, of the time from
// the failure's end to the end of the next successful deployment of the
// same service in the environment (in the window or after it). A failure
// with no success after it yet is counted in Unrecovered, not in the
// median.
type RecoveryTime struct {
	MedianSeconds *float64 `json:"medianSeconds"`
	Recovered     int      `json:"recovered"`
	Unrecovered   int      `json:"unrecovered"`
}

// ReworkRate is Rework (deployments for a rollback or a hotfix) / Total.
type ReworkRate struct {
	Rate   *float64 `json:"rate"`
	Rework int      `json:"rework"`
	Total  int      `json:"total"`
}

// ComputeDORA computes the metrics over the deployments of ds that
// finished in [from, to). ds may hold deployments finished at or after to
// as well: a failure in the window recovers with the first success of its
// service that finished at or after it, in the window or later (a success
// at the same instant counts, as 0 seconds). Deployments of any other
// status are ignored.
func ComputeDORA(ds []Finished, from, to time.Time) DORA {
	out := DORA{From: from, To: to}
	days := to.Sub(from).Hours() / 24
	if days < 0 {
		days = 0
	}
	out.DeploymentFrequency.Days = days

	// The successes of each service, in time order, for recoveries.
	successes := map[string][]time.Time{}
	for _, d := range ds {
		if d.Status == deploydb.DeploymentSuccess {
			successes[d.Service] = append(successes[d.Service], d.FinishedAt)
		}
	}
	for _, s := range successes {
		slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	}

	var lead, recovery []float64
	for _, d := range ds {
		if d.FinishedAt.Before(from) || !d.FinishedAt.Before(to) {
			continue
		}
		if d.Status != deploydb.DeploymentSuccess && d.Status != deploydb.DeploymentFailed {
			continue
		}
		out.ReworkRate.Total++
		if d.Reason == deploydb.ReasonRollback || d.Reason == deploydb.ReasonHotfix {
			out.ReworkRate.Rework++
		}
		switch d.Status {
		case deploydb.DeploymentSuccess:
			out.DeploymentFrequency.Successful++
			out.ChangeFailureRate.Successful++
			if d.OldestCommit.IsZero() {
				out.LeadTime.WithoutCommits++
			} else {
				lead = append(lead, d.FinishedAt.Sub(d.OldestCommit).Seconds())
			}
		case deploydb.DeploymentFailed:
			out.ChangeFailureRate.Failed++
			s := successes[d.Service]
			i := sort.Search(len(s), func(i int) bool { return !s[i].Before(d.FinishedAt) })
			if i < len(s) {
				recovery = append(recovery, s[i].Sub(d.FinishedAt).Seconds())
			} else {
				out.RecoveryTime.Unrecovered++
			}
		}
	}
	if days > 0 {
		out.DeploymentFrequency.PerDay = float64(out.DeploymentFrequency.Successful) / days
	}
	out.LeadTime.Deployments = len(lead)
	out.LeadTime.MedianSeconds = median(lead)
	out.RecoveryTime.Recovered = len(recovery)
	out.RecoveryTime.MedianSeconds = median(recovery)
	if n := out.ChangeFailureRate.Failed + out.ChangeFailureRate.Successful; n > 0 {
		out.ChangeFailureRate.Rate = ptr(float64(out.ChangeFailureRate.Failed) / float64(n))
	}
	if out.ReworkRate.Total > 0 {
		out.ReworkRate.Rate = ptr(float64(out.ReworkRate.Rework) / float64(out.ReworkRate.Total))
	}
	return out
}

// median returns the median of xs (the mean of the two middle values of
// an even count), nil for none.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return ptr(s[n/2])
	}
	return ptr((s[n/2-1] + s[n/2]) / 2)
}

func ptr[T any](v T) *T { return &v }
