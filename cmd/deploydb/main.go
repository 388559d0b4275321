// Command deploydb is DeployDB: the server and its command-line client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/deploydb/deploydb/cli"
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
