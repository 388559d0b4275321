package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

const deliveryColumns = `id, event_id, event_type, coalesce(deployment_id, 0), hook, url, shown_url, method, content_type, headers, context, body, signed, status, attempts, next_attempt_at, last_error, created_at, updated_at`

func scanDelivery(sc interface{ Scan(...any) error }) (*deploydb.Delivery, error) {
	var d deploydb.Delivery
	var next, created, updated int64
	var headers string
	if err := sc.Scan(&d.ID, &d.Event, &d.EventType, &d.Deployment, &d.Hook, &d.URL, &d.ShownURL, &d.Method, &d.ContentType, &headers, &d.Context, &d.Body, &d.Signed, &d.Status, &d.Attempts, &next, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if d.Headers, err = decodeHeaders(headers); err != nil {
		return nil, fmt.Errorf("delivery %d: headers: %w", d.ID, err)
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = deploydb.UnixMilli(next), deploydb.UnixMilli(created), deploydb.UnixMilli(updated)
	return &d, nil
}

func (s *Store) queryDeliveries(ctx context.Context, q string, args ...any) ([]*deploydb.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: find deliveries: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: find deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DueDeliveries returns pending deliveries that are due, each the oldest
// pending one of its (hook, deployment), so that calls about one deployment
// reach one hook in the order they happened. Calls queued before hooks had
// names keep their order per (url, deployment).
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) (_ []*deploydb.Delivery, err error) {
	defer s.classify(&err)
	return s.queryDeliveries(ctx, dueHeads, now.UnixMilli(), limit)
}

// dueHeads is the query of DueDeliveries.
const dueHeads = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d
		WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND ` + queueHead + `
		ORDER BY d.next_attempt_at, d.id LIMIT ?+0` // ?+0: read.go limitClause

// queueHead is true of a pending delivery d when no delivery queued before
// it to its hook (or its URL, before hooks had names) about its deployment
// is pending: the head of its queue. The queues of a deployment and those
// of none (flow and environment events) are looked up apart, each by
// equality, so that both databases find the earlier deliveries of a queue
// in the index of pending deliveries (hook, deployment_id, id). (With
// IS NOT DISTINCT FROM, PostgreSQL cannot use an index: it walked every
// delivery older than d, delivered ones included, for each candidate.)
const queueHead = `NOT EXISTS (SELECT 1 FROM webhook_deliveries e
			WHERE e.status = 'pending' AND e.hook = d.hook AND e.deployment_id = d.deployment_id AND e.id < d.id
			AND (d.hook <> '' OR e.url = d.url))
		AND (d.deployment_id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM webhook_deliveries e
			WHERE e.status = 'pending' AND e.hook = d.hook AND e.deployment_id IS NULL AND e.id < d.id
			AND (d.hook <> '' OR e.url = d.url)))`

// ClaimDeliveries implements deploydb.Store. A claim moves the delivery's
// next attempt to the end of the lease, so that it is not due for anyone
// meanwhile; a claimed delivery is still pending, so what is queued behind
// it stays behind it. The write lock makes two claims of one delivery
// impossible.
//
// A claim is a write transaction of its own, not one of write's group
// commits: a claim waiting its turn behind the batch that was starting
// when the dispatcher woke, then sharing the next with up to 63 state
// changes, made the first attempt of a call wait two batches or more
// after its commit under a write load (p50 100-150 ms, p99 over 500 ms in
// deploydb-bench's mixed writes); on its own it takes the write lock as
// soon as the batch running lets go of it.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) (_ []*deploydb.Delivery, err error) {
	defer s.classify(&err)
	// Dispatchers look after every commit that wakes them: most of the
	// time nothing is due, and a read says so without taking the write
	// lock that every state change waits for.
	var due bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?)`, now.UnixMilli()).Scan(&due); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if !due {
		return []*deploydb.Delivery{}, nil
	}
	t, err := s.d.BeginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %s: begin: %w", s.d.Name, err)
	}
	defer func() { _ = t.Rollback() }()
	tx := rebound{t, s.d.Rebind}
	out, err := dueIn(ctx, tx, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// One statement for the whole claim: a round trip per delivery
	// is what a PostgreSQL claim spent most of its time on.
	args := make([]any, 0, len(out)+1)
	args = append(args, now.Add(lease).UnixMilli())
	for _, d := range out {
		args = append(args, d.ID)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(out)), ", ")+`)`, args...); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %s: commit: %w", s.d.Name, err)
	}
	return out, nil
}

// dueIn reads the due heads in the claim's write transaction.
func dueIn(ctx context.Context, tx querier, now time.Time, limit int) ([]*deploydb.Delivery, error) {
	rows, err := tx.QueryContext(ctx, dueHeads, now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*deploydb.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ReleaseDeliveries implements deploydb.Store.
func (s *Store) ReleaseDeliveries(ctx context.Context, ids []int64) (err error) {
	defer s.classify(&err)
	if len(ids) == 0 {
		return nil
	}
	now := s.now()
	return s.write(ctx, func(tx *wtx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at > ?`, ms(now), id, ms(now)); err != nil {
				return fmt.Errorf("store: release delivery %d: %w", id, err)
			}
		}
		tx.delivered = true
		return nil
	})
}

// NextDeliveryAt returns when the earliest pending delivery is due. Only the
// head of each (hook, deployment) queue counts, as in DueDeliveries: a
// delivery queued behind a head that waits for its retry is not due before
// the head is done, however old it is.
func (s *Store) NextDeliveryAt(ctx context.Context) (_ time.Time, err error) {
	defer s.classify(&err)
	var next int64
	err = s.r.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM webhook_deliveries d
		WHERE d.status = 'pending' AND `+queueHead+`
		ORDER BY d.next_attempt_at LIMIT 1`).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("store: next delivery: %w", err)
	}
	return time.UnixMilli(next), nil
}

// OutboxStats counts the pending deliveries and finds when the oldest was
// queued: ids increase with creation, so it is the pending one with the
// lowest id. Both come from the index on (status, id) in one statement.
func (s *Store) OutboxStats(ctx context.Context) (deploydb.OutboxStats, error) {
	var st deploydb.OutboxStats
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT count(*), (SELECT created_at FROM webhook_deliveries WHERE status = 'pending' ORDER BY id LIMIT 1)
		FROM webhook_deliveries WHERE status = 'pending'`).Scan(&st.Pending, &oldest)
	if err != nil {
		return deploydb.OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	if oldest.Valid {
		st.OldestPending = time.UnixMilli(oldest.Int64)
	}
	return st, nil
}

// RecordAttempt stores one attempt and the delivery's new state: the
// delivery's update says whether it exists, so two statements do it.
func (s *Store) RecordAttempt(ctx context.Context, r deploydb.AttemptResult) (err error) {
	defer s.classify(&err)
	a := r.Attempt
	return s.write(ctx, func(tx *wtx) error {
		newStatus := deploydb.DeliveryPending
		if r.Done {
			newStatus = r.Status
		}
		lastErr := a.Error
		if lastErr == "" && a.StatusCode >= 300 {
			lastErr = fmt.Sprintf("HTTP %d", a.StatusCode)
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
			newStatus, r.NextAttemptAt.UnixMilli(), lastErr, ms(a.CreatedAt), a.Delivery)
		if err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		} else if n == 0 {
			return deploydb.Errorf(deploydb.ENOTFOUND, "webhook delivery %d not found", a.Delivery)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, status_code, latency_ns, response, error, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			a.Delivery, a.StatusCode, int64(a.Latency), a.Response, a.Error, ms(a.CreatedAt)); err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		return nil
	})
}

// FindDeliveries returns deliveries, newest first.
func (s *Store) FindDeliveries(ctx context.Context, f deploydb.DeliveryFilter) (_ []*deploydb.Delivery, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, f.Status)
	}
	if f.Deployment != 0 {
		where, args = append(where, `deployment_id = ?`), append(args, f.Deployment)
	}
	if f.Hook != "" {
		// The name, or as it is shown: an unnamed hook's URL without its
		// query or fragment.
		where, args = append(where, `(hook = ? OR substr(hook, 1, length(CAST(? AS TEXT)) + 1) IN (CAST(? AS TEXT) || '?', CAST(? AS TEXT) || '#'))`), append(args, f.Hook, f.Hook, f.Hook, f.Hook)
	}
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries` + whereClause(where) + ` ORDER BY id DESC` + limitClause(f.Page, &args)
	return s.queryDeliveries(ctx, q, args...)
}

// FindAttempts returns the attempts of one delivery, oldest first.
func (s *Store) FindAttempts(ctx context.Context, delivery int64) (_ []*deploydb.Attempt, err error) {
	defer s.classify(&err)
	rows, err := s.r.QueryContext(ctx, `SELECT id, delivery_id, status_code, latency_ns, response, error, created_at FROM webhook_attempts WHERE delivery_id = ? ORDER BY id`, delivery)
	if err != nil {
		return nil, fmt.Errorf("store: find attempts: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Attempt{}
	for rows.Next() {
		var a deploydb.Attempt
		var lat, created int64
		if err := rows.Scan(&a.ID, &a.Delivery, &a.StatusCode, &lat, &a.Response, &a.Error, &created); err != nil {
			return nil, fmt.Errorf("store: find attempts: %w", err)
		}
		a.Latency, a.CreatedAt = time.Duration(lat), deploydb.UnixMilli(created)
		out = append(out, &a)
	}
	return out, rows.Err()
}

// FindDelivery returns one delivery.
func (s *Store) FindDelivery(ctx context.Context, id int64) (_ *deploydb.Delivery, err error) {
	defer s.classify(&err)
	ds, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`, id)
	if err != nil {
		return nil, err
	} else if len(ds) == 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "webhook delivery %d not found", id)
	}
	return ds[0], nil
}

// Redeliver queues a finished delivery again, due now.
func (s *Store) Redeliver(ctx context.Context, id int64, a deploydb.Action) (_ *deploydb.Delivery, err error) {
	defer s.classify(&err)
	now := s.now()
	err = s.write(ctx, func(tx *wtx) error {
		var status, eventType, lastError string
		var dep sql.NullInt64
		var attempts int
		err := tx.QueryRowContext(ctx, `SELECT status, event_type, deployment_id, last_error, attempts FROM webhook_deliveries WHERE id = ?`, id).Scan(&status, &eventType, &dep, &lastError, &attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return deploydb.Errorf(deploydb.ENOTFOUND, "webhook delivery %d not found", id)
		} else if err != nil {
			return fmt.Errorf("store: redeliver: %w", err)
		}
		if status == deploydb.DeliveryFailed && attempts == 0 {
			// Failed when it was queued: it has no call to make.
			return deploydb.Errorf(deploydb.ECONFLICT, "webhook delivery %d has no call to send: %s", id, lastError)
		}
		if status == deploydb.DeliveryPending {
			return deploydb.Errorf(deploydb.ECONFLICT, "webhook delivery %d is pending already: it will be attempted without being asked", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?`, ms(now), ms(now), id); err != nil {
			return fmt.Errorf("store: redeliver: %w", err)
		}
		tx.delivered = true
		_, err = s.insertEvent(ctx, tx, &deploydb.Event{Type: deploydb.EventOperatorRedeliver, Deployment: dep.Int64, Actor: a.Actor, Reason: a.Reason, CreatedAt: now,
			Detail: fmt.Sprintf("webhook delivery %d (%s, was %s) queued again", id, eventType, status)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.FindDelivery(ctx, id)
}

// encodeHeaders stores headers as a JSON array of [name, value] pairs.
func encodeHeaders(hs []deploydb.HookHeader) (string, error) {
	pairs := make([][2]string, len(hs))
	for i, h := range hs {
		pairs[i] = [2]string{h.Name, h.Value}
	}
	b, err := json.Marshal(pairs)
	return string(b), err
}

func decodeHeaders(s string) ([]deploydb.HookHeader, error) {
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, err
	}
	var out []deploydb.HookHeader
	for _, p := range pairs {
		out = append(out, deploydb.HookHeader{Name: p[0], Value: p[1]})
	}
	return out, nil
}
