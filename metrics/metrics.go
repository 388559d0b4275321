// Package metrics exposes what DeployDB's store and configuration holder
// know as Prometheus metrics, read when /metrics is scraped: state
// transitions by event type, the webhook outbox, config reloads. The store
// and the holder keep plain counts and answer plain questions; this package
// alone turns them into metrics, so that neither depends on Prometheus.
//
// The other metrics are made where they are measured: requests in httpapi
// (Server.WithMetrics), webhook attempts in webhook (NewDispatcher), and
// database pools by client_golang's collectors.NewDBStatsCollector.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
)

// StatsTimeout bounds the query a scrape makes of the store: a database that
// does not answer by then leaves the outbox gauges out of that scrape
// rather than holding it until the scraper gives up.
const StatsTimeout = 3 * time.Second

// Store is what the store collector asks of a store (deploydb.Store has
// it).
type Store interface {
	// EventsRecorded returns the events this process's commits recorded,
	// by type.
	EventsRecorded() map[deploydb.EventType]int64
	// OutboxStats returns the pending deliveries and when the oldest was
	// queued.
	OutboxStats(ctx context.Context) (deploydb.OutboxStats, error)
}

type storeCollector struct {
	store   Store
	now     func() time.Time
	events  *prometheus.Desc
	pending *prometheus.Desc
	oldest  *prometheus.Desc
}

// NewStoreCollector returns a collector of store's metrics, read at each
// scrape:
//
//   - deploydb_events_total{type}: events recorded by this process, by type
//     (a counter; a type appears with its first event);
//   - deploydb_webhook_outbox_pending: deliveries pending (all processes on
//     the database);
//   - deploydb_webhook_outbox_oldest_pending_age_seconds: how long ago the
//     oldest pending delivery was queued, 0 when none is.
//
// now gives the time the age is measured at (nil: time.Now). When the store
// does not answer, the outbox gauges are reported as an error of the
// scrape (promhttp.ContinueOnError serves the rest).
func NewStoreCollector(store Store, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	return &storeCollector{
		store:   store,
		now:     now,
		events:  prometheus.NewDesc("deploydb_events_total", "Events (state transitions) recorded by this process, by type.", []string{"type"}, nil),
		pending: prometheus.NewDesc("deploydb_webhook_outbox_pending", "Webhook deliveries pending: queued, not yet delivered nor given up on.", nil, nil),
		oldest: prometheus.NewDesc("deploydb_webhook_outbox_oldest_pending_age_seconds",
			"Time since the oldest pending webhook delivery was queued (a redelivered one: first queued); 0 when none is pending.", nil, nil),
	}
}

// Describe sends the descriptions of the collector's metrics.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.pending
	ch <- c.oldest
}

// Collect reads the counts and the outbox from the store.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	for typ, n := range c.store.EventsRecorded() {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(n), string(typ))
	}
	ctx, cancel := context.WithTimeout(context.Background(), StatsTimeout)
	defer cancel()
	st, err := c.store.OutboxStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(c.now().Sub(st.OldestPending).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}

// Config is what the config collector asks of the configuration holder
// (config.Holder has it).
type Config interface {
	// Reloads returns how many reloads were put in force and how many
	// were refused.
	Reloads() (ok, failed int64)
	// Status describes the configuration in force and the last reload.
	Status() deploydb.ConfigStatus
}

type configCollector struct {
	holder     Config
	reloads    *prometheus.Desc
	successAt  *prometheus.Desc
	successful *prometheus.Desc
}

// NewConfigCollector returns a collector of the configuration holder's
// metrics, read at each scrape:
//
//   - deploydb_config_reloads_total{result="ok"|"failed"}: reloads (SIGHUP,
//     POST /api/config/reload) put in force, and refused;
//   - deploydb_config_last_reload_success_timestamp_seconds: when the
//     configuration in force was loaded (at start, or by the last good
//     reload), in Unix seconds;
//   - deploydb_config_last_reload_successful: 1 unless the last reload was
//     refused (the configuration on disk is broken: the previous one keeps
//     serving).
func NewConfigCollector(h Config) prometheus.Collector {
	return &configCollector{
		holder:  h,
		reloads: prometheus.NewDesc("deploydb_config_reloads_total", "Configuration reloads, by result: ok (put in force) or failed (refused; the previous configuration keeps serving).", []string{"result"}, nil),
		successAt: prometheus.NewDesc("deploydb_config_last_reload_success_timestamp_seconds",
			"When the configuration in force was loaded (at start or by the last good reload), in Unix seconds.", nil, nil),
		successful: prometheus.NewDesc("deploydb_config_last_reload_successful", "1 unless the last configuration reload was refused.", nil, nil),
	}
}

// Describe sends the descriptions of the collector's metrics.
func (c *configCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.reloads
	ch <- c.successAt
	ch <- c.successful
}

// Collect reads the holder's counts and status.
func (c *configCollector) Collect(ch chan<- prometheus.Metric) {
	ok, failed := c.holder.Reloads()
	st := c.holder.Status()
	ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(ok), "ok")
	ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(failed), "failed")
	ch <- prometheus.MustNewConstMetric(c.successAt, prometheus.GaugeValue, float64(st.LoadedAt.UnixMilli())/1e3)
	last := 1.0
	if st.LastError != "" {
		last = 0
	}
	ch <- prometheus.MustNewConstMetric(c.successful, prometheus.GaugeValue, last)
}
