package bench

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", as package postgres uses
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", as package sqlite uses
)

// Limit is what a store commits when nothing but commits are asked of it.
type Limit struct {
	Store     string  `json:"store"` // sqlite or postgres
	RowsPerTx int     `json:"rowsPerTx"`
	Tx        int     `json:"tx"` // transactions committed
	Seconds   float64 `json:"seconds"`
	TxPerSec  float64 `json:"txPerSec"`
	// Settings says what the durability of the commits rests on.
	Settings string `json:"settings"`
	// After marks the limit measured again after the loads.
	After bool `json:"after,omitempty"`
}

// RowsPerSec returns the rows committed per second.
func (l Limit) RowsPerSec() float64 { return l.TxPerSec * float64(l.RowsPerTx) }

// sqliteDSN is the connection string DeployDB's SQLite store opens its one
// writer connection with (package sqlite): WAL, synchronous=FULL, foreign
// keys, a busy timeout, a 32 MB page cache, and BEGIN IMMEDIATE.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "cache_size(-32768)")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// limitBody is the text each row holds: about the size of an event row.
const limitBody = "deployment.completed billing-api 1.42.0 prod-eu-west deployment.completed billing-api 1.42.0 prod-eu-west "

// SQLiteLimit measures how many transactions of rows single-row INSERTs
// one connection commits per second for d, on a new SQLite file in dir
// opened exactly as DeployDB's store opens its writer (sqliteDSN).
func SQLiteLimit(ctx context.Context, dir string, rows int, d time.Duration) (Limit, error) {
	path := filepath.Join(dir, fmt.Sprintf("limit-%d.db", rows))
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return Limit{}, fmt.Errorf("bench: sqlite limit: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at INTEGER NOT NULL)`); err != nil {
		return Limit{}, fmt.Errorf("bench: sqlite limit: %w", err)
	}
	var mode, sync string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return Limit{}, fmt.Errorf("bench: sqlite limit: journal mode: %w", err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		return Limit{}, fmt.Errorf("bench: sqlite limit: synchronous: %w", err)
	}
	l := Limit{Store: "sqlite", RowsPerTx: rows, Settings: fmt.Sprintf("journal_mode=%s synchronous=%s (2 = FULL), BEGIN IMMEDIATE, one connection", mode, sync)}
	l.Tx, l.Seconds, err = commitLoop(ctx, d, func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		for range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rows (body, created_at) VALUES (?, ?)`, limitBody, time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return l, fmt.Errorf("bench: sqlite limit: %w", err)
	}
	l.TxPerSec = float64(l.Tx) / l.Seconds
	return l, nil
}

// PostgresLimit measures how many transactions of rows single-row INSERTs
// one connection commits per second for d (BEGIN, INSERT, COMMIT at READ
// COMMITTED, through the pgx driver as package postgres uses it), in a
// schema of its own in the database at dbURL, dropped after.
func PostgresLimit(ctx context.Context, dbURL string, rows int, d time.Duration) (_ Limit, err error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return Limit{}, fmt.Errorf("bench: postgres limit: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return Limit{}, fmt.Errorf("bench: postgres limit: %w", err)
	}
	defer conn.Close()
	var b [6]byte
	_, _ = crand.Read(b[:])
	schema := "bench_limit_" + hex.EncodeToString(b[:])
	for _, q := range []string{`CREATE SCHEMA ` + schema, `SET search_path = ` + schema,
		`CREATE TABLE rows (id bigserial PRIMARY KEY, body text NOT NULL, created_at bigint NOT NULL)`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return Limit{}, fmt.Errorf("bench: postgres limit: %s: %w", q, err)
		}
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`); derr != nil && err == nil {
			err = fmt.Errorf("bench: postgres limit: drop schema: %w", derr)
		}
	}()
	var fsync, syncCommit, version string
	if err := conn.QueryRowContext(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('server_version')`).Scan(&fsync, &syncCommit, &version); err != nil {
		return Limit{}, fmt.Errorf("bench: postgres limit: settings: %w", err)
	}
	l := Limit{Store: "postgres", RowsPerTx: rows, Settings: fmt.Sprintf("PostgreSQL %s, fsync=%s synchronous_commit=%s, READ COMMITTED, one connection", version, fsync, syncCommit)}
	l.Tx, l.Seconds, err = commitLoop(ctx, d, func() error {
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		for range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rows (body, created_at) VALUES ($1, $2)`, limitBody, time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return l, fmt.Errorf("bench: postgres limit: %w", err)
	}
	l.TxPerSec = float64(l.Tx) / l.Seconds
	return l, nil
}

// commitLoop runs commit until d has passed, after a short warm-up that is
// not counted, and returns how many ran and in how long.
func commitLoop(ctx context.Context, d time.Duration, commit func() error) (int, float64, error) {
	warm := time.Now().Add(min(d/10, 300*time.Millisecond))
	for time.Now().Before(warm) {
		if err := commit(); err != nil {
			return 0, 0, err
		}
	}
	n, start := 0, time.Now()
	end := start.Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if err := commit(); err != nil {
			return n, time.Since(start).Seconds(), err
		}
		n++
	}
	return n, time.Since(start).Seconds(), ctx.Err()
}
