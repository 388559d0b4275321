package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// openCaching opens a database file in a temporary directory through the
// statement cache, with one connection, and a table t of three rows.
func openCaching(t *testing.T, size int) *sql.DB {
	t.Helper()
	c, err := newCachingConnector(dsn(filepath.Join(t.TempDir(), "cache.db"), true), size)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	for _, q := range []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`, `INSERT INTO t (v) VALUES ('a'), ('b'), ('c')`} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// cached returns the SQL of the statements the connection of db caches,
// from the most recently used.
func cached(t *testing.T, db *sql.DB) []string {
	t.Helper()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []string
	if err := conn.Raw(func(dc any) error {
		c := dc.(*cachingConn)
		c.mu.Lock()
		defer c.mu.Unlock()
		for s := c.head; s != nil; s = s.next {
			out = append(out, s.query)
		}
		if len(out) != len(c.stmts) {
			return fmt.Errorf("%d statements in the list, %d in the map", len(out), len(c.stmts))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func values(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStmtCacheNested: a query run again while the rows of its last run
// are open (one transaction, one connection) gets its own rows, and the
// first rows go on where they were.
func TestStmtCacheNested(t *testing.T) {
	db := openCaching(t, 8)
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT v FROM t ORDER BY id`
	outer, err := tx.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	var got []string
	for outer.Next() {
		var v string
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		if inner := values(t, must(tx.QueryContext(ctx, q))(t)); !slices.Equal(inner, []string{"a", "b", "c"}) {
			t.Fatalf("the query run again inside its rows: %q, want a b c", inner)
		}
		// An exec of the same statement while its rows are open.
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if err := outer.Close(); err != nil { // before the commit, which waits for it
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("the outer rows: %q, want a b c", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Once the rows closed, the cached statement runs again.
	if v := values(t, must(db.QueryContext(ctx, q))(t)); !slices.Equal(v, []string{"a", "b", "c"}) {
		t.Fatalf("after: %q", v)
	}
}

// TestStmtCacheBound: a connection keeps at most size statements, the
// most recently used; one evicted while its rows are open still reads
// them all.
func TestStmtCacheBound(t *testing.T) {
	db := openCaching(t, 3)
	ctx := t.Context()
	q := func(i int) string { return fmt.Sprintf(`SELECT v || '%d' FROM t ORDER BY id`, i) }
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	open, err := tx.QueryContext(ctx, q(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if v := values(t, must(tx.QueryContext(ctx, q(i)))(t)); len(v) != 3 || v[0] != "a"+fmt.Sprint(i) {
			t.Fatalf("%s: %q", q(i), v)
		}
	}
	if v := values(t, open); !slices.Equal(v, []string{"a0", "b0", "c0"}) {
		t.Fatalf("the rows of the evicted statement: %q", v)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := cached(t, db), []string{q(5), q(4), q(3)}; !slices.Equal(got, want) {
		t.Fatalf("cached %q, want %q", got, want)
	}
	// Using a statement makes it the most recent: the next one evicts
	// another.
	values(t, must(db.QueryContext(ctx, q(3)))(t))
	if _, err := db.ExecContext(ctx, `UPDATE t SET v = v WHERE id = ?`, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := cached(t, db), []string{`UPDATE t SET v = v WHERE id = ?`, q(3), q(5)}; !slices.Equal(got, want) {
		t.Fatalf("cached %q, want %q", got, want)
	}
}

// TestStmtCacheSchemaChange: a cached statement sees the schema as it is
// when it runs, after columns were added or its table made anew.
func TestStmtCacheSchemaChange(t *testing.T) {
	db := openCaching(t, 8)
	ctx := t.Context()
	const q = `SELECT * FROM t WHERE id = ?`
	columns := func() []string {
		rows, err := db.QueryContext(ctx, q, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cs, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if cs := columns(); !slices.Equal(cs, []string{"id", "v"}) {
		t.Fatalf("columns %q", cs)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE t ADD COLUMN w TEXT`); err != nil {
		t.Fatal(err)
	}
	if cs := columns(); !slices.Equal(cs, []string{"id", "v", "w"}) {
		t.Fatalf("after ALTER TABLE: columns %q", cs)
	}
	for _, s := range []string{`DROP TABLE t`, `CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)`, `INSERT INTO t (x) VALUES (7)`} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var id, x int
	if err := db.QueryRowContext(ctx, q, 1).Scan(&id, &x); err != nil || x != 7 {
		t.Fatalf("after the table was made anew: %d, %v", x, err)
	}
	if !slices.Contains(cached(t, db), q) {
		t.Fatalf("%s is not cached", q)
	}
}

// TestStmtCacheErrors: a statement that fails to prepare is not cached;
// one that fails to run stays usable.
func TestStmtCacheErrors(t *testing.T) {
	db := openCaching(t, 8)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `SELEC 1`); err == nil {
		t.Fatal("a syntax error ran")
	}
	const ins = `INSERT INTO t (id, v) VALUES (?, ?)`
	if _, err := db.ExecContext(ctx, ins, 1, "dup"); err == nil {
		t.Fatal("a duplicate id was inserted")
	}
	if _, err := db.ExecContext(ctx, ins, 4, "d"); err != nil {
		t.Fatal(err)
	}
	if got := cached(t, db); !slices.Equal(got, []string{ins, `INSERT INTO t (v) VALUES ('a'), ('b'), ('c')`, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`}) {
		t.Fatalf("cached %q", got)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
