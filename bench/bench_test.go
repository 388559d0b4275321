package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/postgres/pgtest"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/webhook"
)

func TestSamplePercentile(t *testing.T) {
	var s Sample
	if got := s.Percentile(99); got != 0 {
		t.Errorf("empty sample: p99 = %v, want 0", got)
	}
	// 1..100 ms, shuffled.
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(100) {
		s.Add(time.Duration(i+1) * time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {99.5, 100 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}, {1, time.Millisecond}} {
		if got := s.Percentile(c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := s.Mean(); got != 50500*time.Microsecond {
		t.Errorf("mean = %v, want 50.5ms", got)
	}
	// Adding after a percentile sorts again.
	s.Add(time.Second)
	if got := s.Max(); got != time.Second {
		t.Errorf("max after Add = %v, want 1s", got)
	}
	var o Sample
	o.Add(-time.Millisecond) // a lower bound may be negative
	s.Merge(&o)
	if got, n := s.Percentile(0.5), s.Len(); got != -time.Millisecond || n != 102 {
		t.Errorf("after Merge: min %v of %d, want -1ms of 102", got, n)
	}
}

func TestParseScale(t *testing.T) {
	for in, want := range map[string]int{"10k": 10_000, "1m": 1_000_000, "10M": 10_000_000, "2500": 2500, "100k": 100_000} {
		got, err := ParseScale(in)
		if err != nil || got != want {
			t.Errorf("ParseScale(%q) = %d, %v, want %d", in, got, err, want)
		}
		if in == "2500" {
			continue
		}
		if l := ScaleLabel(want); !strings.EqualFold(l, strings.TrimSpace(in)) {
			t.Errorf("ScaleLabel(%d) = %q, want %q", want, l, in)
		}
	}
	for _, in := range []string{"", "k", "-1", "1g", "ten"} {
		if _, err := ParseScale(in); err == nil {
			t.Errorf("ParseScale(%q) did not fail", in)
		}
	}
}

func TestReportTable(t *testing.T) {
	r := &Report{
		Command: "deploydb-bench -scale 10k", Started: time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC),
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, MemoryMB: 24105, Go: "go1.26.8", Kernel: "6.18", Dir: "/tmp/x", FS: "ext4 on /dev/vda (rw)", Revision: "abc", LoadStart: "0.1 0.2 0.3", LoadEnd: "1.0 0.5 0.3"},
		Notes:   []string{"the machine was busy"},
	}
	r.add(Figure{Name: "SQLite single-row commits (the limit)", Value: 1234.4, Unit: "tx/s"})
	r.add(Figure{Name: "Mixed writes", Scale: "10k", Value: 617.2, Unit: "writes/s", Target: "≥ 0.5 × limit", Ratio: 0.5, Result: Pass, Note: "16 clients"})
	r.add(Figure{Name: "GET /api/status p99", Scale: "10k", Value: 12345.678, Unit: "ms", Target: "< 5 ms", Result: Fail})
	r.add(Figure{Name: "Webhook p99", Scale: "10k", Value: 4.25, Unit: "ms", Target: "< 50 ms", Result: Open})
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `DeployDB benchmark, 2026-11-26T05:00:00Z (deploydb-bench -scale 10k)
machine: AMD EPYC, 2 cores, 24105 MB memory, go1.26.8, Linux 6.18
databases in /tmp/x: ext4 on /dev/vda (rw)
revision abc; load average 0.1 0.2 0.3 at the start, 1.0 0.5 0.3 at the end

figure                                 history  value         target         ratio  result
SQLite single-row commits (the limit)  -        1234 tx/s     -                     -
Mixed writes                           10k      617 writes/s  ≥ 0.5 × limit  0.50×  pass
GET /api/status p99                    10k      12,346 ms     < 5 ms                FAIL
Webhook p99                            10k      4.25 ms       < 50 ms               open

notes:
- the machine was busy
- Mixed writes (10k): 16 clients
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Mixed writes | 617 writes/s | ≥ 0.5 × limit | 0.50× | pass |", "History 10k:", "The limit:", "| GET /api/status p99 | 12,346 ms | < 5 ms |  | **FAIL** |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
	path := filepath.Join(t.TempDir(), "results", "bench.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteLimitSettings checks that the limit is measured on a database
// opened as DeployDB's store opens its writer.
func TestSQLiteLimitSettings(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lim, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "limit.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	pragmas := func(db *sql.DB) map[string]string {
		out := map[string]string{}
		for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only", "cache_size"} {
			var v string
			if err := db.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
				t.Fatal(err)
			}
			out[p] = v
		}
		return out
	}
	if diff := cmp.Diff(pragmas(s.DBs()["sqlite_write"]), pragmas(lim)); diff != "" {
		t.Errorf("limit's settings differ from the store writer's (-store +limit):\n%s", diff)
	}
	// BEGIN IMMEDIATE, which no PRAGMA shows: a transaction begun, before
	// any statement, holds the database's write lock.
	locks := func(db *sql.DB, path string) bool {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		conn, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return true
		}
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		return false
	}
	if !locks(s.DBs()["sqlite_write"], filepath.Join(dir, "store.db")) {
		t.Fatal("the store's writer does not begin IMMEDIATE: this test no longer tells")
	}
	if _, err := lim.ExecContext(ctx, "CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	if !locks(lim, filepath.Join(dir, "limit.db")) {
		t.Error("a transaction of the limit does not take the write lock when it begins: not BEGIN IMMEDIATE, as the store's writer")
	}
	l, err := SQLiteLimit(ctx, dir, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if l.Tx == 0 || l.TxPerSec <= 0 || l.RowsPerSec() != 2*l.TxPerSec {
		t.Errorf("limit = %+v", l)
	}
}

func TestPostgresLimit(t *testing.T) {
	u := pgtest.Database(t)
	l, err := PostgresLimit(t.Context(), u, 1, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if l.Tx == 0 || !strings.Contains(l.Settings, "synchronous_commit") {
		t.Errorf("limit = %+v", l)
	}
	// Its schema is gone.
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bench_limit_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d bench_limit_ schemas left behind", n)
	}
}

// TestReceiver checks that the receiver takes a signed call, hands its
// first attempt on once, and counts what it cannot read.
func TestReceiver(t *testing.T) {
	secret := NewHookSecret()
	r, err := NewReceiver(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan Call, 4)
	r.OnCall(func(c Call) { got <- c })
	body, _ := json.Marshal(map[string]any{"event": "deployment.created", "time": "2026-11-26T05:00:00.123Z", "deployment": 42, "artifact": 7,
		"service": "billing-api", "environment": "integ", "version": "9.1.1"})
	send := func(id string, secret string) {
		t.Helper()
		now := time.Now()
		sig, err := webhook.Sign([]string{secret}, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, r.URL+"/deploy/integ/billing-api", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(webhook.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("receiver answered %d", resp.StatusCode)
		}
	}
	send("dd_1", secret)
	send("dd_1", secret) // a retry
	send("dd_2", NewHookSecret())
	c := <-got
	if c.ID != "dd_1" || c.Deployment != 42 || c.Artifact != 7 || c.Environment != "integ" || !c.EventTime.Equal(time.Date(2026, 11, 26, 5, 0, 0, 123e6, time.UTC)) {
		t.Errorf("call = %+v", c)
	}
	if r.Deploys.Load() != 2 || r.Repeats.Load() != 1 || r.Bad.Load() != 1 {
		t.Errorf("deploys %d, repeats %d, bad %d; want 2, 1, 1", r.Deploys.Load(), r.Repeats.Load(), r.Bad.Load())
	}
	select {
	case c := <-got:
		t.Errorf("a second call was handed on: %+v", c)
	default:
	}
}

// TestQueueBacklog checks that the backlog is queued as the API's
// redelivery queues a delivery: pending and due, with its event.
func TestQueueBacklog(t *testing.T) {
	t.Parallel()
	m, err := NewModel(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustConfig(t, m)
	path := filepath.Join(t.TempDir(), "h.db")
	if _, err := Generate(t.Context(), path, cfg, m, HistoryOptions{Deployments: 100, Seed: 5, End: time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, time.March, 3, 9, 0, 0, 0, time.UTC)
	ids, pending, err := QueueBacklog(t.Context(), path, 5, 1<<62, now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.DueDeliveries(t.Context(), now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 5 || len(ids) != 5 || pending != 0 {
		t.Fatalf("%d deliveries due, %d queued, %d pending before; want 5, 5, 0", len(due), len(ids), pending)
	}
	for _, d := range due {
		if !ids[webhook.MessageID(d.ID)] || d.Hook != HookOrchestrator || d.Attempts != 1 {
			t.Errorf("due delivery %+v", d)
		}
	}
	evs, err := s.FindEvents(t.Context(), deploydb.EventFilter{Type: deploydb.EventOperatorRedeliver, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || evs[0].Actor != ActorOps || evs[0].Deployment == 0 {
		t.Errorf("redeliver events: %+v", evs)
	}
}

// TestWarmCache: every statement WarmCache runs names tables and indexes
// a store's schema has, and runs.
func TestWarmCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := WarmCache(t.Context(), path); err != nil {
		t.Fatal(err)
	}
}
