package postgres_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres"
	"github.com/deploydb/deploydb/postgres/pgtest"
	"github.com/deploydb/deploydb/storetest"
)

// freshSchema returns the URL of an empty schema of t's own, with a small
// pool: subtests run in parallel.
func freshSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, postgres.PoolMaxConnsParam, "4")
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
	pgtest.Database(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
		s := mustOpen(t, freshSchema(t))
		s.Now = now
		return s
	})
}

// TestDatabase runs the checks that open one database more than once.
func TestDatabase(t *testing.T) {
	pgtest.Database(t)
	storetest.RunDatabase(t, func(t *testing.T) storetest.Database {
		u := freshSchema(t)
		return func(t *testing.T, now func() time.Time) deploydb.Store {
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			s.Now = now
			return s
		}
	})
}

// TestOneActive: the schema refuses a second active deployment of a
// service in an environment.
func TestOneActive(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	mustOpen(t, u)
	plain, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := plain.Query()
	q.Del("pool_max_conns") // the store's parameter, not libpq's
	plain.RawQuery = q.Encode()
	db, err := sql.Open("pgx", plain.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.OneActive(t, db)
}

// TestDurabilityWarnings: the settings that weaken what a 2xx promises
// are named; the defaults name none.
func TestDurabilityWarnings(t *testing.T) {
	t.Parallel()
	u := freshSchema(t)
	for _, tt := range []struct {
		url  string
		want string
	}{
		{u, ""},
		{u + "&synchronous_commit=off", "synchronous_commit is off"},
	} {
		s := mustOpen(t, tt.url)
		got, err := s.DurabilityWarnings(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)) {
			t.Errorf("%s: warnings %q, want %q", tt.url, got, tt.want)
		}
	}
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
	if got, want := appliedMigrations(t, u), 1+migrationFiles(t); got != want {
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

// A commit in one process wakes the dispatcher and the live views of every
// other process on the database (LISTEN/NOTIFY), not only its own.
func TestCommitsWakeOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := freshSchema(t)
	s1, s2 := mustOpen(t, u), mustOpen(t, u)
	waitWake := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no wake-up within 10 s", what)
		}
	}
	// s2 listens from Open on: each round is answered by s1's
	// notification. (Two rounds: a stray wake could answer one.)
	// (Two services: each publish activates an environment, and so
	// enqueues deliveries.)
	for _, name := range []string{"billing", "ledger"} {
		select {
		case <-s2.DeliveriesReady():
		default:
		}
		events := s2.EventsCommitted()
		if _, _, err := s1.PublishArtifact(ctx, storetest.Model(), storetest.Artifact(name, "1.0.0"), "ci"); err != nil {
			t.Fatal(err)
		}
		waitWake("events committed by the other process", events)
		waitWake("deliveries enqueued by the other process", s2.DeliveriesReady())
	}
}

// migrationFiles counts the migrations of the package.
func migrationFiles(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(files)
}
