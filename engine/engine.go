// Package engine applies DeployDB's state machine (DESIGN.md §3) to the
// state of a flow. It decides; it does not store. A store loads a flow inside
// a transaction, asks the engine what follows from a command, and writes the
// changed rows and the emitted events in the same transaction.
package engine

import (
	"fmt"

	"github.com/deploydb/deploydb"
)

// Emitted is an event the engine decided on, with snapshots of what it is
// about as they were right after the change.
type Emitted struct {
	Type deploydb.EventType
	Flow int64
	// Environment is where it happened: the deployment's, and for
	// flow.completed the last environment of the pipeline, so that its
	// hooks hear that the flow finished there.
	Environment string
	Deployment  *deploydb.Deployment      // nil for flow events
	Result      *deploydb.PromotionResult // promotion events only
	Status      string
	Detail      string
	// Quiet events are recorded but fire no webhook (failure strategy
	// "ignore").
	Quiet bool
}

// Plan is one flow being changed: the engine mutates it and records what
// changed, so that the store writes exactly those rows.
type Plan struct {
	Flow   *deploydb.Flow
	Now    deploydb.Time
	Events []Emitted

	dirtyFlow    bool
	dirtyDeps    map[int]bool
	dirtyResults map[[2]int]bool
}

// NewPlan starts a plan over flow, whose deployments are in pipeline order.
// The plan owns flow from now on.
func NewPlan(flow *deploydb.Flow, now deploydb.Time) *Plan {
	return &Plan{Flow: flow, Now: now, dirtyDeps: map[int]bool{}, dirtyResults: map[[2]int]bool{}}
}

// FlowChanged reports whether the flow's own row changed.
func (p *Plan) FlowChanged() bool { return p.dirtyFlow }

// ChangedDeployments returns the deployments whose status changed, in
// pipeline order.
func (p *Plan) ChangedDeployments() []*deploydb.Deployment {
	var out []*deploydb.Deployment
	for i := range p.Flow.Deployments {
		if p.dirtyDeps[i] {
			out = append(out, &p.Flow.Deployments[i])
		}
	}
	return out
}

// ChangedResults returns the promotion results that changed.
func (p *Plan) ChangedResults() []*deploydb.PromotionResult {
	var out []*deploydb.PromotionResult
	for i := range p.Flow.Deployments {
		for j := range p.Flow.Deployments[i].Promotions {
			if p.dirtyResults[[2]int{i, j}] {
				out = append(out, &p.Flow.Deployments[i].Promotions[j])
			}
		}
	}
	return out
}

// Start activates the first environment of a newly created flow.
func Start(p *Plan) {
	if len(p.Flow.Deployments) > 0 {
		p.activate(0)
	}
}

// ReportDeployment applies an orchestrator's report on deployment id of the
// plan's flow. Returns EBADREQUEST for a status an orchestrator may not
// report, ECONFLICT (carrying the current deployment) when the deployment's
// status does not allow it.
func ReportDeployment(p *Plan, id int64, status deploydb.DeploymentStatus) error {
	i := p.index(id)
	if i < 0 {
		return deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
	if !status.Valid() {
		return deploydb.Errorf(deploydb.EBADREQUEST, "unknown deployment status %q", status)
	}
	d := &p.Flow.Deployments[i]
	if !deploydb.CanReport(d.Status, status) {
		msg := fmt.Sprintf("deployment %d is %s and cannot become %s", d.ID, d.Status, status)
		if status != deploydb.DeploymentStarted && status != deploydb.DeploymentCompleted && status != deploydb.DeploymentFailed {
			msg += " (an orchestrator reports STARTED, COMPLETED or FAILED)"
		}
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: msg, Current: snapshot(d)}
	}
	switch status {
	case deploydb.DeploymentStarted:
		p.setStatus(i, deploydb.DeploymentStarted)
		p.emit(deploydb.EventDeploymentStarted, i, nil, "")
	case deploydb.DeploymentCompleted:
		p.complete(i)
	case deploydb.DeploymentFailed:
		p.fail(i, "the orchestrator reported the deployment FAILED")
	}
	return nil
}

// ReportPromotion records the result of promotion name for deployment id.
// Returns the changed result. Returns ENOTFOUND when the promotion is not
// attached to the deployment, ECONFLICT when the deployment does not await
// that result (it is not COMPLETED, or the result was already reported).
func ReportPromotion(p *Plan, id int64, name string, status deploydb.PromotionStatus, infoURL string) (*deploydb.PromotionResult, error) {
	i := p.index(id)
	if i < 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
	d := &p.Flow.Deployments[i]
	j := -1
	for k := range d.Promotions {
		if d.Promotions[k].Promotion == name {
			j = k
		}
	}
	if j < 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "promotion %q is not attached to deployment %d", name, id)
	}
	switch status {
	case deploydb.PromotionSuccess, deploydb.PromotionFailed:
	case deploydb.PromotionNotStarted, deploydb.PromotionStarted:
		return nil, &deploydb.Error{Code: deploydb.ECONFLICT, Current: snapshot(d),
			Message: fmt.Sprintf("promotion %q of deployment %d cannot be reported as %s: a result is SUCCESS or FAILED", name, id, status)}
	default:
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "unknown promotion status %q", status)
	}
	r := &d.Promotions[j]
	if d.Status != deploydb.DeploymentCompleted || r.Status != deploydb.PromotionStarted {
		return nil, &deploydb.Error{
			Code:    deploydb.ECONFLICT,
			Message: fmt.Sprintf("deployment %d is %s and its promotion %q is %s: it does not await a result", d.ID, d.Status, name, r.Status),
			Current: snapshot(d),
		}
	}
	r.Status = status
	r.InfoURL = infoURL
	r.UpdatedAt = p.Now
	p.dirtyResults[[2]int{i, j}] = true
	p.emit(deploydb.EventPromotionCompleted, i, r, "")
	ev := len(p.Events) - 1
	if status == deploydb.PromotionFailed {
		p.fail(i, fmt.Sprintf("promotion %q FAILED", name))
	} else if allSucceeded(d) {
		p.verify(i)
	}
	// promotion.completed comes first, but shows the deployment as the
	// result left it: COMPLETED while results are pending, SUCCESS once
	// verified, FAILED.
	p.Events[ev].Deployment = snapshot(d)
	p.Events[ev].Status = string(d.Status)
	out := *r
	return &out, nil
}

func (p *Plan) index(id int64) int {
	for i := range p.Flow.Deployments {
		if p.Flow.Deployments[i].ID == id {
			return i
		}
	}
	return -1
}

// activate hands deployment i to the orchestrator.
func (p *Plan) activate(i int) {
	p.setStatus(i, deploydb.DeploymentCreated)
	p.emit(deploydb.EventDeploymentCreated, i, nil, "")
}

// complete records that deployment i is deployed: its promotions now await
// results, and with none it is verified at once.
func (p *Plan) complete(i int) {
	p.setStatus(i, deploydb.DeploymentCompleted)
	d := &p.Flow.Deployments[i]
	for j := range d.Promotions {
		d.Promotions[j].Status = deploydb.PromotionStarted
		d.Promotions[j].UpdatedAt = p.Now
		p.dirtyResults[[2]int{i, j}] = true
	}
	p.emit(deploydb.EventDeploymentCompleted, i, nil, "")
	if allSucceeded(d) {
		p.verify(i)
	}
}

// verify marks deployment i SUCCESS and moves the flow on.
func (p *Plan) verify(i int) {
	p.setStatus(i, deploydb.DeploymentSuccess)
	p.emit(deploydb.EventDeploymentVerified, i, nil, "")
	if i+1 < len(p.Flow.Deployments) {
		p.activate(i + 1)
		return
	}
	p.setFlowStatus(deploydb.FlowSuccess)
	p.Events = append(p.Events, Emitted{Type: deploydb.EventFlowCompleted, Flow: p.Flow.ID, Environment: p.Flow.Deployments[i].Environment, Status: string(deploydb.FlowSuccess)})
}

// fail marks deployment i FAILED and applies its failure strategy.
func (p *Plan) fail(i int, why string) {
	p.setStatus(i, deploydb.DeploymentFailed)
	d := &p.Flow.Deployments[i]
	switch d.FailureStrategy {
	case deploydb.FailureIgnore:
		p.emit(deploydb.EventDeploymentFailed, i, nil, why+"; failure strategy ignore: nothing fired")
		p.Events[len(p.Events)-1].Quiet = true
	default:
		// notify; rollback notifies too, and its redeploy of the last known
		// good artifact is issue 3's.
		p.emit(deploydb.EventDeploymentFailed, i, nil, why)
	}
	p.setFlowStatus(deploydb.FlowFailed)
}

func (p *Plan) setStatus(i int, s deploydb.DeploymentStatus) {
	d := &p.Flow.Deployments[i]
	if _, ok := deploydb.CanTransition(d.Status, s); !ok {
		// The rules above only take allowed transitions; reaching this is
		// a bug in the engine, not bad input.
		panic(fmt.Sprintf("engine: illegal transition %s -> %s of deployment %d", d.Status, s, d.ID))
	}
	d.Status = s
	d.UpdatedAt = p.Now
	p.dirtyDeps[i] = true
}

func (p *Plan) setFlowStatus(s deploydb.FlowStatus) {
	p.Flow.Status = s
	p.Flow.UpdatedAt = p.Now
	p.dirtyFlow = true
}

func (p *Plan) emit(t deploydb.EventType, i int, r *deploydb.PromotionResult, detail string) {
	d := snapshot(&p.Flow.Deployments[i])
	e := Emitted{Type: t, Flow: p.Flow.ID, Environment: d.Environment, Deployment: d, Status: string(d.Status), Detail: detail}
	if r != nil {
		rc := *r
		e.Result = &rc
	}
	p.Events = append(p.Events, e)
}

func allSucceeded(d *deploydb.Deployment) bool {
	for _, r := range d.Promotions {
		if r.Status != deploydb.PromotionSuccess {
			return false
		}
	}
	return true
}

// snapshot deep-copies a deployment. Its promotions are never nil, so that
// payloads and conflict bodies show [] rather than null.
func snapshot(d *deploydb.Deployment) *deploydb.Deployment {
	c := *d
	c.Promotions = append([]deploydb.PromotionResult{}, d.Promotions...)
	return &c
}
