package deploydb

// DeploymentStatus is where one deployment is in the state machine
// (DESIGN.md §3).
type DeploymentStatus string

// Deployment statuses.
const (
	DeploymentNotStarted DeploymentStatus = "NOT_STARTED"
	DeploymentCreated    DeploymentStatus = "CREATED"
	DeploymentStarted    DeploymentStatus = "STARTED"
	DeploymentCompleted  DeploymentStatus = "COMPLETED"
	DeploymentSuccess    DeploymentStatus = "SUCCESS"
	DeploymentFailed     DeploymentStatus = "FAILED"
	DeploymentSuperseded DeploymentStatus = "SUPERSEDED"
	DeploymentCancelled  DeploymentStatus = "CANCELLED"
)

// DeploymentStatuses lists every deployment status in lifecycle order.
var DeploymentStatuses = []DeploymentStatus{
	DeploymentNotStarted, DeploymentCreated, DeploymentStarted, DeploymentCompleted,
	DeploymentSuccess, DeploymentFailed, DeploymentSuperseded, DeploymentCancelled,
}

// Valid reports whether s is a known status.
func (s DeploymentStatus) Valid() bool {
	for _, v := range DeploymentStatuses {
		if s == v {
			return true
		}
	}
	return false
}

// Active reports whether a deployment in status s occupies its
// (service, environment): it has been handed to the orchestrator and is not
// finished.
func (s DeploymentStatus) Active() bool {
	return s == DeploymentCreated || s == DeploymentStarted || s == DeploymentCompleted
}

// Terminal reports whether no transition leaves s.
func (s DeploymentStatus) Terminal() bool {
	return s == DeploymentSuccess || s == DeploymentFailed || s == DeploymentSuperseded || s == DeploymentCancelled
}

// FlowStatus is the state of one artifact's journey through a pipeline.
type FlowStatus string

// Flow statuses.
const (
	FlowCreated    FlowStatus = "CREATED"
	FlowSuccess    FlowStatus = "SUCCESS"
	FlowFailed     FlowStatus = "FAILED"
	FlowSuperseded FlowStatus = "SUPERSEDED"
	FlowCancelled  FlowStatus = "CANCELLED"
)

// Terminal reports whether the flow is finished.
func (s FlowStatus) Terminal() bool { return s != FlowCreated }

// PromotionStatus is the state of one promotion result.
type PromotionStatus string

// Promotion result statuses.
const (
	PromotionNotStarted PromotionStatus = "NOT_STARTED"
	PromotionStarted    PromotionStatus = "STARTED"
	PromotionSuccess    PromotionStatus = "SUCCESS"
	PromotionFailed     PromotionStatus = "FAILED"
)

// ParsePromotionReport parses the status of a reported promotion result.
// FAILURE is accepted as an alias of FAILED (the 0.3 Jenkins plugin sends
// it). Returns EBADREQUEST for a string that is no promotion status; a
// status that may not be reported (NOT_STARTED, STARTED) parses, and the
// engine refuses it as a conflict with the current state.
func ParsePromotionReport(s string) (PromotionStatus, error) {
	switch PromotionStatus(s) {
	case PromotionSuccess, PromotionFailed, PromotionNotStarted, PromotionStarted:
		return PromotionStatus(s), nil
	case "FAILURE":
		return PromotionFailed, nil
	}
	return "", &Error{Code: EBADREQUEST, Message: "unknown status " + quote(s) + "; a promotion result is SUCCESS or FAILED",
		Fields: []FieldError{{Field: "status", Message: "must be SUCCESS or FAILED, not " + quote(s)}}}
}

// ParseDeploymentReport parses the status an orchestrator reports. Returns
// EBADREQUEST for a string that is no deployment status; a status that may
// not be reported (NOT_STARTED, SUCCESS, ...) parses, and the engine
// refuses it as a conflict with the current state.
func ParseDeploymentReport(s string) (DeploymentStatus, error) {
	if st := DeploymentStatus(s); st.Valid() {
		return st, nil
	}
	return "", &Error{Code: EBADREQUEST, Message: "unknown status " + quote(s) + "; an orchestrator reports STARTED, COMPLETED or FAILED",
		Fields: []FieldError{{Field: "status", Message: "must be STARTED, COMPLETED or FAILED, not " + quote(s)}}}
}

func quote(s string) string {
	if s == "" {
		return "empty"
	}
	return "\"" + s + "\""
}

// Reason says why a deployment exists.
type Reason string

// Deployment reasons.
const (
	ReasonPipeline Reason = "pipeline"
	ReasonRollback Reason = "rollback"
	ReasonHotfix   Reason = "hotfix"
	ReasonRetry    Reason = "retry"
)

// FailureStrategy says what happens when a deployment fails.
type FailureStrategy string

// Failure strategies.
const (
	FailureNotify   FailureStrategy = "notify"
	FailureRollback FailureStrategy = "rollback"
	FailureIgnore   FailureStrategy = "ignore"
)

// EventType names something that happened; webhooks subscribe to them.
type EventType string

// Event types.
const (
	EventDeploymentCreated    EventType = "deployment.created"
	EventDeploymentStarted    EventType = "deployment.started"
	EventDeploymentCompleted  EventType = "deployment.completed"
	EventDeploymentFailed     EventType = "deployment.failed"
	EventDeploymentVerified   EventType = "deployment.verified"
	EventDeploymentSuperseded EventType = "deployment.superseded"
	EventPromotionCompleted   EventType = "promotion.completed"
	EventDeploymentCancelled  EventType = "deployment.cancelled"
	EventFlowCompleted        EventType = "flow.completed"
	EventEnvironmentLocked    EventType = "environment.locked"
	EventEnvironmentUnlocked  EventType = "environment.unlocked"
	// The configuration added, changed or removed an environment.
	EventEnvironmentCreated  EventType = "environment.created"
	EventEnvironmentModified EventType = "environment.modified"
	EventEnvironmentDeleted  EventType = "environment.deleted"
	EventArtifactPublished   EventType = "artifact.published"
	// Operator actions, recorded with who and why.
	EventOperatorRetry     EventType = "operator.retry"
	EventOperatorCancel    EventType = "operator.cancel"
	EventOperatorRollback  EventType = "operator.rollback"
	EventOperatorHotfix    EventType = "operator.hotfix"
	EventOperatorRedeliver EventType = "operator.redeliver"
	// An import of past deployments (POST /api/import): who imported how
	// many. Imported deployments have no events of their own, and an
	// import owes no webhook calls.
	EventHistoryImported EventType = "history.imported"
)

// EventTypes lists every event type DeployDB records.
var EventTypes = []EventType{
	EventArtifactPublished,
	EventDeploymentCreated, EventDeploymentStarted, EventDeploymentCompleted,
	EventDeploymentFailed, EventDeploymentVerified, EventDeploymentSuperseded,
	EventDeploymentCancelled, EventPromotionCompleted, EventFlowCompleted,
	EventEnvironmentLocked, EventEnvironmentUnlocked,
	EventEnvironmentCreated, EventEnvironmentModified, EventEnvironmentDeleted,
	EventOperatorRetry, EventOperatorCancel, EventOperatorRollback, EventOperatorHotfix, EventOperatorRedeliver,
	EventHistoryImported,
}

// WebhookEvents lists the events a webhook may subscribe to.
var WebhookEvents = []EventType{
	EventDeploymentCreated, EventDeploymentStarted, EventDeploymentCompleted,
	EventDeploymentFailed, EventDeploymentVerified, EventDeploymentSuperseded,
	EventDeploymentCancelled, EventPromotionCompleted, EventFlowCompleted,
	EventEnvironmentLocked, EventEnvironmentUnlocked,
	EventEnvironmentCreated, EventEnvironmentModified, EventEnvironmentDeleted,
}

// CDEventsEvents lists the events a hook of format cdevents can send: the
// ones that have a CDEvent (deployment.completed is service.deployed,
// service.upgraded or service.rolledback).
var CDEventsEvents = []EventType{
	EventDeploymentCompleted,
	EventEnvironmentCreated, EventEnvironmentModified, EventEnvironmentDeleted,
}
