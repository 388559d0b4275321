package engine

import (
	"errors"
	"fmt"

	"github.com/deploydb/deploydb"
)

// CheckInvariants reports every way flow breaks the invariants of the state
// machine (DESIGN.md §3), joined into one error, or nil when it breaks none.
// Tests of anything that changes flows (the engine, the stores, crash
// recovery) call it on every flow they can see.
//
// A flow is read as a prefix of SUCCESS deployments, then at most one
// current deployment, then a tail that was never deployed. The flow's status
// decides what the current deployment and the tail may be:
//
//	CREATED     current NOT_STARTED, CREATED, STARTED or COMPLETED; tail NOT_STARTED
//	SUCCESS     no current: every deployment is SUCCESS
//	FAILED      current FAILED; tail NOT_STARTED
//	SUPERSEDED  current SUPERSEDED; tail SUPERSEDED
//	CANCELLED   current CANCELLED; tail CANCELLED
//
// Each deployment's promotion results must agree with its status: none is
// reported before the deployment completed, a COMPLETED deployment still
// awaits at least one, a SUCCESS deployment passed them all, and a FAILED
// one failed at most one.
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
		if i > 0 && d.Position < flow.Deployments[i-1].Position {
			bad("deployment %d at position %d comes after position %d", d.ID, d.Position, flow.Deployments[i-1].Position)
		}
		for _, err := range checkResults(d) {
			bad("deployment %d: %v", d.ID, err)
		}
	}
	if active > 1 {
		bad("%d active deployments, at most one allowed", active)
	}
	if flow.Status.Terminal() && active > 0 {
		bad("status %s but a deployment is active", flow.Status)
	}

	// Split into the SUCCESS prefix, the current deployment and the tail.
	cur := 0
	for cur < len(flow.Deployments) && flow.Deployments[cur].Status == deploydb.DeploymentSuccess {
		cur++
	}
	var current []deploydb.DeploymentStatus
	var tail deploydb.DeploymentStatus
	switch flow.Status {
	case deploydb.FlowCreated:
		current = []deploydb.DeploymentStatus{deploydb.DeploymentNotStarted, deploydb.DeploymentCreated, deploydb.DeploymentStarted, deploydb.DeploymentCompleted}
		tail = deploydb.DeploymentNotStarted
		if len(flow.Deployments) > 0 && cur == len(flow.Deployments) {
			bad("status CREATED but every deployment is SUCCESS")
		}
	case deploydb.FlowSuccess:
		if cur < len(flow.Deployments) {
			d := &flow.Deployments[cur]
			bad("status SUCCESS but deployment %d is %s", d.ID, d.Status)
		}
	case deploydb.FlowFailed:
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentFailed}, deploydb.DeploymentNotStarted
	case deploydb.FlowSuperseded:
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentSuperseded}, deploydb.DeploymentSuperseded
	case deploydb.FlowCancelled:
		current, tail = []deploydb.DeploymentStatus{deploydb.DeploymentCancelled}, deploydb.DeploymentCancelled
	}
	if cur == len(flow.Deployments) {
		if len(flow.Deployments) > 0 && (flow.Status == deploydb.FlowFailed || flow.Status == deploydb.FlowSuperseded || flow.Status == deploydb.FlowCancelled) {
			bad("status %s but every deployment is SUCCESS", flow.Status)
		}
	} else if current != nil {
		d := &flow.Deployments[cur]
		if !oneOf(d.Status, current) {
			bad("status %s but deployment %d, the first one not SUCCESS, is %s (want one of %v)", flow.Status, d.ID, d.Status, current)
		}
		for k := cur + 1; k < len(flow.Deployments); k++ {
			if e := &flow.Deployments[k]; e.Status != tail {
				bad("status %s and deployment %d is %s, but deployment %d after it is %s (want %s)", flow.Status, d.ID, d.Status, e.ID, e.Status, tail)
			}
		}
	}
	return errors.Join(errs...)
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
		beforeCompleting := count[deploydb.PromotionNotStarted] == n
		byResult := count[deploydb.PromotionFailed] == 1 && count[deploydb.PromotionNotStarted] == 0
		if !beforeCompleting && !byResult {
			errs = append(errs, fmt.Errorf("FAILED needs every result NOT_STARTED or exactly one FAILED and none NOT_STARTED: %v", count))
		}
	}
	return errs
}

func oneOf(s deploydb.DeploymentStatus, list []deploydb.DeploymentStatus) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}
