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

// The figures' types live in the root package, shared with the API and
// its client.
type (
	// DORA is deploydb.DORA.
	DORA = deploydb.DORA
	// Frequency is deploydb.DeploymentFrequency.
	Frequency = deploydb.DeploymentFrequency
	// LeadTime is deploydb.LeadTime.
	LeadTime = deploydb.LeadTime
	// FailureRate is deploydb.ChangeFailureRate.
	FailureRate = deploydb.ChangeFailureRate
	// RecoveryTime is deploydb.RecoveryTime.
	RecoveryTime = deploydb.RecoveryTime
	// ReworkRate is deploydb.ReworkRate.
	ReworkRate = deploydb.ReworkRate
)

// ComputeDORA computes the metrics over the deployments of ds that
// finished in [from, to). ds may hold deployments finished at or after to
// as well: a failure in the window recovers with the first success of its
// service that finished at or after it, in the window or later (a success
// at the same instant counts, as 0 seconds). Deployments of any other
// status are ignored.
func ComputeDORA(ds []Finished, from, to time.Time) DORA {
	out := DORA{From: deploydb.NewTime(from), To: deploydb.NewTime(to)}
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
