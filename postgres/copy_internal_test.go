package postgres

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deploydb/deploydb/sqlite"
)

// TestCopyTablesAll: copyTables names every table of the SQLite store but
// the bookkeeping ones, so that a table a migration adds is not left
// behind by deploydb copy.
func TestCopyTablesAll(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DBs()["sqlite_read"].QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	// Not copied: goose's version table, SQLite's sequences, and the
	// status matrix's version (moved on by the copy itself).
	skip := []string{"goose_db_version", "sqlite_sequence", "status_version", "status_services"}
	var missing []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(skip, name) && !slices.ContainsFunc(copyTables, func(c struct {
			name     string
			identity bool
		}) bool {
			return c.name == name
		}) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("deploydb copy leaves behind tables %v", missing)
	}
}
