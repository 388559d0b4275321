// Command deploydb is DeployDB: the server and its command-line client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/postgres"
	"github.com/deploydb/deploydb/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(cli.ExitCode(err))
	}
}

// run is the whole program, with its dependencies passed in so that tests
// run it in-process. Errors have been reported on stderr when it returns.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := cli.Env{
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		Getenv: getenv,
		Serve: func(ctx context.Context, opts cli.ServeOptions) error {
			return serve(ctx, opts, getenv, stderr)
		},
		Migrate: func(ctx context.Context, database string) error {
			return migrate(ctx, database, stdout)
		},
		Copy: func(ctx context.Context, from, to string) error {
			return copyDatabase(ctx, from, to, stdout)
		},
		Backup: func(ctx context.Context, database, file string) error {
			return backup(ctx, database, file, stdout)
		},
	}
	return cli.Execute(ctx, args, env)
}

// migrate applies pending migrations and reports the result.
func migrate(ctx context.Context, database string, stdout io.Writer) error {
	store, err := openStore(ctx, database)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "database %s is up to date\n", shownDatabase(database))
	return err
}

// backup copies the SQLite database to file and reports it.
func backup(ctx context.Context, database, file string, stdout io.Writer) error {
	if isPostgres(database) {
		return deploydb.Errorf(deploydb.EINVALID, "deploydb backup copies a SQLite database; back up PostgreSQL with its own tools (pg_dump, base backups): see docs/operations.md")
	}
	size, err := sqlite.Backup(ctx, database, file)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", database, file, size)
	return err
}

// copyDatabase copies the SQLite database from into the empty PostgreSQL
// database to, and reports what it copied.
func copyDatabase(ctx context.Context, from, to string, stdout io.Writer) error {
	if !strings.HasPrefix(to, "postgres://") && !strings.HasPrefix(to, "postgresql://") {
		return deploydb.Errorf(deploydb.EINVALID, "--to must be a PostgreSQL URL (postgres://...)")
	}
	if _, err := os.Stat(from); err != nil {
		return deploydb.Errorf(deploydb.EINVALID, "--from %s: no such SQLite database", from)
	}
	src, err := sqlite.Open(ctx, from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, to)
	if err != nil {
		return err
	}
	defer dst.Close()
	counts, err := dst.CopyFrom(ctx, src.DB())
	if err != nil {
		return err
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	_, err = fmt.Fprintf(stdout, "copied %d rows (%d artifacts, %d deployments, %d events, %d webhook deliveries) from %s to %s\n",
		total, counts["artifacts"], counts["deployments"], counts["events"], counts["webhook_deliveries"], from, shownDatabase(to))
	return err
}
