package sqlite

import (
	"context"
	"time"

	"github.com/deploydb/deploydb"
)

func notYet(what string) error {
	return deploydb.Errorf(deploydb.EINTERNAL, "sqlite: %s is being built", what)
}

// CancelFlow cancels a flow.
func (s *Store) CancelFlow(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (*deploydb.Flow, error) {
	return nil, notYet("CancelFlow")
}

// RetryDeployment retries a failed deployment.
func (s *Store) RetryDeployment(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (*deploydb.Deployment, error) {
	return nil, notYet("RetryDeployment")
}

// Rollback deploys the last known good artifact.
func (s *Store) Rollback(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (*deploydb.Deployment, error) {
	return nil, notYet("Rollback")
}

// Hotfix deploys a chosen artifact out of pipeline order.
func (s *Store) Hotfix(ctx context.Context, cfg *deploydb.Config, r deploydb.HotfixRequest) (*deploydb.Deployment, error) {
	return nil, notYet("Hotfix")
}

// LockEnvironment holds activation in env.
func (s *Store) LockEnvironment(ctx context.Context, cfg *deploydb.Config, env string, a deploydb.Action) (*deploydb.Lock, error) {
	return nil, notYet("LockEnvironment")
}

// UnlockEnvironment releases a lock.
func (s *Store) UnlockEnvironment(ctx context.Context, cfg *deploydb.Config, env string, a deploydb.Action) error {
	return notYet("UnlockEnvironment")
}

// FindLocks returns the locks in force.
func (s *Store) FindLocks(ctx context.Context) (map[string]*deploydb.Lock, error) {
	return nil, notYet("FindLocks")
}

// Tick applies what time does.
func (s *Store) Tick(ctx context.Context, cfg *deploydb.Config) (time.Time, error) {
	return time.Time{}, nil
}

// FindStatus returns the status matrix.
func (s *Store) FindStatus(ctx context.Context) ([]*deploydb.StatusCell, error) {
	return nil, notYet("FindStatus")
}
