package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deploydb/deploydb"
)

const finishedColumns = `d.id, d.service, d.status, d.reason, d.finished_at, coalesce(a.oldest_commit_at, 0)`

func scanFinished(sc interface{ Scan(...any) error }) (deploydb.Finished, error) {
	var f deploydb.Finished
	var finished, oldest int64
	if err := sc.Scan(&f.Deployment, &f.Service, &f.Status, &f.Reason, &finished, &oldest); err != nil {
		return f, err
	}
	f.FinishedAt = deploydb.UnixMilli(finished).Time
	if oldest != 0 {
		f.OldestCommit = deploydb.UnixMilli(oldest).Time
	}
	return f, nil
}

// FindFinished implements deploydb.Store. The window is read from
// deployments_finished (environment, finished_at); a failure at the end of
// it looks for its service's next success in deployments_succeeded.
func (s *Store) FindFinished(ctx context.Context, f deploydb.FinishedFilter) (_ []deploydb.Finished, err error) {
	defer s.classify(&err)
	where := `d.environment = ? AND d.status IN ('SUCCESS', 'FAILED') AND d.finished_at >= ? AND d.finished_at < ?`
	args := []any{f.Environment, f.From.UnixMilli(), f.To.UnixMilli()}
	if f.Service != "" {
		where, args = where+` AND d.service = ?`, append(args, f.Service)
	}
	out := []deploydb.Finished{}
	err = s.snapshot(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT `+finishedColumns+` FROM deployments d`+s.indexedBy("deployments_finished")+`
			JOIN artifacts a ON a.id = d.artifact_id WHERE `+where+` ORDER BY d.finished_at, d.id`, args...)
		if err != nil {
			return fmt.Errorf("store: finished deployments: %w", err)
		}
		defer rows.Close()
		last := map[string]deploydb.Finished{}
		var services []string
		for rows.Next() {
			d, err := scanFinished(rows)
			if err != nil {
				return fmt.Errorf("store: finished deployments: %w", err)
			}
			if _, ok := last[d.Service]; !ok {
				services = append(services, d.Service)
			}
			last[d.Service] = d
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: finished deployments: %w", err)
		}
		rows.Close()
		// A service whose last deployment in the window failed recovers,
		// if it has, with its first success after the window.
		for _, svc := range services {
			if last[svc].Status != deploydb.DeploymentFailed {
				continue
			}
			d, err := scanFinished(q.QueryRowContext(ctx, `SELECT `+finishedColumns+` FROM deployments d`+s.indexedBy("deployments_succeeded")+`
				JOIN artifacts a ON a.id = d.artifact_id
				WHERE d.service = ? AND d.environment = ? AND d.status = 'SUCCESS' AND d.finished_at >= ?
				ORDER BY d.finished_at, d.id LIMIT 1`, svc, f.Environment, f.To.UnixMilli()))
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("store: next success: %w", err)
			default:
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindCommits implements deploydb.Store. Artifacts are ordered by when
// they were created, then by id.
func (s *Store) FindCommits(ctx context.Context, r deploydb.CommitRange) (_ []deploydb.Commit, err error) {
	defer s.classify(&err)
	rows, err := s.r.QueryContext(ctx, `WITH lo AS (SELECT created_at, id FROM artifacts WHERE id = ?), hi AS (SELECT created_at, id FROM artifacts WHERE id = ?)
		SELECT c.sha, c.committed_at FROM artifacts a JOIN artifact_commits c ON c.artifact_id = a.id, lo, hi
		WHERE a.grp = ? AND a.name = ?
			AND (a.created_at > lo.created_at OR (a.created_at = lo.created_at AND a.id > lo.id))
			AND (a.created_at < hi.created_at OR (a.created_at = hi.created_at AND a.id <= hi.id))
		ORDER BY a.created_at DESC, a.id DESC, c.position LIMIT ?`, r.After, r.UpTo, r.Group, r.Name, cmp.Or(r.Limit, deploydb.MaxDiffCommits))
	if err != nil {
		return nil, fmt.Errorf("store: commits: %w", err)
	}
	defer rows.Close()
	out := []deploydb.Commit{}
	for rows.Next() {
		var c deploydb.Commit
		var at int64
		if err := rows.Scan(&c.SHA, &at); err != nil {
			return nil, fmt.Errorf("store: commits: %w", err)
		}
		c.Timestamp = deploydb.UnixMilli(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
