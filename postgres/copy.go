package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/deploydb/deploydb"
)

// copyTables are the store's tables in an order that respects their
// references, with whether each has an identity id.
var copyTables = []struct {
	name     string
	identity bool
}{
	{"artifacts", true},
	{"artifact_commits", false},
	{"flows", true},
	{"deployments", true},
	{"promotion_results", true},
	{"events", true},
	{"env_locks", false},
	{"env_state", false},
	{"webhook_deliveries", true},
	{"webhook_attempts", true},
	{"idempotency_keys", false},
	{"config_environments", false},
}

// CopyFrom copies every row of the store's tables from src (a SQLite
// store's database, migrated to the same version) into s, which must hold
// no artifact yet, in one transaction: all or nothing. Ids are kept (event
// cursors, webhook-ids and URLs stay valid) and the identity sequences go
// on after them. It returns the number of rows copied per table.
func (s *Store) CopyFrom(ctx context.Context, src *sql.DB) (map[string]int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("postgres: copy: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, `+lockKey+`)`, writeLockClass); err != nil {
		return nil, fmt.Errorf("postgres: copy: write lock: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM artifacts`).Scan(&n); err != nil {
		return nil, fmt.Errorf("postgres: copy: %w", err)
	}
	if n > 0 {
		return nil, deploydb.Errorf(deploydb.ECONFLICT, "the PostgreSQL database holds %d artifacts already: copy into an empty one", n)
	}
	// The tables the sync of environments filled at start are replaced.
	if _, err := tx.ExecContext(ctx, `DELETE FROM config_environments`); err != nil {
		return nil, fmt.Errorf("postgres: copy: %w", err)
	}
	counts := map[string]int{}
	for _, t := range copyTables {
		c, err := copyTable(ctx, src, tx, t.name, t.identity)
		if err != nil {
			return nil, fmt.Errorf("postgres: copy %s: %w", t.name, err)
		}
		counts[t.name] = c
		if t.identity {
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), coalesce((SELECT max(id) FROM `+t.name+`), 0) + 1, false)`, t.name); err != nil {
				return nil, fmt.Errorf("postgres: copy %s: sequence: %w", t.name, err)
			}
		}
	}
	// Every row of the status matrix is new: a server that kept one
	// (status_version, httpapi) builds it again.
	if _, err := tx.ExecContext(ctx, `UPDATE status_version SET n = n + 1, whole = n + 1 WHERE id = 1`); err != nil {
		return nil, fmt.Errorf("postgres: copy: status version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("postgres: copy: commit: %w", err)
	}
	return counts, nil
}

// copyTable copies the rows of table from src into tx, converting what
// the two databases keep differently (SQLite's 0/1 for a boolean).
func copyTable(ctx context.Context, src *sql.DB, tx *sql.Tx, table string, identity bool) (int, error) {
	bools, err := booleanColumns(ctx, tx, table)
	if err != nil {
		return 0, err
	}

	order := ""
	if identity {
		order = " ORDER BY id"
	}
	in, err := src.QueryContext(ctx, `SELECT * FROM `+table+order)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	cols, err := in.Columns()
	if err != nil {
		return 0, err
	}
	marks := make([]string, len(cols))
	for i := range cols {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	override := ""
	if identity {
		override = " OVERRIDING SYSTEM VALUE"
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `)` + override + ` VALUES (` + strings.Join(marks, ", ") + `)`
	n := 0
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for in.Next() {
		if err := in.Scan(ptrs...); err != nil {
			return n, err
		}
		args := slices.Clone(vals)
		for i, c := range cols {
			if v, ok := args[i].(int64); ok && bools[c] {
				args[i] = v != 0
			}
		}
		if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
			return n, err
		}
		n++
	}
	return n, in.Err()
}

// booleanColumns returns the boolean columns of table.
func booleanColumns(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'boolean'`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out[c] = true
	}
	return out, rows.Err()
}
