package web_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/bench"
	"github.com/deploydb/deploydb/config"
)

// BenchmarkPages loads each page over HTTP as a browser does, its whole
// HTML, at 1,000 services × 20 environments (DESIGN.md §9: under 100 ms),
// over the benchmark's model (pipelines of 3 to 5) and a generated history
// of 20,000 deployments: enough to fill the matrix's cells; a page reads
// the matrix the API keeps and at most 200 deployments.
func BenchmarkPages(b *testing.B) {
	dir := b.TempDir()
	m, err := bench.NewModel(bench.MaxServices, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Write(filepath.Join(dir, "config"), bench.NewTokens()); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{bench.EnvReceiver: "http://127.0.0.1:9", bench.EnvHookSecret: bench.NewHookSecret()}
	cfg, err := config.LoadWith(filepath.Join(dir, "config"), config.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Auth = &deploydb.Auth{} // no tokens: anonymous on loopback reads
	db := filepath.Join(dir, "deploydb.db")
	if _, err := bench.Generate(context.Background(), db, cfg, m, bench.HistoryOptions{Deployments: 20000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	site := serveSite(b, cfg, db)
	service, last := m.Services[0].Name, m.Environments[len(m.Environments)-1].Name
	for _, p := range []struct{ name, path string }{
		{"Matrix", "/"},
		{"MatrixFiltered", "/?service=" + service},
		{"Service", "/services/" + service},
		{"Environment", "/environments/" + last},
		{"Approvals", "/approvals"},
	} {
		b.Run(p.name, func(b *testing.B) {
			var n int64
			for b.Loop() {
				resp, err := http.Get(site.URL + p.path)
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
