package sqlite

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestDatabaseFull fills the database (PRAGMA max_page_count on the writer
// connection: SQLite then fails writes that need a new page with
// SQLITE_FULL, as on a full disk). A write then fails with EUNAVAILABLE
// saying the disk is full, never an internal error; what was stored stays
// readable; once there is room again the same write succeeds, and the file
// passes integrity_check.
func TestDatabaseFull(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "deploydb.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := deploydb.NewTime(time.Now())
	kept := deploydb.IdempotentResponse{Key: "kept", RequestHash: "h", Status: 201, Body: []byte(`{}`), CreatedAt: now}
	if err := s.SaveIdempotent(ctx, kept); err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}

	big := deploydb.IdempotentResponse{Key: "big", RequestHash: "h", Status: 201, Body: bytes.Repeat([]byte("x"), 256<<10), CreatedAt: now}
	err = s.SaveIdempotent(ctx, big)
	if code := deploydb.ErrorCode(err); code != deploydb.EUNAVAILABLE || !strings.Contains(deploydb.ErrorMessage(err), "the SQLite database "+path+" is unavailable: the disk is full") {
		t.Fatalf("a write to a full database: %v (code %s), want unavailable, naming the file and saying the disk is full", err, code)
	}
	if got, err := s.FindIdempotent(ctx, "kept"); err != nil || got.Status != 201 {
		t.Fatalf("what was stored, read on a full database: %+v, %v", got, err)
	}

	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveIdempotent(ctx, big); err != nil {
		t.Fatalf("the same write once there is room: %v", err)
	}
	var ok string
	if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check: %q %v", ok, err)
	}
}
