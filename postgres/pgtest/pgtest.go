// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database that DEPLOYDB_TEST_POSTGRES names, dropped when the
// test ends. Without the variable, the tests that ask for one are skipped.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// EnvDatabase is the environment variable that names the test database: a
// postgres:// URL of a database the tests may create schemas in.
const EnvDatabase = "DEPLOYDB_TEST_POSTGRES"

// Example is a value of EnvDatabase for a local server.
const Example = "postgres://deploydb:deploydb@127.0.0.1:5432/deploydb_test?sslmode=disable"

// Database returns the URL of the test database, or skips tb when
// EnvDatabase is not set.
func Database(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvDatabase)
	if u == "" {
		tb.Skip(EnvDatabase + " is not set: set it to the URL of a PostgreSQL database the tests may create schemas in, e.g. " +
			EnvDatabase + "=" + Example)
	}
	return u
}

// Schema creates an empty schema of its own for tb, dropped with all it
// holds when tb ends, and returns a URL of the test database with that
// schema as its search path. Extra query parameters are added to the URL.
// It skips tb when EnvDatabase is not set.
func Schema(tb testing.TB, params ...string) string {
	tb.Helper()
	base := Database(tb)
	db, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("%s: %v", EnvDatabase, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "s_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: %v", EnvDatabase, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}
