package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/deploydb/deploydb"
)

const artifactColumns = `a.id, a.grp, a.name, a.version, a.source_url, a.created_at, a.published_by`

func scanArtifact(sc interface{ Scan(...any) error }, a *deploydb.Artifact, extra ...any) error {
	var created int64
	if err := sc.Scan(append([]any{&a.ID, &a.Group, &a.Name, &a.Version, &a.SourceURL, &created, &a.PublishedBy}, extra...)...); err != nil {
		return err
	}
	a.CreatedAt = deploydb.UnixMilli(created)
	return nil
}

// FindArtifact returns one artifact.
func (s *Store) FindArtifact(ctx context.Context, id int64) (_ *deploydb.Artifact, err error) {
	defer s.classify(&err)
	var a deploydb.Artifact
	err = scanArtifact(s.r.QueryRowContext(ctx, `SELECT `+artifactColumns+` FROM artifacts a WHERE a.id = ?`, id), &a)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "artifact %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: find artifact: %w", err)
	}
	if err := loadCommits(ctx, s.r, []*deploydb.Artifact{&a}); err != nil {
		return nil, err
	}
	return &a, nil
}

// loadCommits fills in the commits of artifacts as.
func loadCommits(ctx context.Context, q querier, as []*deploydb.Artifact) error {
	if len(as) == 0 {
		return nil
	}
	byID := make(map[int64]*deploydb.Artifact, len(as))
	ids := make([]any, 0, len(as))
	for _, a := range as {
		byID[a.ID] = a
		ids = append(ids, a.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT artifact_id, sha, committed_at FROM artifact_commits WHERE artifact_id IN (`+placeholders(len(ids))+`) ORDER BY artifact_id, position`, ids...)
	if err != nil {
		return fmt.Errorf("store: commits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var c deploydb.Commit
		if err := rows.Scan(&id, &c.SHA, &at); err != nil {
			return fmt.Errorf("store: commits: %w", err)
		}
		c.Timestamp = deploydb.UnixMilli(at)
		byID[id].Commits = append(byID[id].Commits, c)
	}
	return rows.Err()
}

// FindArtifacts returns matching artifacts, newest first.
func (s *Store) FindArtifacts(ctx context.Context, f deploydb.ArtifactFilter) (_ []*deploydb.Artifact, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	if f.Query != "" {
		where = append(where, "("+s.d.Contains("a.grp")+" OR "+s.d.Contains("a.name")+" OR "+s.d.Contains("a.version")+")")
		args = append(args, f.Query, f.Query, f.Query)
	}
	// Group and Name filter independently: a zero one matches everything.
	if f.Group != "" {
		where, args = append(where, `a.grp = ?`), append(args, f.Group)
	}
	if f.Name != "" {
		where, args = append(where, `a.name = ?`), append(args, f.Name)
	}
	q := `SELECT ` + artifactColumns + ` FROM artifacts a` + whereClause(where) + ` ORDER BY a.id DESC` + limitClause(f.Page, &args)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: find artifacts: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Artifact{}
	for rows.Next() {
		var a deploydb.Artifact
		if err := scanArtifact(rows, &a); err != nil {
			return nil, fmt.Errorf("store: find artifacts: %w", err)
		}
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find artifacts: %w", err)
	}
	rows.Close()
	if err := loadCommits(ctx, s.r, out); err != nil {
		return nil, err
	}
	return out, nil
}

const deploymentColumns = `d.id, d.flow_id, d.service, d.environment, d.position, d.status, d.reason, d.failure_strategy, d.due_at, d.waiting, d.created_at, d.updated_at, d.activated_at, d.started_at, d.completed_at, d.finished_at, d.imported, ` + artifactColumns

// scanDeployment scans deploymentColumns, with no promotion results (an
// empty list).
func scanDeployment(rows *sql.Rows) (*deploydb.Deployment, error) {
	var d deploydb.Deployment
	var created, updated int64
	var due, activated, started, completed, finished sql.NullInt64
	var imported int
	if err := scanArtifactAfter(rows, &d.Artifact, &d.ID, &d.Flow, &d.Service, &d.Environment, &d.Position, &d.Status, &d.Reason, &d.FailureStrategy, &due, &d.Waiting, &created, &updated,
		&activated, &started, &completed, &finished, &imported); err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt, d.DueAt = deploydb.UnixMilli(created), deploydb.UnixMilli(updated), timeOf(due)
	d.ActivatedAt, d.StartedAt, d.CompletedAt, d.FinishedAt = timeOf(activated), timeOf(started), timeOf(completed), timeOf(finished)
	d.Imported = imported != 0
	d.Promotions = []deploydb.PromotionResult{}
	return &d, nil
}

// findDeployments loads deployments with their artifact and promotion
// results. where and order are SQL fragments over d (deployments) and a
// (artifacts).
func findDeployments(ctx context.Context, q querier, where []string, order string, page deploydb.Page, args []any) ([]*deploydb.Deployment, error) {
	query := `SELECT ` + deploymentColumns + ` FROM deployments d JOIN artifacts a ON a.id = d.artifact_id` + whereClause(where) + ` ORDER BY ` + order + limitClause(page, &args)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: find deployments: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Deployment{}
	byID := map[int64]*deploydb.Deployment{}
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, fmt.Errorf("store: find deployments: %w", err)
		}
		out = append(out, d)
		byID[d.ID] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find deployments: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]any, 0, len(out))
	for _, d := range out {
		ids = append(ids, d.ID)
	}
	in := placeholders(len(ids))
	rrows, err := q.QueryContext(ctx, `SELECT id, deployment_id, promotion, type, soak_ms, due_at, status, info_url, reported_by, created_at, updated_at FROM promotion_results WHERE deployment_id IN (`+in+`) ORDER BY id`, ids...)
	if err != nil {
		return nil, fmt.Errorf("store: find promotion results: %w", err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var r deploydb.PromotionResult
		var created, updated int64
		var due sql.NullInt64
		if err := rrows.Scan(&r.ID, &r.Deployment, &r.Promotion, &r.Type, &r.SoakMs, &due, &r.Status, &r.InfoURL, &r.ReportedBy, &created, &updated); err != nil {
			return nil, fmt.Errorf("store: find promotion results: %w", err)
		}
		r.CreatedAt, r.UpdatedAt, r.DueAt = deploydb.UnixMilli(created), deploydb.UnixMilli(updated), timeOf(due)
		d := byID[r.Deployment]
		d.Promotions = append(d.Promotions, r)
	}
	if err := rrows.Err(); err != nil {
		return nil, fmt.Errorf("store: find promotion results: %w", err)
	}
	return out, nil
}

// FindDeployment returns one deployment with its promotion results. It
// reads them in one statement, which sees one committed state by itself:
// no transaction to begin and end, one statement to prepare. (The read of
// a deployment by id has a target of its own, DESIGN.md §10.)
func (s *Store) FindDeployment(ctx context.Context, id int64) (_ *deploydb.Deployment, err error) {
	defer s.classify(&err)
	rows, err := s.r.QueryContext(ctx, `SELECT `+deploymentColumns+`,
		coalesce(r.id, 0), coalesce(r.promotion, ''), coalesce(r.type, ''), coalesce(r.soak_ms, 0), r.due_at, coalesce(r.status, ''),
		coalesce(r.info_url, ''), coalesce(r.reported_by, ''), coalesce(r.created_at, 0), coalesce(r.updated_at, 0)
		FROM deployments d JOIN artifacts a ON a.id = d.artifact_id LEFT JOIN promotion_results r ON r.deployment_id = d.id
		WHERE d.id = ? ORDER BY r.id`, id)
	if err != nil {
		return nil, fmt.Errorf("store: find deployment: %w", err)
	}
	defer rows.Close()
	var d *deploydb.Deployment
	for rows.Next() {
		var dd deploydb.Deployment
		var created, updated, artCreated int64
		var due, activated, started, completed, finished sql.NullInt64
		var imported int
		var r deploydb.PromotionResult
		var rCreated, rUpdated int64
		var rDue sql.NullInt64
		if err := rows.Scan(&dd.ID, &dd.Flow, &dd.Service, &dd.Environment, &dd.Position, &dd.Status, &dd.Reason, &dd.FailureStrategy, &due, &dd.Waiting, &created, &updated,
			&activated, &started, &completed, &finished, &imported,
			&dd.Artifact.ID, &dd.Artifact.Group, &dd.Artifact.Name, &dd.Artifact.Version, &dd.Artifact.SourceURL, &artCreated, &dd.Artifact.PublishedBy,
			&r.ID, &r.Promotion, &r.Type, &r.SoakMs, &rDue, &r.Status, &r.InfoURL, &r.ReportedBy, &rCreated, &rUpdated); err != nil {
			return nil, fmt.Errorf("store: find deployment: %w", err)
		}
		if d == nil {
			dd.CreatedAt, dd.UpdatedAt, dd.DueAt, dd.Artifact.CreatedAt = deploydb.UnixMilli(created), deploydb.UnixMilli(updated), timeOf(due), deploydb.UnixMilli(artCreated)
			dd.ActivatedAt, dd.StartedAt, dd.CompletedAt, dd.FinishedAt = timeOf(activated), timeOf(started), timeOf(completed), timeOf(finished)
			dd.Imported = imported != 0
			dd.Promotions = []deploydb.PromotionResult{}
			d = &dd
		}
		if r.ID != 0 {
			r.Deployment = d.ID
			r.CreatedAt, r.UpdatedAt, r.DueAt = deploydb.UnixMilli(rCreated), deploydb.UnixMilli(rUpdated), timeOf(rDue)
			d.Promotions = append(d.Promotions, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find deployment: %w", err)
	}
	if d == nil {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	}
	return d, nil
}

// FindDeployments returns matching deployments.
func (s *Store) FindDeployments(ctx context.Context, f deploydb.DeploymentFilter) (_ []*deploydb.Deployment, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	if f.Artifact != 0 {
		where, args = append(where, `d.artifact_id = ?`), append(args, f.Artifact)
	}
	if f.Service != "" {
		where, args = append(where, `d.service = ?`), append(args, f.Service)
	}
	if f.Environment != "" {
		where, args = append(where, `d.environment = ?`), append(args, f.Environment)
	}
	if f.Flow != 0 {
		where, args = append(where, `d.flow_id = ?`), append(args, f.Flow)
	}
	if f.Status != "" {
		where, args = append(where, `d.status = ?`), append(args, f.Status)
	}
	if !f.From.IsZero() {
		where, args = append(where, `d.created_at >= ?`), append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where, args = append(where, `d.created_at < ?`), append(args, f.To.UnixMilli())
	}
	order := `d.id DESC`
	if f.Ascending {
		order = `d.id`
	}
	if f.Cursor != 0 {
		cmp := `d.id < ?`
		if f.Ascending {
			cmp = `d.id > ?`
		}
		where, args = append(where, cmp), append(args, f.Cursor)
	}
	var ds []*deploydb.Deployment
	err = s.snapshot(ctx, func(q querier) (err error) {
		ds, err = findDeployments(ctx, q, where, order, f.Page, args)
		return err
	})
	return ds, err
}

// FindPromotionResult returns one promotion result of a deployment.
func (s *Store) FindPromotionResult(ctx context.Context, deployment, id int64) (_ *deploydb.PromotionResult, err error) {
	defer s.classify(&err)
	d, err := s.FindDeployment(ctx, deployment)
	if err != nil {
		return nil, err
	}
	for _, r := range d.Promotions {
		if r.ID == id {
			return &r, nil
		}
	}
	return nil, deploydb.Errorf(deploydb.ENOTFOUND, "promotion result %d of deployment %d not found", id, deployment)
}

// findFlow loads a flow with its deployments in pipeline order.
func findFlow(ctx context.Context, q querier, id int64) (*deploydb.Flow, error) {
	flows, err := findFlows(ctx, q, []string{`f.id = ?`}, `f.id`, deploydb.Page{}, []any{id})
	if err != nil {
		return nil, err
	} else if len(flows) == 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "flow %d not found", id)
	}
	return flows[0], nil
}

func findFlows(ctx context.Context, q querier, where []string, order string, page deploydb.Page, args []any) ([]*deploydb.Flow, error) {
	query := `SELECT f.id, f.service, f.pipeline, f.reason, f.status, f.config_checksum, f.created_at, f.updated_at, ` + artifactColumns +
		` FROM flows f JOIN artifacts a ON a.id = f.artifact_id` + whereClause(where) + ` ORDER BY ` + order + limitClause(page, &args)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: find flows: %w", err)
	}
	defer rows.Close()
	out := []*deploydb.Flow{}
	byID := map[int64]*deploydb.Flow{}
	for rows.Next() {
		var f deploydb.Flow
		var created, updated int64
		if err := scanArtifactAfter(rows, &f.Artifact, &f.ID, &f.Service, &f.Pipeline, &f.Reason, &f.Status, &f.ConfigChecksum, &created, &updated); err != nil {
			return nil, fmt.Errorf("store: find flows: %w", err)
		}
		f.CreatedAt, f.UpdatedAt = deploydb.UnixMilli(created), deploydb.UnixMilli(updated)
		f.Deployments = []deploydb.Deployment{}
		out = append(out, &f)
		byID[f.ID] = &f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: find flows: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]any, 0, len(out))
	for _, f := range out {
		ids = append(ids, f.ID)
	}
	ds, err := findDeployments(ctx, q, []string{`d.flow_id IN (` + placeholders(len(ids)) + `)`}, `d.flow_id, d.position, d.id`, deploydb.Page{}, ids)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		f := byID[d.Flow]
		d.Artifact = f.Artifact
		f.Deployments = append(f.Deployments, *d)
	}
	return out, nil
}

func scanArtifactAfter(sc interface{ Scan(...any) error }, a *deploydb.Artifact, before ...any) error {
	var created int64
	if err := sc.Scan(append(before, &a.ID, &a.Group, &a.Name, &a.Version, &a.SourceURL, &created, &a.PublishedBy)...); err != nil {
		return err
	}
	a.CreatedAt = deploydb.UnixMilli(created)
	return nil
}

// FindFlow returns one flow with its deployments.
func (s *Store) FindFlow(ctx context.Context, id int64) (_ *deploydb.Flow, err error) {
	defer s.classify(&err)
	var f *deploydb.Flow
	err = s.snapshot(ctx, func(q querier) (err error) {
		f, err = findFlow(ctx, q, id)
		return err
	})
	return f, err
}

// FindFlows returns matching flows with their deployments.
func (s *Store) FindFlows(ctx context.Context, f deploydb.FlowFilter) (_ []*deploydb.Flow, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	if f.Service != "" {
		where, args = append(where, `f.service = ?`), append(args, f.Service)
	}
	if f.Artifact != 0 {
		where, args = append(where, `f.artifact_id = ?`), append(args, f.Artifact)
	}
	order := `f.id DESC`
	if f.Ascending {
		order = `f.id`
	}
	var fs []*deploydb.Flow
	err = s.snapshot(ctx, func(q querier) (err error) {
		fs, err = findFlows(ctx, q, where, order, f.Page, args)
		return err
	})
	return fs, err
}

// timeOf reads a nullable millisecond time.
func timeOf(v sql.NullInt64) deploydb.Time {
	if !v.Valid {
		return deploydb.Time{}
	}
	return deploydb.UnixMilli(v.Int64)
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(where, ` AND `)
}

// limitClause returns the LIMIT/OFFSET of a page and appends its arguments;
// a zero page selects everything.
//
// A LIMIT or OFFSET of ?+0, not ?: SQLite plans a query anew (reprepare)
// whenever the value bound to a bare ? LIMIT changes, as the planner may
// use it; an expression it evaluates as it runs. The dispatcher's claim,
// whose limit is its free workers, spent more time planning than running
// (outbox.go dueHeads).
func limitClause(p deploydb.Page, args *[]any) string {
	if p.Size <= 0 {
		return ""
	}
	*args = append(*args, p.Size, p.Offset())
	return ` LIMIT ?+0 OFFSET ?+0`
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
