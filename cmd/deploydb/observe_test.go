package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/postgres/pgtest"
)

// scrape reads the server's /metrics (the Prometheus text format) into a
// map keyed by name{label="value",...}, labels sorted.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, b)
	}
	return parseExposition(t, string(b))
}

// parseExposition parses the samples of the Prometheus text format.
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series := line[:i]
		name, rest, hasLabels := strings.Cut(series, "{")
		if !hasLabels {
			out[name] = v
			continue
		}
		var labels []string
		rest = strings.TrimSuffix(rest, "}")
		for rest != "" {
			k, after, ok := strings.Cut(rest, `="`)
			if !ok {
				t.Fatalf("metrics line %q: bad labels", line)
			}
			var val strings.Builder
			j := 0
			for ; j < len(after) && after[j] != '"'; j++ {
				if after[j] == '\\' && j+1 < len(after) {
					j++
					if after[j] == 'n' {
						val.WriteByte('\n')
						continue
					}
				}
				val.WriteByte(after[j])
			}
			labels = append(labels, fmt.Sprintf("%s=%q", k, val.String()))
			rest = strings.TrimPrefix(after[min(j+1, len(after)):], ",")
		}
		sort.Strings(labels)
		out[name+"{"+strings.Join(labels, ",")+"}"] = v
	}
	return out
}

// metricsPoll scrapes until cond holds of the metrics, or fails the test
// after 15 s with what it last saw.
func metricsPoll(t *testing.T, base, what string, cond func(m map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := scrape(t, base)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s; last scrape:\n%s", what, deploydbMetrics(m))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deploydbMetrics lists the deploydb_ series of m, for failure messages.
func deploydbMetrics(m map[string]float64) string {
	var lines []string
	for k, v := range m {
		if strings.HasPrefix(k, "deploydb_") && !strings.Contains(k, "_bucket") {
			lines = append(lines, fmt.Sprintf("%s %v", k, v))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func wantMetric(t *testing.T, m map[string]float64, key string, want float64) {
	t.Helper()
	if got, ok := m[key]; !ok || got != want {
		t.Errorf("%s = %v (present %t), want %v", key, got, ok, want)
	}
}

// TestMetrics scrapes the real /metrics of a server on SQLite after real
// requests, webhook deliveries to a receiver that fails then recovers, and
// config reloads.
func TestMetrics(t *testing.T) {
	t.Parallel()
	testMetrics(t, filepath.Join(t.TempDir(), "deploydb.db"), "sqlite_write", "sqlite_read")
}

// TestMetricsPostgres is TestMetrics on PostgreSQL.
func TestMetricsPostgres(t *testing.T) {
	t.Parallel()
	testMetrics(t, pgtest.Schema(t), "postgres")
}

func testMetrics(t *testing.T, database string, pools ...string) {
	var healthy atomic.Bool
	var calls atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	dir := writeConfig(t)
	srv := launch(t, dir, database, map[string]string{"HOOK": recv.URL})
	c := api{t: t, url: srv.URL}

	m := scrape(t, srv.URL)
	wantMetric(t, m, "deploydb_webhook_outbox_pending", 0)
	wantMetric(t, m, "deploydb_webhook_outbox_oldest_pending_age_seconds", 0)
	wantMetric(t, m, `deploydb_config_reloads_total{result="ok"}`, 0)
	wantMetric(t, m, `deploydb_config_reloads_total{result="failed"}`, 0)
	wantMetric(t, m, "deploydb_config_last_reload_successful", 1)
	if at := m["deploydb_config_last_reload_success_timestamp_seconds"]; at < float64(time.Now().Add(-time.Minute).Unix()) || at > float64(time.Now().Unix()+1) {
		t.Errorf("deploydb_config_last_reload_success_timestamp_seconds = %v, want the start, about now", at)
	}
	for _, pool := range pools {
		if _, ok := m[`go_sql_max_open_connections{db_name="`+pool+`"}`]; !ok {
			t.Errorf("no go_sql_max_open_connections of pool %s", pool)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// A publish: one request, its events, two calls owed (integ's hook
	// and the global one) to a receiver that is down.
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "http://x/1.0.0"}, 201, &art)
	m = scrape(t, srv.URL)
	wantMetric(t, m, `deploydb_http_requests_total{code="201",route="POST /api/artifacts"}`, 1)
	wantMetric(t, m, `deploydb_http_request_duration_seconds_count{route="POST /api/artifacts"}`, 1)
	wantMetric(t, m, `deploydb_events_total{type="artifact.published"}`, 1)
	wantMetric(t, m, `deploydb_events_total{type="deployment.created"}`, 1)
	m = metricsPoll(t, srv.URL, "a failed attempt at each call", func(m map[string]float64) bool {
		return m[`deploydb_webhook_attempts_total{outcome="retry"}`] >= 2
	})
	wantMetric(t, m, "deploydb_webhook_outbox_pending", 2)
	if age := m["deploydb_webhook_outbox_oldest_pending_age_seconds"]; age <= 0 || age > 60 {
		t.Errorf("deploydb_webhook_outbox_oldest_pending_age_seconds = %v, want the time since the publish", age)
	}
	wantMetric(t, m, "deploydb_webhook_delivery_delay_seconds_count", 2)

	// The receiver recovers: the retries deliver, the outbox empties.
	healthy.Store(true)
	m = metricsPoll(t, srv.URL, "an empty outbox", func(m map[string]float64) bool {
		return m["deploydb_webhook_outbox_pending"] == 0
	})
	wantMetric(t, m, `deploydb_webhook_attempts_total{outcome="delivered"}`, 2)
	wantMetric(t, m, "deploydb_webhook_outbox_oldest_pending_age_seconds", 0)
	wantMetric(t, m, "deploydb_webhook_delivery_delay_seconds_count", 2) // the first attempts only
	if n := m["deploydb_webhook_attempt_duration_seconds_count"]; n < 4 || n != float64(calls.Load()) {
		t.Errorf("deploydb_webhook_attempt_duration_seconds_count = %v, want one per call the receiver got (%d)", n, calls.Load())
	}

	// A report: the route is the pattern, whatever the id.
	var flows []deploydb.Flow
	c.call("GET", fmt.Sprintf("/api/flows?artifact=%d", art.ID), nil, 200, &flows)
	id := flows[0].Deployments[0].ID
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", id), map[string]any{"status": "STARTED"}, 200, nil)
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", id), map[string]any{"status": "STARTED"}, 409, nil)
	c.call("GET", "/api/deployments/999999", nil, 404, nil)
	m = scrape(t, srv.URL)
	wantMetric(t, m, `deploydb_http_requests_total{code="200",route="PATCH /api/deployments/{id}"}`, 1)
	wantMetric(t, m, `deploydb_http_requests_total{code="409",route="PATCH /api/deployments/{id}"}`, 1)
	wantMetric(t, m, `deploydb_http_requests_total{code="404",route="GET /api/deployments/{id}"}`, 1)
	wantMetric(t, m, `deploydb_events_total{type="deployment.started"}`, 1)
	for k := range m {
		if strings.Contains(k, "999999") || strings.Contains(k, fmt.Sprintf("/api/deployments/%d", id)) {
			t.Errorf("a path made a series: %s", k)
		}
	}

	// Config reloads, good and refused.
	c.call("POST", "/api/config/reload", nil, 200, nil)
	m = scrape(t, srv.URL)
	wantMetric(t, m, `deploydb_config_reloads_total{result="ok"}`, 1)
	if err := os.WriteFile(filepath.Join(dir, "services", "billing.yml"), []byte("pipelines: [nowhere]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.call("POST", "/api/config/reload", nil, 422, nil)
	m = scrape(t, srv.URL)
	wantMetric(t, m, `deploydb_config_reloads_total{result="ok"}`, 1)
	wantMetric(t, m, `deploydb_config_reloads_total{result="failed"}`, 1)
	wantMetric(t, m, "deploydb_config_last_reload_successful", 0)
	wantMetric(t, m, `deploydb_http_requests_total{code="422",route="POST /api/config/reload"}`, 1)
}

// TestJSONLogs runs the server with JSON logs and breaks its database under
// it (a table is dropped): the 500 it answers names the request in its
// X-Request-Id header and problem body, and the JSON log line of the
// internal error carries the same id. Every line of the log is JSON.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	database := filepath.Join(t.TempDir(), "deploydb.db")
	srv := launchArgs(t, writeConfig(t), database, map[string]string{"HOOK": "http://127.0.0.1:9"},
		"--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")

	db, err := sql.Open("sqlite", "file:"+database+"?_pragma=busy_timeout(10000)") // the server writes too
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/artifacts", strings.NewReader(`{"group":"com.example","name":"billing","version":"1.0.0","sourceUrl":"http://x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpapi.HeaderIdempotencyKey, "publish-1")
	req.Header.Set(httpapi.HeaderRequestID, "ci-job-42-publish")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST /api/artifacts = %d, want 500: %s", resp.StatusCode, body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	const id = "ci-job-42-publish"
	if got := resp.Header.Get(httpapi.HeaderRequestID); got != id || p.RequestID != id {
		t.Errorf("X-Request-Id %q, problem requestId %q; want the caller's %q in both", got, p.RequestID, id)
	}

	var internal, request map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for request == nil && time.Now().Before(deadline) {
		internal, request = nil, nil
		for line := range strings.Lines(srv.logs.String()) {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			switch {
			case l["msg"] == "internal error":
				internal = l
			case l["msg"] == "request" && l["route"] == "POST /api/artifacts":
				request = l
			}
		}
		if request == nil {
			time.Sleep(10 * time.Millisecond) // the line of the request is written after its answer
		}
	}
	if internal == nil || internal["level"] != "ERROR" || internal["request_id"] != id || !strings.Contains(fmt.Sprint(internal["err"]), "idempotency_keys") {
		t.Errorf("internal error log line %v: want level ERROR, request_id %q and the error\nlogs:\n%s", internal, id, srv.logs)
	}
	if request == nil || request["request_id"] != id || request["status"] != float64(500) || request["level"] != "DEBUG" {
		t.Errorf("request log line %v: want request_id %q, status 500, level DEBUG", request, id)
	}
	if bytes.Contains(body, []byte("idempotency_keys")) {
		t.Errorf("the 500 shows the internal error: %s", body)
	}
}
