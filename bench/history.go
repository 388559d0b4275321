package bench

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/deploydb/deploydb"
)

// HistoryOptions shapes a generated history.
type HistoryOptions struct {
	// Deployments is how many deployments the history holds (about: the
	// last flows published complete their pipelines' count).
	Deployments int
	// Seed makes the history: the same seed, model and options give the
	// same history.
	Seed uint64
	// End bounds the history: every event happens before it. Releases
	// are spread to end about Tail before it; the history ends Tail after
	// the release that completes the count of deployments, which may be a
	// little earlier.
	End time.Time
	// ReleaseEvery is the mean time between two releases of one service
	// (default 8 h).
	ReleaseEvery time.Duration
	// Tail is how long the history goes on after the last release, so
	// that the last flows are where real ones would be: most finished,
	// some waiting for a test or an approval (default 2 h).
	Tail time.Duration
	// FailDeployPct is the odds, in percent, that the orchestrator
	// reports a started deployment FAILED (default 2).
	FailDeployPct int
	// FailTestPct is the odds, in percent, that a test job reports a
	// basic promotion FAILED (default 3).
	FailTestPct int
}

func (o *HistoryOptions) defaults() {
	if o.ReleaseEvery <= 0 {
		o.ReleaseEvery = 8 * time.Hour
	}
	if o.Tail <= 0 {
		o.Tail = 2 * time.Hour
	}
	if o.FailDeployPct == 0 {
		o.FailDeployPct = 2
	}
	if o.FailTestPct == 0 {
		o.FailTestPct = 3
	}
}

// happened is one event a command recorded, as the history's orchestrator,
// test jobs and approvers hear of it.
type happened struct {
	Type       deploydb.EventType
	Deployment int64
	Service    string
	// Awaiting names the promotion results a deployment.completed awaits.
	Awaiting []string
}

// driver applies the commands of a history: the generator writes their
// rows in bulk; the tests replay them through the real store.
type driver interface {
	// publish publishes artifact a at time at and returns what happened
	// and how many deployments it created.
	publish(at deploydb.Time, a deploydb.Artifact, actor string) ([]happened, int, error)
	report(at deploydb.Time, id int64, status deploydb.DeploymentStatus, actor string) ([]happened, int, error)
	promote(at deploydb.Time, id int64, name string, status deploydb.PromotionStatus, infoURL, actor string) ([]happened, int, error)
}

// The kinds of actions of a history.
const (
	actPublish = iota
	actReport
	actPromote
)

// action is one command due at a time.
type action struct {
	at         int64 // Unix milliseconds
	seq        int64 // ties keep scheduling order
	kind       int
	service    int // actPublish
	deployment int64
	status     string
	promotion  string
}

type actions []*action

func (q actions) Len() int { return len(q) }
func (q actions) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q actions) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actions) Push(x any)   { *q = append(*q, x.(*action)) }
func (q *actions) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// historySpan returns when a history of opts starts and ends: releases
// are spread so that each service releases about as often as
// ReleaseEvery says, and the span grows with the history.
func historySpan(m *Model, opts HistoryOptions) (time.Time, time.Time) {
	opts.defaults()
	stages := 0
	for _, s := range m.Services {
		stages += len(m.Pipeline(s.Pipeline).Stages)
	}
	perRelease := float64(stages) / float64(len(m.Services))
	releases := float64(opts.Deployments) / perRelease / float64(len(m.Services))
	span := time.Duration(releases * float64(opts.ReleaseEvery))
	return time.UnixMilli(opts.End.Add(-opts.Tail - span).UnixMilli()), opts.End
}

// historyStats counts what a history did.
type historyStats struct {
	Start, End  time.Time
	Publishes   int
	Deployments int
	Commands    int
}

// runHistory plays a history of model m through d: each service releases
// a new version now and then; the orchestrator starts and completes each
// deployment DeployDB creates (a few fail); test jobs and approvers report
// each promotion result a completed deployment awaits (a few tests fail).
// Releases stop once opts.Deployments deployments exist; what follows in
// the tail happens, what is due after opts.End is left undone.
func runHistory(m *Model, d driver, opts HistoryOptions) (historyStats, error) {
	opts.defaults()
	rng := rand.New(rand.NewPCG(opts.Seed, 0x686973746f7279))
	startT, endT := historySpan(m, opts)
	start, end := startT.UnixMilli(), endT.UnixMilli()
	st := historyStats{Start: startT, End: endT}

	var q actions
	var seq int64
	schedule := func(a *action) {
		seq++
		a.seq = seq
		heap.Push(&q, a)
	}
	after := func(at int64, lo, hi time.Duration) int64 {
		return at + lo.Milliseconds() + rng.Int64N((hi-lo).Milliseconds()+1)
	}
	nextRelease := func(at int64) int64 {
		return at + int64(rng.ExpFloat64()*float64(opts.ReleaseEvery.Milliseconds())) + 1
	}
	for i := range m.Services {
		schedule(&action{at: nextRelease(start), kind: actPublish, service: i})
	}
	version := make([]int, len(m.Services))
	// Deployments that have actions ahead of them; the others' actions are
	// dropped (a test result after a failure would be a conflict).
	alive := map[int64]bool{}

	react := func(at int64, hs []happened) {
		for _, h := range hs {
			switch h.Type {
			case deploydb.EventDeploymentCreated:
				alive[h.Deployment] = true
				schedule(&action{at: after(at, 10*time.Second, 2*time.Minute), kind: actReport, deployment: h.Deployment, status: string(deploydb.DeploymentStarted)})
			case deploydb.EventDeploymentStarted:
				if rng.IntN(100) < opts.FailDeployPct {
					schedule(&action{at: after(at, time.Minute, 10*time.Minute), kind: actReport, deployment: h.Deployment, status: string(deploydb.DeploymentFailed)})
				} else {
					schedule(&action{at: after(at, 2*time.Minute, 15*time.Minute), kind: actReport, deployment: h.Deployment, status: string(deploydb.DeploymentCompleted)})
				}
			case deploydb.EventDeploymentCompleted:
				for _, name := range h.Awaiting {
					a := &action{kind: actPromote, deployment: h.Deployment, promotion: name, status: string(deploydb.PromotionSuccess)}
					if m.PromotionType(name) == deploydb.PromotionTypeManual {
						a.at = after(at, 15*time.Minute, 6*time.Hour)
					} else {
						a.at = after(at, 3*time.Minute, 30*time.Minute)
						if rng.IntN(100) < opts.FailTestPct {
							a.status = string(deploydb.PromotionFailed)
						}
					}
					schedule(a)
				}
			case deploydb.EventDeploymentFailed, deploydb.EventDeploymentVerified, deploydb.EventDeploymentSuperseded, deploydb.EventDeploymentCancelled:
				delete(alive, h.Deployment)
			}
		}
	}

	for q.Len() > 0 {
		a := heap.Pop(&q).(*action)
		if a.at >= end {
			break
		}
		at := deploydb.UnixMilli(a.at)
		var hs []happened
		var n int
		var err error
		switch a.kind {
		case actPublish:
			if st.Deployments >= opts.Deployments {
				// The last releases are out: what follows in the tail
				// happens, the rest is left in progress.
				end = min(end, a.at+opts.Tail.Milliseconds())
				continue
			}
			s := &m.Services[a.service]
			version[a.service]++
			v := fmt.Sprintf("1.%d.%d", version[a.service], rng.IntN(3))
			hs, n, err = d.publish(at, deploydb.Artifact{
				Group: s.Group, Name: s.Artifact, Version: v,
				SourceURL: fmt.Sprintf("https://repo.example.com/%s/%s/%s/%s-%s.jar", s.Group, s.Artifact, v, s.Artifact, v),
			}, ActorCI)
			st.Publishes++
			schedule(&action{at: nextRelease(a.at), kind: actPublish, service: a.service})
		case actReport:
			if !alive[a.deployment] {
				continue
			}
			hs, n, err = d.report(at, a.deployment, deploydb.DeploymentStatus(a.status), ActorOrchestrator)
		case actPromote:
			if !alive[a.deployment] {
				continue
			}
			actor, info := ActorTests, fmt.Sprintf("https://ci.example.com/job/%s/%d/", a.promotion, a.deployment)
			if m.PromotionType(a.promotion) == deploydb.PromotionTypeManual {
				actor, info = ActorApprover, ""
			}
			hs, n, err = d.promote(at, a.deployment, a.promotion, deploydb.PromotionStatus(a.status), info, actor)
		}
		if err != nil {
			return st, fmt.Errorf("bench: history at %s: %w", at, err)
		}
		st.Commands++
		st.Deployments += n
		react(a.at, hs)
	}
	st.End = time.UnixMilli(end)
	return st, nil
}
