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
//
// Each connection keeps the statements run on it prepared (a bounded cache,
// stmtcache.go): SQLite parses and plans a statement once per connection,
// not once per run.
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

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of deploydb.Store: the SQL of
// package sqlstore on one database file.
type Store struct {
	*sqlstore.Store
	path string
	w    *sql.DB // one connection: every write transaction
	r    *sql.DB // reads
}

var _ deploydb.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations. Returns EUNAVAILABLE, naming the file and why, if
// the process cannot write it (a read-only file, directory or file system,
// a full disk).
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, deploydb.Errorf(deploydb.EINVALID, "sqlite: database path is empty")
	}
	wc, err := newCachingConnector(dsn(path, true), stmtCacheSize)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	rc, err := newCachingConnector(dsn(path, false), stmtCacheSize)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w := sql.OpenDB(wc)
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r := sql.OpenDB(rc)
	// Every read connection is kept: one closed after a busy moment is
	// one opened again later, its prepared statements (stmtcache.go)
	// prepared again. database/sql keeps 2 idle by default, so with more
	// readers than that, most reads opened a connection and parsed their
	// SQL.
	nr := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(nr)
	r.SetMaxIdleConns(nr)
	s := &Store{path: path, w: w, r: r}
	s.Store = sqlstore.New(sqlstore.Driver{
		Name:  "sqlite",
		Reads: r,
		// The one writer connection begins IMMEDIATE (dsn): a write takes
		// the database's lock before it reads.
		BeginWrite: func(ctx context.Context) (*sql.Tx, error) { return w.BeginTx(ctx, nil) },
		// A read transaction sees one WAL snapshot.
		BeginSnapshot: func(ctx context.Context) (*sql.Tx, error) {
			return r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		},
		IsUnique:  isUnique,
		Contains:  func(col string) string { return "instr(" + col + ", ?) > 0" },
		IndexedBy: func(index string) string { return " INDEXED BY " + index },
		// One process per file (docs/operations.md).
		OneProcess:   true,
		LastInsertID: true,
		Unavailable:  unavailable,
		Shown:        "the SQLite database " + path,
	})
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, s.refuse(err)
	}
	// SQLite opens a file it may not write read-only, without a word: the
	// server would start and fail every write. Refuse it now. (A statement
	// that writes takes the write transaction even when it matches no
	// row.)
	if _, err := w.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE 1 = 0`); err != nil {
		_ = s.Close()
		return nil, s.refuse(fmt.Errorf("sqlite: write %s: %w", path, err))
	}
	return s, nil
}

// refuse returns why Open cannot use the database: EUNAVAILABLE naming the
// file and the cause when the file cannot serve (read-only, its disk full),
// else err.
func (s *Store) refuse(err error) error {
	why := unavailable(err)
	if why == "" {
		return err
	}
	return fmt.Errorf("%w: %w", deploydb.Errorf(deploydb.EUNAVAILABLE, "the SQLite database %s cannot be used: %s; DeployDB must write it", s.path, why), err)
}

// dsn builds the driver's connection string: WAL, synchronous=FULL,
// foreign keys, a busy timeout, and for the writer BEGIN IMMEDIATE so that a
// write transaction takes the lock before it reads, and temporary files
// (savepoints' sub-journals) in memory.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	// SQLite's own page cache is 2 MB a connection unless told: a B-tree
	// of 10 M deployments is four levels deep, and every level that does
	// not fit is a pread of the operating system's cache. The cache fills
	// only as pages are read, so an idle server does not pay for it.
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB(writer)))
	if writer {
		q.Set("_txlock", "immediate")
		// The savepoint of each write of a batch (sqlstore's group
		// commit) keeps the pages it changes in a sub-journal, to roll
		// that write back alone: in memory, not in a temporary file it
		// writes each page to. It serves no recovery: the WAL does.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	// The driver opens "file:" names as SQLite URIs: escape the path so
	// that '?', '#' or '%' in a file name cannot end it or cut it short.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// cacheKiB is the page cache of a connection, in KiB: the writer's, which
// every index insert walks, is the larger; the read pool has several.
func cacheKiB(writer bool) int {
	if writer {
		return 32 << 10
	}
	return 16 << 10
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

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.w.Close(), s.r.Close())
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// unavailable says why err means the database file cannot serve now: the
// disk is full, the file or its file system is read-only, the disk fails,
// another process holds its lock past the busy timeout. SQLite rolls back
// the transaction such an error ends, so the file stays as it was before
// it; a write retried once the cause is gone succeeds. It returns "" for
// any other error.
func unavailable(err error) string {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL:
		return "the disk is full"
	case sqlite3.SQLITE_READONLY:
		if e.Code() == sqlite3.SQLITE_READONLY_DIRECTORY {
			return "its directory is read-only (SQLite creates the -wal and -shm files beside the database file)"
		}
		return "the database file is read-only (check its permissions, its owner and its file system)"
	case sqlite3.SQLITE_IOERR:
		return "the disk refused a read or write of the database file: it may be full, over a quota or file size limit, read-only, or failing"
	case sqlite3.SQLITE_CANTOPEN:
		return "the database file cannot be opened"
	case sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return "access to the database file is denied"
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return "another process holds the database's lock"
	case sqlite3.SQLITE_NOMEM:
		return "out of memory"
	}
	return ""
}

// DB returns the store's read pool, for tools that read every table (a
// copy into another store).
func (s *Store) DB() *sql.DB { return s.r }

// DBs returns the store's connection pools by name, for their metrics:
// sqlite_write (the one writer connection) and sqlite_read.
func (s *Store) DBs() map[string]*sql.DB {
	return map[string]*sql.DB{"sqlite_write": s.w, "sqlite_read": s.r}
}
