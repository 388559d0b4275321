// Package sqlite is DeployDB's embedded store: one SQLite file in WAL mode,
// through the pure Go driver modernc.org/sqlite.
//
// Durability: the database runs with synchronous=FULL, so a transaction is
// fsync'd to the write-ahead log before Commit returns, and DeployDB answers
// 2xx only after Commit. An acknowledged write survives a process crash and
// a power loss (given a disk that honours fsync).
//
// Writes go through a single connection with BEGIN IMMEDIATE, so state
// changes serialize: each reads the current state and writes the next inside
// one transaction that no other writer can interleave with. Reads use a
// separate pool and see the last committed state (WAL).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deploydb/deploydb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of deploydb.Store.
type Store struct {
	path string
	w    *sql.DB // one connection: every write transaction
	r    *sql.DB // reads

	// Now returns the current time; tests replace it.
	Now func() time.Time

	ready  chan struct{}
	events broadcast // closed after each commit that recorded events (events.go)
}

var _ deploydb.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, deploydb.Errorf(deploydb.EINVALID, "sqlite: database path is empty")
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	s := &Store{path: path, w: w, r: r, Now: time.Now, ready: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// dsn builds the driver's connection string: WAL, synchronous=FULL,
// foreign keys, a busy timeout, and for the writer BEGIN IMMEDIATE so that a
// write transaction takes the lock before it reads.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	// The driver opens "file:" names as SQLite URIs: escape the path so
	// that '?', '#' or '%' in a file name cannot end it or cut it short.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: "database unreachable: " + err.Error()}
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.w.Close(), s.r.Close())
}

// DeliveriesReady returns a channel that receives after a commit that
// enqueued webhook deliveries.
func (s *Store) DeliveriesReady() <-chan struct{} { return s.ready }

func (s *Store) now() deploydb.Time { return deploydb.NewTime(s.Now()) }

// wtx is a write transaction and what it did that others must hear of
// once it commits.
type wtx struct {
	*sql.Tx
	delivered bool // enqueued webhook deliveries
	recorded  bool // recorded events
}

// write runs fn in one write transaction and commits it, then wakes the
// dispatcher and the live views if the transaction gave them something.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	tx := &wtx{Tx: t}
	defer func() { _ = t.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if tx.delivered {
		s.wake()
	}
	if tx.recorded {
		s.eventsCommitted()
	}
	return nil
}

// snapshot runs reads that take several queries in one read transaction, so
// that they see one committed state (one WAL snapshot), never a write half
// applied between two of the queries.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

func (s *Store) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func ms(t deploydb.Time) int64 { return t.UnixMilli() }

// querier is what reads need from a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
