// Package postgres is DeployDB's PostgreSQL store, for several replicas on
// one database: the SQL of package sqlstore, shared with the SQLite store,
// through database/sql with the pgx driver. It passes the same conformance
// suite (storetest).
//
// Writes serialize: every write transaction first takes a transaction-level
// advisory lock (pg_advisory_xact_lock), so that state changes apply one at
// a time across every process on the database, as the SQLite store's single
// writer does within one file. Each reads the current state and writes the
// next without another writer interleaving, and ids (event ids above all)
// are assigned in commit order, which the event cursor (id > after) relies
// on. The lock is scoped to the database and its schema (current_schema()),
// so that DeployDB instances in different schemas of one database do not
// wait for each other.
//
// Reads that take several queries run in one REPEATABLE READ READ ONLY
// transaction, so that they see one committed state.
//
// Migrations are applied at Open under a session advisory lock, so that
// replicas starting at once do not race.
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Classes (the first key) of the advisory locks the store takes; the second
// key is a hash of the schema.
const (
	writeLockClass   = 0x64646201 // every write transaction
	migrateLockClass = 0x64646202 // applying migrations
)

// lockKey is the second key of the store's advisory locks: the schema its
// tables are in.
const lockKey = `hashtext(coalesce(current_schema(), ''))`

// PoolMaxConnsParam is the query parameter of a database URL that bounds
// the store's connection pool (as in pgxpool); it is not sent to the
// server.
const PoolMaxConnsParam = "pool_max_conns"

// Store is the PostgreSQL implementation of deploydb.Store.
type Store struct {
	*sqlstore.Store
	db *sql.DB

	// id tells this store's notifications from other processes'.
	id         string
	stopListen context.CancelFunc
	listening  sync.WaitGroup
}

var _ deploydb.Store = (*Store)(nil)

// Open connects to the database that url names (a postgres:// URL or a
// key=value connection string, as libpq reads them) and applies pending
// migrations. The URL's pool_max_conns bounds the connection pool (default:
// the larger of 4 and GOMAXPROCS).
func Open(ctx context.Context, url string) (*Store, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, deploydb.Errorf(deploydb.EINVALID, "postgres: %v", err)
	}
	maxConns := max(4, runtime.GOMAXPROCS(0))
	if v, ok := cc.RuntimeParams[PoolMaxConnsParam]; ok {
		delete(cc.RuntimeParams, PoolMaxConnsParam)
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, deploydb.Errorf(deploydb.EINVALID, "postgres: %s=%q is not a positive number", PoolMaxConnsParam, v)
		}
		maxConns = n
	}
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	s := &Store{db: db, id: hex.EncodeToString(idb[:])}
	s.Store = sqlstore.New(sqlstore.Driver{
		Name:  "postgres",
		Reads: db,
		// READ COMMITTED, not REPEATABLE READ: each statement after the
		// lock sees every write committed before the lock was granted,
		// where a repeatable read snapshot would be taken by the lock
		// statement itself, before it waited.
		BeginWrite: func(ctx context.Context) (*sql.Tx, error) {
			t, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
			if err != nil {
				return nil, err
			}
			if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, `+lockKey+`)`, writeLockClass); err != nil {
				_ = t.Rollback()
				return nil, fmt.Errorf("write lock: %w", err)
			}
			return t, nil
		},
		BeginSnapshot: func(ctx context.Context) (*sql.Tx, error) {
			return db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		},
		Rebind:   (&rebinder{size: rebindCacheSize}).rebind,
		IsUnique: isUnique,
		Contains: func(col string) string { return "strpos(" + col + ", ?) > 0" },
		// Text sorts by bytes, as in SQLite, whatever the database's locale.
		Collate:     ` COLLATE "C"`,
		Lateral:     true,
		Unavailable: unavailable,
		Shown:       "the PostgreSQL database",
		// Every process on the database hears of a commit (listen).
		Announce: func(ctx context.Context, tx *sql.Tx, deliveries, events bool) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_notify(`+channelName+`, $1)`, payload(s.id, deliveries, events))
			return err
		},
	})
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: "postgres: database unreachable: " + err.Error()}
	}
	if _, err := s.migrate(ctx, cc); err != nil {
		_ = s.Close()
		return nil, err
	}
	// Listening before Open returns: no commit of another process is
	// missed between now and the first wait.
	conn, err := listenConn(ctx, cc)
	if err != nil {
		_ = s.Close()
		return nil, &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: "postgres: listen: " + err.Error()}
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopListen = stop
	s.listening.Add(1)
	go func() {
		defer s.listening.Done()
		s.listen(lctx, cc, conn)
	}()
	return s, nil
}

// migrate applies pending migrations, holding the migration lock (on a
// connection of its own, closed after, so that the lock never outlives it)
// so that processes starting at once apply them one after the other. It
// returns the migrations it applied.
func (s *Store) migrate(ctx context.Context, cc *pgx.ConnConfig) ([]*goose.MigrationResult, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	lc, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: "postgres: database unreachable: " + err.Error()}
	}
	defer func() { _ = lc.Close(context.WithoutCancel(ctx)) }()
	if _, err := lc.Exec(ctx, `SELECT pg_advisory_lock($1, `+lockKey+`)`, migrateLockClass); err != nil {
		return nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db, fsys)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := lc.Exec(ctx, `SELECT pg_advisory_unlock($1, `+lockKey+`)`, migrateLockClass); err != nil {
		return nil, fmt.Errorf("postgres: migration unlock: %w", err)
	}
	return res, nil
}

// channelName is the NOTIFY channel of the store's commits: one per schema,
// so that DeployDB instances in different schemas of one database do not
// wake each other.
const channelName = `'deploydb_' || md5(coalesce(current_schema(), ''))`

// payload says what a commit gave: d for deliveries, e for events, after
// the id of the store that made it and a colon.
func payload(id string, deliveries, events bool) string {
	p := id + ":"
	if deliveries {
		p += "d"
	}
	if events {
		p += "e"
	}
	return p
}

// listenConn connects and listens to the store's channel.
func listenConn(ctx context.Context, cc *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT `+channelName).Scan(&name); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{name}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// listen hears the commits the other processes on the database announce
// on conn, and wakes this one's dispatcher and live views, until ctx is
// done (its own commits wake them directly). A lost connection is made
// again (after a pause that grows to 30 s), and what was missed meanwhile
// is caught up by waking both.
func (s *Store) listen(ctx context.Context, cc *pgx.ConnConfig, conn *pgx.Conn) {
	pause := time.Second
	for {
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			from, what, _ := strings.Cut(n.Payload, ":")
			if from != s.id {
				s.Committed(strings.Contains(what, "d"), strings.Contains(what, "e"))
			}
			pause = time.Second
		}
		_ = conn.Close(context.WithoutCancel(ctx))
		for {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			c, err := listenConn(ctx, cc)
			if err == nil {
				conn = c
				break
			}
		}
		// Listening again: what was committed meanwhile is caught up.
		s.Committed(true, true)
	}
}

// Close stops listening and closes the connection pool.
func (s *Store) Close() error {
	if s.stopListen != nil {
		s.stopListen()
		s.listening.Wait()
	}
	return s.db.Close()
}

// DBs returns the store's connection pool by name, for its metrics:
// postgres (the connection that listens for notifications is not in it).
func (s *Store) DBs() map[string]*sql.DB { return map[string]*sql.DB{"postgres": s.db} }

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// unavailable says why err means the database cannot serve now: it cannot
// be reached, a connection to it was lost, it shuts down or starts up, it
// is out of disk or connections, or it is a read-only standby. It returns
// "" for any other error. A transaction such an error ends is rolled back
// by the server (a lost COMMIT may have committed: Idempotency-Key makes
// the retry safe).
func unavailable(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100":
			return "its server's disk is full"
		case strings.HasPrefix(pe.Code, "53"):
			return "its server is out of resources (" + pe.Message + ")"
		case strings.HasPrefix(pe.Code, "08"):
			return "the connection to it failed (" + pe.Message + ")"
		case pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03":
			return "its server is shutting down or starting up"
		case pe.Code == "25006":
			return "it is read-only (a standby?)"
		}
		return ""
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return "cannot connect to it"
	case pgconn.Timeout(err):
		return "it did not answer in time"
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), pgconn.SafeToRetry(err):
		return "the connection to it was lost"
	}
	return ""
}

// rebind numbers the ? placeholders of query as $1, $2, ... A ? inside a
// string literal (single quotes, a quote inside doubled) is left alone.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DurabilityWarnings says what in the server's settings, as this store's
// connections see them, weakens what an acknowledged write promises:
// DeployDB answers 2xx after COMMIT returns, which survives a crash of the
// PostgreSQL server only with fsync on and synchronous_commit at least
// local, and a power loss only with full_page_writes on too. None when the
// settings keep that promise.
func (s *Store) DurabilityWarnings(ctx context.Context) ([]string, error) {
	var fsync, syncCommit, fullPages string
	err := s.db.QueryRowContext(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')`).
		Scan(&fsync, &syncCommit, &fullPages)
	if err != nil {
		return nil, fmt.Errorf("postgres: read settings: %w", err)
	}
	var out []string
	if fsync == "off" {
		out = append(out, "fsync is off: a crash of the PostgreSQL server or a power loss can lose or corrupt acknowledged writes")
	}
	if syncCommit == "off" {
		out = append(out, "synchronous_commit is off: a crash of the PostgreSQL server can lose the last acknowledged writes")
	}
	if fullPages == "off" {
		out = append(out, "full_page_writes is off: a power loss can corrupt the database")
	}
	return out, nil
}
