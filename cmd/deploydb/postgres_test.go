package main

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/cli"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// TestFlowEndToEndPostgres runs the end-to-end flow, restart included, on
// PostgreSQL.
func TestFlowEndToEndPostgres(t *testing.T) {
	t.Parallel()
	testFlowEndToEnd(t, pgtest.Schema(t))
}

// TestMigratePostgres checks that `deploydb migrate` applies the
// migrations of a PostgreSQL database, applies nothing the second time
// (exit 0 both times), and never prints the password of the URL.
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	for range 2 {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"migrate", "--database", db}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("migrate: %v\nstderr: %s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "is up to date") {
			t.Errorf("migrate printed %q, want it to say the database is up to date", stdout.String())
		}
		if password != "" && strings.Contains(stdout.String()+stderr.String(), ":"+password+"@") {
			t.Errorf("migrate printed the database password: %q", stdout.String()+stderr.String())
		}
	}
}

// TestMigratePostgresUnreachable checks that a database that does not
// answer makes migrate exit unavailable (7), without printing the password.
func TestMigratePostgresUnreachable(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"migrate", "--database", "postgres://deploydb:s3cret@127.0.0.1:1/deploydb"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if code := cli.ExitCode(err); code != cli.ExitUnavailable {
		t.Errorf("migrate on a database that does not answer: exit %d (%v), want %d", code, err, cli.ExitUnavailable)
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "s3cret") {
		t.Errorf("migrate printed the database password: %q", out)
	}
}
