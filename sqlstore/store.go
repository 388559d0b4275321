// Package sqlstore is DeployDB's store over SQL: every query and write of
// the deploydb.Store contract, shared by the SQLite store (package sqlite)
// and the PostgreSQL store (package postgres). A Driver says what differs
// between the two: how a write transaction is begun and serialized, how a
// snapshot read is begun, placeholders, unique violations and a few
// functions. The SQL is written once, in what both accept: ? placeholders
// (rebound for PostgreSQL), RETURNING, IS NOT DISTINCT FROM,
// ON CONFLICT, CAST.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/deploydb/deploydb"
)

// Driver is what differs between the databases a Store runs on.
type Driver struct {
	// Name names the database in error messages: "sqlite", "postgres".
	Name string
	// Reads runs the reads that take one query.
	Reads *sql.DB
	// BeginWrite begins a write transaction that no other write of any
	// process on the same database runs beside (the store's writes are
	// serialized), and that sees every write committed before it.
	BeginWrite func(ctx context.Context) (*sql.Tx, error)
	// BeginSnapshot begins a read-only transaction whose queries see one
	// committed state.
	BeginSnapshot func(ctx context.Context) (*sql.Tx, error)
	// Rebind turns the ? placeholders of a query into the database's; nil
	// keeps them.
	Rebind func(string) string
	// IsUnique reports whether err is a unique or primary key violation.
	IsUnique func(error) bool
	// Contains returns SQL that is true when the text column col contains
	// the text of the next parameter, case-sensitively.
	Contains func(col string) string
	// Collate follows a text column in ORDER BY so that text sorts by
	// bytes ("" when that is the default).
	Collate string
	// Announce, when set, runs in a write transaction that enqueued
	// deliveries or recorded events, just before it commits, so that other
	// processes on the database hear of the commit (PostgreSQL: NOTIFY,
	// delivered on commit). They call Store.Committed.
	Announce func(ctx context.Context, tx *sql.Tx, deliveries, events bool) error
	// Unavailable says, in words a caller can act on, why err means the
	// database cannot serve now (unreachable, connection lost, disk full,
	// read-only), or returns "" when err is not such a failure. The store
	// then returns EUNAVAILABLE, never an internal error.
	Unavailable func(err error) string
	// Shown names the database in the messages of those errors: "the
	// SQLite database /var/lib/deploydb.db".
	Shown string
}

// Store implements deploydb.Store over a Driver. The packages sqlite and
// postgres open one; it holds no connection of its own.
type Store struct {
	// Now returns the current time; tests replace it.
	Now func() time.Time

	d      Driver
	r      querier
	ready  chan struct{}
	events broadcast   // closed after each commit that recorded events (events.go)
	counts eventCounts // events this store's commits recorded, by type (events.go)
}

// New returns a store over d.
func New(d Driver) *Store {
	if d.Rebind == nil {
		d.Rebind = func(q string) string { return q }
	}
	s := &Store{Now: time.Now, d: d, ready: make(chan struct{}, 1)}
	s.r = rebound{d.Reads, d.Rebind}
	return s
}

// Ping checks the database answers. Returns EUNAVAILABLE, naming the
// database and why, if it does not.
func (s *Store) Ping(ctx context.Context) error {
	err := s.d.Reads.PingContext(ctx)
	if err == nil {
		return nil
	}
	why := ""
	if s.d.Unavailable != nil {
		why = s.d.Unavailable(err)
	}
	if why == "" {
		why = "it does not answer"
	}
	return fmt.Errorf("%w: %w", deploydb.Errorf(deploydb.EUNAVAILABLE, "%s is unavailable: %s", s.shown(), why), err)
}

// DeliveriesReady signals (without blocking) after a commit that
// enqueued webhook deliveries: this process's, and another's that the
// Driver announces (Committed).
func (s *Store) DeliveriesReady() <-chan struct{} { return s.ready }

func (s *Store) now() deploydb.Time { return deploydb.NewTime(s.Now()) }

// wtx is a write transaction and what it did that others must hear of
// once it commits. Its queries take ? placeholders.
type wtx struct {
	rebound
	delivered bool                 // enqueued webhook deliveries
	recorded  bool                 // recorded events
	types     []deploydb.EventType // the types of the events recorded, one per event
}

// write runs fn in one write transaction and commits it, then wakes the
// dispatcher and the live views if the transaction gave them something.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	t, err := s.d.BeginWrite(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer func() { _ = t.Rollback() }()
	tx := &wtx{rebound: rebound{t, s.d.Rebind}}
	if err := fn(tx); err != nil {
		var de *deploydb.Error
		if !errors.As(err, &de) && s.isUnique(err) {
			// A constraint of the schema (one active deployment per
			// service and environment) refused what the code let through.
			return deploydb.Errorf(deploydb.ECONFLICT, "the database refused the change: %v", err)
		}
		return err
	}
	if s.d.Announce != nil && (tx.delivered || tx.recorded) {
		if err := s.d.Announce(ctx, t, tx.delivered, tx.recorded); err != nil {
			return fmt.Errorf("%s: announce: %w", s.d.Name, err)
		}
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", s.d.Name, err)
	}
	if tx.delivered {
		s.wake()
	}
	if tx.recorded {
		// Counted before anyone is woken, so that whoever reads the
		// events finds them counted too.
		s.counts.add(tx.types)
		s.eventsCommitted()
	}
	return nil
}

// snapshot runs reads that take several queries in one read transaction, so
// that they see one committed state, never a write half applied between two
// of the queries.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.d.BeginSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin read: %w", s.d.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(rebound{tx, s.d.Rebind})
}

// Committed wakes the dispatcher (deliveries) and the live views (events)
// of this process for a commit another process on the database announced.
func (s *Store) Committed(deliveries, events bool) {
	if deliveries {
		s.wake()
	}
	if events {
		s.eventsCommitted()
	}
}

func (s *Store) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// classify turns *err, returned by a public method, into EUNAVAILABLE when
// the Driver says the database cannot serve now: the caller may try again
// once it is back, and nothing is lost meanwhile (a write either committed
// or did not). The driver's error stays in the chain, for the logs. An
// error of the caller's context (a client that went away) is left as it
// is.
func (s *Store) classify(err *error) {
	if *err == nil || s.d.Unavailable == nil {
		return
	}
	var de *deploydb.Error
	if errors.As(*err, &de) || errors.Is(*err, context.Canceled) || errors.Is(*err, context.DeadlineExceeded) {
		return
	}
	if why := s.d.Unavailable(*err); why != "" {
		*err = fmt.Errorf("%w: %w", deploydb.Errorf(deploydb.EUNAVAILABLE, "%s is unavailable: %s; try again later", s.shown(), why), *err)
	}
}

// shown names the database in messages.
func (s *Store) shown() string {
	if s.d.Shown != "" {
		return s.d.Shown
	}
	return "the database"
}

func (s *Store) isUnique(err error) bool { return err != nil && s.d.IsUnique(err) }

func ms(t deploydb.Time) int64 { return t.UnixMilli() }

// querier is what reads need from a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// rebound runs queries written with ? placeholders on c, rebound for its
// database.
type rebound struct {
	c      execer
	rebind func(string) string
}

// QueryContext runs a query with ? placeholders.
func (r rebound) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.c.QueryContext(ctx, r.rebind(query), args...)
}

// QueryRowContext runs a query with ? placeholders.
func (r rebound) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.c.QueryRowContext(ctx, r.rebind(query), args...)
}

// ExecContext runs a statement with ? placeholders.
func (r rebound) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.c.ExecContext(ctx, r.rebind(query), args...)
}
