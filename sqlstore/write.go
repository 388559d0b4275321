package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
	"github.com/deploydb/deploydb/engine"
	"github.com/deploydb/deploydb/webhook"
)

// PublishArtifact stores a new artifact and starts its flows.
func (s *Store) PublishArtifact(ctx context.Context, cfg *deploydb.Config, a deploydb.Artifact, actor string) (_ *deploydb.Artifact, _ []*deploydb.Flow, err error) {
	defer s.classify(&err)
	if err := a.Validate(); err != nil {
		return nil, nil, err
	}
	now := s.now()
	a.ID, a.CreatedAt, a.PublishedBy = 0, now, actor
	flows, err := engine.NewFlows(cfg, a, now)
	if err != nil {
		return nil, nil, err
	}
	var pre map[string]*prereadPlan
	if s.d.OneProcess {
		pre = s.prereadServices(ctx, flows)
	}
	var out []*deploydb.Flow
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		var err error
		a.ID, err = tx.insert(ctx, `INSERT INTO artifacts (grp, name, version, source_url, created_at, published_by) VALUES (?, ?, ?, ?, ?, ?)`,
			a.Group, a.Name, a.Version, a.SourceURL, ms(now), actor)
		if s.isUnique(err) {
			return deploydb.Errorf(deploydb.ECONFLICT, "artifact %s:%s already exists", a.Module(), a.Version)
		} else if err != nil {
			return fmt.Errorf("store: insert artifact: %w", err)
		}
		if err := insertCommits(ctx, tx, &a); err != nil {
			return err
		}
		if _, err := s.insertEvent(ctx, tx, &deploydb.Event{Type: deploydb.EventArtifactPublished, Artifact: a.ID, Actor: actor, CreatedAt: now,
			Detail: fmt.Sprintf("%s:%s published", a.Module(), a.Version)}); err != nil {
			return err
		}
		for _, f := range flows {
			f.Artifact = a
			if err := insertFlow(ctx, tx, f); err != nil {
				return err
			}
			p, err := s.loadPlan(ctx, tx, cfg, f.Service, pre[f.Service], f)
			if err != nil {
				return err
			}
			engine.Start(p, f.ID)
			if err := s.apply(ctx, tx, cfg, p, deploydb.Action{Actor: actor}); err != nil {
				return err
			}
			out = append(out, p.Flow(f.ID))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &a, out, nil
}

// insertCommits stores the commits of new artifact a.
func insertCommits(ctx context.Context, tx *wtx, a *deploydb.Artifact) error {
	if len(a.Commits) == 0 {
		return nil
	}
	for i, c := range a.Commits {
		if _, err := tx.ExecContext(ctx, `INSERT INTO artifact_commits (artifact_id, position, sha, committed_at) VALUES (?, ?, ?, ?)`,
			a.ID, i, c.SHA, ms(c.Timestamp)); err != nil {
			return fmt.Errorf("store: insert commits: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE artifacts SET oldest_commit_at = ? WHERE id = ?`, ms(a.OldestCommit()), a.ID); err != nil {
		return fmt.Errorf("store: insert commits: %w", err)
	}
	return nil
}

// writeUnder is write for a change under cfg: what the change's webhook
// calls need (compileCDEvents) is made first, outside the transaction.
func (s *Store) writeUnder(ctx context.Context, cfg *deploydb.Config, fn func(tx *wtx) error) error {
	s.compileCDEvents(cfg)
	return s.write(ctx, fn)
}

// compileCDEvents compiles the CDEvents schemas (cdevents.Compile) before
// a write under cfg, when a hook of cfg sends CDEvents: the write may
// render one, in its transaction, which the writes of its batch wait for.
// The first such write compiles them in its caller's goroutine, outside
// any transaction. A config is checked once.
func (s *Store) compileCDEvents(cfg *deploydb.Config) {
	if s.cdevents.Load() || s.checked.Load() == cfg {
		return
	}
	for _, h := range cfg.HookNamed {
		if h.Format == deploydb.HookFormatCDEvents {
			// An error is a broken build: the write that renders a
			// CDEvent fails with it.
			if cdevents.Compile() == nil {
				s.cdevents.Store(true)
			}
			break
		}
	}
	s.checked.Store(cfg)
}

// insertFlow inserts a new flow with its deployments and promotion results
// and fills in their ids.
func insertFlow(ctx context.Context, tx *wtx, f *deploydb.Flow) error {
	tx.changedService(f.Service)
	var err error
	if f.ID, err = tx.insert(ctx, `INSERT INTO flows (artifact_id, service, pipeline, reason, status, config_checksum, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		f.Artifact.ID, f.Service, f.Pipeline, f.Reason, f.Status, f.ConfigChecksum, ms(f.CreatedAt), ms(f.UpdatedAt)); err != nil {
		return fmt.Errorf("store: insert flow: %w", err)
	}
	for i := range f.Deployments {
		d := &f.Deployments[i]
		d.Flow, d.Artifact = f.ID, f.Artifact
		if err := insertDeployment(ctx, tx, d); err != nil {
			return err
		}
	}
	return nil
}

// insertDeployment inserts a new deployment with its promotion results and
// fills in their ids.
func insertDeployment(ctx context.Context, tx *wtx, d *deploydb.Deployment) error {
	var err error
	if d.ID, err = tx.insert(ctx, `INSERT INTO deployments (flow_id, artifact_id, service, environment, position, status, reason, failure_strategy, due_at, waiting, created_at, updated_at, activated_at, started_at, completed_at, finished_at, imported) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Flow, d.Artifact.ID, d.Service, d.Environment, d.Position, d.Status, d.Reason, d.FailureStrategy, nullTime(d.DueAt), d.Waiting, ms(d.CreatedAt), ms(d.UpdatedAt),
		nullTime(d.ActivatedAt), nullTime(d.StartedAt), nullTime(d.CompletedAt), nullTime(d.FinishedAt), b2i(d.Imported)); err != nil {
		return fmt.Errorf("store: insert deployment: %w", err)
	}
	for j := range d.Promotions {
		r := &d.Promotions[j]
		r.Deployment = d.ID
		if r.ID, err = tx.insert(ctx, `INSERT INTO promotion_results (deployment_id, promotion, type, soak_ms, due_at, status, info_url, reported_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Deployment, r.Promotion, r.Type, r.SoakMs, nullTime(r.DueAt), r.Status, r.InfoURL, r.ReportedBy, ms(r.CreatedAt), ms(r.UpdatedAt)); err != nil {
			return fmt.Errorf("store: insert promotion result: %w", err)
		}
	}
	return nil
}

// ReportDeployment applies an orchestrator's report.
func (s *Store) ReportDeployment(ctx context.Context, cfg *deploydb.Config, r deploydb.DeploymentReport) (_ *deploydb.Deployment, err error) {
	defer s.classify(&err)
	var out *deploydb.Deployment
	err = s.change(ctx, cfg, r.Deployment, deploydb.Action{Actor: r.Actor}, func(p *engine.Plan) error {
		if err := engine.ReportDeployment(p, r.Deployment, r.Status); err != nil {
			return err
		}
		out = deploymentOf(p, r.Deployment)
		return nil
	})
	return out, err
}

// ReportPromotion records a promotion result reported by a test job.
func (s *Store) ReportPromotion(ctx context.Context, cfg *deploydb.Config, r deploydb.PromotionReport) (_ *deploydb.PromotionResult, err error) {
	defer s.classify(&err)
	var out *deploydb.PromotionResult
	err = s.change(ctx, cfg, r.Deployment, deploydb.Action{Actor: r.Actor}, func(p *engine.Plan) error {
		res, err := engine.ReportPromotion(p, r.Deployment, r.Promotion, r.Status, r.InfoURL, r.Actor, engine.Approver{Caller: r.Caller, Promotion: cfg.Promotions[r.Promotion]})
		out = res
		return err
	})
	return out, err
}

// change runs fn on the plan of the service of deployment id, in one write
// transaction, and writes what changed. What the plan needs from the
// database is read first, outside the transaction (preread), and read
// again inside only if a commit since changed the service.
func (s *Store) change(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action, fn func(p *engine.Plan) error) error {
	var pre *prereadPlan
	if s.d.OneProcess {
		pre = s.preread(ctx, id)
	}
	return s.writeUnder(ctx, cfg, func(tx *wtx) error {
		p, err := s.planOfDeployment(ctx, tx, cfg, id, pre)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		return s.apply(ctx, tx, cfg, p, a)
	})
}

// A write waits for its batch, and the batch's writes run one after the
// other: SQLite has one writer. Reading a plan's flows there (four
// queries) took a third of a report's time in the batch. So a report
// reads them before it queues, on a read connection, beside the batch
// being committed, as of the status version of that read; in the batch,
// one lookup says whether a commit changed the service since
// (status_services: every write to a flow, deployment, promotion result
// or cell of a service notes it, changedService), and only then are they
// read again. Writers are serialized, and each commit that changes a
// service stores a version above every one a read before it saw, so an
// unchanged number means unchanged rows, provided that every process
// writing the database notes every service it changes: so only where one
// process does (Driver.OneProcess, SQLite).

// prereadPlan is the database's part of a plan, read before the write
// transaction, and the status version it was read at.
type prereadPlan struct {
	version int64
	data    *planData
}

// readAhead runs read in a read transaction outside any write, and returns
// the status version it saw; false when it failed (the write then reads
// in its transaction, and reports what went wrong from there).
func (s *Store) readAhead(ctx context.Context, read func(q querier) error) (int64, bool) {
	var version int64
	err := s.snapshot(ctx, func(q querier) error {
		if err := q.QueryRowContext(ctx, `SELECT n FROM status_version WHERE id = 1`).Scan(&version); err != nil {
			return err
		}
		return read(q)
	})
	return version, err == nil
}

// preread reads the plan data of the service of deployment id ahead of its
// write; nil when it cannot.
func (s *Store) preread(ctx context.Context, id int64) *prereadPlan {
	var data *planData
	version, ok := s.readAhead(ctx, func(q querier) error {
		service, flowID, err := deploymentFlow(ctx, q, id)
		if err != nil {
			return err
		}
		data, err = readPlanData(ctx, q, service, flowID)
		return err
	})
	if !ok {
		return nil
	}
	return &prereadPlan{version: version, data: data}
}

// prereadServices reads the plan data of the services of flows, as
// preread does for a report: for a publish, whose new flows join them.
// Empty when it cannot.
func (s *Store) prereadServices(ctx context.Context, flows []*deploydb.Flow) map[string]*prereadPlan {
	data := map[string]*planData{}
	version, ok := s.readAhead(ctx, func(q querier) error {
		for _, f := range flows {
			d, err := readPlanData(ctx, q, f.Service, 0)
			if err != nil {
				return err
			}
			data[f.Service] = d
		}
		return nil
	})
	out := map[string]*prereadPlan{}
	if ok {
		for svc, d := range data {
			out[svc] = &prereadPlan{version: version, data: d}
		}
	}
	return out
}

// unchangedSince reports whether no commit since status version v, and
// no write before this one in its batch, changed service.
func (t *wtx) unchangedSince(ctx context.Context, service string, v int64) (bool, error) {
	if t.batch != nil && (t.batch.services[service] || t.batch.whole) {
		return false, nil
	}
	var n int64
	err := t.QueryRowContext(ctx, `SELECT n FROM status_services WHERE service = ?`, service).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return true, nil // never changed since the table was made
	case err != nil:
		return false, fmt.Errorf("store: status version of %s: %w", service, err)
	}
	return n <= v, nil
}

// deploymentFlow returns the service and flow of deployment id.
func deploymentFlow(ctx context.Context, q querier, id int64) (service string, flow int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT flow_id, service FROM deployments WHERE id = ?`, id).Scan(&flow, &service)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, deploydb.Errorf(deploydb.ENOTFOUND, "deployment %d not found", id)
	} else if err != nil {
		return "", 0, fmt.Errorf("store: find deployment: %w", err)
	}
	return service, flow, nil
}

// planOfDeployment returns the plan of the service of deployment id,
// from pre when nothing changed the service since it was read.
func (s *Store) planOfDeployment(ctx context.Context, tx *wtx, cfg *deploydb.Config, id int64, pre *prereadPlan) (*engine.Plan, error) {
	if pre != nil {
		ok, err := tx.unchangedSince(ctx, pre.data.service, pre.version)
		if err != nil {
			return nil, err
		}
		if ok {
			return s.plan(ctx, tx, cfg, pre.data)
		}
	}
	service, flowID, err := deploymentFlow(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	data, err := readPlanData(ctx, tx, service, flowID)
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, tx, cfg, data)
}

// planData is what a plan of one service reads from the database, besides
// the locks: its flows and its last known good artifacts.
type planData struct {
	service  string
	flows    []*deploydb.Flow
	lastGood map[string]*deploydb.Artifact
}

// readPlanData reads the plan data of service: its flows in progress, the
// flows holding one of its environments, flow (unless 0) and its last
// known good artifacts.
func readPlanData(ctx context.Context, q querier, service string, flow int64) (*planData, error) {
	flows, err := planFlows(ctx, q, service)
	if err != nil {
		return nil, err
	}
	// The deployment's flow is most often in progress, so among them:
	// loaded once. One that is over is loaded by itself.
	if flow != 0 && !slices.ContainsFunc(flows, func(f *deploydb.Flow) bool { return f.ID == flow }) {
		f, err := findFlow(ctx, q, flow)
		if err != nil {
			return nil, err
		}
		flows = append(flows, f)
	}
	d := &planData{service: service, flows: flows, lastGood: map[string]*deploydb.Artifact{}}
	rows, err := q.QueryContext(ctx, `SELECT e.environment, `+artifactColumns+` FROM env_state e
		JOIN deployments d ON d.id = e.last_good_id JOIN artifacts a ON a.id = d.artifact_id WHERE e.service = ?`, service)
	if err != nil {
		return nil, fmt.Errorf("store: last known good: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var env string
		var a deploydb.Artifact
		if err := scanArtifactAfter(rows, &a, &env); err != nil {
			return nil, fmt.Errorf("store: last known good: %w", err)
		}
		d.lastGood[env] = &a
	}
	return d, rows.Err()
}

// planFlows loads the flows of a plan of service: its flows in progress
// and the flows holding one of its environments, by id.
func planFlows(ctx context.Context, q querier, service string) ([]*deploydb.Flow, error) {
	// The flows in progress come from their own index (flows_in_progress),
	// those holding an environment from the status matrix: one condition
	// that ORed the two walked every flow of the service, its history.
	return findFlows(ctx, q, []string{`f.id IN (SELECT id FROM flows WHERE service = ? AND status = 'CREATED'
		UNION SELECT d.flow_id FROM env_state e JOIN deployments d ON d.id = e.in_flight_id WHERE e.service = ?)`},
		`f.id`, deploydb.Page{}, []any{service, service})
}

// loadPlan loads the plan of one service: its flows in progress, the flows
// holding one of its environments, the given extra flows, the locks and
// freezes in force and its last known good artifacts; the data from pre
// when nothing changed the service since it was read (nil: none).
func (s *Store) loadPlan(ctx context.Context, tx *wtx, cfg *deploydb.Config, service string, pre *prereadPlan, extra ...*deploydb.Flow) (*engine.Plan, error) {
	var data *planData
	if pre != nil {
		ok, err := tx.unchangedSince(ctx, service, pre.version)
		if err != nil {
			return nil, err
		}
		if ok {
			data = pre.data
		}
	}
	if data == nil {
		var err error
		if data, err = readPlanData(ctx, tx, service, 0); err != nil {
			return nil, err
		}
	}
	have := map[int64]bool{}
	for _, f := range data.flows {
		have[f.ID] = true
	}
	for _, f := range extra {
		if !have[f.ID] {
			data.flows = append(data.flows, f)
		} else {
			// The caller's copy is the one it will look at.
			for i, g := range data.flows {
				if g.ID == f.ID {
					data.flows[i] = f
				}
			}
		}
	}
	return s.plan(ctx, tx, cfg, data)
}

// plan makes the plan of a service over data, with the locks and freezes
// in force now.
func (s *Store) plan(ctx context.Context, tx *wtx, cfg *deploydb.Config, data *planData) (*engine.Plan, error) {
	now := s.now()
	p := engine.NewPlan(data.service, data.flows, now)
	locks, err := findLocks(ctx, tx)
	if err != nil {
		return nil, err
	}
	for name, env := range cfg.Environments {
		var st engine.EnvState
		if l, ok := locks[name]; ok {
			st.Locked, st.LockReason = true, fmt.Sprintf("%s (by %s since %s)", l.Reason, l.Actor, l.CreatedAt)
		}
		if frozen, why, until := env.FrozenAt(now.Time); frozen {
			st.Frozen, st.FreezeReason = true, why
			if !until.IsZero() {
				st.FreezeReason += " (until " + deploydb.NewTime(until).String() + ")"
			}
		}
		p.Envs[name] = st
	}
	for env, a := range data.lastGood {
		p.LastGood[env] = a
	}
	return p, nil
}

// apply writes the rows a plan changed, the status matrix, its events and
// the deliveries they owe. Rollback flows the plan asks for are created and
// adopted first.
func (s *Store) apply(ctx context.Context, tx *wtx, cfg *deploydb.Config, p *engine.Plan, a deploydb.Action) error {
	for len(p.Rollbacks) > 0 {
		rb := p.Rollbacks[0]
		p.Rollbacks = p.Rollbacks[1:]
		cf, cd := p.Deployment(rb.Cause)
		f := engine.NewRollbackFlow(cf, cd, rb.Artifact, p.Now)
		if err := insertFlow(ctx, tx, f); err != nil {
			return err
		}
		engine.Adopt(p, f)
	}
	// Deployments that are not active after the change are written
	// first, then the active ones, so that the index of one active
	// deployment per (service, environment) never sees the one that
	// leaves beside the one that takes its place. env_state stays right
	// whatever the order: clearing in_flight_id only clears it when it
	// names the deployment being written.
	changed := p.ChangedDeployments()
	slices.SortStableFunc(changed, func(a, b *deploydb.Deployment) int {
		return cmp.Compare(b2i(a.Status.Active()), b2i(b.Status.Active()))
	})
	for _, d := range changed {
		steps, args := stepTimes(d)
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ?, due_at = ?, waiting = ?, updated_at = ?`+steps+` WHERE id = ?`,
			append(append([]any{d.Status, nullTime(d.DueAt), d.Waiting, ms(d.UpdatedAt)}, args...), d.ID)...); err != nil {
			return fmt.Errorf("store: update deployment: %w", err)
		}
		tx.changedService(d.Service)
		if err := updateEnvState(ctx, tx, d, p.Now); err != nil {
			return err
		}
	}
	for _, r := range p.ChangedResults() {
		tx.changedService(p.Service)
		if _, err := tx.ExecContext(ctx, `UPDATE promotion_results SET status = ?, info_url = ?, reported_by = ?, due_at = ?, updated_at = ? WHERE id = ?`,
			r.Status, r.InfoURL, r.ReportedBy, nullTime(r.DueAt), ms(r.UpdatedAt), r.ID); err != nil {
			return fmt.Errorf("store: update promotion result: %w", err)
		}
	}
	for _, f := range p.ChangedFlows() {
		tx.changedService(f.Service)
		if _, err := tx.ExecContext(ctx, `UPDATE flows SET status = ?, updated_at = ? WHERE id = ?`, f.Status, ms(f.UpdatedAt), f.ID); err != nil {
			return fmt.Errorf("store: update flow: %w", err)
		}
	}
	for _, em := range p.Events {
		f := p.Flow(em.Flow)
		ev := &deploydb.Event{
			Type:        em.Type,
			Service:     p.Service,
			Environment: em.Environment,
			Artifact:    f.Artifact.ID,
			Flow:        f.ID,
			Status:      em.Status,
			Detail:      em.Detail,
			Actor:       a.Actor,
			Reason:      a.Reason,
			CreatedAt:   p.Now,
		}
		if em.Deployment != nil {
			ev.Deployment = em.Deployment.ID
		}
		if err := s.record(ctx, tx, cfg, ev, em.Deployment, em.Result, em.Quiet, f); err != nil {
			return err
		}
	}
	p.Events = nil
	return nil
}

// record inserts an event and, unless quiet, the deliveries it owes.
func (s *Store) record(ctx context.Context, tx *wtx, cfg *deploydb.Config, ev *deploydb.Event, d *deploydb.Deployment, r *deploydb.PromotionResult, quiet bool, f *deploydb.Flow) error {
	if _, err := s.insertEvent(ctx, tx, ev); err != nil {
		return err
	}
	if quiet {
		return nil
	}
	c := webhook.Change{Event: ev, Deployment: d, Result: r, Flow: f}
	if webhook.NeedsUpgrade(cfg, ev) && d != nil {
		// Did the service run a version there before this one?
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE service = ? AND type = ? AND environment = ? AND deployment_id <> ? LIMIT 1`,
			d.Service, deploydb.EventDeploymentCompleted, d.Environment, d.ID).Scan(&one)
		switch {
		case err == nil:
			c.Upgrade = true
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: earlier deployments: %w", err)
		}
	}
	return s.enqueue(ctx, tx, cfg, c, f)
}

// enqueue inserts the deliveries change c owes under cfg.
func (s *Store) enqueue(ctx context.Context, tx *wtx, cfg *deploydb.Config, c webhook.Change, f *deploydb.Flow) error {
	ds, err := webhook.Deliveries(cfg, c)
	if err != nil {
		return err
	}
	for _, dl := range ds {
		if dl.Deployment == 0 && f != nil && len(f.Deployments) > 0 {
			// Flow events queue behind the flow's last deployment, so a
			// hook hears flow.completed after that deployment.verified.
			dl.Deployment = f.Deployments[len(f.Deployments)-1].ID
		}
		if dl.Body == nil {
			dl.Body = []byte{} // a GET sends none
		}
		headers, err := encodeHeaders(dl.Headers)
		if err != nil {
			return fmt.Errorf("store: enqueue delivery: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, event_type, deployment_id, hook, url, shown_url, method, content_type, headers, context, body, signed, status, attempts, last_error, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
			dl.Event, dl.EventType, nullID(dl.Deployment), dl.Hook, dl.URL, dl.ShownURL, dl.Method, dl.ContentType, headers, dl.Context, dl.Body, dl.Signed, dl.Status, dl.LastError, ms(dl.NextAttemptAt), ms(dl.CreatedAt), ms(dl.UpdatedAt)); err != nil {
			return fmt.Errorf("store: enqueue delivery: %w", err)
		}
		tx.delivered = true
	}
	return nil
}

// stepTimes returns the SET clauses, and their values, of the step times
// deployment d's status gives it (Deployment.Moved): only those, as each is
// set once, and a column an UPDATE names has its indexes rewritten.
func stepTimes(d *deploydb.Deployment) (string, []any) {
	switch d.Status {
	case deploydb.DeploymentCreated:
		return `, activated_at = ?`, []any{nullTime(d.ActivatedAt)}
	case deploydb.DeploymentStarted:
		return `, started_at = ?`, []any{nullTime(d.StartedAt)}
	case deploydb.DeploymentCompleted:
		return `, completed_at = ?`, []any{nullTime(d.CompletedAt)}
	case deploydb.DeploymentSuccess:
		return `, completed_at = ?, finished_at = ?`, []any{nullTime(d.CompletedAt), nullTime(d.FinishedAt)}
	case deploydb.DeploymentFailed, deploydb.DeploymentCancelled, deploydb.DeploymentSuperseded:
		return `, finished_at = ?`, []any{nullTime(d.FinishedAt)}
	}
	return "", nil
}

// updateEnvState keeps the status matrix of the deployment's (service,
// environment) in step with its new status.
func updateEnvState(ctx context.Context, tx *wtx, d *deploydb.Deployment, now deploydb.Time) error {
	tx.changedService(d.Service)
	var q string
	var args []any
	switch d.Status {
	case deploydb.DeploymentCreated:
		q, args = `in_flight_id = ?`, []any{d.ID}
	case deploydb.DeploymentCompleted:
		q, args = `current_id = ?, current_since = ?, last_attempt_id = NULL`, []any{d.ID, ms(now)}
	case deploydb.DeploymentSuccess:
		// A deployment without promotions goes from in flight to SUCCESS
		// in one change, never stored COMPLETED: it ends a failed
		// attempt's uncertainty here too.
		q = `last_good_id = ?, current_id = ?, current_since = CASE WHEN current_id = ? THEN current_since ELSE ? END,
			in_flight_id = CASE WHEN in_flight_id = ? THEN NULL ELSE in_flight_id END, last_attempt_id = NULL`
		args = []any{d.ID, d.ID, d.ID, ms(now), d.ID}
	case deploydb.DeploymentFailed:
		q = `last_attempt_id = CASE WHEN current_id IS NOT DISTINCT FROM ? THEN last_attempt_id ELSE ? END,
			in_flight_id = CASE WHEN in_flight_id = ? THEN NULL ELSE in_flight_id END`
		args = []any{d.ID, d.ID, d.ID}
	case deploydb.DeploymentCancelled:
		q, args = `in_flight_id = CASE WHEN in_flight_id = ? THEN NULL ELSE in_flight_id END`, []any{d.ID}
	default:
		return nil
	}
	// A cancelled deployment only ever clears what it held: one that was
	// never in flight must not add a cell for an environment the service
	// has not seen.
	if d.Status != deploydb.DeploymentCancelled {
		if _, err := tx.ExecContext(ctx, `INSERT INTO env_state (service, environment) VALUES (?, ?) ON CONFLICT (service, environment) DO NOTHING`, d.Service, d.Environment); err != nil {
			return fmt.Errorf("store: status matrix: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE env_state SET `+q+` WHERE service = ? AND environment = ?`, append(args, d.Service, d.Environment)...); err != nil {
		return fmt.Errorf("store: status matrix: %w", err)
	}
	return nil
}

func (s *Store) insertEvent(ctx context.Context, tx *wtx, ev *deploydb.Event) (int64, error) {
	var err error
	if ev.ID, err = tx.insert(ctx, `INSERT INTO events (type, service, environment, artifact_id, flow_id, deployment_id, status, detail, actor, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Type, ev.Service, ev.Environment, nullID(ev.Artifact), nullID(ev.Flow), nullID(ev.Deployment), ev.Status, ev.Detail, ev.Actor, ev.Reason, ms(ev.CreatedAt)); err != nil {
		return 0, fmt.Errorf("store: insert event: %w", err)
	}
	tx.recorded = true
	tx.types = append(tx.types, ev.Type)
	return ev.ID, nil
}

func deploymentOf(p *engine.Plan, id int64) *deploydb.Deployment {
	if _, d := p.Deployment(id); d != nil {
		c := *d
		c.Promotions = append([]deploydb.PromotionResult{}, d.Promotions...)
		return &c
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

func nullTime(t deploydb.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: !t.IsZero()}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
