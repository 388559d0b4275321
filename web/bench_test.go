package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/bench"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/web"
)

// benchSite is a site over the benchmark's model (1,000 services × 20
// environments, pipelines of 3 to 5) and a generated history, built once.
var benchSite = struct {
	once sync.Once
	url  string
	err  error
	srv  *httptest.Server
	// service and env name a service and an environment of the model.
	service, env string
}{}

// BenchmarkPages loads each page over HTTP as a browser does, its whole
// HTML, at 1,000 services × 20 environments (DESIGN.md §9: under 100 ms).
// The history is 20,000 deployments: enough to fill the matrix's cells; a
// page reads the matrix the API keeps and at most 200 deployments.
func BenchmarkPages(b *testing.B) {
	benchSite.once.Do(func() {
		dir := b.TempDir()
		m, err := bench.NewModel(bench.MaxServices, 1)
		if err != nil {
			benchSite.err = err
			return
		}
		if err := m.Write(filepath.Join(dir, "config"), bench.NewTokens()); err != nil {
			benchSite.err = err
			return
		}
		env := map[string]string{bench.EnvReceiver: "http://127.0.0.1:9", bench.EnvHookSecret: bench.NewHookSecret()}
		cfg, err := config.LoadWith(filepath.Join(dir, "config"), config.Options{Getenv: func(k string) string { return env[k] }})
		if err != nil {
			benchSite.err = err
			return
		}
		benchSite.service, benchSite.env = m.Services[0].Name, m.Environments[len(m.Environments)-1].Name
		cfg.Auth = &deploydb.Auth{} // no tokens: anonymous on loopback reads
		db := filepath.Join(dir, "deploydb.db")
		if _, err := bench.Generate(context.Background(), db, cfg, m, bench.HistoryOptions{Deployments: 20000, Seed: 1}); err != nil {
			benchSite.err = err
			return
		}
		store, err := sqlite.Open(context.Background(), db)
		if err != nil {
			benchSite.err = err
			return
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		current := func() *deploydb.Config { return cfg }
		api := httpapi.NewServer(logger, store, current)
		web.New(logger, api, store, current).Mount()
		benchSite.srv = httptest.NewServer(api)
		benchSite.url = benchSite.srv.URL
	})
	if benchSite.err != nil {
		b.Fatal(benchSite.err)
	}
	for _, p := range []struct{ name, path string }{
		{"Matrix", "/"},
		{"MatrixFiltered", "/?service=" + benchSite.service},
		{"Service", "/services/" + benchSite.service},
		{"Environment", "/environments/" + benchSite.env},
		{"Approvals", "/approvals"},
	} {
		b.Run(p.name, func(b *testing.B) {
			var n int64
			for b.Loop() {
				resp, err := http.Get(benchSite.url + p.path)
				if err != nil {
					b.Fatal(err)
				}
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("GET %s = %d (%v)", p.path, resp.StatusCode, err)
				}
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
