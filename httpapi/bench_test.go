package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/storetest"
)

// BenchmarkAPI serves the reads DESIGN.md §10 sets targets for through the
// API's handler (routing, authentication, the store, JSON encoding), over
// a SQLite store holding storetest's benchmark model (1,000 services × 20
// environments): GET /api/status, and GET /api/deployments/{id} with ids
// across the history. No network: the response is counted and dropped.
func BenchmarkAPI(b *testing.B) {
	store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "deploydb.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	clock := storetest.NewClock(time.Date(2026, time.March, 1, 10, 0, 0, 0, time.UTC))
	store.Now = clock.Now
	m := storetest.NewBenchModel(b, store, clock, storetest.DefaultBenchShape())
	srv := httpapi.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), store, func() *deploydb.Config { return m.Config })

	b.Run("Status", func(b *testing.B) {
		// The first request builds the matrix (StatusRebuild); the
		// loop measures the ones that serve it as kept.
		serveOnce(b, srv, "/api/status")
		benchGet(b, srv, func(int) string { return "/api/status" })
	})
	b.Run("StatusRebuild", func(b *testing.B) {
		// A lock changes every cell of its environment: the whole
		// matrix is read and encoded again.
		ctx := context.Background()
		a := deploydb.Action{Actor: "ops", Reason: "benchmark"}
		env := m.Config.Pipelines[m.Config.Services[m.Done[0]].Pipeline()].Environments[0].Environment
		i := 0
		benchGet(b, srv, func(int) string {
			b.StopTimer()
			var err error
			if i%2 == 0 {
				_, err = store.LockEnvironment(ctx, m.Config, env, a)
			} else {
				err = store.UnlockEnvironment(ctx, m.Config, env, a)
			}
			if err != nil {
				b.Fatal(err)
			}
			i++
			b.StartTimer()
			return "/api/status"
		})
		if i%2 == 1 {
			if err := store.UnlockEnvironment(ctx, m.Config, env, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("StatusAfterWrite", func(b *testing.B) {
		// A new version of one service is published, then cancelled,
		// between two requests (not timed): the kept matrix reads that
		// service's rows again, not the whole matrix.
		ctx := context.Background()
		a := deploydb.Action{Actor: "ci", Reason: "benchmark"}
		i := 0
		benchGet(b, srv, func(int) string {
			b.StopTimer()
			svc := m.Done[i%len(m.Done)]
			m.Clock.Advance(time.Second)
			_, flows, err := store.PublishArtifact(ctx, m.Config, storetest.BenchArtifact(svc, "9.0."+strconv.Itoa(i)), "ci")
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range flows {
				if _, err := store.CancelFlow(ctx, m.Config, f.ID, a); err != nil {
					b.Fatal(err)
				}
			}
			i++
			b.StartTimer()
			return "/api/status"
		})
	})
	b.Run("Deployment", func(b *testing.B) {
		benchGet(b, srv, func(i int) string {
			return "/api/deployments/" + strconv.FormatInt(m.Deployments[i%len(m.Deployments)], 10)
		})
	})
}

// serveOnce serves GET path and checks it is 200.
func serveOnce(b *testing.B, srv http.Handler, path string) {
	r := httptest.NewRequest("GET", path, nil)
	r.Host = "127.0.0.1"
	w := discardWriter{header: http.Header{}}
	srv.ServeHTTP(&w, r)
	if w.status != http.StatusOK {
		b.Fatalf("GET %s: %d", path, w.status)
	}
}

// benchGet serves GET path(i) in the i-th iteration and checks it is 200.
// It reports the response size.
func benchGet(b *testing.B, srv http.Handler, path func(i int) string) {
	b.ReportAllocs()
	var w discardWriter
	i := 0
	for b.Loop() {
		r := httptest.NewRequest("GET", path(i), nil)
		r.Host = "127.0.0.1" // without tokens the API answers loopback only
		w = discardWriter{header: http.Header{}}
		srv.ServeHTTP(&w, r)
		if w.status != http.StatusOK {
			b.Fatalf("GET %s: %d", path(i), w.status)
		}
		i++
	}
	b.ReportMetric(float64(w.n), "body-bytes")
}

// discardWriter is a ResponseWriter that keeps the status and the size of
// the body, not the body.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}
