package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/demo"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/postgres"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/web"
	"github.com/deploydb/deploydb/webhook"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGINT/SIGTERM; those still running then are cut short.
const shutdownTimeout = 10 * time.Second

// openStore opens the store a --database value names: a PostgreSQL URL
// (postgres:// or postgresql://), else a SQLite file path.
func openStore(ctx context.Context, database string) (deploydb.Store, error) {
	if isPostgres(database) {
		return postgres.Open(ctx, database)
	}
	return sqlite.Open(ctx, database)
}

func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// shownDatabase is a --database value as it may be logged: a URL's
// password is replaced by xxxxx.
func shownDatabase(database string) string {
	if !isPostgres(database) {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "(a PostgreSQL URL that does not parse)"
	}
	return u.Redacted()
}

// checkAnonymous refuses to serve anonymous callers beyond loopback unless
// the operator asked for it (DESIGN.md §7): with no API tokens, anyone who
// reaches the port may publish, report and approve. It reports whether the
// server listens on loopback only (httpapi.Server.AllowOpen).
func checkAnonymous(ctx context.Context, opts cli.ServeOptions, cfg *deploydb.Config, logger *slog.Logger) (bool, error) {
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return false, deploydb.Errorf(deploydb.EINVALID, "--listen %q is not host:port: %v", opts.Listen, err)
	}
	local := loopback(ctx, host)
	switch {
	case cfg.Auth.Enabled():
		logger.Info("callers authenticate with API tokens", "tokens", len(cfg.Auth.Tokens), "anonymous_scopes", fmt.Sprint(cfg.Auth.Anonymous))
		return local, nil
	case local:
		logger.Info("serving anonymous callers on a loopback address: no API tokens are configured")
		return true, nil
	case !opts.InsecureAnonymous:
		return false, deploydb.Errorf(deploydb.EINVALID, "refusing to listen on %s: no API tokens are configured, so anyone who reaches it could publish, report and approve deployments. "+
			"Make a token with `deploydb token new --name NAME --scope admin` and add the entry it prints to %s; or listen on 127.0.0.1; or pass --insecure-anonymous if everyone on this network may deploy",
			opts.Listen, filepath.Join(opts.Config, "auth", "tokens.yml"))
	}
	logger.Warn("serving anonymous callers on a non-loopback address (--insecure-anonymous): anyone who reaches it may publish, report and approve", "listen", opts.Listen)
	return false, nil
}

// loopback reports whether host names only loopback addresses.
func loopback(ctx context.Context, host string) bool {
	if host == "" {
		return false // every interface
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// serve runs the server until ctx is done, then shuts down cleanly.
func serve(ctx context.Context, opts cli.ServeOptions, getenv func(string) string, stderr io.Writer) error {
	logger := newLogger(stderr, opts.LogFormat, opts.LogLevel)

	var sim *demo.Sim
	var demoTokenFile string
	if opts.Demo {
		var cleanup func()
		var err error
		sim, demoTokenFile, cleanup, err = prepareDemo(ctx, &opts, &getenv, logger)
		if err != nil {
			return err
		}
		defer cleanup()
	}

	// The holder keeps the config in force; SIGHUP and POST
	// /api/config/reload replace it, never with one that does not load.
	holder, err := config.NewHolder(opts.Config, config.HolderOptions{Options: config.Options{Getenv: getenv}, Logger: logger})
	if err != nil {
		return fmt.Errorf("config %s: %w", opts.Config, err)
	}
	cfg := holder.Current()

	store, err := openStore(ctx, opts.Database)
	if err != nil {
		return err
	}
	defer store.Close()
	// Say so when the database's settings weaken what a 2xx promises.
	if d, ok := store.(interface {
		DurabilityWarnings(context.Context) ([]string, error)
	}); ok {
		warnings, err := d.DurabilityWarnings(ctx)
		if err != nil {
			logger.Warn("database: reading its durability settings", "err", err)
		}
		for _, w := range warnings {
			logger.Warn("database: an acknowledged write is not durable", "reason", w)
		}
	}

	reg := prometheus.NewRegistry()
	registerMetrics(reg, store, holder)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(reg, logger))
	api := httpapi.NewServer(logger, store, holder.Current).WithReloader(holder).WithMetrics(reg)
	mountProfiler(api)
	web.New(logger, api, store, holder.Current).Mount()
	mux.Handle("/", api)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Event streams never go idle: end them when shutdown begins.
	srv.RegisterOnShutdown(api.CloseStreams)
	local, err := checkAnonymous(ctx, opts, cfg, logger)
	if err != nil {
		return err
	}
	if opts.TLSCert != "" {
		// Refuse a bad pair now, not after "ready".
		if _, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey); err != nil {
			return deploydb.Errorf(deploydb.EINVALID, "--tls-cert/--tls-key: %v", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}

	// The configuration's environments are announced before the first
	// request can record anything (the ticker retries should this fail).
	if _, err := store.SyncEnvironments(ctx, holder.Current()); err != nil {
		logger.Error("config: announcing environment changes", "err", err)
	}

	dispatcher := webhook.NewDispatcher(store, logger, reg)
	if opts.WebhookTimeout > 0 {
		dispatcher.HTTPClient.Timeout = opts.WebhookTimeout
	}
	dispatcher.Lease = opts.WebhookLease
	// Calls are signed with the secrets of the configuration in force
	// when they are sent: a rotated secret signs the next attempt.
	dispatcher.Hook = func(name string) (*deploydb.Hook, bool) { return holder.Current().Hook(name) }
	dctx, stopDispatcher := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := dispatcher.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("webhook dispatcher stopped", "err", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runTicker(dctx, store, holder.Current, holder.Changed, logger)
	}()

	api.AllowOpen(local, opts.InsecureAnonymous)
	serveErr := make(chan error, 1)
	scheme := "http"
	if opts.TLSCert != "" {
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, opts.TLSCert, opts.TLSKey) }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	logger.Info("deploydb ready", "url", scheme+"://"+ln.Addr().String(), "config", opts.Config, "checksum", cfg.Checksum, "database", shownDatabase(opts.Database))
	if sim != nil {
		sim.URL = scheme + "://" + ln.Addr().String()
		logger.Info("demo: running; open the web UI, and sign in with the token in token_file to approve and redeliver",
			"url", sim.URL+"/", "signin", sim.URL+"/signin", "token_file", demoTokenFile)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sim.Run(dctx); err != nil {
				logger.Error("demo stopped", "err", err)
			}
		}()
	}

	// SIGHUP reloads the config, as configuration management expects.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for running := true; running; {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading the config", "config", opts.Config)
			_, _ = holder.Reload() // logs the outcome; a broken config keeps the old one
		case err = <-serveErr:
			running = false
		case <-ctx.Done():
			logger.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			err = srv.Shutdown(sctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				// Never answered, so nothing they did was acknowledged:
				// the stop is still clean.
				logger.Warn("shutting down: requests still in flight were cut short", "after", shutdownTimeout)
				_ = srv.Close()
				err = nil
			}
			running = false
		}
	}
	// Stop the dispatcher after the last request: what it has not delivered
	// stays in the outbox and is sent after the next start.
	stopDispatcher()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// prepareDemo readies serve --demo: the demo's configuration in a
// temporary directory, with the token of its person (demo.You) in a file
// there (never logged: DESIGN.md §7), a database there (unless
// opts.Database names one), and the listener of the demo's orchestrator,
// whose URL *getenv then gives the configuration. cleanup removes the
// directory.
func prepareDemo(ctx context.Context, opts *cli.ServeOptions, getenv *func(string) string, logger *slog.Logger) (*demo.Sim, string, func(), error) {
	dir, err := os.MkdirTemp("", "deploydb-demo-")
	if err != nil {
		return nil, "", nil, fmt.Errorf("demo: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	opts.Config = filepath.Join(dir, "config")
	tokens, err := demo.WriteConfig(opts.Config)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tokens[demo.You]+"\n"), 0o600); err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("demo: %w", err)
	}
	if opts.Database == "" {
		opts.Database = filepath.Join(dir, "deploydb.db")
	}
	ln, err := demo.Listen(ctx)
	if err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("demo: %w", err)
	}
	outer := *getenv
	orchestrator := "http://" + ln.Addr().String()
	*getenv = func(name string) string {
		if name == demo.EnvOrchestrator {
			return orchestrator
		}
		return outer(name)
	}
	logger.Info("demo: configuration and database in a temporary directory, removed at exit", "config", opts.Config, "database", shownDatabase(opts.Database))
	return &demo.Sim{Tokens: tokens, Logger: logger, Orchestrator: ln}, tokenFile, func() { _ = ln.Close(); cleanup() }, nil
}
