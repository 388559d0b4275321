package sqlite_test

import (
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deploydb/deploydb/storetest"
)

// TestCheckpointer: the writer's commits do not checkpoint
// (wal_autocheckpoint=0), yet what they commit reaches the database file
// itself, without its WAL, by the checkpointer's hand.
func TestCheckpointer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deploydb.db")
	s := mustOpen(t, path)
	var every int
	if err := s.DBs()["sqlite_write"].QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&every); err != nil {
		t.Fatal(err)
	}
	if every != 0 {
		t.Errorf("the writer checkpoints every %d pages, want never (0)", every)
	}
	if _, _, err := s.PublishArtifact(t.Context(), storetest.Model(), storetest.Artifact("billing", "1.0.0"), "ci"); err != nil {
		t.Fatal(err)
	}
	// The database file alone, copied while the store runs, as a
	// backup that forgot the WAL would be.
	artifacts := func() int {
		t.Helper()
		copied := filepath.Join(t.TempDir(), "copy.db")
		src, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		dst, err := os.Create(copied)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+copied+"?mode=ro&immutable=1")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM artifacts`).Scan(&n); err != nil {
			return -1 // the copy caught the file mid-checkpoint
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for artifacts() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("after 10 s the database file still lacks the artifact committed to the WAL: nothing checkpoints")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
