package postgres_test

import (
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres/pgtest"
	"github.com/deploydb/deploydb/storetest"
)

// BenchmarkStore runs the store's benchmarks (storetest.Bench), each store
// in a schema of its own of the DEPLOYDB_TEST_POSTGRES database; skipped
// without it.
func BenchmarkStore(b *testing.B) {
	pgtest.Database(b)
	storetest.Bench(b, func(b *testing.B, now func() time.Time) deploydb.Store {
		s := mustOpen(b, pgtest.Schema(b))
		s.Now = now
		return s
	})
}
