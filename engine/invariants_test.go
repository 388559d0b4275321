package engine_test

import (
	"fmt"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
)

// CheckInvariants and CheckServiceInvariants: they must be able to fail, or
// the tests that rely on them prove nothing.

const (
	NS  = deploydb.DeploymentNotStarted
	CR  = deploydb.DeploymentCreated
	ST  = deploydb.DeploymentStarted
	CO  = deploydb.DeploymentCompleted
	OK  = deploydb.DeploymentSuccess
	FA  = deploydb.DeploymentFailed
	SU  = deploydb.DeploymentSuperseded
	CA  = deploydb.DeploymentCancelled
	rNS = deploydb.PromotionNotStarted
	rST = deploydb.PromotionStarted
	rOK = deploydb.PromotionSuccess
	rFA = deploydb.PromotionFailed
)

// dep describes a deployment of a hand-made flow.
type dep struct {
	status  deploydb.DeploymentStatus
	results []deploydb.PromotionStatus
	env     string
	pos     int // -1: its index in the flow
	reason  deploydb.Reason
	waiting string
	due     int // 0: as its status says, 1: due, -1: not due
	soak    int // 0: no soak, 1: first result is a soak, 2: and it is due
}

// d returns a deployment in status s, whose results are in the statuses
// given.
func d(s deploydb.DeploymentStatus, results ...deploydb.PromotionStatus) dep {
	return dep{status: s, results: results, pos: -1}
}

func (x dep) in(env string) dep { x.env = env; return x }
func (x dep) at(pos int) dep    { x.pos = pos; return x }
func (x dep) retry() dep        { x.reason = deploydb.ReasonRetry; return x }
func (x dep) notDue() dep       { x.due = -1; return x }
func (x dep) soaking(due bool) dep {
	x.soak = 1
	if due {
		x.soak = 2
	}
	return x
}

// waits makes the deployment due, waiting for why.
func (x dep) waits(why string) dep {
	x.due, x.waiting = 1, why
	return x
}

// flowOf returns flow id of billing in status s: deployment i has id
// 10*id+i, results 100*id+10*i+j, and is in environment env<position>.
func flowOf(id int64, s deploydb.FlowStatus, deps ...dep) *deploydb.Flow {
	a := deploydb.Artifact{ID: 7, Version: "1.0.7"}
	f := &deploydb.Flow{ID: id, Service: service, Artifact: a, Reason: deploydb.ReasonPipeline, Status: s}
	for i, x := range deps {
		dd := deploydb.Deployment{ID: 10*id + int64(i), Flow: id, Service: service, Artifact: a, Status: x.status,
			Position: i, Reason: deploydb.ReasonPipeline, Waiting: x.waiting, Promotions: []deploydb.PromotionResult{}}
		if x.pos >= 0 {
			dd.Position = x.pos
		}
		dd.Environment = fmt.Sprint("env", dd.Position)
		if x.env != "" {
			dd.Environment = x.env
		}
		if x.reason != "" {
			dd.Reason = x.reason
		}
		deployed := x.status.Active() || x.status == OK || x.status == FA
		if x.due > 0 || x.due == 0 && deployed {
			dd.DueAt = t0
		}
		for j, r := range x.results {
			pr := deploydb.PromotionResult{ID: 100*id + 10*int64(i) + int64(j), Deployment: dd.ID, Promotion: fmt.Sprint("p", j), Status: r}
			if j == 0 && x.soak > 0 {
				pr.SoakMs = soakMs
				if x.soak == 2 {
					pr.DueAt = at(soakMs)
				}
			}
			dd.Promotions = append(dd.Promotions, pr)
		}
		f.Deployments = append(f.Deployments, dd)
	}
	return f
}

func TestCheckInvariants(t *testing.T) {
	t.Parallel()
	busy := "busy: deployment 99 of 1.0.6 is active in env0"
	valid := map[string]*deploydb.Flow{
		"New":                     flowOf(1, deploydb.FlowCreated, d(NS, rNS), d(NS)),
		"Waiting":                 flowOf(1, deploydb.FlowCreated, d(NS, rNS).waits(busy), d(NS)),
		"WaitingLocked":           flowOf(1, deploydb.FlowCreated, d(OK), d(NS).waits("locked: incident"), d(NS)),
		"WaitingFrozen":           flowOf(1, deploydb.FlowCreated, d(OK), d(NS).waits("frozen: weekend")),
		"Created":                 flowOf(1, deploydb.FlowCreated, d(CR, rNS), d(NS)),
		"Started":                 flowOf(1, deploydb.FlowCreated, d(ST, rNS), d(NS)),
		"Completed":               flowOf(1, deploydb.FlowCreated, d(CO, rST, rOK), d(NS)),
		"Soaking":                 flowOf(1, deploydb.FlowCreated, d(CO, rST, rOK).soaking(true), d(NS)),
		"SoakDone":                flowOf(1, deploydb.FlowCreated, d(CO, rOK, rST).soaking(false), d(NS)),
		"Success":                 flowOf(1, deploydb.FlowSuccess, d(OK, rOK), d(OK)),
		"FailedByOrchestrator":    flowOf(1, deploydb.FlowFailed, d(OK), d(FA, rNS, rNS), d(NS)),
		"FailedByPromotion":       flowOf(1, deploydb.FlowFailed, d(FA, rOK, rFA, rST), d(NS)),
		"FailedSoakNotDue":        flowOf(1, deploydb.FlowFailed, d(FA, rST, rFA).soaking(false), d(NS)),
		"Superseded":              flowOf(1, deploydb.FlowSuperseded, d(OK), d(SU), d(SU)),
		"SupersededAtStart":       flowOf(1, deploydb.FlowSuperseded, d(SU), d(SU)),
		"Cancelled":               flowOf(1, deploydb.FlowCancelled, d(CA), d(CA)),
		"CancelledAfterSuccess":   flowOf(1, deploydb.FlowCancelled, d(OK), d(CA)),
		"CancelledCompletedKept":  flowOf(1, deploydb.FlowCancelled, d(OK), d(CO, rST), d(CA)),
		"CancelledThenVerified":   flowOf(1, deploydb.FlowCancelled, d(OK), d(OK, rOK)),
		"CancelledThenFailed":     flowOf(1, deploydb.FlowCancelled, d(FA, rFA), d(CA)),
		"Retried":                 flowOf(1, deploydb.FlowCreated, d(FA), d(CR).at(0).retry(), d(NS).at(1)),
		"RetryWaiting":            flowOf(1, deploydb.FlowCreated, d(OK), d(FA).at(1), d(NS).at(1).retry().waits(busy), d(NS).at(2)),
		"RetriedTwiceFailedAgain": flowOf(1, deploydb.FlowFailed, d(FA), d(FA).at(0).retry(), d(FA).at(0).retry(), d(NS).at(1)),
		"RetriedThenSuperseded":   flowOf(1, deploydb.FlowSuperseded, d(FA), d(SU).at(0).retry(), d(SU).at(1)),
		"RetriedThenSucceeded":    flowOf(1, deploydb.FlowSuccess, d(FA, rFA), d(OK, rOK).at(0).retry()),
		"SinglePositionTwo":       flowOf(1, deploydb.FlowCreated, d(CR).at(2)),
		"Empty":                   flowOf(1, deploydb.FlowCreated),
	}
	for name, f := range valid {
		t.Run("OK"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckInvariants(f); err != nil {
				t.Errorf("CheckInvariants = %v, want nil", err)
			}
		})
	}
	dupID := flowOf(1, deploydb.FlowCreated, d(CR), d(NS))
	dupID.Deployments[1].ID = dupID.Deployments[0].ID
	otherFlow := flowOf(1, deploydb.FlowCreated, d(CR), d(NS))
	otherFlow.Deployments[1].Flow = 2
	otherService := flowOf(1, deploydb.FlowCreated, d(CR), d(NS))
	otherService.Deployments[1].Service = "ledger"
	otherArtifact := flowOf(1, deploydb.FlowCreated, d(CR), d(NS))
	otherArtifact.Deployments[1].Artifact.ID = 8
	idOrder := flowOf(1, deploydb.FlowCreated, d(FA), d(CR).at(0).retry())
	idOrder.Deployments[1].ID = 5
	resultOfOther := flowOf(1, deploydb.FlowCreated, d(CO, rST))
	resultOfOther.Deployments[0].Promotions[0].Deployment = 99
	sameName := flowOf(1, deploydb.FlowCreated, d(CO, rST, rST))
	sameName.Deployments[0].Promotions[1].Promotion = "p0"
	broken := map[string]*deploydb.Flow{
		"TwoActive":                  flowOf(1, deploydb.FlowCreated, d(CR), d(ST)),
		"ActiveAfterNotStarted":      flowOf(1, deploydb.FlowCreated, d(NS), d(CR)),
		"SuccessAfterUnfinished":     flowOf(1, deploydb.FlowCreated, d(CR), d(OK)),
		"SuccessWithPendingResult":   flowOf(1, deploydb.FlowCreated, d(OK, rST), d(CR)),
		"ResultBeforeCompleted":      flowOf(1, deploydb.FlowCreated, d(ST, rST), d(NS)),
		"CompletedNothingPending":    flowOf(1, deploydb.FlowCreated, d(CO, rOK), d(NS)),
		"CompletedNoPromotions":      flowOf(1, deploydb.FlowCreated, d(CO), d(NS)),
		"CompletedWithFailedResult":  flowOf(1, deploydb.FlowCreated, d(CO, rFA, rST), d(NS)),
		"FailedTwoFailedResults":     flowOf(1, deploydb.FlowFailed, d(FA, rFA, rFA)),
		"FailedSomeNotStarted":       flowOf(1, deploydb.FlowFailed, d(FA, rFA, rNS)),
		"TerminalWithActive":         flowOf(1, deploydb.FlowCancelled, d(CA), d(CR)),
		"SupersededWithCompleted":    flowOf(1, deploydb.FlowSuperseded, d(CO, rST), d(SU)),
		"CancelledFailedBeforeDone":  flowOf(1, deploydb.FlowCancelled, d(FA, rNS), d(CA)),
		"CancelledStartedKept":       flowOf(1, deploydb.FlowCancelled, d(ST), d(CA)),
		"CancelledTailNotStarted":    flowOf(1, deploydb.FlowCancelled, d(CA), d(NS)),
		"FailedFlowNoFailed":         flowOf(1, deploydb.FlowFailed, d(OK), d(NS)),
		"FailedFlowTwoFailed":        flowOf(1, deploydb.FlowFailed, d(FA), d(FA)),
		"FailedFlowStartedAfter":     flowOf(1, deploydb.FlowFailed, d(FA), d(CR)),
		"FailedFlowAllSuccess":       flowOf(1, deploydb.FlowFailed, d(OK)),
		"SuccessFlowUnfinished":      flowOf(1, deploydb.FlowSuccess, d(OK), d(CR)),
		"CreatedFlowAllSuccess":      flowOf(1, deploydb.FlowCreated, d(OK), d(OK)),
		"CreatedFlowFailed":          flowOf(1, deploydb.FlowCreated, d(FA), d(NS)),
		"SupersededFlowWaiting":      flowOf(1, deploydb.FlowSuperseded, d(SU), d(NS)),
		"SupersededFlowAllSuccess":   flowOf(1, deploydb.FlowSuperseded, d(OK)),
		"UnknownDeploymentStatus":    flowOf(1, deploydb.FlowCreated, d("DEPLOYED")),
		"UnknownFlowStatus":          flowOf(1, "RUNNING", d(CR)),
		"UnknownResultStatus":        flowOf(1, deploydb.FlowCreated, d(CO, "FAILURE", rST)),
		"DuplicateDeploymentID":      dupID,
		"DeploymentOfOtherFlow":      otherFlow,
		"DeploymentOfOtherService":   otherService,
		"DeploymentOfOtherArtifact":  otherArtifact,
		"ResultOfOtherDeployment":    resultOfOther,
		"PromotionAttachedTwice":     sameName,
		"OutOfOrder":                 flowOf(1, deploydb.FlowCreated, d(CR).at(3), d(NS).at(1)),
		"SamePositionIDsOutOfOrder":  idOrder,
		"RetryOfNotFailed":           flowOf(1, deploydb.FlowCreated, d(OK), d(CR).at(0).retry()),
		"RetryWithoutReason":         flowOf(1, deploydb.FlowCreated, d(FA), d(CR).at(0)),
		"FirstWithRetryReason":       flowOf(1, deploydb.FlowCreated, d(CR).retry()),
		"RetryCurrentNotLatest":      flowOf(1, deploydb.FlowFailed, d(CR), d(FA).at(0).retry()),
		"TailDue":                    flowOf(1, deploydb.FlowCreated, d(CR), d(NS).waits(busy)),
		"FailedFlowTailDue":          flowOf(1, deploydb.FlowFailed, d(FA), d(NS).waits(busy)),
		"WaitingNotDue":              flowOf(1, deploydb.FlowCreated, d(NS).waits(busy).notDue()),
		"DueWithoutWaiting":          flowOf(1, deploydb.FlowCreated, d(NS).waits("")),
		"WaitingForNoReason":         flowOf(1, deploydb.FlowCreated, d(NS).waits("because")),
		"CreatedWithWaiting":         flowOf(1, deploydb.FlowCreated, d(CR).waits(busy)),
		"SupersededWithWaiting":      flowOf(1, deploydb.FlowSuperseded, d(SU).waits(busy)),
		"DeployedNeverDue":           flowOf(1, deploydb.FlowCreated, d(CR).notDue()),
		"SucceededNeverDue":          flowOf(1, deploydb.FlowSuccess, d(OK).notDue()),
		"SoakOfCompletedNotDue":      flowOf(1, deploydb.FlowCreated, d(CO, rST).soaking(false)),
		"SoakOfFailedStillDue":       flowOf(1, deploydb.FlowFailed, d(FA, rST, rFA).soaking(true)),
		"SoakSucceededStillDue":      flowOf(1, deploydb.FlowCreated, d(CO, rOK, rST).soaking(true)),
		"SoakNotStartedDue":          flowOf(1, deploydb.FlowCreated, d(CR, rNS).soaking(true)),
		"CancelledWaitingStillDueNS": flowOf(1, deploydb.FlowCancelled, d(NS).waits(busy)),
	}
	basicDue := flowOf(1, deploydb.FlowCreated, d(CO, rST))
	basicDue.Deployments[0].Promotions[0].DueAt = t0
	broken["BasicResultDue"] = basicDue
	for name, f := range broken {
		t.Run("Err"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckInvariants(f); err == nil {
				t.Errorf("CheckInvariants = nil, want an error for\n%s", dump([]*deploydb.Flow{f}))
			}
		})
	}
}

func TestCheckServiceInvariants(t *testing.T) {
	t.Parallel()
	busy := func(id int64) string { return fmt.Sprintf("busy: deployment %d of 1.0.7 is active in env0", id) }
	locked := map[string]engine.EnvState{"env0": {Locked: true, LockReason: "incident 42", Frozen: true, FreezeReason: "weekend"}}
	frozen := map[string]engine.EnvState{"env0": {Frozen: true, FreezeReason: "weekend"}}
	free := map[string]engine.EnvState{}
	type test struct {
		flows []*deploydb.Flow
		envs  map[string]engine.EnvState
	}
	valid := map[string]test{
		"WaitsBusy":     {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(10)))}, free},
		"TwoWaitBusy":   {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CO, rST)), flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(10))), flowOf(3, deploydb.FlowCreated, d(NS).waits(busy(10)))}, free},
		"WaitsLocked":   {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("locked: incident 42"))}, locked},
		"WaitsFrozen":   {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("frozen: weekend"))}, frozen},
		"BusyAndLocked": {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(ST)), flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(10)))}, locked},
		"UnknownEnvs":   {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("locked: whatever")), flowOf(2, deploydb.FlowCreated, d(NS).in("env1").waits("frozen: who knows"))}, nil},
		"HeldByCancelledFlow": {[]*deploydb.Flow{flowOf(1, deploydb.FlowCancelled, d(CO, rST), d(CA)),
			flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(10)))}, free},
		"ActiveInTwoEnvironments": {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(OK), d(CR)), flowOf(2, deploydb.FlowCreated, d(CR))}, free},
		"FinishedFlows": {[]*deploydb.Flow{flowOf(1, deploydb.FlowSuccess, d(OK)), flowOf(2, deploydb.FlowSuperseded, d(SU)),
			flowOf(3, deploydb.FlowFailed, d(FA), d(NS)), flowOf(4, deploydb.FlowCreated, d(CR))}, free},
	}
	for name, tt := range valid {
		t.Run("OK"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckServiceInvariants(tt.flows, tt.envs); err != nil {
				t.Errorf("CheckServiceInvariants = %v, want nil", err)
			}
		})
	}
	ledger := flowOf(2, deploydb.FlowCreated, d(CR).in("env1"))
	ledger.Service = "ledger"
	for i := range ledger.Deployments {
		ledger.Deployments[i].Service = "ledger"
	}
	sharedDep := flowOf(2, deploydb.FlowCreated, d(CR).in("env1"))
	sharedDep.Deployments[0].ID = 10
	sharedResult := flowOf(2, deploydb.FlowCreated, d(CO, rST).in("env1"))
	sharedResult.Deployments[0].Promotions[0].ID = 100
	broken := map[string]test{
		"TwoActiveInOneEnvironment": {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), flowOf(2, deploydb.FlowCreated, d(CO, rST))}, free},
		"ActiveAndCancelledHolder":  {[]*deploydb.Flow{flowOf(1, deploydb.FlowCancelled, d(CO, rST)), flowOf(2, deploydb.FlowCreated, d(ST))}, free},
		"Stuck":                     {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits(busy(10)))}, free},
		"StuckUnknownEnvs":          {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits(busy(10)))}, nil},
		"StuckBehindFinished":       {[]*deploydb.Flow{flowOf(1, deploydb.FlowFailed, d(FA)), flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(10)))}, free},
		"StuckOtherEnvLocked":       {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).in("env1").waits("locked: incident 42"))}, locked},
		"WrongHolder":               {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), flowOf(2, deploydb.FlowCreated, d(NS).waits(busy(99)))}, free},
		"BusyButSaysLocked":         {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), flowOf(2, deploydb.FlowCreated, d(NS).waits("locked: incident 42"))}, locked},
		"LockGone":                  {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("locked: incident 42"))}, free},
		"LockReasonStale":           {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("locked: incident 41"))}, locked},
		"LockedSaysFrozen":          {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("frozen: weekend"))}, locked},
		"FreezeOver":                {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("frozen: weekend"))}, free},
		"NeverStarted":              {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS), d(NS))}, free},
		"NeverStartedAfterSuccess":  {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(OK), d(NS))}, free},
		"OtherService":              {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), ledger}, free},
		"SameFlowTwice":             {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), flowOf(1, deploydb.FlowSuccess, d(OK).in("env1"))}, free},
		"DeploymentInTwoFlows":      {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR)), sharedDep}, free},
		"ResultInTwoFlows":          {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CO, rST)), sharedResult}, free},
		"BrokenFlow":                {[]*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(CR), d(CR).in("env1"))}, free},
	}
	for name, tt := range broken {
		t.Run("Err"+name, func(t *testing.T) {
			t.Parallel()
			if err := engine.CheckServiceInvariants(tt.flows, tt.envs); err == nil {
				t.Errorf("CheckServiceInvariants = nil, want an error for\n%s", dump(tt.flows))
			}
		})
	}

	t.Run("CheckPlan", func(t *testing.T) {
		t.Parallel()
		p := engine.NewPlan(service, []*deploydb.Flow{flowOf(1, deploydb.FlowCreated, d(NS).waits("locked: incident 42"))}, t0)
		if err := engine.CheckPlan(p); err == nil {
			t.Error("CheckPlan = nil for a deployment waiting for a lock the plan does not have")
		}
		p.Envs["env0"] = engine.EnvState{Locked: true, LockReason: "incident 42"}
		if err := engine.CheckPlan(p); err != nil {
			t.Errorf("CheckPlan = %v", err)
		}
		if err := engine.CheckPlan(engine.NewPlan(service, nil, t0)); err != nil {
			t.Errorf("CheckPlan of no flows = %v", err)
		}
	})
}
