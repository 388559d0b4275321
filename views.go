package deploydb

// The views below are records as the HTTP API shows them, shared by the
// server (httpapi) and its Go client.

// Matrix is the service × environment matrix of GET /api/status.
type Matrix struct {
	// Environments are in pipeline order (one that keeps every
	// pipeline's; those of no pipeline last), with their locks.
	Environments []MatrixEnvironment `json:"environments"`
	Services     []MatrixService     `json:"services"`
	// At is the past instant the matrix is of (GET /api/status?at=);
	// absent from the matrix of now.
	At *Time `json:"at,omitempty"`
}

// MatrixEnvironment is one column of the matrix.
type MatrixEnvironment struct {
	Name   string `json:"name"`
	Lock   *Lock  `json:"lock"`
	Frozen string `json:"frozen,omitempty"`
}

// MatrixService is one row of the matrix: a cell per environment of the
// service's pipeline.
type MatrixService struct {
	Service  string       `json:"service"`
	Pipeline string       `json:"pipeline"`
	Cells    []MatrixCell `json:"cells"`
}

// MatrixCell says what runs in one environment for one service. Nil
// deployments mean none.
type MatrixCell struct {
	Environment string `json:"environment"`
	// Current is the latest deployment there that reached COMPLETED: its
	// status says whether it was verified (SUCCESS) or not yet.
	Current      *MatrixDeployment `json:"current"`
	CurrentSince Time              `json:"currentSince"`
	// InFlight is the active deployment there, if any.
	InFlight *MatrixDeployment `json:"inFlight"`
	// LastAttempt is set when the latest deployment there failed before it
	// completed: what runs there is then uncertain.
	LastAttempt   *MatrixDeployment `json:"lastAttempt"`
	LastKnownGood *MatrixDeployment `json:"lastKnownGood"`
	Locked        bool              `json:"locked"`
}

// MatrixDeployment is a deployment as the matrix shows it.
type MatrixDeployment struct {
	ID        int64            `json:"id"`
	Flow      int64            `json:"flow"`
	Artifact  MatrixArtifact   `json:"artifact"`
	Status    DeploymentStatus `json:"status"`
	Reason    Reason           `json:"reason"`
	UpdatedAt Time             `json:"updatedAt"`
}

// MatrixArtifact is an artifact as the matrix shows it: what it is, not
// where it came from. The matrix names thousands of them and is read
// often, so the rest (sourceUrl, createdAt, publishedBy) is left to
// GET /api/artifacts/{id} and GET /api/deployments/{id}.
type MatrixArtifact struct {
	ID      int64  `json:"id"`
	Group   string `json:"group"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// InMatrix returns a as the matrix shows it.
func (a Artifact) InMatrix() MatrixArtifact {
	return MatrixArtifact{ID: a.ID, Group: a.Group, Name: a.Name, Version: a.Version}
}

// Cell returns the service's cell of environment env, nil when env is not
// in the service's pipeline.
func (s *MatrixService) Cell(env string) *MatrixCell {
	for i := range s.Cells {
		if s.Cells[i].Environment == env {
			return &s.Cells[i]
		}
	}
	return nil
}

// DeliveryView is a webhook delivery as the API shows it: its URL without
// user info, query or fragment (they may carry secrets), and on a single
// delivery its attempts.
type DeliveryView struct {
	ID         int64     `json:"id"`
	Event      int64     `json:"event"`
	EventType  EventType `json:"eventType"`
	Deployment int64     `json:"deployment,omitempty"`
	// Hook is the name of the hook: its name in the config, or for a bare
	// URL hook the URL as written there.
	Hook        string `json:"hook,omitempty"`
	URL         string `json:"url"`
	Method      string `json:"method"`
	ContentType string `json:"contentType"`
	// Signed is set when the calls carry Standard Webhooks signatures.
	Signed        bool   `json:"signed,omitempty"`
	Status        string `json:"status" enum:"pending,delivered,failed"`
	Attempts      int    `json:"attempts"`
	NextAttemptAt Time   `json:"nextAttemptAt"`
	LastError     string `json:"lastError,omitempty"`
	CreatedAt     Time   `json:"createdAt"`
	UpdatedAt     Time   `json:"updatedAt"`
	// History lists every attempt, oldest first (single delivery only).
	History []*Attempt `json:"history,omitempty"`
}
