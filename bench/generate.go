package bench

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/webhook"
)

// GeneratorVersion changes whenever the generator writes a different
// history for the same options: a cached history of another version is
// generated again.
const GeneratorVersion = 1

// Manifest describes a generated history: what the benchmark reads back
// through the API to check it, and what it needs to drive the load.
type Manifest struct {
	GeneratorVersion int       `json:"generatorVersion"`
	Deployments      int       `json:"deployments"` // as asked
	Seed             uint64    `json:"seed"`
	Services         int       `json:"services"`
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	// Rows counts the rows of each table.
	Rows map[string]int64 `json:"rows"`
	// Max holds the highest id of each table.
	Max map[string]int64 `json:"max"`
	// Idle lists the services with no flow in progress at the end: the
	// load publishes new versions of those.
	Idle []string `json:"idle"`
	// Flows are a few flows as the generator left them, to read back.
	Flows []json.RawMessage `json:"flows"`
	// Cells are a few cells of the status matrix, deployment ids (0 for
	// none), to read back.
	Cells    []Cell  `json:"cells"`
	Commands int     `json:"commands"`
	Seconds  float64 `json:"seconds"` // how long generating took
}

// Cell is one (service, environment) of the status matrix, as ids.
type Cell struct {
	Service      string `json:"service"`
	Environment  string `json:"environment"`
	Current      int64  `json:"current"`
	CurrentSince int64  `json:"currentSince"` // Unix milliseconds, 0 for none
	InFlight     int64  `json:"inFlight"`
	LastAttempt  int64  `json:"lastAttempt"`
	LastGood     int64  `json:"lastGood"`
}

// Generate writes a history of model m under cfg (the model loaded) into a
// new SQLite database at path, replacing any file there, and returns its
// manifest. It applies the engine's rules (package engine) to every
// command, as the server does, and writes the rows the server would have
// written, in large transactions instead of one per command: the server
// then reads it as if it had recorded it. Every webhook delivery is
// delivered, at its first attempt.
func Generate(ctx context.Context, path string, cfg *deploydb.Config, m *Model, opts HistoryOptions) (*Manifest, error) {
	began := time.Now()
	for _, e := range cfg.Environments {
		if len(e.Freezes) > 0 {
			return nil, fmt.Errorf("bench: environment %s has freeze windows: the generator does not apply them", e.Ident)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	start, _ := historySpan(m, opts)
	// The store makes the schema and announces the environments, as the
	// first start of a server does.
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	s.Now = func() time.Time { return start.Add(-time.Minute) }
	if _, err := s.SyncEnvironments(ctx, cfg); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}

	w, err := openBulk(ctx, path)
	if err != nil {
		return nil, err
	}
	defer w.close()
	g, err := newGenerator(ctx, w, cfg, opts.Seed)
	if err != nil {
		return nil, err
	}
	w.start()
	st, err := runHistory(m, g, opts)
	if err != nil {
		return nil, err
	}
	if err := g.finish(); err != nil {
		return nil, err
	}
	man := &Manifest{
		GeneratorVersion: GeneratorVersion, Deployments: opts.Deployments, Seed: opts.Seed, Services: len(m.Services),
		Start: st.Start, End: st.End, Commands: st.Commands,
		Max: map[string]int64{
			"artifacts": g.ids.artifact, "flows": g.ids.flow, "deployments": g.ids.deployment, "promotion_results": g.ids.result,
			"events": g.ids.event, "webhook_deliveries": g.ids.delivery, "webhook_attempts": g.ids.attempt,
		},
		Flows: g.samples,
	}
	for _, s := range m.Services {
		if len(g.services[s.Name]) == 0 {
			man.Idle = append(man.Idle, s.Name)
		}
	}
	man.Cells = g.sampleCells(8)
	if err := w.finish(); err != nil {
		return nil, err
	}
	if man.Rows, err = countRows(ctx, w.conn); err != nil {
		return nil, err
	}
	man.Seconds = time.Since(began).Seconds()
	return man, nil
}

// WriteManifest writes man as JSON to path.
func WriteManifest(path string, man *Manifest) error {
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadManifest reads a manifest WriteManifest wrote.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var man Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("bench: manifest %s: %w", path, err)
	}
	return &man, nil
}

// tables are the tables a history fills, in the order counted.
var tables = []string{"artifacts", "flows", "deployments", "promotion_results", "events", "env_state", "webhook_deliveries", "webhook_attempts"}

func countRows(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("bench: count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// generator is the driver that writes a history in bulk. It keeps in
// memory what the server's store reads back for each command (the flows
// in progress of each service, the status matrix) and applies the engine
// to them as sqlstore does: the same ids in the same order, the same rows,
// the same events and deliveries.
type generator struct {
	ctx context.Context
	w   *bulk
	cfg *deploydb.Config
	rng *rand.Rand
	// byArtifact is, per group:name, cfg with only the services that
	// consume it: engine.NewFlows then looks at those alone.
	byArtifact map[string]*deploydb.Config
	ids        struct{ artifact, flow, deployment, result, event, delivery, attempt int64 }
	// services holds the flows of each service that are in progress or
	// hold an environment (what the store's loadPlan reads), by id.
	services map[string][]*deploydb.Flow
	// flowOf finds the flow of a deployment of those flows.
	flowOf map[int64]*deploydb.Flow
	// cells is the status matrix: service, environment.
	cells map[string]map[string]*cell
	// completed holds, per (service, environment), the deployments that
	// recorded deployment.completed there (up to two: enough to tell
	// whether another did).
	completed map[[2]string][]int64
	samples   []json.RawMessage
	flushed   int
}

// cell is the status matrix of one (service, environment), as env_state
// keeps it.
type cell struct {
	current, currentSince, inFlight, lastAttempt, lastGood int64
	good                                                   deploydb.Artifact
}

// maxSamples is how many finished flows the manifest keeps.
const maxSamples = 6

func newGenerator(ctx context.Context, w *bulk, cfg *deploydb.Config, seed uint64) (*generator, error) {
	g := &generator{
		ctx: ctx, w: w, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x73616d706c65)),
		byArtifact: map[string]*deploydb.Config{},
		services:   map[string][]*deploydb.Flow{},
		flowOf:     map[int64]*deploydb.Flow{},
		cells:      map[string]map[string]*cell{},
		completed:  map[[2]string][]int64{},
	}
	// Ids go on from those the store used already (the environments it
	// announced).
	rows, err := w.conn.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return nil, fmt.Errorf("bench: sequences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("bench: sequences: %w", err)
		}
		switch name {
		case "artifacts":
			g.ids.artifact = seq
		case "flows":
			g.ids.flow = seq
		case "deployments":
			g.ids.deployment = seq
		case "promotion_results":
			g.ids.result = seq
		case "events":
			g.ids.event = seq
		case "webhook_deliveries":
			g.ids.delivery = seq
		case "webhook_attempts":
			g.ids.attempt = seq
		}
	}
	return g, rows.Err()
}

// consumers returns cfg narrowed to the services that consume a.
func (g *generator) consumers(a deploydb.Artifact) *deploydb.Config {
	key := a.Group + ":" + a.Name
	if c, ok := g.byArtifact[key]; ok {
		return c
	}
	c := *g.cfg
	c.Services = map[string]*deploydb.Service{}
	for _, s := range g.cfg.ServicesConsuming(a.Group, a.Name) {
		c.Services[s.Ident] = s
	}
	g.byArtifact[key] = &c
	return &c
}

// publish is sqlstore's PublishArtifact.
func (g *generator) publish(now deploydb.Time, a deploydb.Artifact, actor string) ([]happened, int, error) {
	if err := a.Validate(); err != nil {
		return nil, 0, err
	}
	before := g.ids.deployment
	a.ID, a.CreatedAt, a.PublishedBy = 0, now, actor
	flows, err := engine.NewFlows(g.consumers(a), a, now)
	if err != nil {
		return nil, 0, err
	}
	g.ids.artifact++
	a.ID = g.ids.artifact
	g.w.artifacts.add(a.ID, a.Group, a.Name, a.Version, a.SourceURL, ms(now), actor)
	var out []happened
	g.insertEvent(&deploydb.Event{Type: deploydb.EventArtifactPublished, Artifact: a.ID, Actor: actor, CreatedAt: now,
		Detail: fmt.Sprintf("%s:%s published", a.Module(), a.Version)}, &out)
	for _, f := range flows {
		f.Artifact = a
		g.insertFlow(f)
		p := g.loadPlan(f.Service, now, f)
		engine.Start(p, f.ID)
		if err := g.apply(p, actor, &out); err != nil {
			return nil, 0, err
		}
	}
	return out, int(g.ids.deployment - before), nil
}

// report is sqlstore's ReportDeployment.
func (g *generator) report(now deploydb.Time, id int64, status deploydb.DeploymentStatus, actor string) ([]happened, int, error) {
	return g.change(now, id, actor, func(p *engine.Plan) error { return engine.ReportDeployment(p, id, status) })
}

// promote is sqlstore's ReportPromotion, for DeployDB's own reports or a
// caller in the promotion's group.
func (g *generator) promote(now deploydb.Time, id int64, name string, status deploydb.PromotionStatus, infoURL, actor string) ([]happened, int, error) {
	return g.change(now, id, actor, func(p *engine.Plan) error {
		_, err := engine.ReportPromotion(p, id, name, status, infoURL, actor, engine.Approver{Promotion: g.cfg.Promotions[name]})
		return err
	})
}

// change is sqlstore's change: the plan of the deployment's service, the
// command, the rows it changed.
func (g *generator) change(now deploydb.Time, id int64, actor string, fn func(p *engine.Plan) error) ([]happened, int, error) {
	before := g.ids.deployment
	f := g.flowOf[id]
	if f == nil {
		return nil, 0, fmt.Errorf("deployment %d is in no flow in progress", id)
	}
	p := g.loadPlan(f.Service, now, f)
	if err := fn(p); err != nil {
		return nil, 0, err
	}
	var out []happened
	if err := g.apply(p, actor, &out); err != nil {
		return nil, 0, err
	}
	return out, int(g.ids.deployment - before), nil
}

// insertFlow assigns ids to a new flow, its deployments and their results,
// in the order the store inserts them.
func (g *generator) insertFlow(f *deploydb.Flow) {
	g.ids.flow++
	f.ID = g.ids.flow
	for i := range f.Deployments {
		d := &f.Deployments[i]
		g.ids.deployment++
		d.ID, d.Flow, d.Artifact = g.ids.deployment, f.ID, f.Artifact
		for j := range d.Promotions {
			g.ids.result++
			d.Promotions[j].ID, d.Promotions[j].Deployment = g.ids.result, d.ID
		}
		g.flowOf[d.ID] = f
	}
	g.services[f.Service] = append(g.services[f.Service], f)
}

// loadPlan is the store's loadPlan over the flows kept in memory: the
// service's flows in progress or holding an environment, its last known
// good artifacts, no lock and no freeze.
func (g *generator) loadPlan(service string, now deploydb.Time, extra *deploydb.Flow) *engine.Plan {
	flows := slices.Clone(g.services[service])
	if !slices.Contains(flows, extra) {
		flows = append(flows, extra)
	}
	slices.SortFunc(flows, func(a, b *deploydb.Flow) int { return cmp.Compare(a.ID, b.ID) })
	p := engine.NewPlan(service, flows, now)
	// No lock and no freeze: every environment is free, which the plan
	// says by having no entry for it.
	for env, c := range g.cells[service] {
		if c.lastGood != 0 {
			a := c.good
			p.LastGood[env] = &a
		}
	}
	return p
}

// apply is the store's apply: rollback flows first, then the status
// matrix of each changed deployment, then the events and the deliveries
// they owe. The rows of flows, deployments and results are written when
// their flow leaves memory (finish or flush), as they then are.
func (g *generator) apply(p *engine.Plan, actor string, out *[]happened) error {
	for len(p.Rollbacks) > 0 {
		rb := p.Rollbacks[0]
		p.Rollbacks = p.Rollbacks[1:]
		cf, cd := p.Deployment(rb.Cause)
		f := engine.NewRollbackFlow(cf, cd, rb.Artifact, p.Now)
		g.insertFlow(f)
		engine.Adopt(p, f)
	}
	changed := p.ChangedDeployments()
	slices.SortStableFunc(changed, func(a, b *deploydb.Deployment) int {
		return cmp.Compare(b2i(a.Status.Active()), b2i(b.Status.Active()))
	})
	for _, d := range changed {
		g.updateCell(d, p.Now)
	}
	for _, em := range p.Events {
		f := p.Flow(em.Flow)
		ev := &deploydb.Event{
			Type: em.Type, Service: p.Service, Environment: em.Environment, Artifact: f.Artifact.ID, Flow: f.ID,
			Status: em.Status, Detail: em.Detail, Actor: actor, CreatedAt: p.Now,
		}
		if em.Deployment != nil {
			ev.Deployment = em.Deployment.ID
		}
		g.insertEvent(ev, out)
		if em.Type == deploydb.EventDeploymentCompleted && em.Deployment != nil {
			h := &(*out)[len(*out)-1]
			for _, r := range em.Deployment.Promotions {
				if r.Status == deploydb.PromotionStarted {
					h.Awaiting = append(h.Awaiting, r.Promotion)
				}
			}
		}
		if em.Quiet {
			continue
		}
		if err := g.enqueue(ev, em.Deployment, em.Result, f); err != nil {
			return err
		}
	}
	p.Events = nil
	return g.release(p.Service)
}

// updateCell is the store's updateEnvState: the status matrix of the
// deployment's (service, environment) after its new status. Like the SQL
// UPDATE, each new value is computed from the old row.
func (g *generator) updateCell(d *deploydb.Deployment, now deploydb.Time) {
	c := g.cells[d.Service][d.Environment]
	if c == nil {
		switch d.Status {
		case deploydb.DeploymentCreated, deploydb.DeploymentCompleted, deploydb.DeploymentSuccess, deploydb.DeploymentFailed:
		default:
			return
		}
		c = &cell{}
		if g.cells[d.Service] == nil {
			g.cells[d.Service] = map[string]*cell{}
		}
		g.cells[d.Service][d.Environment] = c
	}
	switch d.Status {
	case deploydb.DeploymentCreated:
		c.inFlight = d.ID
	case deploydb.DeploymentCompleted:
		c.current, c.currentSince, c.lastAttempt = d.ID, ms(now), 0
	case deploydb.DeploymentSuccess:
		if c.current != d.ID {
			c.currentSince = ms(now)
		}
		c.lastGood, c.good, c.current, c.lastAttempt = d.ID, d.Artifact, d.ID, 0
		if c.inFlight == d.ID {
			c.inFlight = 0
		}
	case deploydb.DeploymentFailed:
		if c.current != d.ID {
			c.lastAttempt = d.ID
		}
		if c.inFlight == d.ID {
			c.inFlight = 0
		}
	case deploydb.DeploymentCancelled:
		if c.inFlight == d.ID {
			c.inFlight = 0
		}
	}
}

// insertEvent gives ev the next id and writes it.
func (g *generator) insertEvent(ev *deploydb.Event, out *[]happened) {
	g.ids.event++
	ev.ID = g.ids.event
	g.w.events.add(ev.ID, ev.Type, ev.Service, ev.Environment, nullID(ev.Artifact), nullID(ev.Flow), nullID(ev.Deployment),
		ev.Status, ev.Detail, ev.Actor, ev.Reason, ms(ev.CreatedAt))
	if ev.Type == deploydb.EventDeploymentCompleted && ev.Deployment != 0 {
		key := [2]string{ev.Service, ev.Environment}
		if ids := g.completed[key]; len(ids) < 2 && !slices.Contains(ids, ev.Deployment) {
			g.completed[key] = append(ids, ev.Deployment)
		}
	}
	*out = append(*out, happened{Type: ev.Type, Deployment: ev.Deployment, Service: ev.Service})
}

// enqueue is the store's record and enqueue: the deliveries the event
// owes, each delivered at its first attempt.
func (g *generator) enqueue(ev *deploydb.Event, d *deploydb.Deployment, r *deploydb.PromotionResult, f *deploydb.Flow) error {
	c := webhook.Change{Event: ev, Deployment: d, Result: r, Flow: f}
	if webhook.NeedsUpgrade(g.cfg, ev) && d != nil {
		// Did the service run a version there before this one?
		for _, id := range g.completed[[2]string{d.Service, d.Environment}] {
			c.Upgrade = c.Upgrade || id != d.ID
		}
	}
	ds, err := webhook.Deliveries(g.cfg, c)
	if err != nil {
		return err
	}
	for _, dl := range ds {
		if dl.Deployment == 0 && f != nil && len(f.Deployments) > 0 {
			dl.Deployment = f.Deployments[len(f.Deployments)-1].ID
		}
		if dl.Body == nil {
			dl.Body = []byte{}
		}
		headers, err := encodeHeaders(dl.Headers)
		if err != nil {
			return err
		}
		g.ids.delivery++
		dl.ID = g.ids.delivery
		status, attempts, next, updated := dl.Status, 0, ms(dl.NextAttemptAt), ms(dl.UpdatedAt)
		if dl.Status == deploydb.DeliveryPending {
			a := attemptOf(&dl)
			g.ids.attempt++
			g.w.attempts.add(g.ids.attempt, dl.ID, a.StatusCode, int64(a.Latency), a.Response, a.Error, ms(a.CreatedAt))
			status, attempts = deploydb.DeliveryDelivered, 1
			next, updated = ms(a.CreatedAt)+a.Latency.Milliseconds(), ms(a.CreatedAt)
		}
		g.w.deliveries.add(dl.ID, dl.Event, dl.EventType, nullID(dl.Deployment), dl.Hook, dl.URL, dl.ShownURL, dl.Method, dl.ContentType,
			headers, dl.Context, dl.Body, dl.Signed, status, attempts, dl.LastError, next, ms(dl.CreatedAt), updated)
	}
	return g.w.failed()
}

// attemptOf returns the first attempt of a delivery in a generated
// history: made a few milliseconds after the event, answered 204 by the
// receiver a few milliseconds later.
func attemptOf(dl *deploydb.Delivery) deploydb.Attempt {
	started := dl.CreatedAt.Add(time.Duration(5+dl.ID%20) * time.Millisecond)
	return deploydb.Attempt{
		Delivery:   dl.ID,
		StatusCode: 204,
		Latency:    time.Duration(2+dl.ID%7)*time.Millisecond + 137*time.Microsecond,
		CreatedAt:  deploydb.NewTime(started),
	}
}

// release writes and forgets the flows of service that the store's
// loadPlan would no longer read: finished, and holding no environment.
func (g *generator) release(service string) error {
	held := map[int64]bool{}
	for _, f := range g.services[service] {
		for i := range f.Deployments {
			d := &f.Deployments[i]
			if c := g.cells[service][d.Environment]; c != nil && c.inFlight == d.ID {
				held[f.ID] = true
			}
		}
	}
	keep := g.services[service][:0]
	for _, f := range g.services[service] {
		if f.Status == deploydb.FlowCreated || held[f.ID] {
			keep = append(keep, f)
			continue
		}
		if err := g.flush(f); err != nil {
			return err
		}
	}
	clear(g.services[service][len(keep):])
	g.services[service] = keep
	return nil
}

// flush writes a flow, its deployments and their results as they are.
func (g *generator) flush(f *deploydb.Flow) error {
	w := g.w
	w.flows.add(f.ID, f.Artifact.ID, f.Service, f.Pipeline, f.Reason, f.Status, f.ConfigChecksum, ms(f.CreatedAt), ms(f.UpdatedAt))
	for i := range f.Deployments {
		d := &f.Deployments[i]
		w.deployments.add(d.ID, d.Flow, d.Artifact.ID, d.Service, d.Environment, d.Position, d.Status, d.Reason, d.FailureStrategy,
			nullTime(d.DueAt), d.Waiting, ms(d.CreatedAt), ms(d.UpdatedAt),
			nullTime(d.ActivatedAt), nullTime(d.StartedAt), nullTime(d.CompletedAt), nullTime(d.FinishedAt))
		for _, r := range d.Promotions {
			w.results.add(r.ID, r.Deployment, r.Promotion, r.Type, r.SoakMs, nullTime(r.DueAt), r.Status, r.InfoURL, r.ReportedBy,
				ms(r.CreatedAt), ms(r.UpdatedAt))
		}
		delete(g.flowOf, d.ID)
	}
	// Keep a few finished flows to read back: a reservoir sample.
	g.flushed++
	if n := len(g.samples); n < maxSamples {
		g.sample(f, -1)
	} else if k := g.rng.IntN(g.flushed); k < maxSamples {
		g.sample(f, k)
	}
	return w.failed()
}

func (g *generator) sample(f *deploydb.Flow, at int) {
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	if at < 0 {
		g.samples = append(g.samples, b)
	} else {
		g.samples[at] = b
	}
}

// finish writes the flows still in memory and the status matrix.
func (g *generator) finish() error {
	inProgress := 0
	for _, svc := range slices.Sorted(maps.Keys(g.services)) {
		for _, f := range g.services[svc] {
			if inProgress < 2 && f.Status == deploydb.FlowCreated {
				// Flows in progress are worth reading back too.
				inProgress++
				g.sample(f, -1)
			}
			if err := g.flush(f); err != nil {
				return err
			}
		}
	}
	for _, svc := range slices.Sorted(maps.Keys(g.cells)) {
		for _, env := range slices.Sorted(maps.Keys(g.cells[svc])) {
			c := g.cells[svc][env]
			g.w.cells.add(svc, env, nullID(c.current), nullID(c.currentSince), nullID(c.inFlight), nullID(c.lastAttempt), nullID(c.lastGood))
		}
	}
	return g.w.failed()
}

// sampleCells returns n cells of the status matrix, spread over it.
func (g *generator) sampleCells(n int) []Cell {
	var keys [][2]string
	for _, svc := range slices.Sorted(maps.Keys(g.cells)) {
		for _, env := range slices.Sorted(maps.Keys(g.cells[svc])) {
			keys = append(keys, [2]string{svc, env})
		}
	}
	var out []Cell
	for i := 0; i < len(keys) && len(out) < n; i += max(1, len(keys)/n) {
		c := g.cells[keys[i][0]][keys[i][1]]
		out = append(out, Cell{Service: keys[i][0], Environment: keys[i][1], Current: c.current, CurrentSince: c.currentSince,
			InFlight: c.inFlight, LastAttempt: c.lastAttempt, LastGood: c.lastGood})
	}
	return out
}

func ms(t deploydb.Time) int64 { return t.UnixMilli() }

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

// encodeHeaders is the store's: a JSON array of [name, value] pairs.
func encodeHeaders(hs []deploydb.HookHeader) (string, error) {
	pairs := make([][2]string, len(hs))
	for i, h := range hs {
		pairs[i] = [2]string{h.Name, h.Value}
	}
	b, err := json.Marshal(pairs)
	return string(b), err
}

// bulk writes the rows of a history into a SQLite file, many rows per
// statement and many statements per transaction, without the indexes
// (made again at the end) and without syncing: a generated history is
// made again rather than recovered. The statements run in a goroutine of
// their own, beside the generator.
type bulk struct {
	ctx  context.Context
	db   *sql.DB
	conn *sql.Conn
	// indexes holds the CREATE INDEX statements dropped for the load, in
	// the order the migrations made them.
	indexes []string

	jobs chan job
	done chan struct{}
	// err is the writer's first error; stop says there is one.
	err  error
	stop atomic.Bool

	artifacts, flows, deployments, results, events, deliveries, attempts, cells *batch
}

// job is a buffer of rows of one table for the writer to insert.
type job struct {
	t   *batch
	buf []any
}

// commitEvery is how many rows a transaction of the load writes.
const commitEvery = 500_000

func openBulk(ctx context.Context, path string) (_ *bulk, err error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("bench: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	b := &bulk{ctx: ctx, db: db}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	if b.conn, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("bench: open %s: %w", path, err)
	}
	for _, p := range []string{
		// The file leaves WAL mode for the load (finish puts it back):
		// no journal, no sync.
		`PRAGMA journal_mode = OFF`, `PRAGMA synchronous = OFF`, `PRAGMA foreign_keys = OFF`,
		`PRAGMA cache_size = -1048576`, `PRAGMA threads = 2`, `PRAGMA locking_mode = EXCLUSIVE`,
	} {
		if _, err := b.conn.ExecContext(ctx, p); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", p, err)
		}
	}
	names, err := b.dropIndexes()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := b.conn.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return nil, fmt.Errorf("bench: drop index %s: %w", name, err)
		}
	}
	b.artifacts = b.table("artifacts", "id, grp, name, version, source_url, created_at, published_by")
	b.flows = b.table("flows", "id, artifact_id, service, pipeline, reason, status, config_checksum, created_at, updated_at")
	b.deployments = b.table("deployments", "id, flow_id, artifact_id, service, environment, position, status, reason, failure_strategy, due_at, waiting, created_at, updated_at, activated_at, started_at, completed_at, finished_at")
	b.results = b.table("promotion_results", "id, deployment_id, promotion, type, soak_ms, due_at, status, info_url, reported_by, created_at, updated_at")
	b.events = b.table("events", "id, type, service, environment, artifact_id, flow_id, deployment_id, status, detail, actor, reason, created_at")
	b.deliveries = b.table("webhook_deliveries", "id, event_id, event_type, deployment_id, hook, url, shown_url, method, content_type, headers, context, body, signed, status, attempts, last_error, next_attempt_at, created_at, updated_at")
	b.attempts = b.table("webhook_attempts", "id, delivery_id, status_code, latency_ns, response, error, created_at")
	b.cells = b.table("env_state", "service, environment, current_id, current_since, in_flight_id, last_attempt_id, last_good_id")
	return b, nil
}

// start starts the writer: from now on only it uses the connection, until
// finish.
func (b *bulk) start() {
	b.jobs = make(chan job, 64)
	b.done = make(chan struct{})
	go b.write()
}

// write inserts the rows it is sent, in transactions of commitEvery rows.
func (b *bulk) write() {
	defer close(b.done)
	ctx := b.ctx
	fail := func(err error) {
		if b.err == nil {
			b.err = err
			b.stop.Store(true)
		}
	}
	if _, err := b.conn.ExecContext(ctx, `BEGIN`); err != nil {
		fail(fmt.Errorf("bench: begin: %w", err))
	}
	rows := 0
	for j := range b.jobs {
		if b.err != nil {
			continue // drain
		}
		t := j.t
		n := len(j.buf) / t.n
		var err error
		if n == batchRows {
			if t.stmt == nil {
				if t.stmt, err = b.conn.PrepareContext(ctx, t.insert(batchRows)); err != nil {
					fail(fmt.Errorf("bench: prepare %s: %w", t.table, err))
					continue
				}
			}
			_, err = t.stmt.ExecContext(ctx, j.buf...)
		} else {
			_, err = b.conn.ExecContext(ctx, t.insert(n), j.buf...)
		}
		if err != nil {
			fail(fmt.Errorf("bench: insert %s: %w", t.table, err))
			continue
		}
		clear(j.buf)
		select {
		case t.free <- j.buf[:0]:
		default:
		}
		if rows += n; rows >= commitEvery {
			rows = 0
			if _, err := b.conn.ExecContext(ctx, `COMMIT`); err != nil {
				fail(fmt.Errorf("bench: commit: %w", err))
			} else if _, err := b.conn.ExecContext(ctx, `BEGIN`); err != nil {
				fail(fmt.Errorf("bench: begin: %w", err))
			}
		}
	}
	if b.err == nil {
		if _, err := b.conn.ExecContext(ctx, `COMMIT`); err != nil {
			fail(fmt.Errorf("bench: commit: %w", err))
		}
	}
}

// failed returns an error once the writer has failed; the rows sent since
// are dropped.
func (b *bulk) failed() error {
	if b.stop.Load() {
		return errors.New("bench: the writer failed")
	}
	return nil
}

// dropIndexes reads the indexes the migrations made (finish makes them
// again, in the same order) and returns their names.
func (b *bulk) dropIndexes() ([]string, error) {
	rows, err := b.conn.QueryContext(b.ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("bench: indexes: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			return nil, fmt.Errorf("bench: indexes: %w", err)
		}
		names, b.indexes = append(names, name), append(b.indexes, stmt)
	}
	return names, rows.Err()
}

// batch buffers the rows of one table and hands them to the writer
// batchRows at a time.
type batch struct {
	b     *bulk
	table string
	cols  string
	n     int // columns
	buf   []any
	free  chan []any // buffers the writer is done with
	stmt  *sql.Stmt  // the writer's
}

// batchRows is how many rows one INSERT writes.
const batchRows = 50

func (b *bulk) table(name, cols string) *batch {
	return &batch{b: b, table: name, cols: cols, n: strings.Count(cols, ",") + 1, free: make(chan []any, 8)}
}

func (t *batch) insert(rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", t.n), ", ") + ")"
	return `INSERT INTO ` + t.table + ` (` + t.cols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

// add buffers one row, of exactly the table's columns.
func (t *batch) add(vals ...any) {
	if len(vals) != t.n {
		panic(fmt.Sprintf("bench: %s takes %d values, not %d", t.table, t.n, len(vals)))
	}
	if t.buf == nil {
		select {
		case t.buf = <-t.free:
		default:
			t.buf = make([]any, 0, batchRows*t.n)
		}
	}
	t.buf = append(t.buf, vals...)
	if len(t.buf) == batchRows*t.n {
		t.send()
	}
}

func (t *batch) send() {
	if len(t.buf) > 0 {
		t.b.jobs <- job{t, t.buf}
	}
	t.buf = nil
}

func (b *bulk) all() []*batch {
	return []*batch{b.artifacts, b.flows, b.deployments, b.results, b.events, b.deliveries, b.attempts, b.cells}
}

// finish sends what is buffered, waits for the writer, makes the indexes
// again and puts the file back in WAL mode, as the server left it.
func (b *bulk) finish() error {
	ctx := b.ctx
	for _, t := range b.all() {
		t.send()
	}
	close(b.jobs)
	<-b.done
	b.jobs = nil
	if b.err != nil {
		return b.err
	}
	for _, stmt := range b.indexes {
		if _, err := b.conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("bench: %s: %w", stmt, err)
		}
	}
	for _, p := range []string{`PRAGMA locking_mode = NORMAL`, `PRAGMA journal_mode = WAL`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := b.conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("bench: %s: %w", p, err)
		}
	}
	return nil
}

// close stops the writer if it runs and closes the database.
func (b *bulk) close() {
	if b.jobs != nil {
		close(b.jobs)
		<-b.done
	}
	for _, t := range b.all() {
		if t != nil && t.stmt != nil {
			_ = t.stmt.Close()
		}
	}
	if b.conn != nil {
		_ = b.conn.Close()
	}
	_ = b.db.Close()
}
