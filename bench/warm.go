package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
)

// warmStatements read, once each, the tables and indexes behind the
// measured reads: a deployment by id (deployments, artifacts, the
// promotion results of a deployment) and a service's history (its index
// of deployments). The status matrix is served from memory; the event
// log, 48 M rows at 10m, is not a target and is left as it is.
var warmStatements = []string{
	`SELECT sum(length(status)) FROM deployments`,
	`SELECT count(*) FROM deployments INDEXED BY deployments_service`,
	`SELECT sum(length(version)) FROM artifacts`,
	`SELECT sum(length(status)) FROM promotion_results`,
	`SELECT count(*) FROM promotion_results INDEXED BY sqlite_autoindex_promotion_results_1`,
}

// WarmCache reads the tables behind the measured reads of the SQLite
// database at path once, read-only, so that the operating system holds
// them in its page cache, as it does on a server that has run a while. A
// history just generated, copied or linked in, or one on a machine whose
// page cache was dropped since, is on disk: the reads would measure the
// disk, and the 10m read targets judged a cold start. (This machine's host
// drops the page cache now and then.)
func WarmCache(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("bench: warm the page cache: %w", err)
	}
	defer db.Close()
	for _, q := range warmStatements {
		var v sql.NullInt64
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			return fmt.Errorf("bench: warm the page cache: %s: %w", q, err)
		}
	}
	return nil
}
