// Package deploydb holds DeployDB's domain: the records it keeps, their
// statuses, the rules of the deployment state machine, the store contract
// and the one error type. It imports nothing of ours.
package deploydb

import (
	"context"
	"strconv"
	"time"
)

// Field limits of an artifact (as in DeployDB 0.3).
const (
	MaxArtifactFieldLen   = 8192 // group, name, sourceUrl
	MaxArtifactVersionLen = 255
)

// Artifact is one immutable, versioned file. Unique on (group, name, version).
type Artifact struct {
	ID        int64  `json:"id"`
	Group     string `json:"group"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	SourceURL string `json:"sourceUrl"`
	CreatedAt Time   `json:"createdAt"`
	// PublishedBy names who published it (a token's name, or anonymous);
	// empty for artifacts published before it was kept.
	PublishedBy string `json:"publishedBy,omitempty"`
	// Commits are the commits the artifact carries, as its publisher gave
	// them (the changes it brings since the artifact before it). Read
	// with the artifact itself, not with the artifacts that lists and
	// deployments embed.
	Commits []Commit `json:"commits,omitempty"`
}

// Commit is one source commit an artifact carries.
type Commit struct {
	SHA       string `json:"sha"`
	Timestamp Time   `json:"timestamp"`
}

// Limits of an artifact's commits.
const (
	MaxCommits      = 1000
	MaxCommitSHALen = 255
)

// OldestCommit returns the time of the artifact's oldest commit, zero when
// it carries none.
func (a *Artifact) OldestCommit() Time {
	var t Time
	for _, c := range a.Commits {
		if t.IsZero() || c.Timestamp.Before(t.Time) {
			t = c.Timestamp
		}
	}
	return t
}

// Validate checks the fields a publisher supplies. Returns EINVALID listing
// every missing or too long field.
func (a *Artifact) Validate() error {
	var fields []FieldError
	check := func(name, v string, max int) {
		switch {
		case v == "":
			fields = append(fields, FieldError{Field: name, Message: "is required"})
		case len(v) > max:
			fields = append(fields, FieldError{Field: name, Message: "must be at most " + itoa(max) + " characters"})
		}
	}
	check("group", a.Group, MaxArtifactFieldLen)
	check("name", a.Name, MaxArtifactFieldLen)
	check("version", a.Version, MaxArtifactVersionLen)
	check("sourceUrl", a.SourceURL, MaxArtifactFieldLen)
	if len(a.Commits) > MaxCommits {
		fields = append(fields, FieldError{Field: "commits", Message: "must be at most " + itoa(MaxCommits) + " commits"})
	}
	for i, c := range a.Commits {
		if i == MaxCommits {
			break
		}
		field := "commits[" + itoa(i) + "]"
		switch {
		case c.SHA == "":
			fields = append(fields, FieldError{Field: field + ".sha", Message: "is required"})
		case len(c.SHA) > MaxCommitSHALen:
			fields = append(fields, FieldError{Field: field + ".sha", Message: "must be at most " + itoa(MaxCommitSHALen) + " characters"})
		}
		if c.Timestamp.IsZero() {
			fields = append(fields, FieldError{Field: field + ".timestamp", Message: "is required (RFC 3339)"})
		}
	}
	if len(fields) > 0 {
		msg := "invalid artifact: " + fields[0].Field + " " + fields[0].Message
		if len(fields) > 1 {
			msg += " (and " + itoa(len(fields)-1) + " more)"
		}
		return &Error{Code: EINVALID, Message: msg, Fields: fields}
	}
	return nil
}

// Module returns "group:name".
func (a *Artifact) Module() string { return a.Group + ":" + a.Name }

// Deployment is one artifact delivered to one environment for one service.
type Deployment struct {
	ID          int64             `json:"id"`
	Artifact    Artifact          `json:"artifact"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	Status      DeploymentStatus  `json:"status"`
	Reason      Reason            `json:"reason"`
	Promotions  []PromotionResult `json:"promotions"`
	Flow        int64             `json:"flow"`
	// Position is the index of the environment in the flow's pipeline.
	Position int `json:"position"`
	// DueAt is when the deployment's turn came; zero while it is not due.
	DueAt Time `json:"dueAt"`
	// Waiting says why a due NOT_STARTED deployment has not been
	// activated: the environment is busy, locked or frozen.
	Waiting string `json:"waiting,omitempty"`
	// FailureStrategy is fixed when the flow is created, so that a config
	// reload does not change what happens to flows in progress.
	FailureStrategy FailureStrategy `json:"failureStrategy"`
	CreatedAt       Time            `json:"createdAt"`
	UpdatedAt       Time            `json:"updatedAt"`
	// When it was activated (became CREATED: the orchestrator was asked),
	// reported STARTED, reached COMPLETED (or SUCCESS without passing
	// through it) and finished (SUCCESS, FAILED, CANCELLED or
	// SUPERSEDED); zero (null) until then. Deployments recorded before
	// these were kept have them from their events.
	ActivatedAt Time `json:"activatedAt"`
	StartedAt   Time `json:"startedAt"`
	CompletedAt Time `json:"completedAt"`
	FinishedAt  Time `json:"finishedAt"`
	// Imported is set on a deployment imported from another tool's
	// history (POST /api/import).
	Imported bool `json:"imported,omitempty"`
}

// Moved records that the deployment moved to status s at t: its status,
// UpdatedAt and the time of that step.
func (d *Deployment) Moved(s DeploymentStatus, t Time) {
	d.Status, d.UpdatedAt = s, t
	switch s {
	case DeploymentCreated:
		d.ActivatedAt = t
	case DeploymentStarted:
		d.StartedAt = t
	case DeploymentCompleted:
		d.CompletedAt = t
	case DeploymentSuccess:
		if d.CompletedAt.IsZero() {
			d.CompletedAt = t
		}
		d.FinishedAt = t
	case DeploymentFailed, DeploymentCancelled, DeploymentSuperseded:
		d.FinishedAt = t
	}
}

// StatusAt returns the deployment's status at instant t, from the times it
// moved: "" when it was not active yet (or is not known to have been).
func (d *Deployment) StatusAt(t time.Time) DeploymentStatus {
	switch {
	case !d.FinishedAt.IsZero() && !d.FinishedAt.After(t):
		return d.Status
	case !d.CompletedAt.IsZero() && !d.CompletedAt.After(t):
		return DeploymentCompleted
	case !d.StartedAt.IsZero() && !d.StartedAt.After(t):
		return DeploymentStarted
	case !d.ActivatedAt.IsZero() && !d.ActivatedAt.After(t):
		return DeploymentCreated
	}
	return ""
}

// PromotionResult records the outcome of one promotion for one deployment.
type PromotionResult struct {
	ID         int64  `json:"id"`
	Deployment int64  `json:"deployment"`
	Promotion  string `json:"promotion"`
	// Type is the promotion's type (basic, manual, soak) when the flow was
	// created.
	Type   string          `json:"type"`
	Status PromotionStatus `json:"status"`
	// SoakMs is a soak promotion's duration in milliseconds.
	SoakMs int64 `json:"soakMs,omitempty"`
	// DueAt is when a started soak result succeeds by itself.
	DueAt   Time   `json:"dueAt"`
	InfoURL string `json:"infoUrl"`
	// ReportedBy names who reported the result (the approver of a manual
	// promotion).
	ReportedBy string `json:"reportedBy,omitempty"`
	CreatedAt  Time   `json:"createdAt"`
	UpdatedAt  Time   `json:"updatedAt"`
}

// Flow is one artifact travelling through one service's pipeline.
type Flow struct {
	ID       int64    `json:"id"`
	Artifact Artifact `json:"artifact"`
	Service  string   `json:"service"`
	Pipeline string   `json:"pipeline"`
	// Reason is pipeline for a published artifact, rollback or hotfix for
	// the one-deployment flows those create.
	Reason      Reason       `json:"reason"`
	Status      FlowStatus   `json:"status"`
	Deployments []Deployment `json:"deployments"`
	// ConfigChecksum is the checksum of the config the flow was created under.
	ConfigChecksum string `json:"configChecksum"`
	CreatedAt      Time   `json:"createdAt"`
	UpdatedAt      Time   `json:"updatedAt"`
}

// Event is an immutable record of something that happened: the audit trail
// and the source of webhooks.
type Event struct {
	ID          int64     `json:"id"`
	Type        EventType `json:"type"`
	Service     string    `json:"service,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Artifact    int64     `json:"artifact,omitempty"`
	Flow        int64     `json:"flow,omitempty"`
	Deployment  int64     `json:"deployment,omitempty"`
	// Status is the deployment (or flow) status after the change.
	Status string `json:"status,omitempty"`
	// Detail says why, in words, when that is not obvious from the type.
	Detail string `json:"detail,omitempty"`
	Actor  string `json:"actor"`
	// Reason is why, in the words of the operator who acted (locks and
	// operator actions); empty for what the pipeline did by itself.
	Reason    string `json:"reason,omitempty"`
	CreatedAt Time   `json:"createdAt"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // gave up: retries exhausted or 410 Gone
)

// OutboxStats describes the webhook outbox: what is still to be delivered.
type OutboxStats struct {
	// Pending is the number of deliveries pending (not yet delivered nor
	// given up on).
	Pending int64
	// OldestPending is when the oldest pending delivery was queued (a
	// redelivered one counts from when it was first queued); zero when
	// none is pending.
	OldestPending time.Time
}

// Delivery is one webhook call owed: written to the outbox in the same
// transaction as the state change that caused it.
type Delivery struct {
	ID         int64     `json:"id"`
	Event      int64     `json:"event"`
	EventType  EventType `json:"eventType"`
	Deployment int64     `json:"deployment,omitempty"`
	// Hook is the name of the hook the call is for; empty on calls queued
	// before hooks had names.
	Hook string `json:"hook,omitempty"`
	URL  string `json:"url"`
	// ShownURL is the URL as it may be shown: rendered from the hook's URL
	// as written in the config, without the values of ${env:NAME}. Empty
	// on calls queued before it was kept.
	ShownURL    string `json:"-"`
	Method      string `json:"method"`
	ContentType string `json:"contentType"`
	// Headers are the hook's own headers, rendered. They may carry
	// credentials: never shown.
	Headers []HookHeader `json:"-"`
	Body    []byte       `json:"-"`
	// Context is the event as hook templates see it (a HookContext in
	// JSON), kept for a hook object, whose call is rendered when it is
	// sent.
	Context []byte `json:"-"`
	// Signed is set when the hook had secrets when the call was queued:
	// the call is then never sent unsigned.
	Signed   bool   `json:"signed,omitempty"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// NextAttemptAt is when the dispatcher may try again (pending only).
	NextAttemptAt Time   `json:"nextAttemptAt"`
	LastError     string `json:"lastError,omitempty"`
	CreatedAt     Time   `json:"createdAt"`
	UpdatedAt     Time   `json:"updatedAt"`
}

// Attempt is the record of one delivery attempt.
type Attempt struct {
	ID         int64         `json:"id"`
	Delivery   int64         `json:"delivery"`
	StatusCode int           `json:"statusCode,omitempty"`
	Latency    time.Duration `json:"latencyNs"`
	Response   string        `json:"response,omitempty"`
	Error      string        `json:"error,omitempty"`
	CreatedAt  Time          `json:"createdAt"`
}

// Page selects one page of a list: PageNumber is 0-based.
type Page struct {
	Number int
	Size   int
}

// Offset returns the number of rows before the page.
func (p Page) Offset() int { return p.Number * p.Size }

// Default and maximum page sizes of list endpoints.
const (
	DefaultPageSize = 20
	MaxPageSize     = 1000
)

// ArtifactFilter selects artifacts. Query matches a substring of group,
// name or version.
type ArtifactFilter struct {
	Query string
	Group string
	Name  string
	Page  Page
}

// DeploymentFilter selects deployments. Zero fields match everything.
type DeploymentFilter struct {
	Artifact    int64
	Service     string
	Environment string
	Flow        int64
	Status      DeploymentStatus
	// From and To select deployments created in [From, To) (an imported
	// deployment is created when it started); zero is unbounded.
	From, To time.Time
	// Cursor, when set, is the id of the last deployment of the page
	// before: the list goes on after it, in its order.
	Cursor    int64
	Ascending bool
	Page      Page
}

// FlowFilter selects flows.
type FlowFilter struct {
	Service   string
	Artifact  int64
	Ascending bool
	Page      Page
}

// EventFilter selects events with ids greater than After, oldest first.
// Zero fields match everything.
type EventFilter struct {
	After       int64
	Deployment  int64
	Service     string
	Environment string
	Type        EventType
	Actor       string
	Limit       int
}

// DeliveryFilter selects webhook deliveries.
type DeliveryFilter struct {
	Status     string
	Deployment int64
	// Hook matches deliveries for the hook of that name (an unnamed hook
	// is named by its URL as written in the config, and matched with or
	// without its query).
	Hook string
	Page Page
}

// FinishedFilter selects the deployments to one environment that
// succeeded or failed in [From, To), by when they finished.
type FinishedFilter struct {
	Environment string
	// Service, when set, selects one service's deployments.
	Service  string
	From, To time.Time
}

// Finished is one deployment that succeeded or failed, as the DORA
// figures count it.
type Finished struct {
	Deployment int64
	Service    string
	Status     DeploymentStatus // SUCCESS or FAILED
	Reason     Reason
	// FinishedAt is when it reached SUCCESS or FAILED.
	FinishedAt time.Time
	// OldestCommit is the timestamp of the oldest commit of its artifact;
	// zero when the artifact carries no commits.
	OldestCommit time.Time
}

// StatusAtFilter asks for the status matrix as it was at an instant.
type StatusAtFilter struct {
	At time.Time
	// Services, when set, are the only services answered for (at most
	// MaxStatusServices).
	Services []string
}

// DeploymentReport is what an orchestrator reports about a deployment.
type DeploymentReport struct {
	Deployment int64
	Status     DeploymentStatus
	Actor      string
}

// PromotionReport is what a test job reports about a deployment.
type PromotionReport struct {
	Deployment int64
	Promotion  string
	Status     PromotionStatus
	InfoURL    string
	Actor      string
	// Caller is who reports, for manual promotions: its groups must hold
	// the promotion's allowedGroup. Nil skips the check (DeployDB's own
	// reports: soak promotions).
	Caller *Caller
}

// IdempotencyTTL is how long the response to a request with an
// Idempotency-Key is kept for retries.
const IdempotencyTTL = 24 * time.Hour

// IdempotentResponse is the stored response to a write request that carried
// an Idempotency-Key.
type IdempotentResponse struct {
	Key string
	// RequestHash identifies the request (method, path and body), so that
	// a key reused for a different request is refused.
	RequestHash string
	Status      int
	Location    string
	Body        []byte
	CreatedAt   Time
}

// Lock holds activation in an environment (DESIGN.md §3).
type Lock struct {
	Environment string `json:"environment"`
	Reason      string `json:"reason"`
	Actor       string `json:"actor"`
	CreatedAt   Time   `json:"createdAt"`
}

// Action is an operator's request, audited with who and why.
type Action struct {
	Actor  string
	Reason string
}

// HotfixRequest asks to deploy a chosen artifact to an environment out of
// pipeline order.
type HotfixRequest struct {
	Artifact    int64
	Service     string
	Environment string
	Action
}

// StatusCell is what the store keeps for one (service, environment) of the
// status matrix. Nil deployments mean none.
type StatusCell struct {
	Service      string      `json:"service"`
	Environment  string      `json:"environment"`
	Current      *Deployment `json:"current"`
	CurrentSince Time        `json:"currentSince"`
	InFlight     *Deployment `json:"inFlight"`
	LastAttempt  *Deployment `json:"lastAttempt"`
	LastGood     *Deployment `json:"lastKnownGood"`
}

// StatusChanges is what changed in the status matrix since a version.
type StatusChanges struct {
	// Version is the matrix's version now.
	Version int64
	// All is set when more than rows changed (a lock, an environment,
	// more than MaxStatusServices services), or when the version given
	// says nothing about this database: read it all again.
	All bool
	// Services are those whose rows changed, unless All.
	Services []string
}

// MaxStatusServices is the most services FindStatus takes and
// StatusChanges names.
const MaxStatusServices = 100

// AttemptResult is the outcome of one delivery attempt, as the dispatcher
// records it.
type AttemptResult struct {
	Attempt Attempt
	// Done ends the delivery with Status (delivered or failed); otherwise
	// it is retried at NextAttemptAt.
	Done          bool
	Status        string
	NextAttemptAt time.Time
}

// Store keeps DeployDB's history. Every method that changes state does so in
// one transaction, together with the events and outbox rows the change
// causes, and applies the engine's rules inside it, so that concurrent
// callers serialize: exactly one wins a race, the others get ECONFLICT.
//
// Implementations: sqlite and postgres; storetest holds the
// conformance suite every implementation passes.
type Store interface {
	// PublishArtifact stores a new artifact and creates one flow per
	// service of cfg that consumes it, activating each flow's first
	// environment. Returns EINVALID for bad fields, ECONFLICT if
	// (group, name, version) exists, ENOTFOUND if no service consumes it.
	PublishArtifact(ctx context.Context, cfg *Config, a Artifact, actor string) (*Artifact, []*Flow, error)
	// FindArtifact returns ENOTFOUND if the artifact does not exist.
	FindArtifact(ctx context.Context, id int64) (*Artifact, error)
	// FindArtifacts returns matching artifacts, newest first.
	FindArtifacts(ctx context.Context, f ArtifactFilter) ([]*Artifact, error)

	// ReportDeployment applies an orchestrator report. Returns ENOTFOUND
	// for an unknown deployment, ECONFLICT (with the current deployment)
	// when the transition is not allowed.
	ReportDeployment(ctx context.Context, cfg *Config, r DeploymentReport) (*Deployment, error)
	// ReportPromotion records a promotion result. Returns ENOTFOUND for an
	// unknown deployment or a promotion not attached to it, ECONFLICT when
	// the deployment does not await that result.
	ReportPromotion(ctx context.Context, cfg *Config, r PromotionReport) (*PromotionResult, error)
	// FindDeployment returns ENOTFOUND if the deployment does not exist.
	FindDeployment(ctx context.Context, id int64) (*Deployment, error)
	// FindDeployments returns matching deployments, newest first unless
	// f.Ascending.
	FindDeployments(ctx context.Context, f DeploymentFilter) ([]*Deployment, error)
	// FindPromotionResult returns ENOTFOUND unless result id belongs to
	// deployment.
	FindPromotionResult(ctx context.Context, deployment, id int64) (*PromotionResult, error)

	// FindFlow returns ENOTFOUND if the flow does not exist.
	FindFlow(ctx context.Context, id int64) (*Flow, error)
	// FindFlows returns matching flows with their deployments.
	FindFlows(ctx context.Context, f FlowFilter) ([]*Flow, error)

	// FindEvents returns events after f.After, oldest first.
	FindEvents(ctx context.Context, f EventFilter) ([]*Event, error)
	// EventsCommitted returns a channel that is closed after the next
	// commit that recorded events, for live views to wait on; call it again
	// for the commit after that.
	EventsCommitted() <-chan struct{}
	// EventsRecorded returns how many events of each type the commits of
	// this store (this process) have recorded since it was opened: the
	// counts behind the metric of state transitions. Types not recorded
	// yet are absent.
	EventsRecorded() map[EventType]int64
	// LastEventID returns the id of the latest event recorded, 0 if none:
	// where a reader that has the state as of now starts following the
	// log.
	LastEventID(ctx context.Context) (int64, error)

	// CancelFlow cancels a flow: its deployments that have not completed
	// become CANCELLED. Returns ENOTFOUND, or ECONFLICT when the flow is
	// finished.
	CancelFlow(ctx context.Context, cfg *Config, id int64, a Action) (*Flow, error)
	// RetryDeployment makes a FAILED deployment due again, as a new
	// deployment with reason retry. Returns ENOTFOUND, or ECONFLICT unless
	// it is the latest FAILED deployment of its flow.
	RetryDeployment(ctx context.Context, cfg *Config, id int64, a Action) (*Deployment, error)
	// Rollback deploys the last known good artifact of the deployment's
	// service to its environment, ahead of deployments waiting there.
	// Returns ENOTFOUND, or ECONFLICT when there is no last known good or a
	// rollback of that service there is waiting or active already.
	Rollback(ctx context.Context, cfg *Config, id int64, a Action) (*Deployment, error)
	// Hotfix deploys a chosen artifact to an environment out of pipeline
	// order, ahead of deployments waiting there. Returns ENOTFOUND for an
	// unknown artifact, EINVALID when the service does not consume it or
	// the environment is not in its pipeline.
	Hotfix(ctx context.Context, cfg *Config, r HotfixRequest) (*Deployment, error)
	// LockEnvironment holds activation in env. Returns ENOTFOUND for an
	// environment cfg does not define, ECONFLICT if it is locked already.
	LockEnvironment(ctx context.Context, cfg *Config, env string, a Action) (*Lock, error)
	// UnlockEnvironment releases the lock and activates what waited.
	// Returns ENOTFOUND if env is not locked.
	UnlockEnvironment(ctx context.Context, cfg *Config, env string, a Action) error
	// FindLocks returns the locks in force, by environment.
	FindLocks(ctx context.Context) (map[string]*Lock, error)
	// Tick applies what time does: soak results that are due succeed
	// (reported by the actor "deploydb"), and deployments that waited for a
	// freeze window to end are activated.
	// It returns when it next has something to do (zero if nothing).
	Tick(ctx context.Context, cfg *Config) (time.Time, error)
	// SyncEnvironments records environment.created, .modified and
	// .deleted events, with the webhooks they owe, for each environment
	// cfg adds, changes or removes compared with the configuration last
	// synced (kept in the store, so changes made while DeployDB was down
	// are announced too). The first sync of a new store announces every
	// environment; that of a store with a history made before
	// environments were kept announces none. It returns the events
	// recorded.
	SyncEnvironments(ctx context.Context, cfg *Config) ([]*Event, error)
	// FindStatus returns the status matrix as kept: one cell per
	// (service, environment) that has seen a deployment; only those of
	// the given services when there are any (at most MaxStatusServices).
	// Its deployments carry no promotion results.
	FindStatus(ctx context.Context, services ...string) ([]*StatusCell, error)
	// Import adds the deployments of another tool's history, each record
	// checked with ImportRecord.Validate. Artifacts are created (by actor,
	// at their first deployment's start) or matched by (group, name,
	// version); a deployment imported already (the same artifact, service,
	// environment and finish) is left as it is, so importing a file again
	// changes nothing. Imported deployments enter the status matrix where
	// they are the latest there by time. Returns EINVALID listing every
	// bad record by line (FieldError.Line), with nothing imported, when a
	// record is invalid or names an artifact differently from another
	// record or from the stored one (its sourceUrl or commits).
	Import(ctx context.Context, cfg *Config, rs []ImportRecord, actor string) (*ImportResult, error)
	// FindStatusAt returns the status matrix as it was at f.At, from the
	// times of the deployments' steps: each cell's deployments as they
	// were then (their status then, no step after it). Its cost grows
	// with the cells, not with the history. A cell whose first
	// deployment came after f.At is left out. Like FindStatus, at most
	// MaxStatusServices services.
	FindStatusAt(ctx context.Context, f StatusAtFilter) ([]*StatusCell, error)
	// FindCommits returns the commits the artifacts of r.Group:r.Name
	// created after artifact r.After, up to artifact r.UpTo, carry:
	// newest artifact first, each artifact's in the order given, at most
	// r.Limit. None when r.UpTo is not created after r.After.
	FindCommits(ctx context.Context, r CommitRange) ([]Commit, error)
	// FindFinished returns the deployments f selects, oldest first, and
	// after them, for each service whose last deployment of those failed,
	// the first deployment of that service in f.Environment that
	// succeeded at or after that failure's end (if one did): what the
	// recovery time of a failure at the end of the window is measured to.
	FindFinished(ctx context.Context, f FinishedFilter) ([]Finished, error)
	// StatusChanges says what the commits after version since changed in
	// what FindStatus and FindLocks return, whichever process on the
	// database made them, and returns the version now: a reader that
	// built a matrix after it read version since brings it up to date by
	// reading the services named again, or all of it. A negative since
	// (nothing built yet) gets All.
	StatusChanges(ctx context.Context, since int64) (StatusChanges, error)

	// DueDeliveries returns up to limit pending deliveries whose next
	// attempt is due at now, each the oldest pending one of its
	// (url, deployment), oldest first.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)
	// ClaimDeliveries is DueDeliveries for a dispatcher that will attempt
	// them: each returned delivery is claimed until now + lease (it is not
	// due again before then, unless ReleaseDeliveries or RecordAttempt ends
	// the claim), so that with several processes on one database each
	// delivery is attempted by one at a time, and one that dies
	// mid-attempt leaves it to another once the claim lapses. A store
	// that one process writes may keep the claims in memory.
	ClaimDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*Delivery, error)
	// ReleaseDeliveries ends the claims on the pending deliveries ids
	// (attempts cut short by a shutdown): they are due again at once.
	ReleaseDeliveries(ctx context.Context, ids []int64) error
	// NextDeliveryAt returns when the earliest pending delivery is due, or
	// the zero time if none is pending.
	NextDeliveryAt(ctx context.Context) (time.Time, error)
	// DeliveriesReady returns a channel that receives (coalesced) after a
	// commit that enqueued deliveries, so that dispatchers need not poll.
	DeliveriesReady() <-chan struct{}
	// OutboxStats returns how many deliveries are pending and when the
	// oldest of them was queued, in one cheap (indexed) query, for the
	// outbox gauges of /metrics.
	OutboxStats(ctx context.Context) (OutboxStats, error)
	// RecordAttempt stores an attempt and its outcome for a delivery.
	RecordAttempt(ctx context.Context, r AttemptResult) error
	// FindDeliveries returns deliveries, newest first.
	FindDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, error)
	// FindDelivery returns ENOTFOUND if the delivery does not exist.
	FindDelivery(ctx context.Context, id int64) (*Delivery, error)
	// Redeliver queues a delivery that failed (or was delivered) again, due
	// now, and records who asked and why. Returns ENOTFOUND, or ECONFLICT
	// when it is pending already.
	Redeliver(ctx context.Context, id int64, a Action) (*Delivery, error)
	// FindAttempts returns the attempts of one delivery, oldest first.
	FindAttempts(ctx context.Context, delivery int64) ([]*Attempt, error)

	// FindIdempotent returns the response stored for an Idempotency-Key.
	// Returns ENOTFOUND if there is none (or it expired).
	FindIdempotent(ctx context.Context, key string) (*IdempotentResponse, error)
	// SaveIdempotent stores the response to a request that carried an
	// Idempotency-Key, unless one is stored for that key already, and
	// forgets responses older than IdempotencyTTL.
	SaveIdempotent(ctx context.Context, r IdempotentResponse) error

	// Ping checks the database is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

func itoa(n int) string { return strconv.Itoa(n) }
