package cli

import (
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb/webhook"
)

func (a *app) serveCommand() *cobra.Command {
	var insecure bool
	var tlsCert, tlsKey string
	var hookTimeout, hookLease time.Duration
	var logFormat, logLevel string
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the DeployDB server",
		Long: `Run the DeployDB server: the HTTP API on --listen, backed by the database
--database (a SQLite file, or a PostgreSQL URL postgres://...) and the model
configuration in --config. The server logs the URL it serves once it is
ready and stops cleanly on SIGINT or SIGTERM.

Callers authenticate with the API tokens of <config>/auth/tokens.yml (make
one with deploydb token new). Without any token configured every caller is
anonymous and may publish, report and approve: the server then listens only
on a loopback address, unless --insecure-anonymous is given (for a trusted
network only). With --tls-cert and --tls-key it serves HTTPS; else put it
behind a proxy that terminates TLS.

A webhook call may take --webhook-timeout. A delivery an attempt is under
way for is claimed for --webhook-lease: should this server die mid-attempt,
another replica on the database attempts it once the lease lapses. On
SQLite, one server's claims are kept in its memory: after a crash it makes
the calls again as it starts, and a call whose attempt could not be
recorded is made again when its lease lapses.

The server logs to stderr, one JSON object a line (--log-format json, for
log collectors), or key=value lines for people at a terminal (--log-format
text). Every line about an HTTP request carries its request_id, the
X-Request-Id of the response. --log-level debug adds a line per request.
Prometheus metrics are served on /metrics, the web UI on /.

With --demo it also runs the demo: eight services moving through dev,
integ, staging and prod, driven every few seconds by a simulated CI,
orchestrator, test jobs and release manager, so that the web UI shows the
whole system moving. It uses a configuration of its own and a database in a
temporary directory, removed when it stops (unless --database is given);
it writes a token to sign in with and approve into a file there, and logs
the file's path.

Each flag falls back to its environment variable, then to its default.`,
		Example: `  deploydb serve --demo                    # then open http://127.0.0.1:8080/
  deploydb serve --config ./config --database ./deploydb.db --listen 127.0.0.1:8080
  deploydb serve --listen :8443 --tls-cert cert.pem --tls-key key.pem   # with tokens in ./config/auth/tokens.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.env.Serve == nil {
				return errors.New("this build cannot run the server")
			}
			if (tlsCert == "") != (tlsKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if hookTimeout <= 0 {
				return usagef("--webhook-timeout must be positive")
			}
			// The claim must outlast the call and the recording of its
			// outcome, or a second replica could send it meanwhile.
			if hookLease < hookTimeout+time.Second {
				return usagef("--webhook-lease (%s) must be at least a second longer than --webhook-timeout (%s)", hookLease, hookTimeout)
			}
			if logFormat != LogJSON && logFormat != LogText {
				return usagef("--log-format must be %s or %s, not %q", LogJSON, LogText, logFormat)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level must be debug, info, warn or error, not %q", logLevel)
			}
			opts := ServeOptions{
				Config:   a.setting(cmd, "config", EnvConfig),
				Database: a.setting(cmd, "database", EnvDatabase),
				Listen:   a.setting(cmd, "listen", EnvListen),

				InsecureAnonymous: insecure,
				TLSCert:           tlsCert,
				TLSKey:            tlsKey,
				WebhookTimeout:    hookTimeout,
				WebhookLease:      hookLease,
				LogFormat:         logFormat,
				LogLevel:          level,
				Demo:              demo,
			}
			if demo {
				// The demo runs its own configuration (its simulated
				// callers have tokens in it), and a database of its own
				// unless --database names one: DEPLOYDB_CONFIG and
				// DEPLOYDB_DATABASE, meant for real servers, are not taken.
				if cmd.Flags().Lookup("config").Changed {
					return usagef("--demo runs its own configuration: drop --config")
				}
				opts.Config = ""
				if !cmd.Flags().Lookup("database").Changed {
					opts.Database = ""
				}
			}
			return a.env.Serve(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&insecure, "insecure-anonymous", false, "without API tokens, serve anonymous callers on a non-loopback address (trusted networks only)")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file")
	f.StringVar(&tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.DurationVar(&hookTimeout, "webhook-timeout", webhook.DefaultTimeout, "give up on a webhook call after this long (it is retried)")
	f.DurationVar(&hookLease, "webhook-lease", webhook.DefaultLease, "how long a delivery being attempted stays this server's; after a crash, another replica retries it this much later (SQLite: a call whose attempt could not be recorded waits this long)")
	f.StringVar(&logFormat, "log-format", LogJSON, "log as JSON lines (json) or key=value lines for people (text)")
	f.StringVar(&logLevel, "log-level", "info", "the least level logged: debug (adds a line per request), info, warn or error")
	f.BoolVar(&demo, "demo", false, "also run the demo: its own configuration and a temporary database, with a simulated CI, orchestrator and test jobs")
	f.String("config", DefaultConfig, "model configuration directory (env "+EnvConfig+")")
	f.String("database", DefaultDatabase, "SQLite file path, or PostgreSQL URL postgres://... (env "+EnvDatabase+")")
	f.String("listen", DefaultListen, "address to serve HTTP on (env "+EnvListen+")")
	_ = cmd.MarkFlagDirname("config")
	_ = cmd.MarkFlagFilename("database")
	return cmd
}

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending migrations to the database",
		Long: `Apply pending migrations to the database and exit, so that an operator can
upgrade the schema ahead of a deploy. Running it again applies nothing.`,
		Example: `  deploydb migrate --database ./deploydb.db
  DEPLOYDB_DATABASE=postgres://deploydb:PASSWORD@db.example.com/deploydb deploydb migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.env.Migrate == nil {
				return errors.New("this build cannot migrate a database")
			}
			return a.env.Migrate(cmd.Context(), a.setting(cmd, "database", EnvDatabase))
		},
	}
	cmd.Flags().String("database", DefaultDatabase, "SQLite file path, or PostgreSQL URL postgres://... (env "+EnvDatabase+")")
	_ = cmd.MarkFlagFilename("database")
	return cmd
}

func (a *app) copyCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from SQLITE_FILE --to POSTGRES_URL",
		Short: "Copy a SQLite database into an empty PostgreSQL one",
		Long: `Copy everything a SQLite database holds (artifacts, flows, deployments,
results, events, locks, the status matrix, webhook deliveries and attempts)
into a PostgreSQL database that holds no artifact yet, in one transaction,
keeping every id. Both are migrated to this version first. Stop the server
on the SQLite file first, copy, then start the servers on PostgreSQL.`,
		Example: `  DEPLOYDB_TO='postgres://deploydb:PASSWORD@db.example.com/deploydb?sslmode=require' \
    deploydb copy --from ./deploydb.db --to "$DEPLOYDB_TO"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.env.Copy == nil {
				return errors.New("this build cannot copy a database")
			}
			if from == "" || to == "" {
				return usagef("--from and --to are required")
			}
			return a.env.Copy(cmd.Context(), from, to)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the SQLite database file to copy")
	cmd.Flags().StringVar(&to, "to", "", "the PostgreSQL URL to copy into (an empty database)")
	return cmd
}

func (a *app) backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy a live SQLite database to a new file",
		Long: `Write a consistent copy of the SQLite database --database to FILE, while
servers go on using it: the copy holds every write committed before the
backup began. FILE must not exist; the copy is checked (integrity_check)
and synced before it appears under its name. To restore, stop the server,
move the database file and its -wal and -shm files aside, put the backup
in its place and start the server.

For PostgreSQL use its own tools (pg_dump, base backups).`,
		Example: `  deploydb backup --database /var/lib/deploydb/deploydb.db /backups/deploydb-$(date +%F).db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.env.Backup == nil {
				return errors.New("this build cannot back up a database")
			}
			return a.env.Backup(cmd.Context(), a.setting(cmd, "database", EnvDatabase), args[0])
		},
	}
	cmd.Flags().String("database", DefaultDatabase, "the SQLite database file to back up (env "+EnvDatabase+")")
	_ = cmd.MarkFlagFilename("database")
	return cmd
}
