package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres"
	"github.com/deploydb/deploydb/storetest"
)

// EnvTestDatabase names the PostgreSQL database the tests run against.
const envTestDatabase = "DEPLOYDB_TEST_POSTGRES"

// testDatabase returns the URL of the test database, or skips the test.
func testDatabase(t *testing.T) string {
	t.Helper()
	u := os.Getenv(envTestDatabase)
	if u == "" {
		t.Skip(envTestDatabase + " is not set: set it to the URL of a PostgreSQL database the tests may create schemas in, e.g. " +
			envTestDatabase + "=postgres://deploydb:deploydb@127.0.0.1:5432/deploydb_test?sslmode=disable")
	}
	return u
}

// freshSchema creates an empty schema of its own for t, dropped when the
// test ends, and returns a URL of the test database with that schema as
// its search path.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := testDatabase(t)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "s_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", envTestDatabase, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	// Subtests run in parallel: keep each store's pool small.
	q.Set(postgres.PoolMaxConnsParam, "4")
	u.RawQuery = q.Encode()
	return u.String()
}

// mustOpen opens the store at u and closes it when the test ends.
func mustOpen(tb testing.TB, u string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// TestStore runs the store conformance suite, each subtest in a schema of
// its own.
func TestStore(t *testing.T) {
	testDatabase(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
		s := mustOpen(t, freshSchema(t))
		s.Now = now
		return s
	})
}

// appliedMigrations returns the number of migration rows goose keeps in
// the schema of u.
func appliedMigrations(t *testing.T, u string) int {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	q.Del(postgres.PoolMaxConnsParam) // the store's, not the server's
	pu.RawQuery = q.Encode()
	db, err := sql.Open("pgx", pu.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenConcurrently opens a fresh schema from several stores at once, as
// replicas starting together do: the migration lock makes every one
// succeed, and the migrations are applied once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	const n = 4
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), u)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
			continue
		}
		if err := stores[i].Close(); err != nil {
			t.Errorf("close %d: %v", i, err)
		}
	}
	// goose's initial version row, and one row per migration.
	if got, want := appliedMigrations(t, u), 2; got != want {
		t.Errorf("%d rows in goose_db_version, want %d", got, want)
	}
}

// TestOpenUpToDate checks that opening a migrated schema applies nothing
// and keeps what it holds.
func TestOpenUpToDate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := freshSchema(t)
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.PublishArtifact(ctx, storetest.Model(), storetest.Artifact("billing", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, u)
	s = mustOpen(t, u)
	if after := appliedMigrations(t, u); after != before {
		t.Errorf("opening an up-to-date schema: %d rows in goose_db_version, was %d", after, before)
	}
	if _, err := s.FindArtifact(ctx, a.ID); err != nil {
		t.Errorf("artifact published before reopening: %v", err)
	}
}

// TestOpenErrors checks what Open says of a bad URL and of a database that
// does not answer.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		code      string
	}{
		{"BadURL", "postgres://%zz", deploydb.EINVALID},
		{"BadPoolSize", "postgres://127.0.0.1:1/x?" + postgres.PoolMaxConnsParam + "=none", deploydb.EINVALID},
		{"Unreachable", "postgres://deploydb@127.0.0.1:1/x?connect_timeout=5", deploydb.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.Open(t.Context(), tc.url)
			if code := deploydb.ErrorCode(err); code != tc.code {
				t.Errorf("got %v, want %s", err, tc.code)
			}
		})
	}
}
