// Package engine applies DeployDB's state machine (DESIGN.md §3) to the
// in-progress flows of one service. It decides; it does not store. A store
// loads the flows of a service inside a transaction, asks the engine what
// follows from a command, and writes the changed rows and the emitted
// events in the same transaction.
//
// Coordination lives here: at most one active deployment (CREATED, STARTED
// or COMPLETED) per (service, environment); a deployment that becomes due
// while its environment is busy, locked or frozen waits; when the
// environment frees, the newest waiting deployment is activated (rollbacks
// and hotfixes first) and older waiting ones are superseded.
package engine

import (
	"fmt"
	"sort"

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
	// Quiet events are recorded but fire no webhook.
	Quiet bool
}

// EnvState is what may hold activation in an environment.
type EnvState struct {
	Locked       bool
	LockReason   string
	Frozen       bool
	FreezeReason string
}

// RollbackRequest asks the store to create a rollback flow: the last known
// good artifact of the plan's service, deployed to Environment because
// deployment Cause failed. The store inserts the flow and hands it back to
// Adopt in the same transaction.
type RollbackRequest struct {
	Environment string
	Artifact    deploydb.Artifact
	Cause       int64
}

// Plan is the in-progress flows of one service being changed: the engine
// mutates them and records what changed, so that the store writes exactly
// those rows.
type Plan struct {
	Service string
	// Flows are the service's flows in progress, plus any flow a command is
	// about, each with its deployments ordered by (position, id).
	Flows []*deploydb.Flow
	// Envs says which environments are locked or frozen; a missing entry
	// is free.
	Envs map[string]EnvState
	// LastGood is the last known good artifact of the service per
	// environment: that of its most recent SUCCESS deployment there.
	LastGood map[string]*deploydb.Artifact
	Now      deploydb.Time
	Events   []Emitted
	// Rollbacks are the rollback flows the store must create and Adopt.
	Rollbacks []RollbackRequest

	dirtyFlows   map[int64]bool
	dirtyDeps    map[int64]bool
	dirtyResults map[int64]bool
}

// NewPlan starts a plan over the given flows of service. The plan owns the
// flows from now on.
func NewPlan(service string, flows []*deploydb.Flow, now deploydb.Time) *Plan {
	p := &Plan{
		Service:      service,
		Envs:         map[string]EnvState{},
		LastGood:     map[string]*deploydb.Artifact{},
		Now:          now,
		dirtyFlows:   map[int64]bool{},
		dirtyDeps:    map[int64]bool{},
		dirtyResults: map[int64]bool{},
	}
	for _, f := range flows {
		p.add(f)
	}
	return p
}

// add puts a flow in the plan, keeping flows by id and deployments by
// (position, id).
func (p *Plan) add(f *deploydb.Flow) {
	sortDeployments(f)
	p.Flows = append(p.Flows, f)
	sort.SliceStable(p.Flows, func(i, j int) bool { return p.Flows[i].ID < p.Flows[j].ID })
}

// Flow returns the plan's flow with id, or nil.
func (p *Plan) Flow(id int64) *deploydb.Flow {
	for _, f := range p.Flows {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// ChangedFlows returns the flows whose own row changed.
func (p *Plan) ChangedFlows() []*deploydb.Flow {
	var out []*deploydb.Flow
	for _, f := range p.Flows {
		if p.dirtyFlows[f.ID] {
			out = append(out, f)
		}
	}
	return out
}

// ChangedDeployments returns the deployments that changed, by flow and
// pipeline order.
func (p *Plan) ChangedDeployments() []*deploydb.Deployment {
	var out []*deploydb.Deployment
	for _, f := range p.Flows {
		for i := range f.Deployments {
			if p.dirtyDeps[f.Deployments[i].ID] {
				out = append(out, &f.Deployments[i])
			}
		}
	}
	return out
}

// ChangedResults returns the promotion results that changed.
func (p *Plan) ChangedResults() []*deploydb.PromotionResult {
	var out []*deploydb.PromotionResult
	for _, f := range p.Flows {
		for i := range f.Deployments {
			for j := range f.Deployments[i].Promotions {
				if r := &f.Deployments[i].Promotions[j]; p.dirtyResults[r.ID] {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// Deployment returns the deployment with id and its flow, or nils.
func (p *Plan) Deployment(id int64) (*deploydb.Flow, *deploydb.Deployment) {
	for _, f := range p.Flows {
		for i := range f.Deployments {
			if f.Deployments[i].ID == id {
				return f, &f.Deployments[i]
			}
		}
	}
	return nil, nil
}

// Start makes the first environment of a newly created flow due.
func Start(p *Plan, flow int64) {
	f := p.Flow(flow)
	if f == nil || len(f.Deployments) == 0 {
		return
	}
	p.due(f, &f.Deployments[0])
}

// Adopt adds a rollback or hotfix flow the store just created (one
// deployment) and makes its deployment due: it goes ahead of deployments
// waiting in its environment.
func Adopt(p *Plan, f *deploydb.Flow) {
	p.add(f)
	if len(f.Deployments) > 0 {
		p.due(f, &f.Deployments[0])
	}
}

// Schedule activates what may be activated in env: used when a lock is
// released or a freeze window ends, and to refresh why deployments wait.
func Schedule(p *Plan, env string) { p.schedule(env) }

// ReportDeployment applies an orchestrator's report on deployment id.
// Returns ENOTFOUND for a deployment not in the plan, EBADREQUEST for a
// string that is no status, ECONFLICT (carrying the current deployment)
// when the deployment's status does not allow the report.
func ReportDeployment(p *Plan, id int64, status deploydb.DeploymentStatus) error {
	f, d := p.Deployment(id)
	if d == nil {
		return deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
	if !status.Valid() {
		return deploydb.Errorf(deploydb.EBADREQUEST, "unknown deployment status %q", status)
	}
	if !deploydb.CanReport(d.Status, status) {
		msg := fmt.Sprintf("deployment %d is %s and cannot become %s", d.ID, d.Status, status)
		if status != deploydb.DeploymentStarted && status != deploydb.DeploymentCompleted && status != deploydb.DeploymentFailed {
			msg += " (an orchestrator reports STARTED, COMPLETED or FAILED)"
		}
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: msg, Current: snapshot(d)}
	}
	switch status {
	case deploydb.DeploymentStarted:
		p.setStatus(d, deploydb.DeploymentStarted)
		p.emit(deploydb.EventDeploymentStarted, f, d, nil, "")
	case deploydb.DeploymentCompleted:
		p.complete(f, d)
	case deploydb.DeploymentFailed:
		p.fail(f, d, "the orchestrator reported the deployment FAILED")
	}
	return nil
}

// ReportPromotion records the result of promotion name for deployment id,
// reported by who (mayReport). Returns the changed result. Returns
// EFORBIDDEN when who may not report it. Returns ENOTFOUND when the promotion is not
// attached to the deployment, ECONFLICT when the deployment does not await
// that result (it is not COMPLETED, or the result was already reported) or
// the status is not a result.
func ReportPromotion(p *Plan, id int64, name string, status deploydb.PromotionStatus, infoURL, actor string, who Approver) (*deploydb.PromotionResult, error) {
	f, d := p.Deployment(id)
	if d == nil {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
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
	if err := mayReport(r, d, who); err != nil {
		return nil, err
	}
	if d.Status != deploydb.DeploymentCompleted || r.Status != deploydb.PromotionStarted {
		return nil, &deploydb.Error{
			Code:    deploydb.ECONFLICT,
			Message: fmt.Sprintf("deployment %d is %s and its promotion %q is %s: it does not await a result", d.ID, d.Status, name, r.Status),
			Current: snapshot(d),
		}
	}
	r.Status, r.InfoURL, r.ReportedBy, r.UpdatedAt = status, infoURL, actor, p.Now
	r.DueAt = deploydb.Time{}
	p.dirtyResults[r.ID] = true
	p.emit(deploydb.EventPromotionCompleted, f, d, r, "")
	ev := len(p.Events) - 1
	if status == deploydb.PromotionFailed {
		p.fail(f, d, fmt.Sprintf("promotion %q FAILED", name))
	} else if allSucceeded(d) {
		p.verify(f, d)
	}
	// promotion.completed comes first, but shows the deployment as the
	// result left it: COMPLETED while results are pending, SUCCESS once
	// verified, FAILED.
	p.Events[ev].Deployment = snapshot(d)
	p.Events[ev].Status = string(d.Status)
	out := *r
	return &out, nil
}

// Cancel cancels flow id: its deployments that have not completed become
// CANCELLED and their environments are freed. A COMPLETED deployment
// awaiting verification keeps its status. Returns ENOTFOUND, or ECONFLICT
// when the flow is finished.
func Cancel(p *Plan, id int64) error {
	f := p.Flow(id)
	if f == nil {
		return deploydb.Errorf(deploydb.ENOTFOUND, "flow %d not found", id)
	}
	if f.Status != deploydb.FlowCreated {
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("flow %d is %s: only a flow in progress can be cancelled", f.ID, f.Status), Current: f}
	}
	p.setFlowStatus(f, deploydb.FlowCancelled)
	var freed []string
	for i := range f.Deployments {
		d := &f.Deployments[i]
		switch d.Status {
		case deploydb.DeploymentNotStarted, deploydb.DeploymentCreated, deploydb.DeploymentStarted:
			wasActive := d.Status.Active()
			p.setStatus(d, deploydb.DeploymentCancelled)
			d.Waiting = ""
			p.emitQuietUnless(wasActive, deploydb.EventDeploymentCancelled, f, d, "the flow was cancelled")
			if wasActive {
				freed = append(freed, d.Environment)
			}
		}
	}
	for _, env := range freed {
		p.schedule(env)
	}
	return nil
}

// PendingRollback returns the rollback deployment of the plan's service in
// env that is waiting or active, if any: a second rollback would only queue
// the same artifact again.
func PendingRollback(p *Plan, env string) *deploydb.Deployment {
	for _, f := range p.Flows {
		for i := range f.Deployments {
			d := &f.Deployments[i]
			if d.Environment != env || d.Reason != deploydb.ReasonRollback || f.Status != deploydb.FlowCreated {
				continue
			}
			if d.Status.Active() || (d.Status == deploydb.DeploymentNotStarted && !d.DueAt.IsZero()) {
				return d
			}
		}
	}
	return nil
}

// CheckRetry returns an error unless deployment id may be retried: it is
// FAILED, the latest deployment at its position, and its flow FAILED.
func CheckRetry(p *Plan, id int64) error {
	f, d := p.Deployment(id)
	if d == nil {
		return deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
	if d.Status != deploydb.DeploymentFailed {
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("deployment %d is %s: only a FAILED deployment can be retried", d.ID, d.Status), Current: snapshot(d)}
	}
	if d.Imported {
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("deployment %d was imported from another tool's history: it cannot be retried; deploy %s with a hotfix instead", d.ID, d.Artifact.Version), Current: snapshot(d)}
	}
	if latest := latestAt(f, d.Position); latest.ID != d.ID {
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("deployment %d was retried already, as deployment %d", d.ID, latest.ID), Current: snapshot(d)}
	}
	if f.Status != deploydb.FlowFailed {
		return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("flow %d of deployment %d is %s: only a FAILED flow can be retried", f.ID, d.ID, f.Status), Current: snapshot(d)}
	}
	return nil
}

// NewRetry returns the deployment that retries failed deployment d (to be
// inserted by the store): the same environment and position, reason retry,
// fresh promotion results.
func NewRetry(d *deploydb.Deployment, now deploydb.Time) deploydb.Deployment {
	r := *d
	r.ID, r.Status, r.Reason, r.Waiting = 0, deploydb.DeploymentNotStarted, deploydb.ReasonRetry, ""
	r.DueAt, r.CreatedAt, r.UpdatedAt = deploydb.Time{}, now, now
	r.ActivatedAt, r.StartedAt, r.CompletedAt, r.FinishedAt = deploydb.Time{}, deploydb.Time{}, deploydb.Time{}, deploydb.Time{}
	r.Imported = false
	r.Promotions = make([]deploydb.PromotionResult, 0, len(d.Promotions))
	for _, pr := range d.Promotions {
		r.Promotions = append(r.Promotions, deploydb.PromotionResult{Promotion: pr.Promotion, Type: pr.Type, SoakMs: pr.SoakMs,
			Status: deploydb.PromotionNotStarted, CreatedAt: now, UpdatedAt: now})
	}
	return r
}

// Retry puts the retry deployment the store inserted (see NewRetry) into its
// flow, reopens the flow and makes the deployment due.
func Retry(p *Plan, flow int64, d deploydb.Deployment) {
	f := p.Flow(flow)
	f.Deployments = append(f.Deployments, d)
	sortDeployments(f)
	p.setFlowStatus(f, deploydb.FlowCreated)
	_, nd := p.Deployment(d.ID)
	p.due(f, nd)
}

// sortDeployments orders a flow's deployments by (position, id).
func sortDeployments(f *deploydb.Flow) {
	sort.SliceStable(f.Deployments, func(i, j int) bool {
		a, b := f.Deployments[i], f.Deployments[j]
		if a.Position != b.Position {
			return a.Position < b.Position
		}
		return a.ID < b.ID
	})
}

// due records that deployment d's turn has come and schedules its
// environment.
func (p *Plan) due(f *deploydb.Flow, d *deploydb.Deployment) {
	d.DueAt = p.Now
	d.UpdatedAt = p.Now
	p.dirtyDeps[d.ID] = true
	p.schedule(d.Environment)
}

// active returns the active deployment of the service in env, if any.
func (p *Plan) active(env string) *deploydb.Deployment {
	for _, f := range p.Flows {
		for i := range f.Deployments {
			if d := &f.Deployments[i]; d.Environment == env && d.Status.Active() {
				return d
			}
		}
	}
	return nil
}

type candidate struct {
	f *deploydb.Flow
	d *deploydb.Deployment
}

// schedule activates the deployment that should run next in env, if the
// environment is free, and records why the others wait.
func (p *Plan) schedule(env string) {
	var waiting []candidate
	for _, f := range p.Flows {
		if f.Status != deploydb.FlowCreated {
			continue
		}
		for i := range f.Deployments {
			if d := &f.Deployments[i]; d.Environment == env && d.Status == deploydb.DeploymentNotStarted && !d.DueAt.IsZero() {
				waiting = append(waiting, candidate{f, d})
			}
		}
	}
	if len(waiting) == 0 {
		return
	}
	wait := func(why string) {
		for _, c := range waiting {
			p.setWaiting(c.d, why)
		}
	}
	if a := p.active(env); a != nil {
		wait(fmt.Sprintf("busy: deployment %d of %s is active in %s", a.ID, a.Artifact.Version, env))
		return
	}
	st := p.Envs[env]
	if st.Locked {
		wait("locked: " + st.LockReason)
		return
	}
	if st.Frozen {
		wait("frozen: " + st.FreezeReason)
		return
	}
	// Rollbacks and hotfixes first, then the newest flow.
	sort.SliceStable(waiting, func(i, j int) bool {
		pi, pj := priority(waiting[i].d.Reason), priority(waiting[j].d.Reason)
		if pi != pj {
			return pi > pj
		}
		return waiting[i].d.ID > waiting[j].d.ID
	})
	next := waiting[0]
	p.activate(next.f, next.d)
	for _, c := range waiting[1:] {
		// An older request of the same kind would only deploy something
		// outdated after it: older pipeline progressions give way to the
		// newest, older rollbacks and hotfixes to the newest of those.
		// Pipeline deployments keep waiting behind a rollback or hotfix.
		if priority(c.d.Reason) == priority(next.d.Reason) && c.f.ID < next.f.ID {
			p.supersede(c.f, c.d, next)
		} else {
			p.setWaiting(c.d, fmt.Sprintf("busy: deployment %d of %s is active in %s", next.d.ID, next.d.Artifact.Version, env))
		}
	}
}

// priority orders deployments waiting for an environment: rollbacks and
// hotfixes go ahead of pipeline progression.
func priority(r deploydb.Reason) int {
	if r == deploydb.ReasonRollback || r == deploydb.ReasonHotfix {
		return 1
	}
	return 0
}

// activate hands deployment d to the orchestrator.
func (p *Plan) activate(f *deploydb.Flow, d *deploydb.Deployment) {
	d.Waiting = ""
	p.setStatus(d, deploydb.DeploymentCreated)
	p.emit(deploydb.EventDeploymentCreated, f, d, nil, "")
}

// supersede ends flow f, whose deployment d waited in an environment that
// the newer flow of by took.
func (p *Plan) supersede(f *deploydb.Flow, d *deploydb.Deployment, by candidate) {
	p.setFlowStatus(f, deploydb.FlowSuperseded)
	for i := range f.Deployments {
		o := &f.Deployments[i]
		if o.Status != deploydb.DeploymentNotStarted {
			continue
		}
		o.Waiting = ""
		p.setStatus(o, deploydb.DeploymentSuperseded)
		detail := fmt.Sprintf("superseded by %s (flow %d, deployment %d)", by.d.Artifact.Version, by.f.ID, by.d.ID)
		p.emitQuietUnless(o.ID == d.ID, deploydb.EventDeploymentSuperseded, f, o, detail)
	}
}

// complete records that deployment d is deployed: its promotions now await
// results (soak ones until their time is up), and with none it is verified
// at once.
func (p *Plan) complete(f *deploydb.Flow, d *deploydb.Deployment) {
	p.setStatus(d, deploydb.DeploymentCompleted)
	for j := range d.Promotions {
		r := &d.Promotions[j]
		r.Status, r.UpdatedAt = deploydb.PromotionStarted, p.Now
		if r.SoakMs > 0 {
			r.DueAt = deploydb.NewTime(p.Now.Add(msDuration(r.SoakMs)))
		}
		p.dirtyResults[r.ID] = true
	}
	p.emit(deploydb.EventDeploymentCompleted, f, d, nil, "")
	if allSucceeded(d) {
		p.verify(f, d)
	}
}

// verify marks deployment d SUCCESS, moves its flow on and frees its
// environment.
func (p *Plan) verify(f *deploydb.Flow, d *deploydb.Deployment) {
	p.setStatus(d, deploydb.DeploymentSuccess)
	a := d.Artifact
	p.LastGood[d.Environment] = &a
	p.emit(deploydb.EventDeploymentVerified, f, d, nil, "")
	if f.Status == deploydb.FlowCreated {
		if next := nextAfter(f, d.Position); next != nil {
			p.due(f, next)
		} else {
			p.setFlowStatus(f, deploydb.FlowSuccess)
			p.Events = append(p.Events, Emitted{Type: deploydb.EventFlowCompleted, Flow: f.ID, Environment: d.Environment, Status: string(deploydb.FlowSuccess)})
		}
	}
	p.schedule(d.Environment)
}

// fail marks deployment d FAILED, applies its failure strategy and frees
// its environment.
func (p *Plan) fail(f *deploydb.Flow, d *deploydb.Deployment, why string) {
	p.setStatus(d, deploydb.DeploymentFailed)
	// Soak results still pending never come due now: left due, the timer
	// would pick them up again and again.
	for j := range d.Promotions {
		if r := &d.Promotions[j]; !r.DueAt.IsZero() {
			r.DueAt, r.UpdatedAt = deploydb.Time{}, p.Now
			p.dirtyResults[r.ID] = true
		}
	}
	if f.Status == deploydb.FlowCreated {
		p.setFlowStatus(f, deploydb.FlowFailed)
	}
	switch d.FailureStrategy {
	case deploydb.FailureIgnore:
		p.emit(deploydb.EventDeploymentFailed, f, d, nil, why+"; failure strategy ignore: nothing fired")
		p.Events[len(p.Events)-1].Quiet = true
	case deploydb.FailureRollback:
		lkg := p.LastGood[d.Environment]
		if pending := PendingRollback(p, d.Environment); pending != nil {
			p.emit(deploydb.EventDeploymentFailed, f, d, nil, fmt.Sprintf("%s; failure strategy rollback: rollback deployment %d of %s is waiting or running already", why, pending.ID, pending.Artifact.Version))
			break
		}
		if lkg == nil || lkg.ID == d.Artifact.ID {
			p.emit(deploydb.EventDeploymentFailed, f, d, nil, fmt.Sprintf("%s; failure strategy rollback: no last known good artifact of %s in %s other than this one, nothing rolled back", why, d.Service, d.Environment))
			break
		}
		p.emit(deploydb.EventDeploymentFailed, f, d, nil, fmt.Sprintf("%s; failure strategy rollback: rolling back to %s", why, lkg.Version))
		p.Rollbacks = append(p.Rollbacks, RollbackRequest{Environment: d.Environment, Artifact: *lkg, Cause: d.ID})
		// The rollback flow is adopted next and takes the environment
		// ahead of anything waiting there.
		return
	default:
		p.emit(deploydb.EventDeploymentFailed, f, d, nil, why)
	}
	p.schedule(d.Environment)
}

// nextAfter returns the latest deployment at the position after pos, if any.
func nextAfter(f *deploydb.Flow, pos int) *deploydb.Deployment {
	return latestAt(f, pos+1)
}

// latestAt returns the latest deployment of f at position pos (a retry adds
// one), or nil.
func latestAt(f *deploydb.Flow, pos int) *deploydb.Deployment {
	var out *deploydb.Deployment
	for i := range f.Deployments {
		if d := &f.Deployments[i]; d.Position == pos && (out == nil || d.ID > out.ID) {
			out = d
		}
	}
	return out
}

func (p *Plan) setStatus(d *deploydb.Deployment, s deploydb.DeploymentStatus) {
	if _, ok := deploydb.CanTransition(d.Status, s); !ok {
		// The rules above only take allowed transitions; reaching this is
		// a bug in the engine, not bad input.
		panic(fmt.Sprintf("engine: illegal transition %s -> %s of deployment %d", d.Status, s, d.ID))
	}
	d.Moved(s, p.Now)
	p.dirtyDeps[d.ID] = true
}

func (p *Plan) setWaiting(d *deploydb.Deployment, why string) {
	if d.Waiting != why {
		d.Waiting = why
		p.dirtyDeps[d.ID] = true
	}
}

func (p *Plan) setFlowStatus(f *deploydb.Flow, s deploydb.FlowStatus) {
	f.Status = s
	f.UpdatedAt = p.Now
	p.dirtyFlows[f.ID] = true
}

func (p *Plan) emit(t deploydb.EventType, f *deploydb.Flow, d *deploydb.Deployment, r *deploydb.PromotionResult, detail string) {
	s := snapshot(d)
	e := Emitted{Type: t, Flow: f.ID, Environment: d.Environment, Deployment: s, Status: string(s.Status), Detail: detail}
	if r != nil {
		rc := *r
		e.Result = &rc
	}
	p.Events = append(p.Events, e)
}

// emitQuietUnless emits an event that fires webhooks only when loud.
func (p *Plan) emitQuietUnless(loud bool, t deploydb.EventType, f *deploydb.Flow, d *deploydb.Deployment, detail string) {
	p.emit(t, f, d, nil, detail)
	p.Events[len(p.Events)-1].Quiet = !loud
}

func allSucceeded(d *deploydb.Deployment) bool {
	for _, r := range d.Promotions {
		if r.Status != deploydb.PromotionSuccess {
			return false
		}
	}
	return true
}

// snapshot deep-copies a deployment. Promotions is never nil, so a copy of a
// deployment without promotions still shows "promotions": [].
func snapshot(d *deploydb.Deployment) *deploydb.Deployment {
	c := *d
	c.Promotions = append(make([]deploydb.PromotionResult, 0, len(d.Promotions)), d.Promotions...)
	return &c
}
