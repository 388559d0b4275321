package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/storetest"
)

// TestStore runs the store conformance suite, each subtest on its own
// database file.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) deploydb.Store {
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		s.Now = now
		return s
	})
}

// TestDatabase runs the checks that open one database file more than once.
func TestDatabase(t *testing.T) {
	storetest.RunDatabase(t, func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "deploydb.db")
		return func(t *testing.T, now func() time.Time) deploydb.Store {
			s, err := sqlite.Open(t.Context(), path)
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
	path := filepath.Join(t.TempDir(), "deploydb.db")
	mustOpen(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.OneActive(t, db)
}

// mustOpen opens the database at path and closes it when the test ends.
func mustOpen(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close %s: %v", path, err)
		}
	})
	return s
}

func TestOpen(t *testing.T) {
	t.Run("ErrEmptyPath", func(t *testing.T) {
		_, err := sqlite.Open(t.Context(), "")
		if code := deploydb.ErrorCode(err); code != deploydb.EINVALID {
			t.Errorf("got %v, want %s", err, deploydb.EINVALID)
		}
	})

	t.Run("ErrDirectoryMissing", func(t *testing.T) {
		_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "deploydb.db"))
		if err == nil {
			t.Error("opened a database in a directory that does not exist")
		}
	})
}
