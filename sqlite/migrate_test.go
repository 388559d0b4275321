package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/deploydb/deploydb"
)

// TestMigrateHistory: migration 00010 gives the deployments recorded before
// it the times of their steps, from their events.
func TestMigrateHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deploydb.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 9); err != nil {
		t.Fatal(err)
	}
	// A database of the store before 00010: one deployment verified in
	// integ (created at 1000, started 2000, completed 3000, verified
	// 4000), one that failed before it completed (activated 5000, failed
	// 6000), one not started.
	for _, q := range []string{
		`INSERT INTO artifacts (id, grp, name, version, source_url, created_at) VALUES (1, 'g', 'n', '1', 'u', 500)`,
		`INSERT INTO flows (id, artifact_id, service, pipeline, status, config_checksum, created_at, updated_at) VALUES (1, 1, 'billing', 'standard', 'FAILED', 'c', 500, 6000)`,
		`INSERT INTO deployments (id, flow_id, artifact_id, service, environment, position, status, reason, failure_strategy, created_at, updated_at) VALUES
			(1, 1, 1, 'billing', 'integ', 0, 'SUCCESS', 'pipeline', 'notify', 500, 4000),
			(2, 1, 1, 'billing', 'prod', 1, 'FAILED', 'pipeline', 'notify', 500, 6000),
			(3, 1, 1, 'billing', 'extra', 2, 'NOT_STARTED', 'pipeline', 'notify', 500, 500)`,
		`INSERT INTO events (type, service, environment, deployment_id, actor, created_at) VALUES
			('deployment.created', 'billing', 'integ', 1, 'ci', 1000),
			('deployment.started', 'billing', 'integ', 1, 'ci', 2000),
			('deployment.completed', 'billing', 'integ', 1, 'ci', 3000),
			('deployment.verified', 'billing', 'integ', 1, 'ci', 4000),
			('deployment.created', 'billing', 'prod', 2, 'ci', 5000),
			('deployment.failed', 'billing', 'prod', 2, 'ci', 6000)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := mustOpen(t, path)
	ms := func(v int64) deploydb.Time {
		if v == 0 {
			return deploydb.Time{}
		}
		return deploydb.UnixMilli(v)
	}
	for _, tt := range []struct {
		id                                      int64
		activated, started, completed, finished int64
	}{
		{1, 1000, 2000, 3000, 4000},
		{2, 5000, 0, 0, 6000},
		{3, 0, 0, 0, 0},
	} {
		d, err := s.FindDeployment(t.Context(), tt.id)
		if err != nil {
			t.Fatal(err)
		}
		want := [4]deploydb.Time{ms(tt.activated), ms(tt.started), ms(tt.completed), ms(tt.finished)}
		if got := [4]deploydb.Time{d.ActivatedAt, d.StartedAt, d.CompletedAt, d.FinishedAt}; got != want {
			t.Errorf("deployment %d: activated, started, completed, finished = %v, want %v", tt.id, got, want)
		}
	}
}
