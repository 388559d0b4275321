package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// QueueBacklog queues n delivered calls of the orchestrator hook again in
// the SQLite database at path (the server must be stopped), as an
// operator does after the orchestrator was down: the latest n with ids up
// to upTo, one per deployment, each set pending and due now, with the
// operator.redeliver event the API records (POST
// /api/webhook-deliveries/{id}/redeliver), in one transaction. It returns
// their Webhook-Ids, and how many deliveries were pending already (left
// over from the load).
func QueueBacklog(ctx context.Context, path string, n int, upTo int64, now time.Time) (map[string]bool, int, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, 0, fmt.Errorf("bench: backlog: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("bench: backlog: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&pending); err != nil {
		return nil, 0, fmt.Errorf("bench: backlog: %w", err)
	}
	type row struct {
		id, deployment int64
		event, status  string
	}
	var list []row
	err = func() error {
		rows, err := tx.QueryContext(ctx, `SELECT id, coalesce(deployment_id, 0), event_type, status FROM webhook_deliveries
			WHERE hook = ? AND status = 'delivered' AND id <= ? ORDER BY id DESC LIMIT ?`, HookOrchestrator, upTo, n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.deployment, &r.event, &r.status); err != nil {
				return err
			}
			list = append(list, r)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, 0, fmt.Errorf("bench: backlog: %w", err)
	}
	at := now.UnixMilli()
	ids := map[string]bool{}
	for _, r := range list {
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?`, at, at, r.id); err != nil {
			return nil, 0, fmt.Errorf("bench: backlog: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (type, service, environment, artifact_id, flow_id, deployment_id, status, detail, actor, reason, created_at)
			VALUES (?, '', '', NULL, NULL, ?, '', ?, ?, ?, ?)`, deploydb.EventOperatorRedeliver, nullID(r.deployment),
			fmt.Sprintf("webhook delivery %d (%s, was %s) queued again", r.id, r.event, r.status), ActorOps, "the orchestrator was down", at); err != nil {
			return nil, 0, fmt.Errorf("bench: backlog: %w", err)
		}
		ids[webhook.MessageID(r.id)] = true
	}
	if len(ids) < n {
		return nil, 0, fmt.Errorf("bench: backlog: the history has %d orchestrator calls, not %d", len(ids), n)
	}
	return ids, pending, tx.Commit()
}

// BacklogResult is what draining a backlog of webhook calls measured.
type BacklogResult struct {
	// Queued counts the calls queued: those of the backlog, and those the
	// load left pending.
	Queued   int `json:"queued"`
	LeftOver int `json:"leftOver"`
	// Delivered counts the first attempts that arrived, of any call: all
	// of them, or those that arrived before the time allowed ran out.
	Delivered int `json:"delivered"`
	// OfBacklog counts those of the backlog's calls.
	OfBacklog int     `json:"ofBacklog"`
	Seconds   float64 `json:"seconds"` // from the first call to the last (or to the end of the time allowed)
	PerSec    float64 `json:"perSec"`
	// Drain is from the server's start to the last call.
	Drain float64 `json:"drainSeconds"`
	// TimedOut says that Timeout seconds ran out before every call of
	// the backlog arrived: the rate is of those that did.
	TimedOut bool    `json:"timedOut"`
	Timeout  float64 `json:"timeoutSeconds"`
}

// drainBacklog starts the server (start) and waits until rcv got a first
// attempt of each of ids, or timeout passed, and measures the rate of
// first attempts of any call (those the load left pending are queued
// too).
func drainBacklog(ctx context.Context, rcv *Receiver, ids map[string]bool, leftOver int, start func() (time.Time, error), timeout time.Duration) (*BacklogResult, error) {
	var mu sync.Mutex
	var first, last time.Time
	got, ofBacklog := 0, 0
	all := make(chan struct{})
	rcv.OnAny(func(at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if got == 0 {
			first = at
		}
		got++
		last = at
	})
	rcv.OnCall(func(c Call) {
		mu.Lock()
		defer mu.Unlock()
		if !ids[c.ID] {
			return
		}
		if ofBacklog++; ofBacklog == len(ids) {
			close(all)
		}
	})
	defer rcv.OnCall(nil)
	defer rcv.OnAny(nil)
	began, err := start()
	if err != nil {
		return nil, err
	}
	var werr error
	timedOut := false
	select {
	case <-all:
	case <-time.After(timeout):
		timedOut = true
	case <-ctx.Done():
		werr = ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	r := &BacklogResult{Queued: len(ids) + leftOver, LeftOver: leftOver, Delivered: got, OfBacklog: ofBacklog, TimedOut: timedOut, Timeout: timeout.Seconds()}
	switch {
	case timedOut && got > 0:
		// The rate so far, up to now.
		r.Seconds = time.Since(first).Seconds()
		r.PerSec = float64(got) / r.Seconds
		r.Drain = time.Since(began).Seconds()
	case got > 1:
		r.Seconds = last.Sub(first).Seconds()
		r.PerSec = float64(got-1) / r.Seconds
		r.Drain = last.Sub(began).Seconds()
	case timedOut:
		werr = errors.New("bench: no webhook call arrived within " + timeout.String())
	}
	return r, werr
}
