package metrics_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/metrics"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/storetest"
)

// values returns the counters and gauges reg gathers, keyed by
// name{label="value",...} with labels sorted, and the error of the gather.
func values(t *testing.T, reg *prometheus.Registry) (map[string]float64, error) {
	t.Helper()
	mfs, err := reg.Gather()
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out, err
}

func want(t *testing.T, got map[string]float64, key string, v float64) {
	t.Helper()
	if g, ok := got[key]; !ok || g != v {
		t.Errorf("%s = %v (present %t), want %v", key, g, ok, v)
	}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestStoreCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	store.Now = clk.Now
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewStoreCollector(store, clk.Now))

	got, err := values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, "deploydb_webhook_outbox_pending", 0)
	want(t, got, "deploydb_webhook_outbox_oldest_pending_age_seconds", 0)

	cfg := storetest.Model()
	_, flows, err := store.PublishArtifact(ctx, cfg, storetest.Artifact("billing", "1.0.0"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: flows[0].Deployments[0].ID, Status: deploydb.DeploymentStarted, Actor: "jenkins"}); err != nil {
		t.Fatal(err)
	}
	pending, err := store.FindDeliveries(ctx, deploydb.DeliveryFilter{Status: deploydb.DeliveryPending, Page: deploydb.Page{Size: deploydb.MaxPageSize}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		t.Fatal("nothing pending to count")
	}
	clk.Add(90 * time.Second)
	got, err = values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, `deploydb_events_total{type="artifact.published"}`, 1)
	want(t, got, `deploydb_events_total{type="deployment.created"}`, 1)
	want(t, got, `deploydb_events_total{type="deployment.started"}`, 1)
	want(t, got, "deploydb_webhook_outbox_pending", float64(len(pending)))
	want(t, got, "deploydb_webhook_outbox_oldest_pending_age_seconds", 90)

	for _, d := range pending {
		if err := store.RecordAttempt(ctx, deploydb.AttemptResult{Attempt: deploydb.Attempt{Delivery: d.ID, StatusCode: 204, CreatedAt: deploydb.NewTime(clk.Now())},
			Done: true, Status: deploydb.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	got, err = values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, "deploydb_webhook_outbox_pending", 0)
	want(t, got, "deploydb_webhook_outbox_oldest_pending_age_seconds", 0)

	// A store that does not answer fails the outbox gauges of a scrape,
	// not the counts.
	store.Close()
	got, err = values(t, reg)
	if err == nil || !strings.Contains(err.Error(), "outbox") {
		t.Errorf("gather on a closed store: %v, want the outbox query's error", err)
	}
	want(t, got, `deploydb_events_total{type="deployment.created"}`, 1)
	if _, ok := got["deploydb_webhook_outbox_pending"]; ok {
		t.Error("outbox gauge reported although the store did not answer")
	}
}

func TestConfigCollector(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata", "config", "deploydb-0.3"))); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	h, err := config.NewHolder(dir, config.HolderOptions{Options: config.Options{Getenv: func(string) string { return "" }}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewConfigCollector(h))
	check := func(ok, failed float64, at time.Time, successful float64) {
		t.Helper()
		got, err := values(t, reg)
		if err != nil {
			t.Fatal(err)
		}
		want(t, got, `deploydb_config_reloads_total{result="ok"}`, ok)
		want(t, got, `deploydb_config_reloads_total{result="failed"}`, failed)
		want(t, got, "deploydb_config_last_reload_success_timestamp_seconds", float64(at.Unix()))
		want(t, got, "deploydb_config_last_reload_successful", successful)
	}
	start := clk.Now()
	check(0, 0, start, 1)

	clk.Add(time.Minute)
	if _, err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	reloaded := clk.Now()
	check(1, 0, reloaded, 1)

	clk.Add(time.Minute)
	if err := os.WriteFile(filepath.Join(dir, "services", "basicServ.yml"), []byte("pipelines: [nowhere]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(); err == nil {
		t.Fatal("a broken config reloaded")
	}
	check(1, 1, reloaded, 0)
}
