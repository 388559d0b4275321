package metrics_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/metrics"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/storetest"
)

func TestDORACollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "deploydb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	cfg := storetest.Model() // prod is production: true, staging is not
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewDORACollector(store, func() *deploydb.Config { return cfg }, clk.Now))

	line := func(n int, version, env string, status deploydb.DeploymentStatus, reason deploydb.Reason, ago time.Duration, commitAgo time.Duration) deploydb.ImportRecord {
		a := storetest.Artifact("billing", version)
		r := deploydb.ImportRecord{Line: n, Group: a.Group, Name: a.Name, Version: a.Version, SourceURL: a.SourceURL, Service: "billing", Environment: env,
			Status: status, Reason: reason, StartedAt: deploydb.NewTime(now.Add(-ago - time.Minute)), FinishedAt: deploydb.NewTime(now.Add(-ago))}
		if commitAgo > 0 {
			r.Commits = []deploydb.Commit{{SHA: "c" + version, Timestamp: deploydb.NewTime(now.Add(-commitAgo))}}
		}
		return r
	}
	day := 24 * time.Hour
	// In the 30 days: 1.0 succeeded 20 days ago (committed 2 h before),
	// 1.1 failed 10 days ago, 1.0 rolled back 2 h later; 31 days ago,
	// outside: 0.9. Staging is not production: not counted.
	if _, err := store.Import(ctx, cfg, []deploydb.ImportRecord{
		line(1, "0.9", "prod", deploydb.DeploymentSuccess, deploydb.ReasonPipeline, 31*day, 0),
		line(2, "1.0", "prod", deploydb.DeploymentSuccess, deploydb.ReasonPipeline, 20*day, 20*day+2*time.Hour),
		line(3, "1.1", "prod", deploydb.DeploymentFailed, deploydb.ReasonPipeline, 10*day, 0),
		line(4, "1.0", "prod", deploydb.DeploymentSuccess, deploydb.ReasonRollback, 10*day-2*time.Hour, 20*day+2*time.Hour),
		line(5, "1.1", "staging", deploydb.DeploymentSuccess, deploydb.ReasonPipeline, time.Hour, 0),
	}, "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, `deploydb_dora_deployment_frequency_per_day{environment="prod"}`, 2.0/30)
	want(t, got, `deploydb_dora_deployments{environment="prod",status="SUCCESS"}`, 2)
	want(t, got, `deploydb_dora_deployments{environment="prod",status="FAILED"}`, 1)
	// 2 h, and 10 days and 4 h: their median.
	want(t, got, `deploydb_dora_lead_time_median_seconds{environment="prod"}`, (2*3600+(10*24+4)*3600)/2)
	want(t, got, `deploydb_dora_change_failure_rate{environment="prod"}`, 1.0/3)
	want(t, got, `deploydb_dora_recovery_time_median_seconds{environment="prod"}`, 2*3600)
	want(t, got, `deploydb_dora_rework_rate{environment="prod"}`, 1.0/3)
	if _, ok := got[`deploydb_dora_deployment_frequency_per_day{environment="staging"}`]; ok {
		t.Error("staging, not production, has DORA gauges")
	}

	// Within a minute the figures are served as they were, even after a
	// new deployment; after it, worked out anew.
	clk.Add(30 * time.Second)
	if _, err := store.Import(ctx, cfg, []deploydb.ImportRecord{line(1, "1.2", "prod", deploydb.DeploymentSuccess, deploydb.ReasonPipeline, time.Minute, 0)}, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ = values(t, reg); got[`deploydb_dora_deployments{environment="prod",status="SUCCESS"}`] != 2 {
		t.Errorf("within a minute: %v successes, want the 2 computed before", got[`deploydb_dora_deployments{environment="prod",status="SUCCESS"}`])
	}
	clk.Add(metrics.DORARefresh)
	got, err = values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, `deploydb_dora_deployments{environment="prod",status="SUCCESS"}`, 3)

	// 21 days on, the failure has left the window: no recovery time
	// (absent, not 0); 1.2 alone is left.
	clk.Add(21 * day)
	got, err = values(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	want(t, got, `deploydb_dora_deployments{environment="prod",status="FAILED"}`, 0)
	want(t, got, `deploydb_dora_change_failure_rate{environment="prod"}`, 0)
	if v, ok := got[`deploydb_dora_recovery_time_median_seconds{environment="prod"}`]; ok {
		t.Errorf("recovery time = %v, want absent", v)
	}
	want(t, got, `deploydb_dora_deployment_frequency_per_day{environment="prod"}`, 1.0/30)
}
