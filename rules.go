package deploydb

// transitions is the deployment state machine of DESIGN.md §3: for each
// status, the statuses it may move to and who moves it there.
var transitions = map[DeploymentStatus]map[DeploymentStatus]Mover{
	DeploymentNotStarted: {
		DeploymentCreated:    MoverEngine,
		DeploymentSuperseded: MoverEngine,
		DeploymentCancelled:  MoverOperator,
	},
	DeploymentCreated: {
		DeploymentStarted:   MoverReport,
		DeploymentCompleted: MoverReport,
		DeploymentFailed:    MoverReport,
		DeploymentCancelled: MoverOperator,
	},
	DeploymentStarted: {
		DeploymentCompleted: MoverReport,
		DeploymentFailed:    MoverReport,
		DeploymentCancelled: MoverOperator,
	},
	DeploymentCompleted: {
		DeploymentSuccess: MoverEngine,
		DeploymentFailed:  MoverEngine, // a promotion result failed
	},
}

// Mover says who may cause a transition.
type Mover string

// Movers of the state machine.
const (
	MoverEngine   Mover = "engine"   // DeployDB itself, as a consequence of another change
	MoverReport   Mover = "report"   // an orchestrator's report
	MoverOperator Mover = "operator" // an operator action
)

// CanTransition reports whether a deployment may move from one status to
// another, and who may move it.
func CanTransition(from, to DeploymentStatus) (Mover, bool) {
	m, ok := transitions[from][to]
	return m, ok
}

// CanReport reports whether an orchestrator may report status to for a
// deployment in status from.
func CanReport(from, to DeploymentStatus) bool {
	m, ok := CanTransition(from, to)
	return ok && m == MoverReport
}
