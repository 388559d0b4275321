package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
	"github.com/deploydb/deploydb/webhook"
)

// PublishArtifact stores a new artifact and starts its flows.
func (s *Store) PublishArtifact(ctx context.Context, cfg *deploydb.Config, a deploydb.Artifact, actor string) (*deploydb.Artifact, []*deploydb.Flow, error) {
	if err := a.Validate(); err != nil {
		return nil, nil, err
	}
	now := s.now()
	a.ID, a.CreatedAt = 0, now
	flows, err := engine.NewFlows(cfg, a, now)
	if err != nil {
		return nil, nil, err
	}
	enqueued := false
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO artifacts (grp, name, version, source_url, created_at) VALUES (?, ?, ?, ?, ?)`,
			a.Group, a.Name, a.Version, a.SourceURL, ms(now))
		if isUnique(err) {
			return deploydb.Errorf(deploydb.ECONFLICT, "artifact %s:%s already exists", a.Module(), a.Version)
		} else if err != nil {
			return fmt.Errorf("sqlite: insert artifact: %w", err)
		}
		if a.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: insert artifact: %w", err)
		}
		if _, err := s.insertEvent(ctx, tx, &deploydb.Event{Type: deploydb.EventArtifactPublished, Artifact: a.ID, Actor: actor, CreatedAt: now,
			Detail: fmt.Sprintf("%s:%s published", a.Module(), a.Version)}); err != nil {
			return err
		}
		for _, f := range flows {
			f.Artifact = a
			if err := insertFlow(ctx, tx, f); err != nil {
				return err
			}
			p := engine.NewPlan(f, now)
			engine.Start(p)
			n, err := s.apply(ctx, tx, cfg, p, actor)
			if err != nil {
				return err
			}
			enqueued = enqueued || n > 0
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if enqueued {
		s.wake()
	}
	return &a, flows, nil
}

// insertFlow inserts a new flow with its deployments and promotion results
// and fills in their ids.
func insertFlow(ctx context.Context, tx *sql.Tx, f *deploydb.Flow) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO flows (artifact_id, service, pipeline, status, config_checksum, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		f.Artifact.ID, f.Service, f.Pipeline, f.Status, f.ConfigChecksum, ms(f.CreatedAt), ms(f.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: insert flow: %w", err)
	}
	if f.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("sqlite: insert flow: %w", err)
	}
	for i := range f.Deployments {
		d := &f.Deployments[i]
		d.Flow, d.Artifact = f.ID, f.Artifact
		res, err := tx.ExecContext(ctx, `INSERT INTO deployments (flow_id, artifact_id, service, environment, position, status, reason, failure_strategy, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.Flow, d.Artifact.ID, d.Service, d.Environment, d.Position, d.Status, d.Reason, d.FailureStrategy, ms(d.CreatedAt), ms(d.UpdatedAt))
		if err != nil {
			return fmt.Errorf("sqlite: insert deployment: %w", err)
		}
		if d.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: insert deployment: %w", err)
		}
		for j := range d.Promotions {
			r := &d.Promotions[j]
			r.Deployment = d.ID
			res, err := tx.ExecContext(ctx, `INSERT INTO promotion_results (deployment_id, promotion, status, info_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				r.Deployment, r.Promotion, r.Status, r.InfoURL, ms(r.CreatedAt), ms(r.UpdatedAt))
			if err != nil {
				return fmt.Errorf("sqlite: insert promotion result: %w", err)
			}
			if r.ID, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("sqlite: insert promotion result: %w", err)
			}
		}
	}
	return nil
}

// ReportDeployment applies an orchestrator's report.
func (s *Store) ReportDeployment(ctx context.Context, cfg *deploydb.Config, r deploydb.DeploymentReport) (*deploydb.Deployment, error) {
	var out *deploydb.Deployment
	n, err := s.change(ctx, cfg, r.Deployment, r.Actor, func(p *engine.Plan) error {
		if err := engine.ReportDeployment(p, r.Deployment, r.Status); err != nil {
			return err
		}
		out = deploymentOf(p, r.Deployment)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.wake()
	}
	return out, nil
}

// ReportPromotion records a promotion result reported by a test job.
func (s *Store) ReportPromotion(ctx context.Context, cfg *deploydb.Config, r deploydb.PromotionReport) (*deploydb.PromotionResult, error) {
	var out *deploydb.PromotionResult
	n, err := s.change(ctx, cfg, r.Deployment, r.Actor, func(p *engine.Plan) error {
		res, err := engine.ReportPromotion(p, r.Deployment, r.Promotion, r.Status, r.InfoURL)
		out = res
		return err
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.wake()
	}
	return out, nil
}

// change loads the flow of deployment id in a write transaction, lets fn
// decide, and writes what changed. It returns the number of deliveries
// enqueued.
func (s *Store) change(ctx context.Context, cfg *deploydb.Config, id int64, actor string, fn func(p *engine.Plan) error) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var flowID int64
		err := tx.QueryRowContext(ctx, `SELECT flow_id FROM deployments WHERE id = ?`, id).Scan(&flowID)
		if errors.Is(err, sql.ErrNoRows) {
			return deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
		} else if err != nil {
			return fmt.Errorf("sqlite: find deployment: %w", err)
		}
		f, err := findFlow(ctx, tx, flowID)
		if err != nil {
			return err
		}
		p := engine.NewPlan(f, s.now())
		if err := fn(p); err != nil {
			return err
		}
		n, err = s.apply(ctx, tx, cfg, p, actor)
		return err
	})
	return n, err
}

// apply writes the rows a plan changed, its events and the deliveries they
// owe. It returns the number of deliveries enqueued.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, cfg *deploydb.Config, p *engine.Plan, actor string) (int, error) {
	for _, d := range p.ChangedDeployments() {
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ?, updated_at = ? WHERE id = ?`, d.Status, ms(d.UpdatedAt), d.ID); err != nil {
			return 0, fmt.Errorf("sqlite: update deployment: %w", err)
		}
	}
	for _, r := range p.ChangedResults() {
		if _, err := tx.ExecContext(ctx, `UPDATE promotion_results SET status = ?, info_url = ?, updated_at = ? WHERE id = ?`, r.Status, r.InfoURL, ms(r.UpdatedAt), r.ID); err != nil {
			return 0, fmt.Errorf("sqlite: update promotion result: %w", err)
		}
	}
	if p.FlowChanged() {
		if _, err := tx.ExecContext(ctx, `UPDATE flows SET status = ?, updated_at = ? WHERE id = ?`, p.Flow.Status, ms(p.Flow.UpdatedAt), p.Flow.ID); err != nil {
			return 0, fmt.Errorf("sqlite: update flow: %w", err)
		}
	}
	n := 0
	for _, em := range p.Events {
		ev := &deploydb.Event{
			Type:        em.Type,
			Service:     p.Flow.Service,
			Environment: em.Environment,
			Artifact:    p.Flow.Artifact.ID,
			Flow:        p.Flow.ID,
			Status:      em.Status,
			Detail:      em.Detail,
			Actor:       actor,
			CreatedAt:   p.Now,
		}
		if em.Deployment != nil {
			ev.Deployment = em.Deployment.ID
		}
		if _, err := s.insertEvent(ctx, tx, ev); err != nil {
			return 0, err
		}
		if em.Quiet {
			continue
		}
		ds, err := webhook.Deliveries(cfg, ev, em.Deployment, em.Result)
		if err != nil {
			return 0, err
		}
		for _, d := range ds {
			if d.Deployment == 0 && len(p.Flow.Deployments) > 0 {
				// Flow events queue behind the flow's last deployment, so a
				// hook hears flow.completed after that deployment.verified.
				d.Deployment = p.Flow.Deployments[len(p.Flow.Deployments)-1].ID
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, event_type, deployment_id, url, method, content_type, body, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
				d.Event, d.EventType, nullID(d.Deployment), d.URL, d.Method, d.ContentType, d.Body, d.Status, ms(d.NextAttemptAt), ms(d.CreatedAt), ms(d.UpdatedAt)); err != nil {
				return 0, fmt.Errorf("sqlite: enqueue delivery: %w", err)
			}
			n++
		}
	}
	return n, nil
}

func (s *Store) insertEvent(ctx context.Context, tx *sql.Tx, ev *deploydb.Event) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO events (type, service, environment, artifact_id, flow_id, deployment_id, status, detail, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Type, ev.Service, ev.Environment, nullID(ev.Artifact), nullID(ev.Flow), nullID(ev.Deployment), ev.Status, ev.Detail, ev.Actor, ms(ev.CreatedAt))
	if err != nil {
		return 0, fmt.Errorf("sqlite: insert event: %w", err)
	}
	if ev.ID, err = res.LastInsertId(); err != nil {
		return 0, fmt.Errorf("sqlite: insert event: %w", err)
	}
	return ev.ID, nil
}

func deploymentOf(p *engine.Plan, id int64) *deploydb.Deployment {
	for i := range p.Flow.Deployments {
		if d := &p.Flow.Deployments[i]; d.ID == id {
			c := *d
			c.Promotions = append([]deploydb.PromotionResult{}, d.Promotions...)
			return &c
		}
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }
