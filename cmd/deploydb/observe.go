package main

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/httpapi"
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
// (from store), config reloads (from holder), the DORA figures of the
// production environments (from both), and the store's connection
// pools (go_sql_*{db_name}). The API's and the dispatcher's own metrics are
// registered by them (httpapi.Server.WithMetrics, webhook.NewDispatcher).
func registerMetrics(reg prometheus.Registerer, store deploydb.Store, holder *config.Holder) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewStoreCollector(store, time.Now), metrics.NewConfigCollector(holder),
		metrics.NewDORACollector(store, holder.Current, time.Now))
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

// mountProfiler serves the Go profiler under /debug/pprof/ on api, for
// admin tokens only (without tokens, on loopback only, as the rest of the
// API): the index, every runtime profile by name (heap, allocs,
// goroutine, block, mutex, threadcreate; ?debug=1 for text), a CPU
// profile (profile?seconds=N) and an execution trace (trace?seconds=N),
// which extend the server's write timeout by their duration, and symbol.
// The command line (cmdline) is not served (404, as any unknown profile):
// --database may hold a PostgreSQL password. (Importing net/http/pprof
// registers its handlers on http.DefaultServeMux, which DeployDB never
// serves.)
func mountProfiler(api *httpapi.Server) {
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /debug/pprof/":        pprof.Index,
		"GET /debug/pprof/profile": pprof.Profile,
		"GET /debug/pprof/trace":   pprof.Trace,
		"GET /debug/pprof/symbol":  pprof.Symbol,
		"POST /debug/pprof/symbol": pprof.Symbol,
	} {
		api.Mount(pattern, deploydb.ScopeAdmin, h)
	}
}
