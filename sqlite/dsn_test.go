package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenSettings checks that both pools really run with the durability
// settings the package documents, whatever the file name holds.
func TestOpenSettings(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"deploydb.db", "we?ird #1 %41.db"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("database not at %q: %v", path, err)
			}
			for _, pool := range []struct {
				name string
				q    *sql.DB
			}{{"writer", s.w}, {"reader", s.r}} {
				var mode string
				var sync, fk int
				if err := pool.q.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
					t.Fatal(err)
				}
				if err := pool.q.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&sync); err != nil {
					t.Fatal(err)
				}
				if err := pool.q.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk); err != nil {
					t.Fatal(err)
				}
				if mode != "wal" || sync != 2 || fk != 1 {
					t.Errorf("%s: journal_mode=%s synchronous=%d foreign_keys=%d, want wal, 2 (FULL), 1", pool.name, mode, sync, fk)
				}
				var cache int
				if err := pool.q.QueryRowContext(t.Context(), `PRAGMA cache_size`).Scan(&cache); err != nil {
					t.Fatal(err)
				}
				if want := -cacheKiB(pool.name == "writer"); cache != want {
					t.Errorf("%s: cache_size=%d, want %d (KiB)", pool.name, cache, want)
				}
				if pool.name == "writer" {
					var temp int
					if err := pool.q.QueryRowContext(t.Context(), `PRAGMA temp_store`).Scan(&temp); err != nil {
						t.Fatal(err)
					}
					if temp != 2 {
						t.Errorf("writer: temp_store=%d, want 2 (MEMORY): the sub-journals of savepoints in memory", temp)
					}
				}
			}
		})
	}
}
