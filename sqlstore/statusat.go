package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deploydb/deploydb"
)

// walkBack is how many of a cell's latest deployments (by activation)
// FindStatusAt reads in its one pass over the cells: enough for the
// deployment in flight, the current one and the last known good of all
// but a cell that failed many times in a row, which a query of its own
// finds.
const walkBack = 4

// FindStatusAt implements deploydb.Store. It reads, in one snapshot, the
// walkBack latest deployments activated by f.At of each cell (from
// deployments_activated), works out the cell from their steps' times, and
// looks further back only for what those do not hold.
func (s *Store) FindStatusAt(ctx context.Context, f deploydb.StatusAtFilter) (_ []*deploydb.StatusCell, err error) {
	defer s.classify(&err)
	if len(f.Services) > maxStatusServices {
		return nil, deploydb.Errorf(deploydb.EINVALID, "the status of at most %d services at once, not %d", maxStatusServices, len(f.Services))
	}
	at := f.At.UnixMilli()
	cellsOf, args := `env_state`, []any{at}
	if len(f.Services) > 0 {
		cellsOf = `(SELECT * FROM env_state WHERE service IN (` + placeholders(len(f.Services)) + `))`
		for _, svc := range f.Services {
			args = append(args, svc)
		}
	}
	out := []*deploydb.StatusCell{}
	err = s.snapshot(ctx, func(q querier) error {
		latest := `SELECT x.id FROM deployments x` + s.indexedBy("deployments_activated") + `
				WHERE x.service = e.service AND x.environment = e.environment AND x.activated_at <= ?
				ORDER BY x.activated_at DESC, x.id DESC LIMIT ` + fmt.Sprint(walkBack)
		join := `JOIN deployments d ON d.id IN (` + latest + `)`
		if s.d.Lateral {
			join = `CROSS JOIN LATERAL (` + latest + `) k JOIN deployments d ON d.id = k.id`
		}
		rows, err := q.QueryContext(ctx, `WITH e AS (SELECT service, environment FROM `+cellsOf+`)
			SELECT `+deploymentColumns+` FROM e `+join+`
			JOIN artifacts a ON a.id = d.artifact_id`, reorder(args)...)
		if err != nil {
			return fmt.Errorf("store: status at: %w", err)
		}
		defer rows.Close()
		byCell := map[[2]string][]*deploydb.Deployment{}
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return fmt.Errorf("store: status at: %w", err)
			}
			k := [2]string{d.Service, d.Environment}
			byCell[k] = append(byCell[k], d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: status at: %w", err)
		}
		rows.Close()
		for k, ds := range byCell {
			c, err := s.cellAt(ctx, q, k, ds, f.At)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *deploydb.StatusCell) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Environment, b.Environment))
	})
	return out, nil
}

// reorder puts the instant (args[0]) after the services: the services
// bind in the WITH, before the instant in the subquery.
func reorder(args []any) []any {
	return append(slices.Clone(args[1:]), args[0])
}

// cellAt works out cell k at instant t from ds, its latest deployments
// activated by then (walkBack at most), looking further back when the
// current deployment or the last known good is not among them.
func (s *Store) cellAt(ctx context.Context, q querier, k [2]string, ds []*deploydb.Deployment, t time.Time) (*deploydb.StatusCell, error) {
	c := &deploydb.StatusCell{Service: k[0], Environment: k[1]}
	reached := func(tm deploydb.Time) bool { return !tm.IsZero() && !tm.After(t) }
	var attempt *deploydb.Deployment
	for _, d := range ds {
		if d.StatusAt(t).Active() && (c.InFlight == nil || later(d.ActivatedAt, d, c.InFlight.ActivatedAt, c.InFlight)) {
			c.InFlight = d
		}
		if reached(d.CompletedAt) && (c.Current == nil || later(d.CompletedAt, d, c.Current.CompletedAt, c.Current)) {
			c.Current = d
		}
		if reached(d.FinishedAt) && d.Status == deploydb.DeploymentSuccess && (c.LastGood == nil || later(d.FinishedAt, d, c.LastGood.FinishedAt, c.LastGood)) {
			c.LastGood = d
		}
		if reached(d.FinishedAt) && d.Status == deploydb.DeploymentFailed && d.CompletedAt.IsZero() && (attempt == nil || later(d.FinishedAt, d, attempt.FinishedAt, attempt)) {
			attempt = d
		}
	}
	full := len(ds) == walkBack
	if c.Current == nil && full {
		// Failures before completing, walkBack of them or more: the
		// current deployment is further back.
		d, err := s.oneDeployment(ctx, q, `d.service = ? AND d.environment = ? AND d.activated_at <= ? AND d.completed_at <= ?`, `d.activated_at DESC, d.id DESC`,
			"deployments_activated", k[0], k[1], t.UnixMilli(), t.UnixMilli())
		if err != nil {
			return nil, err
		}
		c.Current = d
	}
	if c.LastGood == nil && full {
		d, err := s.oneDeployment(ctx, q, `d.service = ? AND d.environment = ? AND d.status = 'SUCCESS' AND d.finished_at <= ?`, `d.finished_at DESC, d.id DESC`,
			"deployments_succeeded", k[0], k[1], t.UnixMilli())
		if err != nil {
			return nil, err
		}
		c.LastGood = d
	}
	if attempt == nil && full {
		// Deployments cancelled while in flight after a failure: the
		// failure is further back.
		d, err := s.oneDeployment(ctx, q, `d.service = ? AND d.environment = ? AND d.activated_at <= ? AND d.status = 'FAILED' AND d.completed_at IS NULL AND d.finished_at <= ?`, `d.activated_at DESC, d.id DESC`,
			"deployments_activated", k[0], k[1], t.UnixMilli(), t.UnixMilli())
		if err != nil {
			return nil, err
		}
		attempt = d
	}
	if c.Current != nil {
		c.CurrentSince = c.Current.CompletedAt
	}
	// The last attempt counts while nothing completed after it (at the
	// same instant: a deployment made later is taken as later).
	if attempt != nil && (c.Current == nil || later(attempt.FinishedAt, attempt, c.Current.CompletedAt, c.Current)) {
		c.LastAttempt = attempt
	}
	for _, d := range []*deploydb.Deployment{c.InFlight, c.Current, c.LastGood, c.LastAttempt} {
		if d != nil {
			asOf(d, t)
		}
	}
	return c, nil
}

// later reports whether a step of deployment a at ta comes after one of
// deployment b at tb: by time; at the same instant DeployDB's own
// deployment comes after an imported one, then the one recorded later
// (importEnvState keeps the matrix the same way).
func later(ta deploydb.Time, a *deploydb.Deployment, tb deploydb.Time, b *deploydb.Deployment) bool {
	switch {
	case !ta.Equal(tb.Time):
		return ta.After(tb.Time)
	case a.Imported != b.Imported:
		return b.Imported
	}
	return a.ID > b.ID
}

// asOf makes d the deployment as it was at t: its status then, and no
// step after t. A deployment shared by several fields of a cell is made
// so once (asOf of a made one changes nothing).
func asOf(d *deploydb.Deployment, t time.Time) {
	st := d.StatusAt(t)
	if st == "" {
		return
	}
	d.Status = st
	for _, tm := range []*deploydb.Time{&d.ActivatedAt, &d.StartedAt, &d.CompletedAt, &d.FinishedAt} {
		if tm.After(t) {
			*tm = deploydb.Time{}
		}
	}
	d.UpdatedAt = slices.MaxFunc([]deploydb.Time{d.CreatedAt, d.ActivatedAt, d.StartedAt, d.CompletedAt, d.FinishedAt},
		func(a, b deploydb.Time) int { return a.Compare(b.Time) })
}

// oneDeployment returns the first deployment where selects in order, nil
// if none, read through index.
func (s *Store) oneDeployment(ctx context.Context, q querier, where, order, index string, args ...any) (*deploydb.Deployment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments d`+s.indexedBy(index)+` JOIN artifacts a ON a.id = d.artifact_id
		WHERE `+where+` ORDER BY `+order+` LIMIT 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: status at: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: status at: %w", err)
		}
		return nil, nil
	}
	d, err := scanDeployment(rows)
	if err != nil {
		return nil, fmt.Errorf("store: status at: %w", err)
	}
	return d, rows.Err()
}
