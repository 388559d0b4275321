package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/storetest"
)

// BenchmarkStore runs the store's benchmarks (storetest.Bench) on a
// database file in a temporary directory, with the settings DeployDB
// serves with (WAL, synchronous=FULL).
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) deploydb.Store {
		s := mustOpen(b, filepath.Join(b.TempDir(), "deploydb.db"))
		s.Now = now
		return s
	})
}
