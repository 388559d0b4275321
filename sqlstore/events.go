package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/deploydb/deploydb"
)

// FindEvents returns events after f.After, oldest first: at most f.Limit
// (MaxPageSize when zero or more than that), only those that match every
// non-zero field of f.
func (s *Store) FindEvents(ctx context.Context, f deploydb.EventFilter) (_ []*deploydb.Event, err error) {
	defer s.classify(&err)
	where := []string{`id > ?`}
	args := []any{f.After}
	for _, c := range []struct {
		column string
		value  any
		set    bool
	}{
		{`deployment_id`, f.Deployment, f.Deployment != 0},
		{`service`, f.Service, f.Service != ""},
		{`environment`, f.Environment, f.Environment != ""},
		{`type`, string(f.Type), f.Type != ""},
		{`actor`, f.Actor, f.Actor != ""},
	} {
		if c.set {
			where, args = append(where, c.column+` = ?`), append(args, c.value)
		}
	}
	limit := f.Limit
	if limit <= 0 || limit > deploydb.MaxPageSize {
		limit = deploydb.MaxPageSize
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT id, type, service, environment, coalesce(artifact_id, 0), coalesce(flow_id, 0), coalesce(deployment_id, 0), status, detail, actor, reason, created_at FROM events`+
		whereClause(where)+` ORDER BY id LIMIT ?+0`, args...) // ?+0: read.go limitClause
	if err != nil {
		return nil, fmt.Errorf("store: find events: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Event{}
	for rows.Next() {
		var e deploydb.Event
		var created int64
		if err := rows.Scan(&e.ID, &e.Type, &e.Service, &e.Environment, &e.Artifact, &e.Flow, &e.Deployment, &e.Status, &e.Detail, &e.Actor, &e.Reason, &created); err != nil {
			return nil, fmt.Errorf("store: find events: %w", err)
		}
		e.CreatedAt = deploydb.UnixMilli(created)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find events: %w", err)
	}
	return out, nil
}

// EventsCommitted returns a channel closed after the next commit that
// recorded events. Every caller waiting on it wakes (it is a broadcast, not
// a queue); a caller that wants the commit after that calls again.
//
// A live view calls it before it reads the events after its cursor, so that
// a commit between the read and the wait is never missed.
//
// Another process's commits close it when the Driver announces them
// (Committed).
func (s *Store) EventsCommitted() <-chan struct{} { return s.events.wait() }

// eventsCommitted wakes the callers of EventsCommitted. The write path calls
// it after each successful commit that recorded events, never inside the
// transaction: a woken reader must find the events committed.
func (s *Store) eventsCommitted() { s.events.notify() }

// EventsRecorded returns how many events of each type this store's commits
// recorded since it was opened. Events other processes on the database
// recorded are theirs to count.
func (s *Store) EventsRecorded() map[deploydb.EventType]int64 { return s.counts.snapshot() }

// eventCounts counts the events of committed transactions by type. Its
// zero value is ready to use.
type eventCounts struct {
	mu sync.Mutex
	n  map[deploydb.EventType]int64
}

// add counts the events of one commit.
func (c *eventCounts) add(types []deploydb.EventType) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[deploydb.EventType]int64{}
	}
	for _, t := range types {
		c.n[t]++
	}
}

// snapshot returns a copy of the counts.
func (c *eventCounts) snapshot() map[deploydb.EventType]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// broadcast wakes every waiter at once by closing a channel. Its zero value
// is ready to use. The channel is made when the first waiter asks for it,
// so a commit nobody waits for costs one lock.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns the channel the next notify closes.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// notify closes the channel waiters hold; the next wait gets a new one.
func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// LastEventID implements deploydb.Store: the primary key's last entry.
func (s *Store) LastEventID(ctx context.Context) (_ int64, err error) {
	defer s.classify(&err)
	var id int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: last event: %w", err)
	}
	return id, nil
}
