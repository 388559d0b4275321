// Command deploydb-bench measures DeployDB against the targets of
// DESIGN.md §10 in one run on one machine: the bare store's commit rate
// (the limit), then, on a generated history of 1,000 services × 20
// environments, the real server (bin/deploydb) under a mixed write load, a
// read load, a webhook backlog, and its start-up and memory. It prints a
// table of each figure beside its target and writes the same as JSON.
//
//	make bench                                 # 10k deployments of history
//	go run ./cmd/deploydb-bench -scale 10k,1m  # and 1 million: p50 growth too
//	go run ./cmd/deploydb-bench -scale 10m -cache /var/tmp/deploydb-bench
//
// BENCHMARKS.md explains each figure and keeps the latest results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/deploydb/deploydb/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "deploydb-bench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deploydb-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	var scales, jsonPath, mdPath string
	fs.StringVar(&o.Bin, "bin", "bin/deploydb", "the deploydb binary to measure (make build)")
	fs.StringVar(&scales, "scale", "10k", "deployments of history, comma-separated: 10k, 1m, 10m (10m takes long and about 30 GB of disk)")
	fs.StringVar(&jsonPath, "json", "bench-results/bench.json", "write the report as JSON to this file")
	fs.StringVar(&mdPath, "markdown", "", "also write the figures as Markdown tables to this file (for BENCHMARKS.md)")
	fs.StringVar(&o.Dir, "dir", "", "directory for the run's databases and logs, kept (default: a temporary one, removed)")
	fs.StringVar(&o.Cache, "cache", "", "keep generated histories in this directory and reuse them in later runs")
	fs.BoolVar(&o.LinkCache, "link-cache", false, "serve a history kept in -cache in place (a hard link; needs -dir on the same file system) rather than a copy: the run's writes stay in it, and it is not read back and compared with what was generated (for 10m, about 30 GB)")
	fs.StringVar(&o.Postgres, "postgres", getenv("DEPLOYDB_BENCH_POSTGRES"), "URL of a PostgreSQL database to measure the limit of too (env DEPLOYDB_BENCH_POSTGRES)")
	fs.StringVar(&o.ProfileDir, "cpuprofile", "", "write CPU profiles of the server under each load to this directory (needs /debug/pprof on the server)")
	fs.BoolVar(&o.GenerateOnly, "generate-only", false, "only generate the histories into -cache, for later runs")
	fs.BoolVar(&o.Check, "check", false, "check each history's consistency through the store before serving it (reads it all)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the model and the history")
	fs.DurationVar(&o.LimitTime, "limit-time", 5*time.Second, "how long the single-row commit limit is measured")
	fs.DurationVar(&o.ReadTime, "read-time", 5*time.Second, "how long each read endpoint is measured")
	fs.DurationVar(&o.WriteTime, "write-time", 20*time.Second, "how long the mixed write load is measured")
	fs.DurationVar(&o.HookTime, "hook-time", 10*time.Second, "how long each orchestrator loop driven by the webhooks runs (0: none)")
	fs.DurationVar(&o.DrainTime, "drain-time", 30*time.Second, "the most the webhook outbox is given to drain after each write load")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up before each load, not measured")
	fs.IntVar(&o.Readers, "readers", 2, "concurrent clients of each read endpoint")
	fs.IntVar(&o.Writers, "writers", 16, "concurrent clients of the write load")
	fs.IntVar(&o.Flows, "flows", 256, "flows in progress at once under the write load, at most")
	fs.IntVar(&o.Backlog, "backlog", 5000, "webhook calls queued to measure delivery throughput")
	fs.DurationVar(&o.BacklogTime, "backlog-time", 30*time.Second, "the most the backlog is given to drain (the rate is measured over what arrived)")
	fs.IntVar(&o.Starts, "starts", 3, "start-ups timed besides the server's own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(scales, ",") {
		n, err := bench.ParseScale(s)
		if err != nil {
			return err
		}
		o.Scales = append(o.Scales, n)
	}
	o.Command = "deploydb-bench " + strings.Join(redact(args), " ")
	o.Log = stderr
	r, err := bench.Run(ctx, o)
	if o.GenerateOnly {
		return err
	}
	if r != nil && len(r.Figures) > 0 {
		if werr := r.WriteTable(stdout); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if mdPath != "" {
		if err := os.MkdirAll(filepath.Dir(mdPath), 0o755); err != nil {
			return err
		}
		f, err := os.Create(mdPath)
		if err != nil {
			return err
		}
		if err := errors.Join(r.WriteMarkdown(f), f.Close()); err != nil {
			return err
		}
	}
	if jsonPath != "" {
		if err := r.WriteJSON(jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", jsonPath)
	}
	return nil
}

// redact hides the password of a PostgreSQL URL among the arguments.
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.Contains(a, "postgres://") || strings.Contains(a, "postgresql://") {
			out[i] = "(postgres URL)"
		}
	}
	return out
}
