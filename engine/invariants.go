package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/deploydb/deploydb"
)

// CheckInvariants reports every way flow breaks the invariants of the state
// machine (DESIGN.md §3), joined into one error, or nil when it breaks none.
// Tests of anything that changes flows (the engine, the stores, crash
// recovery) call it on every flow they can see; CheckServiceInvariants also
// checks how the flows of one service share environments.
//
// Deployments are ordered by (position, id). A position holds several
// deployments only when a failed one was retried: every one but the latest
// is FAILED, and the later ones have reason retry. The latest deployments
// of the positions read as a prefix of SUCCESS deployments, then at most
// one current deployment, then a tail that was never deployed. The flow's
// status decides what the current deployment and the tail may be:
//
//	CREATED     current NOT_STARTED, CREATED, STARTED or COMPLETED; tail NOT_STARTED
//	SUCCESS     no current: every deployment is SUCCESS
//	FAILED      current FAILED; tail NOT_STARTED
//	SUPERSEDED  current SUPERSEDED; tail SUPERSEDED
//	CANCELLED   current CANCELLED, or the COMPLETED deployment the cancel
//	            left to finish (COMPLETED, or FAILED by a result; once
//	            verified it joins the prefix); tail CANCELLED
//
// Only the current deployment of a flow in progress may be due
// (DueAt set) while NOT_STARTED, and a due NOT_STARTED deployment says why
// it waits (Waiting, "busy: ...", "locked: ..." or "frozen: ..."); no
// other deployment has a Waiting. A deployment that was handed to the
// orchestrator has a DueAt.
//
// Each deployment's promotion results must agree with its status: none is
// reported before the deployment completed, a COMPLETED deployment still
// awaits at least one, a SUCCESS deployment passed them all, and a FAILED
// one failed at most one. Only a soak result that a COMPLETED deployment
// awaits has a DueAt.
func CheckInvariants(flow *deploydb.Flow) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("flow %d: "+format, append([]any{flow.ID}, args...)...))
	}

	switch flow.Status {
	case deploydb.FlowCreated, deploydb.FlowSuccess, deploydb.FlowFailed, deploydb.FlowSuperseded, deploydb.FlowCancelled:
	default:
		bad("unknown flow status %q", flow.Status)
	}

	active := 0
	ids := map[int64]bool{}
	for i := range flow.Deployments {
		d := &flow.Deployments[i]
		if !d.Status.Valid() {
			bad("deployment %d: unknown status %q", d.ID, d.Status)
		}
		if d.Status.Active() {
			active++
		}
		if d.ID != 0 {
			if ids[d.ID] {
				bad("deployment id %d appears twice", d.ID)
			}
			ids[d.ID] = true
		}
		if flow.ID != 0 && d.Flow != flow.ID {
			bad("deployment %d belongs to flow %d", d.ID, d.Flow)
		}
		if d.Service != flow.Service {
			bad("deployment %d is of service %q, the flow of %q", d.ID, d.Service, flow.Service)
		}
		if d.Artifact.ID != flow.Artifact.ID {
			bad("deployment %d is of artifact %d, the flow of %d", d.ID, d.Artifact.ID, flow.Artifact.ID)
		}
		if i > 0 {
			prev := &flow.Deployments[i-1]
			if d.Position < prev.Position || d.Position == prev.Position && d.ID != 0 && d.ID <= prev.ID {
				bad("deployment %d at position %d comes after deployment %d at position %d: want (position, id) order", d.ID, d.Position, prev.ID, prev.Position)
			}
		}
		due := !d.DueAt.IsZero()
		switch {
		case d.Status == deploydb.DeploymentNotStarted && due:
			if !strings.HasPrefix(d.Waiting, "busy: ") && !strings.HasPrefix(d.Waiting, "locked: ") && !strings.HasPrefix(d.Waiting, "frozen: ") {
				bad("deployment %d is due and NOT_STARTED but Waiting %q does not say busy, locked or frozen", d.ID, d.Waiting)
			}
		case d.Waiting != "":
			bad("deployment %d is %s (due %v) but Waiting %q", d.ID, d.Status, due, d.Waiting)
		}
		if !due && (d.Status.Active() || d.Status == deploydb.DeploymentSuccess || d.Status == deploydb.DeploymentFailed) {
			bad("deployment %d is %s but was never due", d.ID, d.Status)
		}
		for _, err := range checkResults(d) {
			bad("deployment %d: %v", d.ID, err)
		}
	}
	if active > 1 {
		bad("%d active deployments, at most one allowed", active)
	}

	// The latest deployment of each position; the earlier ones were
	// retried.
	var latest []*deploydb.Deployment
	for i := range flow.Deployments {
		d := &flow.Deployments[i]
		if n := len(latest); n > 0 && latest[n-1].Position == d.Position {
			if p := latest[n-1]; p.Status != deploydb.DeploymentFailed {
				bad("deployment %d at position %d is %s but deployment %d follows it there: only a FAILED deployment is retried", p.ID, p.Position, p.Status, d.ID)
			}
			if flow.Reason != "" && d.Reason != deploydb.ReasonRetry {
				bad("deployment %d retries deployment %d but has reason %q", d.ID, latest[n-1].ID, d.Reason)
			}
			latest[n-1] = d
			continue
		}
		if flow.Reason != "" && d.Reason != flow.Reason {
			bad("deployment %d, the first at position %d, has reason %q in a flow of reason %q", d.ID, d.Position, d.Reason, flow.Reason)
		}
		latest = append(latest, d)
	}

	// Split into the SUCCESS prefix, the current deployment and the tail.
	cur := 0
	for cur < len(latest) && latest[cur].Status == deploydb.DeploymentSuccess {
		cur++
	}
	var current []deploydb.DeploymentStatus
	var tail deploydb.DeploymentStatus
	allSuccessOK := false
	switch flow.Status {
	case deploydb.FlowCreated:
		current = []deploydb.DeploymentStatus{deploydb.DeploymentNotStarted, deploydb.DeploymentCreated, deploydb.DeploymentStarted, deploydb.DeploymentCompleted}
		tail = deploydb.DeploymentNotStarted
	case deploydb.FlowSuccess:
		allSuccessOK = true
		if cur < len(latest) {
			bad("status SUCCESS but deployment %d is %s", latest[cur].ID, latest[cur].Status)
		}
	case deploydb.FlowFailed:
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentFailed}, deploydb.DeploymentNotStarted
	case deploydb.FlowSuperseded:
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentSuperseded}, deploydb.DeploymentSuperseded
	case deploydb.FlowCancelled:
		// A deployment that had COMPLETED when the flow was cancelled
		// finishes: it may since have been verified or failed by a
		// result.
		allSuccessOK = true
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentCancelled, deploydb.DeploymentCompleted, deploydb.DeploymentFailed}, deploydb.DeploymentCancelled
	}
	if cur == len(latest) {
		if len(latest) > 0 && !allSuccessOK {
			bad("status %s but every deployment is SUCCESS", flow.Status)
		}
	} else if current != nil {
		d := latest[cur]
		if !oneOf(d.Status, current) {
			bad("status %s but deployment %d, the first one not SUCCESS, is %s (want one of %v)", flow.Status, d.ID, d.Status, current)
		}
		if flow.Status == deploydb.FlowCancelled && d.Status == deploydb.DeploymentFailed && !failedByResult(d) {
			bad("status CANCELLED and deployment %d FAILED before it completed: a cancel leaves only a COMPLETED deployment to finish", d.ID)
		}
		if d.Status == deploydb.DeploymentNotStarted && !d.DueAt.IsZero() && flow.Status != deploydb.FlowCreated {
			bad("status %s but deployment %d is due", flow.Status, d.ID)
		}
		for _, e := range latest[cur+1:] {
			if e.Status != tail {
				bad("status %s and deployment %d is %s, but deployment %d after it is %s (want %s)", flow.Status, d.ID, d.Status, e.ID, e.Status, tail)
			}
			if !e.DueAt.IsZero() && e.Status == deploydb.DeploymentNotStarted {
				bad("deployment %d after the current deployment %d is due", e.ID, d.ID)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckServiceInvariants checks flows, all of one service, each with
// CheckInvariants, and how they share environments: at most one active
// deployment per environment; the current deployment of every flow in
// progress is active or due; and nothing that could run is left waiting: a
// due NOT_STARTED deployment of a flow in progress waits because its
// environment is busy (Waiting names the active deployment), locked or
// frozen.
//
// envs says which environments are locked or frozen, as in Plan.Envs (a
// missing entry is free). With nil envs the caller does not know, and a
// deployment that says it waits for a lock or a freeze is believed.
//
// Pass every flow of the service that is in progress or holds an
// environment, or the checks across flows prove little.
func CheckServiceInvariants(flows []*deploydb.Flow, envs map[string]EnvState) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	flowIDs, depIDs, resultIDs := map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	activeIn := map[string]*deploydb.Deployment{}
	waitingIn := map[string][]*deploydb.Deployment{}
	for _, f := range flows {
		if err := CheckInvariants(f); err != nil {
			errs = append(errs, err)
		}
		if f.Service != flows[0].Service {
			bad("flow %d is of service %q, flow %d of %q", f.ID, f.Service, flows[0].ID, flows[0].Service)
		}
		if f.ID != 0 {
			if flowIDs[f.ID] {
				bad("flow id %d appears twice", f.ID)
			}
			flowIDs[f.ID] = true
		}
		var current *deploydb.Deployment
		for i := range f.Deployments {
			d := &f.Deployments[i]
			if d.ID != 0 && !firstSeen(d.ID, depIDs) {
				bad("deployment id %d appears in two flows", d.ID)
			}
			for _, r := range d.Promotions {
				if r.ID != 0 && !firstSeen(r.ID, resultIDs) {
					bad("promotion result id %d appears twice", r.ID)
				}
			}
			if d.Status.Active() {
				if a := activeIn[d.Environment]; a != nil {
					bad("environment %s has two active deployments: %d (%s, flow %d) and %d (%s, flow %d)", d.Environment, a.ID, a.Status, a.Flow, d.ID, d.Status, d.Flow)
				} else {
					activeIn[d.Environment] = d
				}
			}
			if f.Status == deploydb.FlowCreated && d.Status == deploydb.DeploymentNotStarted && !d.DueAt.IsZero() {
				waitingIn[d.Environment] = append(waitingIn[d.Environment], d)
			}
			if current == nil && d.Status != deploydb.DeploymentSuccess && d.Status != deploydb.DeploymentFailed {
				current = d
			}
		}
		if f.Status == deploydb.FlowCreated && current != nil && !current.Status.Active() && current.DueAt.IsZero() {
			bad("flow %d is in progress but its current deployment %d is neither active nor due: it was never started", f.ID, current.ID)
		}
	}
	envNames := make([]string, 0, len(waitingIn))
	for env := range waitingIn {
		envNames = append(envNames, env)
	}
	sort.Strings(envNames)
	for _, env := range envNames {
		for _, d := range waitingIn[env] {
			a := activeIn[env]
			st, known := envs[env]
			switch {
			case a != nil:
				if want := fmt.Sprintf("busy: deployment %d ", a.ID); !strings.HasPrefix(d.Waiting, want) {
					bad("deployment %d waits %q, but %s is busy with deployment %d (want %q...)", d.ID, d.Waiting, env, a.ID, want)
				}
			case envs == nil:
				if !strings.HasPrefix(d.Waiting, "locked: ") && !strings.HasPrefix(d.Waiting, "frozen: ") {
					bad("deployment %d is stuck: it waits %q, but nothing is active in %s", d.ID, d.Waiting, env)
				}
			case known && st.Locked:
				if want := "locked: " + st.LockReason; d.Waiting != want {
					bad("deployment %d waits %q, want %q", d.ID, d.Waiting, want)
				}
			case known && st.Frozen:
				if want := "frozen: " + st.FreezeReason; d.Waiting != want {
					bad("deployment %d waits %q, want %q", d.ID, d.Waiting, want)
				}
			default:
				bad("deployment %d is stuck: it waits %q, but %s is free, unlocked and not frozen", d.ID, d.Waiting, env)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckPlan checks the flows of a plan with CheckServiceInvariants, with
// the plan's environment states.
func CheckPlan(p *Plan) error {
	if len(p.Flows) == 0 {
		return nil
	}
	envs := p.Envs
	if envs == nil {
		envs = map[string]EnvState{}
	}
	return CheckServiceInvariants(p.Flows, envs)
}

// firstSeen records id in seen and reports whether it was new.
func firstSeen(id int64, seen map[int64]bool) bool {
	if seen[id] {
		return false
	}
	seen[id] = true
	return true
}

// checkResults checks that the promotion results of d agree with its status.
func checkResults(d *deploydb.Deployment) []error {
	var errs []error
	count := map[deploydb.PromotionStatus]int{}
	names := map[string]bool{}
	for _, r := range d.Promotions {
		switch r.Status {
		case deploydb.PromotionNotStarted, deploydb.PromotionStarted, deploydb.PromotionSuccess, deploydb.PromotionFailed:
		default:
			errs = append(errs, fmt.Errorf("promotion %q: unknown status %q", r.Promotion, r.Status))
		}
		count[r.Status]++
		if names[r.Promotion] {
			errs = append(errs, fmt.Errorf("promotion %q attached twice", r.Promotion))
		}
		names[r.Promotion] = true
		if d.ID != 0 && r.Deployment != d.ID {
			errs = append(errs, fmt.Errorf("promotion %q belongs to deployment %d", r.Promotion, r.Deployment))
		}
		soaking := r.SoakMs > 0 && r.Status == deploydb.PromotionStarted && d.Status == deploydb.DeploymentCompleted
		if soaking == r.DueAt.IsZero() {
			errs = append(errs, fmt.Errorf("promotion %q is %s (soak %dms) of a %s deployment, with DueAt %v: only an awaited soak result is due", r.Promotion, r.Status, r.SoakMs, d.Status, r.DueAt))
		}
	}
	n := len(d.Promotions)
	switch d.Status {
	case deploydb.DeploymentNotStarted, deploydb.DeploymentCreated, deploydb.DeploymentStarted,
		deploydb.DeploymentSuperseded, deploydb.DeploymentCancelled:
		if count[deploydb.PromotionNotStarted] != n {
			errs = append(errs, fmt.Errorf("%s but a promotion result has started: %v", d.Status, count))
		}
	case deploydb.DeploymentCompleted:
		if count[deploydb.PromotionStarted] == 0 || count[deploydb.PromotionStarted]+count[deploydb.PromotionSuccess] != n {
			errs = append(errs, fmt.Errorf("COMPLETED must await a result and have none NOT_STARTED or FAILED: %v", count))
		}
	case deploydb.DeploymentSuccess:
		if count[deploydb.PromotionSuccess] != n {
			errs = append(errs, fmt.Errorf("SUCCESS but not every promotion result is SUCCESS: %v", count))
		}
	case deploydb.DeploymentFailed:
		// Failed before completing (no result started), or completed and
		// then failed by exactly one result.
		if count[deploydb.PromotionNotStarted] != n && !failedByResult(d) {
			errs = append(errs, fmt.Errorf("FAILED needs every result NOT_STARTED or exactly one FAILED and none NOT_STARTED: %v", count))
		}
	}
	return errs
}

// failedByResult reports whether FAILED deployment d completed and was then
// failed by exactly one promotion result.
func failedByResult(d *deploydb.Deployment) bool {
	failed, notStarted := 0, 0
	for _, r := range d.Promotions {
		switch r.Status {
		case deploydb.PromotionFailed:
			failed++
		case deploydb.PromotionNotStarted:
			notStarted++
		}
	}
	return failed == 1 && notStarted == 0
}

func oneOf(s deploydb.DeploymentStatus, list []deploydb.DeploymentStatus) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}
