package storetest

import (
	"database/sql"
	"fmt"
	"testing"
)

// OneActive checks that the schema itself refuses a second active
// deployment (CREATED, STARTED or COMPLETED) of one service in one
// environment, whatever the code above it does (DESIGN.md §3). db is a
// plain connection to a database the store has migrated, of any driver:
// the statements carry no placeholders.
func OneActive(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := t.Context()
	id := func(query string) int64 {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, query).Scan(&id); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return id
	}
	art := id(`INSERT INTO artifacts (grp, name, version, source_url, created_at) VALUES ('com.example', 'billing', '1.0.0', 'https://ci/b.jar', 0) RETURNING id`)
	flow := id(fmt.Sprintf(`INSERT INTO flows (artifact_id, service, pipeline, status, config_checksum, created_at, updated_at) VALUES (%d, 'billing', 'standard', 'CREATED', 'x', 0, 0) RETURNING id`, art))
	deployment := func(env, status string) string {
		return fmt.Sprintf(`INSERT INTO deployments (flow_id, artifact_id, service, environment, position, status, reason, failure_strategy, created_at, updated_at)
			VALUES (%d, %d, 'billing', '%s', 0, '%s', 'pipeline', 'stop', 0, 0) RETURNING id`, flow, art, env, status)
	}
	id(deployment("integ", "CREATED"))
	for _, status := range []string{"CREATED", "STARTED", "COMPLETED"} {
		var got int64
		if err := db.QueryRowContext(ctx, deployment("integ", status)).Scan(&got); err == nil {
			t.Errorf("a second active deployment in integ (%s) was stored as %d", status, got)
		}
	}
	waiting := id(deployment("integ", "NOT_STARTED"))
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`UPDATE deployments SET status = 'STARTED' WHERE id = %d`, waiting)); err == nil {
		t.Errorf("a waiting deployment became active beside the active one")
	}
	for _, status := range []string{"SUCCESS", "FAILED", "SUPERSEDED", "CANCELLED", "NOT_STARTED"} {
		id(deployment("integ", status)) // finished or waiting ones do not count
	}
	id(deployment("staging", "STARTED")) // another environment
}
