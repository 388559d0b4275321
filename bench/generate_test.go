package bench

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/sqlite"
)

// mustConfig writes model m as a config directory and loads it as
// deploydb serve does, with the variables its hooks read.
func mustConfig(t *testing.T, m *Model) *deploydb.Config {
	t.Helper()
	dir := t.TempDir()
	if err := m.Write(dir, NewTokens()); err != nil {
		t.Fatal(err)
	}
	secret := NewHookSecret()
	cfg, err := config.LoadWith(dir, config.Options{Getenv: func(k string) string {
		return map[string]string{EnvReceiver: "http://127.0.0.1:9", EnvHookSecret: secret}[k]
	}})
	if err != nil {
		t.Fatalf("the model's config does not load: %v", err)
	}
	return cfg
}

func TestModel(t *testing.T) {
	if MaxServices != len(domains)*len(components) {
		t.Fatalf("MaxServices = %d, but there are %d names", MaxServices, len(domains)*len(components))
	}
	m, err := NewModel(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Write(dir, NewTokens()); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvReceiver, "http://127.0.0.1:9")
	t.Setenv(EnvHookSecret, NewHookSecret())
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("the model's config does not load: %v", err)
	}
	if len(cfg.Services) != 1000 || len(cfg.Environments) != 20 {
		t.Errorf("config has %d services and %d environments, want 1000 and 20", len(cfg.Services), len(cfg.Environments))
	}
	used := map[string]bool{}
	for _, p := range cfg.Pipelines {
		if n := len(p.Environments); n < 3 || n > 5 {
			t.Errorf("pipeline %s has %d environments, want 3 to 5", p.Ident, n)
		}
		for _, st := range p.Environments {
			used[st.Environment] = true
		}
	}
	if len(used) != 20 {
		t.Errorf("pipelines use %d environments, want all 20", len(used))
	}
	if cfg.Auth == nil || len(cfg.Auth.Tokens) != 6 {
		t.Errorf("config has %v tokens, want 6", cfg.Auth)
	}
	for _, s := range m.Services {
		cs := cfg.Services[s.Name]
		if cs == nil {
			t.Fatalf("service %s is not in the config", s.Name)
		}
		if got := cfg.ServicesConsuming(s.Group, s.Artifact); len(got) != 1 || got[0].Ident != s.Name {
			t.Errorf("%s:%s is consumed by %v, want %s alone", s.Group, s.Artifact, got, s.Name)
		}
		for _, st := range cfg.Pipelines[cs.Pipeline()].Environments {
			if diff := cmp.Diff(deploydb.StagePromotions(cs, st), m.StagePromotions(&s, st.Environment)); diff != "" {
				t.Errorf("%s in %s: promotions (-deploydb +model):\n%s", s.Name, st.Environment, diff)
			}
		}
	}
	if _, err := NewModel(MaxServices+1, 1); err == nil {
		t.Error("NewModel(MaxServices+1) did not fail")
	}
}

// storeDriver plays a history through the real store, one transaction
// per command, as the server does: what Generate must match.
type storeDriver struct {
	t   *testing.T
	s   *sqlite.Store
	cfg *deploydb.Config
	now time.Time
	// lastEvent and lastDeployment are the ids seen so far.
	lastEvent, lastDeployment int64
}

func (d *storeDriver) since() ([]happened, int, error) {
	ctx := d.t.Context()
	evs, err := d.s.FindEvents(ctx, deploydb.EventFilter{After: d.lastEvent, Limit: deploydb.MaxPageSize})
	if err != nil {
		return nil, 0, err
	}
	var out []happened
	for _, ev := range evs {
		d.lastEvent = ev.ID
		h := happened{Type: ev.Type, Deployment: ev.Deployment, Service: ev.Service}
		if ev.Type == deploydb.EventDeploymentCompleted {
			dep, err := d.s.FindDeployment(ctx, ev.Deployment)
			if err != nil {
				return nil, 0, err
			}
			for _, r := range dep.Promotions {
				if r.Status == deploydb.PromotionStarted {
					h.Awaiting = append(h.Awaiting, r.Promotion)
				}
			}
		}
		out = append(out, h)
	}
	ds, err := d.s.FindDeployments(ctx, deploydb.DeploymentFilter{Page: deploydb.Page{Size: 1}})
	if err != nil {
		return nil, 0, err
	}
	n := 0
	if len(ds) > 0 {
		n = int(ds[0].ID - d.lastDeployment)
		d.lastDeployment = ds[0].ID
	}
	return out, n, nil
}

func (d *storeDriver) publish(at deploydb.Time, a deploydb.Artifact, actor string) ([]happened, int, error) {
	d.now = at.Time
	if _, _, err := d.s.PublishArtifact(d.t.Context(), d.cfg, a, actor); err != nil {
		return nil, 0, err
	}
	return d.since()
}

func (d *storeDriver) report(at deploydb.Time, id int64, status deploydb.DeploymentStatus, actor string) ([]happened, int, error) {
	d.now = at.Time
	if _, err := d.s.ReportDeployment(d.t.Context(), d.cfg, deploydb.DeploymentReport{Deployment: id, Status: status, Actor: actor}); err != nil {
		return nil, 0, err
	}
	return d.since()
}

func (d *storeDriver) promote(at deploydb.Time, id int64, name string, status deploydb.PromotionStatus, infoURL, actor string) ([]happened, int, error) {
	d.now = at.Time
	if _, err := d.s.ReportPromotion(d.t.Context(), d.cfg, deploydb.PromotionReport{Deployment: id, Promotion: name, Status: status, InfoURL: infoURL, Actor: actor}); err != nil {
		return nil, 0, err
	}
	return d.since()
}

// replay plays the history of opts through the real store into a new
// database at path, then delivers every webhook as the generator does.
func replay(t *testing.T, path string, cfg *deploydb.Config, m *Model, opts HistoryOptions) {
	t.Helper()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := &storeDriver{t: t, s: s, cfg: cfg}
	s.Now = func() time.Time { return d.now }
	start, _ := historySpan(m, opts)
	d.now = start.Add(-time.Minute)
	if _, err := s.SyncEnvironments(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.since(); err != nil {
		t.Fatal(err)
	}
	if _, err := runHistory(m, d, opts); err != nil {
		t.Fatal(err)
	}
	pending, err := s.FindDeliveries(ctx, deploydb.DeliveryFilter{Status: deploydb.DeliveryPending})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(pending) - 1; i >= 0; i-- { // oldest first
		a := attemptOf(pending[i])
		r := deploydb.AttemptResult{Attempt: a, Done: true, Status: deploydb.DeliveryDelivered, NextAttemptAt: a.CreatedAt.Add(a.Latency)}
		if err := s.RecordAttempt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

// dump reads every row of every table of the SQLite file at path, and its
// schema.
func dump(t *testing.T, path string) map[string][][]any {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	out := map[string][][]any{}
	read := func(name, q string) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[name] = append(out[name], vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("schema", `SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name`)
	for _, row := range out["schema"] {
		name := row[1].(string)
		if row[0] != "table" || name == "goose_db_version" || name == "status_version" || name == "status_services" {
			// goose's table holds the time each migration ran;
			// status_version and status_services count commits, which
			// the generator makes far fewer of.
			continue
		}
		read(name, `SELECT * FROM "`+name+`" ORDER BY 1, 2`)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	out["journal_mode"] = [][]any{{mode}}
	return out
}

// TestGenerate checks that a generated history is what the real store
// records when the same commands are sent one at a time: the same rows,
// byte for byte, in every table; and that it passes Check.
func TestGenerate(t *testing.T) {
	t.Parallel()
	m, err := NewModel(20, 7)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, m)
	opts := HistoryOptions{
		Deployments: 120, Seed: 11, End: time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC),
		// Often, and failing often, so that a short history holds
		// supersedes, failures and rollbacks.
		ReleaseEvery: 20 * time.Minute, FailDeployPct: 10, FailTestPct: 12,
	}
	dir := t.TempDir()
	gen, real := filepath.Join(dir, "generated.db"), filepath.Join(dir, "real.db")
	man, err := Generate(context.Background(), gen, cfg, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	replay(t, real, cfg, m, opts)

	want, got := dump(t, real), dump(t, gen)
	for name := range want {
		if diff := cmp.Diff(want[name], got[name]); diff != "" {
			t.Errorf("table %s differs (-store +generated):\n%s", name, diff)
		}
	}
	if got["journal_mode"][0][0] != "wal" {
		t.Errorf("generated database is in journal mode %v, want wal", got["journal_mode"][0][0])
	}
	if err := Check(t.Context(), gen, cfg); err != nil {
		t.Errorf("generated history fails the check:\n%v", err)
	}

	// The history holds what the benchmark means it to.
	if n := man.Rows["deployments"]; n < int64(opts.Deployments) || n > int64(opts.Deployments)+50 {
		t.Errorf("history has %d deployments, want about %d", n, opts.Deployments)
	}
	kinds := map[string]int{}
	for _, row := range got["events"] {
		kinds[row[1].(string)]++
	}
	for _, row := range got["flows"] {
		kinds["flow reason "+row[4].(string)]++
		kinds["flow status "+row[5].(string)]++
	}
	for _, k := range []string{"deployment.created", "deployment.started", "deployment.completed", "deployment.verified", "promotion.completed",
		"deployment.failed", "deployment.superseded", "flow.completed", "flow reason rollback", "flow status CREATED", "flow status SUPERSEDED", "flow status FAILED"} {
		if kinds[k] == 0 {
			t.Errorf("history has no %s: %v", k, kinds)
		}
	}
	if len(man.Idle) == 0 || len(man.Idle) == len(m.Services) {
		t.Errorf("%d of %d services idle at the end, want some but not all", len(man.Idle), len(m.Services))
	}
	if len(man.Flows) == 0 || len(man.Cells) == 0 {
		t.Errorf("manifest has %d flows and %d cells to read back", len(man.Flows), len(man.Cells))
	}
	if man.Max["deployments"] != man.Rows["deployments"] {
		t.Errorf("manifest: max deployment id %d, %d rows", man.Max["deployments"], man.Rows["deployments"])
	}
	t.Logf("%+v", man.Rows)
}

// TestCheckFinds checks that Check notices a history the server could not
// have recorded.
func TestCheckFinds(t *testing.T) {
	t.Parallel()
	m, err := NewModel(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, m)
	path := filepath.Join(t.TempDir(), "h.db")
	if _, err := Generate(t.Context(), path, cfg, m, HistoryOptions{Deployments: 100, Seed: 5, End: time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), path, cfg); err != nil {
		t.Fatalf("fresh history fails the check: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `UPDATE deployments SET status = 'FAILED' WHERE id = (SELECT max(id) FROM deployments WHERE status = 'SUCCESS')`); err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), path, cfg); err == nil {
		t.Error("Check passed a history with a SUCCESS deployment turned FAILED")
	}
}
