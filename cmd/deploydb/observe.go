package main

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/metrics"
)

// newLogger returns the server's logger: from level on, on w, as JSON lines
// unless format is text (cli.LogText).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == cli.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// pools is a store that exposes its database connection pools by name
// (sqlite: writer and readers; postgres: one pool).
type pools interface {
	DBs() map[string]*sql.DB
}

// registerMetrics registers with reg the metrics read at scrape time: the
// Go runtime and the process, state transitions and the webhook outbox
// (from store), config reloads (from holder), and the store's connection
// pools (go_sql_*{db_name}). The API's and the dispatcher's own metrics are
// registered by them (httpapi.Server.WithMetrics, webhook.NewDispatcher).
func registerMetrics(reg prometheus.Registerer, store deploydb.Store, holder *config.Holder) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewStoreCollector(store, time.Now), metrics.NewConfigCollector(holder))
	if p, ok := store.(pools); ok {
		for name, db := range p.DBs() {
			reg.MustRegister(collectors.NewDBStatsCollector(db, name))
		}
	}
}

// metricsHandler serves reg's metrics. A collector that fails (the
// database does not answer the outbox query) leaves its metrics out and
// is logged; the others are still served.
func metricsHandler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg,
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(logger.With("handler", "/metrics").Handler(), slog.LevelWarn),
	})
}
