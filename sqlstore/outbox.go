package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
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
	if s.d.OneProcess {
		return s.queryDeliveries(ctx, dueHeadsUnclaimed, now.UnixMilli(), s.claims.list(now), limit)
	}
	return s.queryDeliveries(ctx, dueHeads, now.UnixMilli(), limit)
}

// dueHeads is the query of DueDeliveries.
const dueHeads = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d
		WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND ` + queueHead + `
		ORDER BY d.next_attempt_at, d.id LIMIT ?+0` // ?+0: read.go limitClause

// dueHeadsUnclaimed is dueHeads without the deliveries claimed in memory
// (claims), given as a JSON array of ids: one statement text whatever
// their number, so that it is prepared once.
const dueHeadsUnclaimed = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d
		WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.id NOT IN (SELECT value FROM json_each(?)) AND ` + queueHead + `
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

// ClaimDeliveries implements deploydb.Store. A claimed delivery is still
// pending, so what is queued behind it stays behind it.
//
// Where one process writes the database (Driver.OneProcess, SQLite), the
// claims are kept in memory (claims): a claim is then a read, and takes
// nothing from the one writer that every state change waits for. (As
// write transactions of their own, claims held the writer about 15 % of
// the time under deploydb-bench's mixed writes, and each paid a commit.)
// After a crash there is no claim to wait out: what was claimed is due at
// once.
//
// Otherwise a claim moves the delivery's next attempt to the end of the
// lease, so that it is not due for any process meanwhile; the write lock
// makes two claims of one delivery impossible.
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
	if s.d.OneProcess {
		return s.claimInMemory(ctx, now, limit, lease)
	}
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
	return s.claimInTx(ctx, now, lease, dueHeads, now.UnixMilli(), limit)
}

// claimInTx claims the deliveries that query (dueHeads or
// dueHeadsUnclaimed) finds with args, in a write transaction of its own,
// until now + lease.
func (s *Store) claimInTx(ctx context.Context, now time.Time, lease time.Duration, query string, args ...any) ([]*deploydb.Delivery, error) {
	t, err := s.d.BeginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %s: begin: %w", s.d.Name, err)
	}
	defer func() { _ = t.Rollback() }()
	tx := rebound{t, s.d.Rebind}
	out, err := dueIn(ctx, tx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// One statement for the whole claim: a round trip per delivery
	// is what a PostgreSQL claim spent most of its time on.
	ids := make([]any, 0, len(out)+1)
	ids = append(ids, now.Add(lease).UnixMilli())
	for _, d := range out {
		ids = append(ids, d.ID)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(out)), ", ")+`)`, ids...); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %s: commit: %w", s.d.Name, err)
	}
	return out, nil
}

// dueIn reads the due heads in the claim's write transaction.
func dueIn(ctx context.Context, tx querier, query string, args ...any) ([]*deploydb.Delivery, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
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
	if s.d.OneProcess {
		// Claims in memory end here; one made in the database while
		// writes were failing (claimInMemory) ends below.
		s.claims.release(ids...)
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
	var lapse int64 // the first claim in memory to lapse, 0 if none
	if s.d.OneProcess {
		// What this process has claimed is due again only should its
		// claim lapse, as a claim in the database would be.
		var held string
		held, lapse = s.claims.held(s.Now())
		err = s.r.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM webhook_deliveries d
		WHERE d.status = 'pending' AND d.id NOT IN (SELECT value FROM json_each(?)) AND `+queueHead+`
		ORDER BY d.next_attempt_at LIMIT 1`, held).Scan(&next)
	} else {
		err = s.r.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM webhook_deliveries d
		WHERE d.status = 'pending' AND `+queueHead+`
		ORDER BY d.next_attempt_at LIMIT 1`).Scan(&next)
	}
	if errors.Is(err, sql.ErrNoRows) {
		next, err = 0, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("store: next delivery: %w", err)
	}
	if lapse != 0 && (next == 0 || lapse < next) {
		next = lapse
	}
	if next == 0 {
		return time.Time{}, nil
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
	if s.d.OneProcess {
		// The attempt ends the claim once it is committed: a claim
		// reading the outbox after that finds it recorded.
		defer func() {
			if err == nil {
				s.claims.release(a.Delivery)
			}
		}()
	}
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

// claims are the deliveries claimed by the dispatchers of a store whose
// database one process writes (Driver.OneProcess): a map in memory takes
// the place of the lease in the database.
//
// A claim reads the outbox and notes what it takes with mu held, and an
// attempt's claim ends (release) only after the attempt is committed.
// So a claim either sees a delivery still claimed, or reads the outbox
// after its attempt was committed: two claims never get one delivery for
// one attempt.
type claims struct {
	mu    sync.Mutex
	until map[int64]int64 // delivery → when its claim lapses (Unix ms)
}

// list returns the deliveries claimed at now, as a JSON array for
// json_each.
func (c *claims) list(now time.Time) string {
	l, _ := c.held(now)
	return l
}

// held returns the deliveries claimed at now, as a JSON array for
// json_each, and when the first of those claims lapses (Unix ms, 0 if
// there is none).
func (c *claims) held(now time.Time) (string, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heldLocked(now.UnixMilli())
}

func (c *claims) heldLocked(now int64) (string, int64) {
	var first int64
	b := make([]byte, 0, 2+len(c.until)*8)
	b = append(b, '[')
	for id, until := range c.until {
		if until <= now {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
		if first == 0 || until < first {
			first = until
		}
	}
	return string(append(b, ']')), first
}

// release ends the claims on ids.
func (c *claims) release(ids ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.until, id)
	}
}

// claimInMemory is ClaimDeliveries for a store whose database one process
// writes: the due heads not claimed already, read outside any write, and
// claimed in memory until now + lease.
func (s *Store) claimInMemory(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*deploydb.Delivery, error) {
	c := &s.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now.UnixMilli()
	maps.DeleteFunc(c.until, func(_, until int64) bool { return until <= t })
	held, _ := c.heldLocked(t)
	var out []*deploydb.Delivery
	var err error
	if s.writesDown.Load() {
		// The last write failed for want of a database that takes them
		// (a full disk, an I/O error): an attempt now could not be
		// recorded, and would be made again every lease for as long as
		// that lasts. A claim that writes tells when writes work again.
		if out, err = s.claimInTx(ctx, now, lease, dueHeadsUnclaimed, t, held, limit); err != nil {
			return nil, err
		}
		if len(out) > 0 {
			s.writesDown.Store(false) // it committed
		}
	} else if out, err = s.queryDeliveries(ctx, dueHeadsUnclaimed, t, held, limit); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	for _, d := range out {
		c.until[d.ID] = now.Add(lease).UnixMilli()
	}
	return out, nil
}
