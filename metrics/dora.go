package metrics

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/insights"
)

// DORAWindow is the window of the DORA gauges: the 30 days before the
// scrape.
const DORAWindow = 30 * 24 * time.Hour

// DORARefresh is how long the DORA gauges are served from the last
// computation: a scrape every few seconds reads the history once a
// minute.
const DORARefresh = time.Minute

// FinishedStore is what the DORA collector asks of a store (deploydb.Store
// has it).
type FinishedStore interface {
	FindFinished(ctx context.Context, f deploydb.FinishedFilter) ([]deploydb.Finished, error)
}

type doraCollector struct {
	store  FinishedStore
	config func() *deploydb.Config
	now    func() time.Time

	frequency, lead, failure, recovery, rework, deployments *prometheus.Desc

	mu   sync.Mutex
	at   time.Time // when computed; zero: never
	cfg  *deploydb.Config
	last map[string]insights.DORA // by production environment
}

// NewDORACollector returns a collector of the DORA metrics of every
// environment config marks production: true, over the DORAWindow before
// the scrape, computed at most once per DORARefresh (or when the
// configuration changes):
//
//   - deploydb_dora_deployment_frequency_per_day{environment}
//   - deploydb_dora_lead_time_median_seconds{environment}
//   - deploydb_dora_change_failure_rate{environment}
//   - deploydb_dora_recovery_time_median_seconds{environment}
//   - deploydb_dora_rework_rate{environment}
//   - deploydb_dora_deployments{environment,status}: the successes and
//     failures counted
//
// A figure with nothing to compute it from (no failure in the window: no
// recovery time) is left out rather than reported as 0. now is the clock
// (nil: time.Now).
func NewDORACollector(store FinishedStore, config func() *deploydb.Config, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	env := []string{"environment"}
	return &doraCollector{
		store: store, config: config, now: now,
		frequency:   prometheus.NewDesc("deploydb_dora_deployment_frequency_per_day", "Successful deployments per day to a production environment over the last 30 days (DORA).", env, nil),
		lead:        prometheus.NewDesc("deploydb_dora_lead_time_median_seconds", "Median time from an artifact's oldest commit to its successful deployment to a production environment, over the last 30 days (DORA).", env, nil),
		failure:     prometheus.NewDesc("deploydb_dora_change_failure_rate", "Failed / (failed + successful) deployments to a production environment over the last 30 days (DORA).", env, nil),
		recovery:    prometheus.NewDesc("deploydb_dora_recovery_time_median_seconds", "Median time from a failed deployment to a production environment to the service's next success there, over the last 30 days (DORA).", env, nil),
		rework:      prometheus.NewDesc("deploydb_dora_rework_rate", "Rollback and hotfix deployments / all deployments to a production environment over the last 30 days.", env, nil),
		deployments: prometheus.NewDesc("deploydb_dora_deployments", "Deployments to a production environment that finished in the last 30 days, by status (SUCCESS or FAILED): what the DORA gauges count.", []string{"environment", "status"}, nil),
	}
}

// Describe sends the descriptions of the collector's metrics.
func (c *doraCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frequency, c.lead, c.failure, c.recovery, c.rework, c.deployments} {
		ch <- d
	}
}

// Collect computes the figures, or serves the last ones while they are
// fresh.
func (c *doraCollector) Collect(ch chan<- prometheus.Metric) {
	figures, err := c.figures()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.frequency, err)
		return
	}
	for _, env := range slices.Sorted(maps.Keys(figures)) {
		d := figures[env]
		gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append([]string{env}, labels...)...)
		}
		gauge(c.frequency, d.DeploymentFrequency.PerDay)
		gauge(c.deployments, float64(d.ChangeFailureRate.Successful), string(deploydb.DeploymentSuccess))
		gauge(c.deployments, float64(d.ChangeFailureRate.Failed), string(deploydb.DeploymentFailed))
		for _, f := range []struct {
			desc *prometheus.Desc
			v    *float64
		}{
			{c.lead, d.LeadTime.MedianSeconds},
			{c.failure, d.ChangeFailureRate.Rate},
			{c.recovery, d.RecoveryTime.MedianSeconds},
			{c.rework, d.ReworkRate.Rate},
		} {
			if f.v != nil {
				gauge(f.desc, *f.v)
			}
		}
	}
}

// figures returns the DORA figures of each production environment,
// computed again when they are older than DORARefresh or the
// configuration changed.
func (c *doraCollector) figures() (map[string]insights.DORA, error) {
	cfg := c.config()
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.cfg == cfg && now.Sub(c.at) < DORARefresh && !now.Before(c.at) {
		return c.last, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), StatsTimeout)
	defer cancel()
	from := now.Add(-DORAWindow)
	out := map[string]insights.DORA{}
	for name, e := range cfg.Environments {
		if !e.Production {
			continue
		}
		ds, err := c.store.FindFinished(ctx, deploydb.FinishedFilter{Environment: name, From: from, To: now})
		if err != nil {
			return nil, err
		}
		out[name] = insights.ComputeDORA(ds, from, now)
	}
	c.at, c.cfg, c.last = now, cfg, out
	return out, nil
}
