package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/deploydb/deploydb"
)

// EnvironmentView is an environment as the server shows it: as configured,
// with its lock and whether a freeze window holds activation there now.
type EnvironmentView struct {
	deploydb.Environment
	// Lock is the lock in force, nil when the environment is not locked.
	Lock *deploydb.Lock `json:"lock"`
	// Frozen says why a freeze window holds activation now, "" when none
	// does.
	Frozen string `json:"frozen,omitempty"`
}

// The status matrix as the server sends it.
type (
	// Status is the service × environment matrix.
	Status = deploydb.Matrix
	// StatusEnvironment is one column of the matrix.
	StatusEnvironment = deploydb.MatrixEnvironment
	// StatusService is one row of the matrix.
	StatusService = deploydb.MatrixService
	// StatusCell says what runs in one environment for one service.
	StatusCell = deploydb.MatrixCell
	// CellDeployment is a deployment as the matrix shows it.
	CellDeployment = deploydb.MatrixDeployment
)

// actionInput is the body of an operator action.
type actionInput struct {
	Reason string `json:"reason"`
}

// Status returns the service × environment matrix; with service set, only
// the rows of services whose name contains it.
func (c *Client) Status(ctx context.Context, service string) (*Status, error) {
	return c.StatusAt(ctx, service, time.Time{})
}

// StatusAt returns the status matrix as it was at instant at (the matrix
// of now when at is zero), of the services whose name contains service
// (all when empty). Returns EBADREQUEST for an instant in the future.
func (c *Client) StatusAt(ctx context.Context, service string, at time.Time) (*Status, error) {
	q := url.Values{}
	setIf(q, "service", service)
	if !at.IsZero() {
		q.Set("at", deploydb.NewTime(at).String())
	}
	var out Status
	if err := c.do(ctx, http.MethodGet, "/api/status", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnvironmentViews returns the configured environments with their locks
// and freezes in force.
func (c *Client) EnvironmentViews(ctx context.Context) ([]*EnvironmentView, error) {
	var out []*EnvironmentView
	if err := c.do(ctx, http.MethodGet, "/api/environments", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// EnvironmentView returns one configured environment with its lock and
// freeze in force. Returns ENOTFOUND if it is not configured.
func (c *Client) EnvironmentView(ctx context.Context, name string) (*EnvironmentView, error) {
	var out EnvironmentView
	if err := c.getNamed(ctx, "environment", "/api/environments/", name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LockEnvironment locks environment name: nothing is activated there until
// it is unlocked; what runs there is not touched. The reason is required.
// Returns EINVALID without a reason, ENOTFOUND for an environment that is
// not configured, ECONFLICT if it is locked already (the error's Current
// then holds the lock in force).
func (c *Client) LockEnvironment(ctx context.Context, name, reason string, opts ...CallOption) (*deploydb.Lock, error) {
	if err := checkName("environment", name); err != nil {
		return nil, err
	}
	var out deploydb.Lock
	if err := c.do(ctx, http.MethodPost, "/api/environments/"+url.PathEscape(name)+"/lock", nil, actionInput{reason}, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnlockEnvironment releases the lock of environment name; what waited
// there is activated. The reason is optional: an empty one is not sent.
// Returns ENOTFOUND if the environment is not locked.
func (c *Client) UnlockEnvironment(ctx context.Context, name, reason string, opts ...CallOption) error {
	if err := checkName("environment", name); err != nil {
		return err
	}
	var in any
	if reason != "" {
		in = actionInput{reason}
	}
	return c.do(ctx, http.MethodDelete, "/api/environments/"+url.PathEscape(name)+"/lock", nil, in, nil, opts...)
}

// CancelFlow cancels flow id: its deployments that have not completed
// (NOT_STARTED, CREATED, STARTED) become CANCELLED. Returns the flow
// afterwards. The reason is required. Returns EINVALID without a reason,
// ENOTFOUND for an unknown flow, ECONFLICT when the flow is finished.
func (c *Client) CancelFlow(ctx context.Context, id int64, reason string, opts ...CallOption) (*deploydb.Flow, error) {
	if err := checkID("flow id", id); err != nil {
		return nil, err
	}
	var out deploydb.Flow
	if err := c.do(ctx, http.MethodPost, "/api/flows/"+itoa(id)+"/cancel", nil, actionInput{reason}, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// RetryDeployment retries FAILED deployment id: the server creates a new
// deployment (reason retry), activated once its environment is free, and
// returns it. The reason is required. Returns EINVALID without a reason,
// ENOTFOUND for an unknown deployment, ECONFLICT unless the deployment is
// the latest FAILED one of a FAILED flow.
func (c *Client) RetryDeployment(ctx context.Context, id int64, reason string, opts ...CallOption) (*deploydb.Deployment, error) {
	return c.deploymentAction(ctx, id, "retry", reason, opts)
}

// RollbackDeployment rolls the service of deployment id back to its last
// known good artifact in that environment: the server creates a deployment
// of it (reason rollback), ahead of those waiting there, and returns it.
// The reason is required. Returns EINVALID without a reason, ENOTFOUND for
// an unknown deployment, ECONFLICT when there is no last known good.
func (c *Client) RollbackDeployment(ctx context.Context, id int64, reason string, opts ...CallOption) (*deploydb.Deployment, error) {
	return c.deploymentAction(ctx, id, "rollback", reason, opts)
}

func (c *Client) deploymentAction(ctx context.Context, id int64, action, reason string, opts []CallOption) (*deploydb.Deployment, error) {
	if err := checkID("deployment id", id); err != nil {
		return nil, err
	}
	var out deploydb.Deployment
	if err := c.do(ctx, http.MethodPost, "/api/deployments/"+itoa(id)+"/"+action, nil, actionInput{reason}, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// Hotfix deploys artifact r.Artifact for service r.Service to environment
// r.Environment out of pipeline order: the server creates a deployment
// (reason hotfix), ahead of those waiting there, and returns it. r.Reason
// is required; r.Actor is not sent, the server knows its caller. Returns
// EINVALID for a missing field or an artifact the service does not
// consume, ENOTFOUND for an unknown artifact, service or environment.
func (c *Client) Hotfix(ctx context.Context, r deploydb.HotfixRequest, opts ...CallOption) (*deploydb.Deployment, error) {
	if err := checkID("artifact id", r.Artifact); err != nil {
		return nil, err
	}
	in := struct {
		Artifact    int64  `json:"artifact"`
		Service     string `json:"service"`
		Environment string `json:"environment"`
		Reason      string `json:"reason"`
	}{r.Artifact, r.Service, r.Environment, r.Reason}
	var out deploydb.Deployment
	if err := c.do(ctx, http.MethodPost, "/api/deployments", nil, in, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}
