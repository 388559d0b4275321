package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/deploydb/deploydb"
)

// importChunk is how many records one write transaction of an import
// takes: the writer is held for tens of milliseconds at a time, never for
// the whole file.
const importChunk = 100

// namedArtifact is what the records of an import say of one artifact.
type namedArtifact struct {
	// first is the record of its first deployment (by start).
	first     *deploydb.ImportRecord
	sourceURL string
	line      int // that named sourceURL first
	// commits are the first commits a record gave it, on commitsLine.
	commits     []deploydb.Commit
	commitsLine int
	// stored is the artifact as stored, once checked.
	checked bool
	stored  *importedArtifact
}

// importedArtifact is what an import knows of an artifact it names.
type importedArtifact struct {
	id        int64
	sourceURL string
	commits   []deploydb.Commit
}

// Import implements deploydb.Store. The records are checked against what
// is stored first, in one snapshot, so that an artifact named with another
// sourceUrl or other commits refuses the whole import before anything is
// written; then they are written in chunks of importChunk, each with a
// history.imported event. A chunk checks again what it relies on, so a
// conflicting artifact published between the check and the write fails
// that chunk alone (the chunks before it stay: importing the file again
// adds only what is missing).
func (s *Store) Import(ctx context.Context, cfg *deploydb.Config, rs []deploydb.ImportRecord, actor string) (_ *deploydb.ImportResult, err error) {
	defer s.classify(&err)
	if len(rs) > deploydb.MaxImportRecords {
		return nil, deploydb.Errorf(deploydb.EINVALID, "an import takes at most %d deployments, not %d", deploydb.MaxImportRecords, len(rs))
	}
	var problems []deploydb.FieldError
	now := s.now()
	// A record with problems of its own is not compared with what is
	// stored: one problem, not its echoes.
	invalid := map[int]bool{}
	for i := range rs {
		p := rs[i].Validate(cfg)
		if len(p) > 0 {
			invalid[rs[i].Line] = true
		}
		problems = append(problems, p...)
		if rs[i].FinishedAt.After(now.Time) {
			problems = append(problems, deploydb.FieldError{Line: rs[i].Line, Field: "finishedAt", Message: "is in the future"})
		}
	}
	overlapping := overlaps(rs)
	problems = append(problems, overlapping...)
	// A record said to overlap another of the file is not said again to
	// overlap what is stored (often the same deployment, imported before).
	said := map[int]bool{}
	for _, p := range overlapping {
		said[p.Line] = true
	}
	// Every record that names an artifact must name it the same way.
	named := map[[3]string]*namedArtifact{}
	for i := range rs {
		r := &rs[i]
		k := [3]string{r.Group, r.Name, r.Version}
		n, ok := named[k]
		if !ok {
			named[k] = &namedArtifact{first: r, sourceURL: r.SourceURL, line: r.Line, commits: r.Commits, commitsLine: r.Line}
			continue
		}
		problems = append(problems, sameArtifact(r, n.sourceURL, nil, fmt.Sprintf("line %d", n.line))...)
		problems = append(problems, sameArtifact(r, r.SourceURL, n.commits, fmt.Sprintf("line %d", n.commitsLine))...)
		if len(n.commits) == 0 && len(r.Commits) > 0 {
			n.commits, n.commitsLine = r.Commits, r.Line
		}
		if n.first.StartedAt.After(r.StartedAt.Time) {
			// The artifact is created at its first deployment's start.
			n.first = r
		}
	}
	err = s.snapshot(ctx, func(q querier) error {
		for i := range rs {
			r := &rs[i]
			n := named[[3]string{r.Group, r.Name, r.Version}]
			if !n.checked {
				stored, err := findImportedArtifact(ctx, q, [3]string{r.Group, r.Name, r.Version})
				if err != nil {
					return err
				}
				n.checked, n.stored = true, stored
			}
			if n.stored != nil {
				problems = append(problems, sameArtifact(r, n.stored.sourceURL, n.stored.commits, "the stored artifact")...)
				if invalid[r.Line] {
					continue
				}
				p, _, err := storedAsImported(ctx, q, r, n.stored.id)
				if err != nil {
					return err
				}
				problems = append(problems, p...)
			}
			if said[r.Line] || invalid[r.Line] {
				continue
			}
			p, err := s.overlapsStored(ctx, q, r)
			if err != nil {
				return err
			}
			problems = append(problems, p...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, deploydb.ImportError(problems)
	}

	out := &deploydb.ImportResult{Events: []int64{}}
	for start := 0; start < len(rs); start += importChunk {
		chunk := rs[start:min(start+importChunk, len(rs))]
		var res deploydb.ImportResult
		err := s.write(ctx, func(tx *wtx) error {
			res = deploydb.ImportResult{}
			return s.importChunk(ctx, tx, cfg, chunk, named, actor, &res)
		})
		if err != nil {
			if start > 0 {
				// Say what is stored: the chunks before this one.
				e := &deploydb.Error{Code: deploydb.ErrorCode(err), Message: "internal error"}
				var de *deploydb.Error
				if errors.As(err, &de) {
					e.Message, e.Fields = strings.TrimSuffix(de.Message, deploydb.NothingImported), de.Fields
				}
				e.Message = fmt.Sprintf("the lines from line %d on were not imported (%d deployments before them were: importing the file again adds only what is missing): %s",
					chunk[0].Line, out.Imported, e.Message)
				if e.Code == deploydb.EINTERNAL {
					return nil, fmt.Errorf("%s: %w", e.Message, err)
				}
				return nil, e
			}
			return nil, err
		}
		out.Imported += res.Imported
		out.Unchanged += res.Unchanged
		out.ArtifactsCreated += res.ArtifactsCreated
		out.Events = append(out.Events, res.Events...)
	}
	return out, nil
}

// overlaps returns a problem for each record that overlaps another of rs
// deploying the same service to the same environment: DeployDB keeps one
// deployment at a time in each (a record twice in rs is one deployment,
// not an overlap).
func overlaps(rs []deploydb.ImportRecord) []deploydb.FieldError {
	byCell := map[[2]string][]*deploydb.ImportRecord{}
	for i := range rs {
		r := &rs[i]
		if r.StartedAt.IsZero() || r.FinishedAt.IsZero() {
			continue // invalid: said so already
		}
		k := [2]string{r.Service, r.Environment}
		byCell[k] = append(byCell[k], r)
	}
	var out []deploydb.FieldError
	for _, cell := range byCell {
		slices.SortStableFunc(cell, func(a, b *deploydb.ImportRecord) int {
			return cmp.Or(a.StartedAt.Compare(b.StartedAt.Time), a.FinishedAt.Compare(b.FinishedAt.Time))
		})
		var last *deploydb.ImportRecord // the one that ends last so far
		for _, r := range cell {
			if last != nil && sameDeployment(r, last) && (r.Status != last.Status || reasonOf(r) != reasonOf(last) || !r.StartedAt.Equal(last.StartedAt.Time)) {
				out = append(out, deploydb.FieldError{Line: r.Line, Field: "status",
					Message: fmt.Sprintf("differs from line %d, the same deployment (artifact, service, environment and finishedAt) told otherwise", last.Line)})
			}
			if last != nil && r.StartedAt.Before(last.FinishedAt.Time) && !sameDeployment(r, last) {
				out = append(out, deploydb.FieldError{Line: r.Line, Field: "startedAt",
					Message: fmt.Sprintf("overlaps line %d (%s %s in %s, %s to %s): DeployDB keeps one deployment at a time per service and environment",
						last.Line, last.Service, last.Version, last.Environment, last.StartedAt, last.FinishedAt)})
			}
			if last == nil || r.FinishedAt.After(last.FinishedAt.Time) {
				last = r
			}
		}
	}
	return out
}

// sameDeployment reports whether a and b are one deployment: the same
// artifact to the same place, finished at the same instant.
func sameDeployment(a, b *deploydb.ImportRecord) bool {
	return a.Group == b.Group && a.Name == b.Name && a.Version == b.Version && a.Service == b.Service && a.Environment == b.Environment && a.FinishedAt.Equal(b.FinishedAt.Time)
}

// overlapsStored returns a problem when record r overlaps a stored
// deployment of its service in its environment other than itself
// (imported before). Stored deployments never overlap one another, so the
// one activated last before r finished is the only one that can.
func (s *Store) overlapsStored(ctx context.Context, q querier, r *deploydb.ImportRecord) ([]deploydb.FieldError, error) {
	if r.StartedAt.IsZero() || r.FinishedAt.IsZero() {
		return nil, nil
	}
	d, err := s.oneDeployment(ctx, q, `d.service = ? AND d.environment = ? AND d.activated_at < ?`, `d.activated_at DESC, d.id DESC`,
		"deployments_activated", r.Service, r.Environment, ms(r.FinishedAt))
	if err != nil || d == nil {
		return nil, err
	}
	if !d.FinishedAt.IsZero() && !d.FinishedAt.After(r.StartedAt.Time) {
		return nil, nil
	}
	if d.Imported && d.Artifact.Group == r.Group && d.Artifact.Name == r.Name && d.Artifact.Version == r.Version && d.FinishedAt.Equal(r.FinishedAt.Time) {
		return nil, nil // itself, imported before
	}
	until := "still " + string(d.Status)
	if !d.FinishedAt.IsZero() {
		until = "to " + d.FinishedAt.String()
	}
	return []deploydb.FieldError{{Line: r.Line, Field: "startedAt",
		Message: fmt.Sprintf("overlaps deployment %d (%s %s in %s, from %s %s): DeployDB keeps one deployment at a time per service and environment",
			d.ID, d.Service, d.Artifact.Version, d.Environment, d.ActivatedAt, until)}}, nil
}

// reasonOf returns the reason of record r: pipeline unless it says.
func reasonOf(r *deploydb.ImportRecord) deploydb.Reason {
	if r.Reason == "" {
		return deploydb.ReasonPipeline
	}
	return r.Reason
}

// storedAsImported says whether record r's deployment (of artifact id) was
// imported before, and returns a problem when it was with another status,
// reason or start: one deployment, two accounts of it.
func storedAsImported(ctx context.Context, q querier, r *deploydb.ImportRecord, artifact int64) ([]deploydb.FieldError, bool, error) {
	var status, reason string
	var started int64
	err := q.QueryRowContext(ctx, `SELECT status, reason, coalesce(started_at, 0) FROM deployments WHERE service = ? AND environment = ? AND artifact_id = ? AND finished_at = ? AND imported = 1`,
		r.Service, r.Environment, artifact, ms(r.FinishedAt)).Scan(&status, &reason, &started)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("store: import: find deployment: %w", err)
	case status != string(r.Status) || reason != string(reasonOf(r)) || started != ms(r.StartedAt):
		return []deploydb.FieldError{{Line: r.Line, Field: "status",
			Message: fmt.Sprintf("differs from the deployment imported before (%s, %s, started %s): the same deployment (artifact, service, environment and finishedAt) told otherwise",
				status, reason, deploydb.UnixMilli(started))}}, true, nil
	}
	return nil, true, nil
}

// sameArtifact checks that record r names its artifact as it is known
// (from what): the same sourceUrl, and the same commits unless either has
// none.
func sameArtifact(r *deploydb.ImportRecord, sourceURL string, commits []deploydb.Commit, what string) []deploydb.FieldError {
	var out []deploydb.FieldError
	if r.SourceURL != sourceURL {
		out = append(out, deploydb.FieldError{Line: r.Line, Field: "sourceUrl",
			Message: fmt.Sprintf("differs from that of %s:%s:%s in %s (%s): an artifact is immutable", r.Group, r.Name, r.Version, what, sourceURL)})
	}
	if len(r.Commits) > 0 && len(commits) > 0 && !slices.EqualFunc(r.Commits, commits, func(a, b deploydb.Commit) bool { return a.SHA == b.SHA && a.Timestamp.Equal(b.Timestamp.Time) }) {
		out = append(out, deploydb.FieldError{Line: r.Line, Field: "commits",
			Message: fmt.Sprintf("differ from those of %s:%s:%s in %s: an artifact is immutable", r.Group, r.Name, r.Version, what)})
	}
	return out
}

// findImportedArtifact returns the stored artifact (group, name, version),
// nil if there is none.
func findImportedArtifact(ctx context.Context, q querier, k [3]string) (*importedArtifact, error) {
	var a importedArtifact
	err := q.QueryRowContext(ctx, `SELECT id, source_url FROM artifacts WHERE grp = ? AND name = ? AND version = ?`, k[0], k[1], k[2]).Scan(&a.id, &a.sourceURL)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("store: import: find artifact: %w", err)
	}
	art := &deploydb.Artifact{ID: a.id}
	if err := loadCommits(ctx, q, []*deploydb.Artifact{art}); err != nil {
		return nil, err
	}
	a.commits = art.Commits
	return &a, nil
}

// importChunk writes the records of one chunk in tx.
func (s *Store) importChunk(ctx context.Context, tx *wtx, cfg *deploydb.Config, rs []deploydb.ImportRecord, named map[[3]string]*namedArtifact, actor string, res *deploydb.ImportResult) error {
	// The artifacts of the chunk, as this transaction has them: most
	// lines name an artifact another line named.
	seen := map[[3]string]*importedArtifact{}
	for i := range rs {
		r := &rs[i]
		k := [3]string{r.Group, r.Name, r.Version}
		a, ok := seen[k]
		if !ok {
			var err error
			if a, err = findImportedArtifact(ctx, tx, k); err != nil {
				return err
			}
		}
		if a != nil {
			if p := sameArtifact(r, a.sourceURL, a.commits, "the stored artifact"); len(p) > 0 {
				return deploydb.ImportError(p)
			}
			if len(a.commits) == 0 && len(r.Commits) > 0 {
				// Commits known now of an artifact stored without them.
				if err := insertCommits(ctx, tx, &deploydb.Artifact{ID: a.id, Commits: r.Commits}); err != nil {
					return err
				}
				a.commits = r.Commits
			}
		} else {
			n := named[k]
			art := r.Artifact()
			art.Commits = n.commits
			id, err := tx.insert(ctx, `INSERT INTO artifacts (grp, name, version, source_url, created_at, published_by) VALUES (?, ?, ?, ?, ?, ?)`,
				art.Group, art.Name, art.Version, art.SourceURL, ms(n.first.StartedAt), actor)
			if err != nil {
				return fmt.Errorf("store: import: insert artifact: %w", err)
			}
			art.ID = id
			if err := insertCommits(ctx, tx, &art); err != nil {
				return err
			}
			a = &importedArtifact{id: id, sourceURL: art.SourceURL, commits: art.Commits}
			res.ArtifactsCreated++
		}
		seen[k] = a

		switch p, found, err := storedAsImported(ctx, tx, r, a.id); {
		case err != nil:
			return err
		case len(p) > 0:
			return deploydb.ImportError(p)
		case found:
			res.Unchanged++
			continue
		}
		// Checked again here, in the write: another import since the
		// check may have stored a deployment this one overlaps.
		if p, err := s.overlapsStored(ctx, tx, r); err != nil {
			return err
		} else if len(p) > 0 {
			return deploydb.ImportError(p)
		}

		reason := reasonOf(r)
		f := &deploydb.Flow{
			Artifact:       deploydb.Artifact{ID: a.id},
			Service:        r.Service,
			Pipeline:       deploydb.ImportedFlowPipeline,
			Reason:         reason,
			Status:         deploydb.FlowStatus(r.Status),
			ConfigChecksum: cfg.Checksum,
			CreatedAt:      r.StartedAt,
			UpdatedAt:      r.FinishedAt,
		}
		d := deploydb.Deployment{
			Service:         r.Service,
			Environment:     r.Environment,
			Status:          r.Status,
			Reason:          reason,
			FailureStrategy: deploydb.FailureNotify,
			DueAt:           r.StartedAt,
			CreatedAt:       r.StartedAt,
			UpdatedAt:       r.FinishedAt,
			ActivatedAt:     r.StartedAt,
			StartedAt:       r.StartedAt,
			FinishedAt:      r.FinishedAt,
			Imported:        true,
		}
		if r.Status == deploydb.DeploymentSuccess {
			d.CompletedAt = r.FinishedAt
		}
		f.Deployments = []deploydb.Deployment{d}
		if err := insertFlow(ctx, tx, f); err != nil {
			return err
		}
		if err := importEnvState(ctx, tx, &f.Deployments[0]); err != nil {
			return err
		}
		res.Imported++
	}
	if res.Imported == 0 {
		return nil
	}
	ev := &deploydb.Event{Type: deploydb.EventHistoryImported, Actor: actor, CreatedAt: s.now(),
		Detail: fmt.Sprintf("%d deployments imported (lines %d to %d)", res.Imported, rs[0].Line, rs[len(rs)-1].Line)}
	id, err := s.insertEvent(ctx, tx, ev)
	if err != nil {
		return err
	}
	res.Events = append(res.Events, id)
	return nil
}

// importEnvState puts imported deployment d in the status matrix where it
// is the latest of its kind there by time: the current and last known good
// deployment when it succeeded after them, the last attempt when it failed
// after what runs there completed. What is in flight is left alone.
func importEnvState(ctx context.Context, tx *wtx, d *deploydb.Deployment) error {
	tx.changedService(d.Service)
	if _, err := tx.ExecContext(ctx, `INSERT INTO env_state (service, environment) VALUES (?, ?) ON CONFLICT (service, environment) DO NOTHING`, d.Service, d.Environment); err != nil {
		return fmt.Errorf("store: status matrix: %w", err)
	}
	// The times each deployment of the cell reached what it holds it for.
	var current, good, attempt sql.NullInt64
	var currentImported, goodImported, attemptImported sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT coalesce(c.completed_at, c.updated_at), c.imported, coalesce(g.finished_at, g.updated_at), g.imported, coalesce(l.finished_at, l.updated_at), l.imported
		FROM env_state e LEFT JOIN deployments c ON c.id = e.current_id LEFT JOIN deployments g ON g.id = e.last_good_id LEFT JOIN deployments l ON l.id = e.last_attempt_id
		WHERE e.service = ? AND e.environment = ?`, d.Service, d.Environment).Scan(&current, &currentImported, &good, &goodImported, &attempt, &attemptImported)
	if err != nil {
		return fmt.Errorf("store: status matrix: %w", err)
	}
	// Of two deployments at the same instant the later is DeployDB's own,
	// then the one recorded later (the larger id: this one, of two
	// imported), as the status matrix at an instant takes them (later, in
	// statusat.go).
	at := ms(d.FinishedAt)
	before := func(t, imported sql.NullInt64) bool {
		return !t.Valid || t.Int64 < at || (t.Int64 == at && imported.Int64 == 1)
	}
	var set []string
	var args []any
	switch d.Status {
	case deploydb.DeploymentSuccess:
		if before(current, currentImported) {
			set, args = append(set, `current_id = ?`, `current_since = ?`), append(args, d.ID, at)
			// A success ends the uncertainty of a failure before it.
			if before(attempt, attemptImported) {
				set = append(set, `last_attempt_id = NULL`)
			}
		}
		if before(good, goodImported) {
			set, args = append(set, `last_good_id = ?`), append(args, d.ID)
		}
	case deploydb.DeploymentFailed:
		if before(current, currentImported) && before(attempt, attemptImported) {
			set, args = append(set, `last_attempt_id = ?`), append(args, d.ID)
		}
	}
	if len(set) == 0 {
		return nil
	}
	q := `UPDATE env_state SET ` + set[0]
	for _, s := range set[1:] {
		q += `, ` + s
	}
	if _, err := tx.ExecContext(ctx, q+` WHERE service = ? AND environment = ?`, append(args, d.Service, d.Environment)...); err != nil {
		return fmt.Errorf("store: status matrix: %w", err)
	}
	return nil
}
