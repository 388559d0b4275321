package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
)

// operatorEvent records an operator action, with who and why, as an event
// that fires no webhook (what the action causes fires its own).
func (s *Store) operatorEvent(ctx context.Context, tx *wtx, t deploydb.EventType, f *deploydb.Flow, d *deploydb.Deployment, a deploydb.Action, detail string) error {
	ev := &deploydb.Event{Type: t, Service: f.Service, Artifact: f.Artifact.ID, Flow: f.ID, Status: string(f.Status), Detail: detail, Actor: a.Actor, Reason: a.Reason, CreatedAt: s.now()}
	if d != nil {
		ev.Deployment, ev.Environment, ev.Artifact, ev.Status = d.ID, d.Environment, d.Artifact.ID, string(d.Status)
	}
	_, err := s.insertEvent(ctx, tx, ev)
	return err
}

// CancelFlow cancels a flow.
func (s *Store) CancelFlow(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (_ *deploydb.Flow, err error) {
	defer s.classify(&err)
	var out *deploydb.Flow
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		f, err := findFlow(ctx, tx, id)
		if err != nil {
			return err
		}
		p, err := s.loadPlan(ctx, tx, cfg, f.Service, nil, f)
		if err != nil {
			return err
		}
		if err := engine.Cancel(p, id); err != nil {
			return err
		}
		if err := s.operatorEvent(ctx, tx, deploydb.EventOperatorCancel, p.Flow(id), nil, a, fmt.Sprintf("flow %d of %s cancelled", id, f.Artifact.Version)); err != nil {
			return err
		}
		if err := s.apply(ctx, tx, cfg, p, a); err != nil {
			return err
		}
		out = p.Flow(id)
		return nil
	})
	return out, err
}

// RetryDeployment makes a failed deployment due again as a new deployment.
func (s *Store) RetryDeployment(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (_ *deploydb.Deployment, err error) {
	defer s.classify(&err)
	var out *deploydb.Deployment
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		p, err := s.planOfDeployment(ctx, tx, cfg, id, nil)
		if err != nil {
			return err
		}
		if err := engine.CheckRetry(p, id); err != nil {
			return err
		}
		f, d := p.Deployment(id)
		nd := engine.NewRetry(d, p.Now)
		if err := insertDeployment(ctx, tx, &nd); err != nil {
			return err
		}
		engine.Retry(p, f.ID, nd)
		if err := s.operatorEvent(ctx, tx, deploydb.EventOperatorRetry, f, d, a, fmt.Sprintf("deployment %d retried as deployment %d", id, nd.ID)); err != nil {
			return err
		}
		if err := s.apply(ctx, tx, cfg, p, a); err != nil {
			return err
		}
		out = deploymentOf(p, nd.ID)
		return nil
	})
	return out, err
}

// Rollback deploys the last known good artifact of the deployment's service
// to its environment.
func (s *Store) Rollback(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (_ *deploydb.Deployment, err error) {
	defer s.classify(&err)
	var out *deploydb.Deployment
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		p, err := s.planOfDeployment(ctx, tx, cfg, id, nil)
		if err != nil {
			return err
		}
		f, d := p.Deployment(id)
		if pending := engine.PendingRollback(p, d.Environment); pending != nil {
			return &deploydb.Error{Code: deploydb.ECONFLICT, Current: deploymentOf(p, pending.ID),
				Message: fmt.Sprintf("%s is being rolled back in %s already: deployment %d of %s is %s", d.Service, d.Environment, pending.ID, pending.Artifact.Version, pending.Status)}
		}
		lkg := p.LastGood[d.Environment]
		if lkg == nil {
			return &deploydb.Error{Code: deploydb.ECONFLICT, Current: d,
				Message: fmt.Sprintf("%s has no last known good artifact in %s: nothing to roll back to", d.Service, d.Environment)}
		}
		rf := engine.NewRollbackFlow(f, d, *lkg, p.Now)
		if d.Imported {
			// An imported deployment went through no pipeline of
			// DeployDB's: the rollback is laid out from the config, with
			// the environment's promotions.
			if rf, err = engine.NewSingleFlow(cfg, d.Service, d.Environment, deploydb.ReasonRollback, *lkg, p.Now); err != nil {
				return err
			}
			rf.Deployments[0].FailureStrategy = deploydb.FailureNotify
		}
		if err := insertFlow(ctx, tx, rf); err != nil {
			return err
		}
		engine.Adopt(p, rf)
		if err := s.operatorEvent(ctx, tx, deploydb.EventOperatorRollback, f, d, a,
			fmt.Sprintf("%s in %s rolled back to %s (deployment %d)", d.Service, d.Environment, lkg.Version, rf.Deployments[0].ID)); err != nil {
			return err
		}
		if err := s.apply(ctx, tx, cfg, p, a); err != nil {
			return err
		}
		out = deploymentOf(p, rf.Deployments[0].ID)
		return nil
	})
	return out, err
}

// Hotfix deploys a chosen artifact to an environment out of pipeline order.
func (s *Store) Hotfix(ctx context.Context, cfg *deploydb.Config, r deploydb.HotfixRequest) (_ *deploydb.Deployment, err error) {
	defer s.classify(&err)
	svc, ok := cfg.Services[r.Service]
	if !ok {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "service %q is not configured", r.Service)
	}
	var out *deploydb.Deployment
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		art, err := scanOneArtifact(tx.QueryRowContext(ctx, `SELECT `+artifactColumns+` FROM artifacts a WHERE a.id = ?`, r.Artifact))
		if errors.Is(err, sql.ErrNoRows) {
			return deploydb.Errorf(deploydb.ENOTFOUND, "artifact %d not found", r.Artifact)
		} else if err != nil {
			return fmt.Errorf("store: find artifact: %w", err)
		}
		if !svc.Consumes(art.Group, art.Name) {
			return deploydb.Errorf(deploydb.EINVALID, "service %s does not consume %s", r.Service, art.Module())
		}
		f, err := engine.NewSingleFlow(cfg, r.Service, r.Environment, deploydb.ReasonHotfix, *art, s.now())
		if err != nil {
			return err
		}
		// The plan is loaded before the new flow exists, so that Adopt adds
		// the only copy of it.
		p, err := s.loadPlan(ctx, tx, cfg, r.Service, nil)
		if err != nil {
			return err
		}
		if err := insertFlow(ctx, tx, f); err != nil {
			return err
		}
		engine.Adopt(p, f)
		if err := s.operatorEvent(ctx, tx, deploydb.EventOperatorHotfix, f, &f.Deployments[0], r.Action,
			fmt.Sprintf("hotfix: %s:%s to %s", art.Module(), art.Version, r.Environment)); err != nil {
			return err
		}
		if err := s.apply(ctx, tx, cfg, p, r.Action); err != nil {
			return err
		}
		out = deploymentOf(p, f.Deployments[0].ID)
		return nil
	})
	return out, err
}

func scanOneArtifact(row *sql.Row) (*deploydb.Artifact, error) {
	var a deploydb.Artifact
	if err := scanArtifact(row, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// LockEnvironment holds activation in env.
func (s *Store) LockEnvironment(ctx context.Context, cfg *deploydb.Config, env string, a deploydb.Action) (_ *deploydb.Lock, err error) {
	defer s.classify(&err)
	if _, ok := cfg.Environments[env]; !ok {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "environment %q is not configured", env)
	}
	l := &deploydb.Lock{Environment: env, Reason: a.Reason, Actor: a.Actor, CreatedAt: s.now()}
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		// A failed statement aborts a PostgreSQL transaction: the lock
		// held already is found by ON CONFLICT, not by a unique violation.
		res, err := tx.ExecContext(ctx, `INSERT INTO env_locks (environment, reason, actor, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (environment) DO NOTHING`, env, l.Reason, l.Actor, ms(l.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: lock: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: lock: %w", err)
		} else if n == 0 {
			locks, err := findLocks(ctx, tx)
			if err != nil {
				return err
			}
			return &deploydb.Error{Code: deploydb.ECONFLICT, Message: fmt.Sprintf("environment %s is locked already: %s", env, locks[env].Reason), Current: locks[env]}
		}
		tx.whole = true // every cell of env shows the lock
		if err := s.record(ctx, tx, cfg, &deploydb.Event{Type: deploydb.EventEnvironmentLocked, Environment: env, Actor: a.Actor, Reason: a.Reason, CreatedAt: l.CreatedAt,
			Detail: "activation held in " + env}, nil, nil, false, nil); err != nil {
			return err
		}
		return s.reschedule(ctx, tx, cfg, env, a)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// UnlockEnvironment releases a lock and activates what waited.
func (s *Store) UnlockEnvironment(ctx context.Context, cfg *deploydb.Config, env string, a deploydb.Action) (err error) {
	defer s.classify(&err)
	return s.writeUnder(ctx, cfg, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM env_locks WHERE environment = ?`, env)
		if err != nil {
			return fmt.Errorf("store: unlock: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return deploydb.Errorf(deploydb.ENOTFOUND, "environment %q is not locked", env)
		}
		tx.whole = true
		if err := s.record(ctx, tx, cfg, &deploydb.Event{Type: deploydb.EventEnvironmentUnlocked, Environment: env, Actor: a.Actor, Reason: a.Reason, CreatedAt: s.now(),
			Detail: "activation released in " + env}, nil, nil, false, nil); err != nil {
			return err
		}
		return s.reschedule(ctx, tx, cfg, env, a)
	})
}

// reschedule runs the engine's scheduling of env for every service with a
// deployment due and waiting there.
func (s *Store) reschedule(ctx context.Context, tx *wtx, cfg *deploydb.Config, env string, a deploydb.Action) error {
	services, err := waitingServices(ctx, tx, env)
	if err != nil {
		return err
	}
	for _, svc := range services {
		p, err := s.loadPlan(ctx, tx, cfg, svc, nil)
		if err != nil {
			return err
		}
		engine.Schedule(p, env)
		if err := s.apply(ctx, tx, cfg, p, a); err != nil {
			return err
		}
	}
	return nil
}

// waitingServices returns the services with a deployment due and waiting
// in env.
func waitingServices(ctx context.Context, q querier, env string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT service FROM deployments WHERE environment = ? AND status = 'NOT_STARTED' AND due_at IS NOT NULL`, env)
	if err != nil {
		return nil, fmt.Errorf("store: waiting services: %w", err)
	}
	defer rows.Close()
	var services []string
	for rows.Next() {
		var svc string
		if err := rows.Scan(&svc); err != nil {
			return nil, fmt.Errorf("store: waiting services: %w", err)
		}
		services = append(services, svc)
	}
	return services, rows.Err()
}

func findLocks(ctx context.Context, q querier) (map[string]*deploydb.Lock, error) {
	rows, err := q.QueryContext(ctx, `SELECT environment, reason, actor, created_at FROM env_locks`)
	if err != nil {
		return nil, fmt.Errorf("store: find locks: %w", err)
	}
	defer rows.Close()
	out := map[string]*deploydb.Lock{}
	for rows.Next() {
		var l deploydb.Lock
		var created int64
		if err := rows.Scan(&l.Environment, &l.Reason, &l.Actor, &created); err != nil {
			return nil, fmt.Errorf("store: find locks: %w", err)
		}
		l.CreatedAt = deploydb.UnixMilli(created)
		out[l.Environment] = &l
	}
	return out, rows.Err()
}

// FindLocks returns the locks in force.
func (s *Store) FindLocks(ctx context.Context) (_ map[string]*deploydb.Lock, err error) {
	defer s.classify(&err)
	return findLocks(ctx, s.r)
}

// TickActor is the actor of what DeployDB does by itself as time passes.
const TickActor = "deploydb"

// Tick applies what time does: due soak results succeed; deployments that
// waited for a freeze window are activated once it ends.
func (s *Store) Tick(ctx context.Context, cfg *deploydb.Config) (_ time.Time, err error) {
	defer s.classify(&err)
	now := s.now()
	due, err := s.dueSoaks(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	var errs []error
	for _, sk := range due {
		_, err := s.ReportPromotion(ctx, cfg, deploydb.PromotionReport{Deployment: sk.deployment, Promotion: sk.promotion, Status: deploydb.PromotionSuccess, Actor: TickActor})
		if err != nil && deploydb.ErrorCode(err) != deploydb.ECONFLICT {
			errs = append(errs, err) // the other soaks and the freezes still get their turn
		}
	}
	// Environments where deployments wait for a freeze that has ended, or
	// that the config no longer defines (nothing can freeze them then).
	envs, err := frozenWaiters(ctx, s.r, s.indexedBy("deployments_due"))
	if err != nil {
		return time.Time{}, errors.Join(append(errs, err)...)
	}
	for _, name := range envs {
		if env, ok := cfg.Environments[name]; ok {
			if frozen, _, _ := env.FrozenAt(now.Time); frozen {
				continue
			}
		}
		if err := s.writeUnder(ctx, cfg, func(tx *wtx) error { return s.reschedule(ctx, tx, cfg, name, deploydb.Action{Actor: TickActor}) }); err != nil {
			errs = append(errs, err)
		}
	}
	var next time.Time
	for _, env := range cfg.Environments {
		if t := env.NextFreezeChange(now.Time); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	var soakNext sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(r.due_at) FROM promotion_results r JOIN deployments d ON d.id = r.deployment_id
		WHERE r.status = 'STARTED' AND r.due_at IS NOT NULL AND d.status = 'COMPLETED'`).Scan(&soakNext); err != nil {
		return time.Time{}, fmt.Errorf("store: next soak: %w", err)
	}
	if soakNext.Valid {
		if t := time.UnixMilli(soakNext.Int64); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, errors.Join(errs...)
}

// frozenWaiters returns the environments where a due deployment waits for a
// freeze window.
//
// Tick asks after every commit. The partial index of due deployments
// (deployments_due) holds a few rows; without statistics SQLite walked
// every NOT_STARTED deployment of the history instead (587,000 at 10 million
// deployments: 46 % of the server's CPU under a write load), so it is named.
func frozenWaiters(ctx context.Context, q querier, hint string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT environment FROM deployments`+hint+` WHERE status = 'NOT_STARTED' AND due_at IS NOT NULL AND waiting LIKE 'frozen%'`)
	if err != nil {
		return nil, fmt.Errorf("store: frozen waiters: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var env string
		if err := rows.Scan(&env); err != nil {
			return nil, fmt.Errorf("store: frozen waiters: %w", err)
		}
		out = append(out, env)
	}
	return out, rows.Err()
}

// soak is a soak promotion result that is due.
type soak struct {
	deployment int64
	promotion  string
}

// dueSoaks returns the soak results of COMPLETED deployments due at now.
func (s *Store) dueSoaks(ctx context.Context, now deploydb.Time) ([]soak, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.deployment_id, r.promotion FROM promotion_results r JOIN deployments d ON d.id = r.deployment_id
		WHERE r.status = 'STARTED' AND r.due_at IS NOT NULL AND r.due_at <= ? AND d.status = 'COMPLETED'`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("store: due soaks: %w", err)
	}
	defer rows.Close()
	var due []soak
	for rows.Next() {
		var sk soak
		if err := rows.Scan(&sk.deployment, &sk.promotion); err != nil {
			return nil, fmt.Errorf("store: due soaks: %w", err)
		}
		due = append(due, sk)
	}
	return due, rows.Err()
}

// FindStatus returns the status matrix as kept, the rows of the given
// services only when there are any. Its deployments carry no promotion
// results: the matrix does not show them.
//
// Two statements in one snapshot: the cells, then every deployment a cell
// names, found by a subquery of the cells (never a list of ids as
// parameters, which a full matrix of 1,000 × 20 would take past what
// either database binds).
func (s *Store) FindStatus(ctx context.Context, services ...string) (_ []*deploydb.StatusCell, err error) {
	defer s.classify(&err)
	if len(services) > maxStatusServices {
		return nil, deploydb.Errorf(deploydb.EINVALID, "the status of at most %d services at once, not %d", maxStatusServices, len(services))
	}
	cellsOf, args := `(SELECT * FROM env_state)`, []any{}
	if len(services) > 0 {
		cellsOf = `(SELECT * FROM env_state WHERE service IN (` + placeholders(len(services)) + `))`
		for _, svc := range services {
			args = append(args, svc)
		}
	}
	// Empty, not nil: the API writes an empty matrix as [], never null.
	out := []*deploydb.StatusCell{}
	err = s.snapshot(ctx, func(q querier) error {
		type ids struct{ current, inFlight, lastAttempt, lastGood int64 }
		var cells []ids
		rows, err := q.QueryContext(ctx, `SELECT service, environment, coalesce(current_id, 0), coalesce(current_since, 0), coalesce(in_flight_id, 0), coalesce(last_attempt_id, 0), coalesce(last_good_id, 0)
			FROM `+cellsOf+` e ORDER BY service`+s.d.Collate+`, environment`+s.d.Collate, args...)
		if err != nil {
			return fmt.Errorf("store: status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c deploydb.StatusCell
			var i ids
			var since int64
			if err := rows.Scan(&c.Service, &c.Environment, &i.current, &since, &i.inFlight, &i.lastAttempt, &i.lastGood); err != nil {
				return fmt.Errorf("store: status: %w", err)
			}
			if since != 0 {
				c.CurrentSince = deploydb.UnixMilli(since)
			}
			out = append(out, &c)
			cells = append(cells, i)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: status: %w", err)
		}
		rows.Close()
		if len(out) == 0 {
			return nil
		}
		rows, err = q.QueryContext(ctx, `WITH e AS `+cellsOf+`
			SELECT `+deploymentColumns+` FROM deployments d JOIN artifacts a ON a.id = d.artifact_id
			WHERE d.id IN (SELECT current_id FROM e UNION SELECT in_flight_id FROM e UNION SELECT last_attempt_id FROM e UNION SELECT last_good_id FROM e)`, args...)
		if err != nil {
			return fmt.Errorf("store: status: %w", err)
		}
		defer rows.Close()
		byID := map[int64]*deploydb.Deployment{}
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return fmt.Errorf("store: status: %w", err)
			}
			byID[d.ID] = d
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: status: %w", err)
		}
		for k, c := range out {
			c.Current, c.InFlight, c.LastAttempt, c.LastGood = byID[cells[k].current], byID[cells[k].inFlight], byID[cells[k].lastAttempt], byID[cells[k].lastGood]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxStatusServices bounds the services FindStatus takes, and so the
// parameters of its statements.
const maxStatusServices = deploydb.MaxStatusServices

// StatusChanges implements deploydb.Store: what the commits after version
// since changed in the status matrix, as moveStatusVersion noted it.
func (s *Store) StatusChanges(ctx context.Context, since int64) (_ deploydb.StatusChanges, err error) {
	defer s.classify(&err)
	var c deploydb.StatusChanges
	err = s.snapshot(ctx, func(q querier) error {
		var whole int64
		if err := q.QueryRowContext(ctx, `SELECT n, whole FROM status_version WHERE id = 1`).Scan(&c.Version, &whole); err != nil {
			return fmt.Errorf("store: status changes: %w", err)
		}
		// A version ahead of the database's (a database restored from a
		// backup, say) says nothing about it: all changed.
		if since < 0 || whole > since || since > c.Version {
			c.All = true
			return nil
		}
		if c.Version == since {
			return nil
		}
		rows, err := q.QueryContext(ctx, `SELECT service FROM status_services WHERE n > ? ORDER BY service LIMIT ?`, since, maxStatusServices+1)
		if err != nil {
			return fmt.Errorf("store: status changes: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var svc string
			if err := rows.Scan(&svc); err != nil {
				return fmt.Errorf("store: status changes: %w", err)
			}
			c.Services = append(c.Services, svc)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: status changes: %w", err)
		}
		if len(c.Services) > maxStatusServices {
			c.All, c.Services = true, nil
		}
		return nil
	})
	if err != nil {
		return deploydb.StatusChanges{}, err
	}
	return c, nil
}
