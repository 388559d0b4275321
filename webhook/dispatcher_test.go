package webhook_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/webhook"
)

// The artifact every test publishes, and the service that consumes it.
const (
	group     = "com.example.cucumber"
	name      = "cukes"
	sourceURL = "http://example.com/maven/com.example.cucumber/cukes/1.0.1/cukes-1.0.1.jar"
)

// Content types of the 0.3 events (deploydb03-acceptance.md).
const (
	ctCreated   = "application/vnd.deploydb.deploymentcreated.v1+json"
	ctStarted   = "application/vnd.deploydb.deploymentstarted.v1+json"
	ctCompleted = "application/vnd.deploydb.deploymentcompleted.v1+json"
	ctVerified  = "application/vnd.deploydb.deploymentverified.v1+json"
	ctPromotion = "application/vnd.deploydb.promotioncompleted.v1+json"
)

func TestDispatcher(t *testing.T) {
	t.Parallel()

	// A publish and every report fire their event to the environment's hook
	// and then to the global one, with the 0.3 body and content type.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		t0 := time.Date(2025, 3, 4, 5, 6, 7, 89e6, time.UTC)
		s.Now = func() time.Time { return t0 }
		rec := &recorder{}
		env := mustReceiver(t, rec, "env", nil)
		global := mustReceiver(t, rec, "global", nil)
		events := []deploydb.EventType{deploydb.EventDeploymentCreated, deploydb.EventDeploymentStarted, deploydb.EventDeploymentCompleted, deploydb.EventPromotionCompleted}
		cfg := newConfig(hooks(env.URL+"/hook", events...), hooks(global.URL+"/hook", events...))
		// One worker: the calls go out one at a time in outbox order, so
		// the order across the two receivers is observable.
		startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Workers = 1 })

		const ts = "2025-03-04T05:06:07.089Z"
		payload := func(id int, env, status, extra string) string {
			return fmt.Sprintf(`{"id": %d, "artifact": {"id": 1, "group": %q, "name": %q, "version": "1.0.1", "sourceUrl": %q, "createdAt": %q},
				"service": "faas", "environment": %q, "createdAt": %q, "status": %q %s}`, id, group, name, sourceURL, ts, env, ts, status, extra)
		}
		const info = "http://ci.example.com/job/smoke/2"
		// The top-level status is the deployment's as the result left it:
		// its only promotion passed, so SUCCESS (verified). DeployDB 0.3
		// always sent "VERIFIED" there; docs/api.md lists the difference.
		promoted := payload(1, "integ", "SUCCESS", fmt.Sprintf(`, "promotionResult": {"id": 1, "promotion": "smoke", "status": "SUCCESS", "infoUrl": %q, "createdAt": %q}`, info, ts))
		steps := []struct {
			name string
			act  func() error
			want []call
		}{
			{"Publish", func() error { _, _, err := publish(s, cfg, "1.0.1"); return err }, []call{
				{"env", ctCreated, payload(1, "integ", "CREATED", "")},
				{"global", ctCreated, payload(1, "integ", "CREATED", "")},
			}},
			{"Started", func() error { return report(s, cfg, 1, deploydb.DeploymentStarted) }, []call{
				{"env", ctStarted, payload(1, "integ", "STARTED", "")},
				{"global", ctStarted, payload(1, "integ", "STARTED", "")},
			}},
			{"Completed", func() error { return report(s, cfg, 1, deploydb.DeploymentCompleted) }, []call{
				{"env", ctCompleted, payload(1, "integ", "COMPLETED", "")},
				{"global", ctCompleted, payload(1, "integ", "COMPLETED", "")},
			}},
			// The promotion verifies the deployment and activates prod,
			// whose environment has no hooks: only the global one fires.
			{"Promotion", func() error { return promote(s, cfg, 1, deploydb.PromotionSuccess, info) }, []call{
				{"env", ctPromotion, promoted},
				{"global", ctPromotion, promoted},
				{"global", ctCreated, payload(2, "prod", "CREATED", "")},
			}},
		}
		var want []call
		for _, step := range steps {
			if err := step.act(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			for _, c := range step.want {
				c.Body = normalize(t, c.Body)
				want = append(want, c)
			}
			if !poll(func() bool { return rec.count() >= len(want) }) {
				var got []string
				for _, dl := range mustDeliveries(t, s, deploydb.DeliveryFilter{}) {
					got = append(got, fmt.Sprintf("#%d %s %s %s attempts=%d next=%s", dl.ID, dl.EventType, dl.URL, dl.Status, dl.Attempts, dl.NextAttemptAt))
				}
				t.Fatalf("%s: timed out with %d calls of %d; deliveries:\n%s", step.name, rec.count(), len(want), strings.Join(got, "\n"))
			}
			reqs := rec.requests()
			if diff := cmp.Diff(want, calls(t, reqs)); diff != "" {
				t.Fatalf("%s: calls (-want +got):\n%s", step.name, diff)
			}
		}
		ids := map[string]bool{}
		for _, r := range rec.requests() {
			if r.Method != http.MethodPost || r.UserAgent != webhook.UserAgent || !strings.HasPrefix(r.WebhookID, "dd_") {
				t.Errorf("request %s %s User-Agent %q Webhook-Id %q, want POST %q dd_<id>", r.Method, r.Receiver, r.UserAgent, r.WebhookID, webhook.UserAgent)
			}
			ids[r.WebhookID] = true
		}
		if len(ids) != len(want) {
			t.Errorf("%d distinct Webhook-Id for %d deliveries, want one each", len(ids), len(want))
		}
		waitFor(t, "deliveries recorded", func() bool {
			return len(mustDeliveries(t, s, deploydb.DeliveryFilter{Status: deploydb.DeliveryDelivered})) == len(want)
		})
	})

	// Calls about one deployment reach a hook in the order the events
	// happened, even when the receiver holds the first one while the next
	// events are recorded and answers slowly.
	t.Run("Order", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		release := make(chan struct{})
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			time.Sleep(5 * time.Millisecond) // a slow receiver, not a wait
		})
		t.Cleanup(func() { closeOnce(release) })
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated, deploydb.EventDeploymentStarted,
			deploydb.EventDeploymentCompleted, deploydb.EventPromotionCompleted, deploydb.EventDeploymentVerified), nil)
		startDispatcher(t, s, nil)

		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the first call", func() bool { return rec.count() == 1 })
		for _, st := range []deploydb.DeploymentStatus{deploydb.DeploymentStarted, deploydb.DeploymentCompleted} {
			if err := report(s, cfg, 1, st); err != nil {
				t.Fatal(err)
			}
		}
		if err := promote(s, cfg, 1, deploydb.PromotionSuccess, ""); err != nil {
			t.Fatal(err)
		}
		if got := rec.count(); got != 1 {
			t.Fatalf("%d calls while the first is in flight, want 1", got)
		}
		closeOnce(release)
		want := []string{ctCreated, ctStarted, ctCompleted, ctPromotion, ctVerified}
		waitFor(t, "every call", func() bool { return rec.count() == len(want) })
		var got []string
		for _, r := range rec.requests() {
			got = append(got, r.ContentType)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("order of calls (-want +got):\n%s", diff)
		}
	})

	// A delivery waiting for its retry holds back the later deliveries of
	// its (url, deployment), and the store says the next one is due when
	// the retry is, so the dispatcher sleeps until then.
	t.Run("OrderBehindRetry", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.WriteHeader(http.StatusInternalServerError)
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated, deploydb.EventDeploymentStarted), nil)
		startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Schedule = []time.Duration{time.Hour} })
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		head := waitAttempts(t, s, 1, 1)
		if err := report(s, cfg, 1, deploydb.DeploymentStarted); err != nil {
			t.Fatal(err)
		}
		next, err := s.NextDeliveryAt(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !next.Equal(head.NextAttemptAt.Time) {
			t.Errorf("NextDeliveryAt = %v, want the head's retry at %v", next, head.NextAttemptAt)
		}
		due, err := s.DueDeliveries(t.Context(), time.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 0 {
			t.Errorf("DueDeliveries returned %d deliveries, want none before the head's retry", len(due))
		}
		if got := rec.count(); got != 1 {
			t.Errorf("receiver got %d calls, want 1", got)
		}
	})

	// A receiver that fails twice gets a third call; every attempt is
	// recorded, with the same Webhook-Id, and counted in the metrics.
	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, _ *http.Request, n int) {
			if n <= 2 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "thanks")
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		reg := prometheus.NewRegistry()
		startDispatcherWith(t, webhook.NewDispatcher(s, testLogger(t), reg), nil)
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		dl := waitStatus(t, s, 1, deploydb.DeliveryDelivered)
		if dl.Attempts != 3 {
			t.Errorf("delivery has %d attempts, want 3", dl.Attempts)
		}
		as, err := s.FindAttempts(t.Context(), dl.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []attempt
		for _, a := range as {
			got = append(got, attempt{a.StatusCode, a.Response, a.Error})
			if a.Latency <= 0 {
				t.Errorf("attempt %d: latency %v, want > 0", a.ID, a.Latency)
			}
		}
		want := []attempt{{500, "boom\n", ""}, {500, "boom\n", ""}, {200, "thanks", ""}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		for _, r := range rec.requests() {
			if r.WebhookID != webhook.MessageID(dl.ID) {
				t.Errorf("Webhook-Id %q, want %q on every retry", r.WebhookID, webhook.MessageID(dl.ID))
			}
		}
		metrics := gather(t, reg)
		for outcome, want := range map[string]float64{"retry": 2, "delivered": 1} {
			if got := metrics[`deploydb_webhook_attempts_total{outcome="`+outcome+`"}`]; got != want {
				t.Errorf("attempts_total{outcome=%q} = %v, want %v", outcome, got, want)
			}
		}
		if got := metrics["deploydb_webhook_attempt_duration_seconds_count"]; got != 3 {
			t.Errorf("attempt_duration_seconds count = %v, want 3", got)
		}
		if got := metrics["deploydb_webhook_delivery_delay_seconds_count"]; got != 1 {
			t.Errorf("delivery_delay_seconds count = %v, want 1 (the first attempt only)", got)
		}
		// A second dispatcher on the same registry shares the metrics.
		_ = webhook.NewDispatcher(s, nil, reg)
	})

	// The delivery delay is the time from the commit that queued a call
	// to its first attempt, on the clocks of the store and the dispatcher.
	t.Run("DeliveryDelay", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
		s.Now = func() time.Time { return t0 }
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", nil)
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		startDispatcherWith(t, webhook.NewDispatcher(s, testLogger(t), reg), func(d *webhook.Dispatcher) {
			d.Now = func() time.Time { return t0.Add(90 * time.Second) }
		})
		waitStatus(t, s, 1, deploydb.DeliveryDelivered)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == "deploydb_webhook_delivery_delay_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				n, sum = h.GetSampleCount(), h.GetSampleSum()
			}
		}
		if n != 1 || sum != 90 {
			t.Errorf("delivery delay: %d samples summing to %v s, want 1 of 90 s", n, sum)
		}
	})

	// Once the schedule is used up and GiveUpAfter has passed since the
	// first attempt, the delivery fails.
	t.Run("GiveUp", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.WriteHeader(http.StatusBadGateway)
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		startDispatcher(t, s, func(d *webhook.Dispatcher) {
			d.Schedule = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}
			d.GiveUpAfter = time.Nanosecond
		})
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		dl := waitStatus(t, s, 1, deploydb.DeliveryFailed)
		if dl.Attempts != 3 || rec.count() != 3 {
			t.Errorf("%d attempts recorded, %d calls received, want 3 (first + one per scheduled retry)", dl.Attempts, rec.count())
		}
		if dl.LastError != "HTTP 502" {
			t.Errorf("last error %q, want %q", dl.LastError, "HTTP 502")
		}
	})

	// 410 Gone stops the delivery after one attempt.
	t.Run("Gone", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.WriteHeader(http.StatusGone)
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		startDispatcher(t, s, nil)
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		dl := waitStatus(t, s, 1, deploydb.DeliveryFailed)
		as, err := s.FindAttempts(t.Context(), dl.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].StatusCode != http.StatusGone || dl.Attempts != 1 || rec.count() != 1 {
			t.Errorf("%d attempts (%d recorded), %d calls, want one 410", dl.Attempts, len(as), rec.count())
		}
	})

	// 429 and 503 with Retry-After set the next attempt, capped at an hour;
	// without it the schedule applies.
	t.Run("RetryAfter", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			code       int
			retryAfter func(now time.Time) string
			want       time.Duration // after the attempt started
		}{
			{"Seconds", http.StatusTooManyRequests, func(time.Time) string { return "120" }, 120 * time.Second},
			{"SecondsCapped", http.StatusTooManyRequests, func(time.Time) string { return "86400" }, webhook.MaxRetryAfter},
			{"Date", http.StatusServiceUnavailable, func(now time.Time) string { return now.Add(10 * time.Minute).UTC().Format(http.TimeFormat) }, 10 * time.Minute},
			{"DateCapped", http.StatusServiceUnavailable, func(now time.Time) string { return now.Add(3 * time.Hour).UTC().Format(http.TimeFormat) }, webhook.MaxRetryAfter},
			{"Missing", http.StatusTooManyRequests, func(time.Time) string { return "" }, 30 * time.Minute},
			{"IgnoredOn500", http.StatusInternalServerError, func(time.Time) string { return "120" }, 30 * time.Minute},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
				srv := mustReceiver(t, &recorder{}, "env", func(w http.ResponseWriter, _ *http.Request, _ int) {
					if v := tt.retryAfter(time.Now()); v != "" {
						w.Header().Set("Retry-After", v)
					}
					w.WriteHeader(tt.code)
				})
				cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
				startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Schedule = []time.Duration{30 * time.Minute} })
				if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
					t.Fatal(err)
				}
				dl := waitAttempts(t, s, 1, 1)
				as, err := s.FindAttempts(t.Context(), dl.ID)
				if err != nil {
					t.Fatal(err)
				}
				if dl.Status != deploydb.DeliveryPending {
					t.Errorf("status %s, want pending", dl.Status)
				}
				// HTTP dates have whole seconds; the store keeps milliseconds.
				got := dl.NextAttemptAt.Sub(as[0].CreatedAt.Time)
				if got < tt.want-time.Second || got > tt.want+time.Second {
					t.Errorf("next attempt %v after the attempt, want %v", got, tt.want)
				}
			})
		}
	})

	// A 3xx is a failed attempt: redirects are not followed.
	t.Run("ErrRedirect", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(w http.ResponseWriter, r *http.Request, _ int) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		})
		cfg := newConfig(hooks(srv.URL+"/hook", deploydb.EventDeploymentCreated), nil)
		startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Schedule = []time.Duration{time.Hour} })
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		dl := waitAttempts(t, s, 1, 1)
		if dl.Status != deploydb.DeliveryPending || !strings.Contains(dl.LastError, "redirect") {
			t.Errorf("status %s, last error %q, want pending and a redirect error", dl.Status, dl.LastError)
		}
		if rec.count() != 1 {
			t.Errorf("receiver got %d calls, want 1 (the redirect not followed)", rec.count())
		}
	})

	// Connection errors and timeouts are recorded and retried, and neither
	// the record nor the log shows the hook's query string.
	t.Run("ErrTransport", func(t *testing.T) {
		t.Parallel()
		hanging := mustReceiver(t, &recorder{}, "hanging", func(_ http.ResponseWriter, r *http.Request, _ int) {
			<-r.Context().Done()
		})
		tests := []struct {
			name, url, wantErr string
			timeout            time.Duration
		}{
			// Nothing listens on port 1 (tcpmux) of the loopback interface.
			{"Refused", "http://127.0.0.1:1/hook?token=s3cret", "connection refused", 10 * time.Second},
			{"Timeout", hanging.URL + "/hook?token=s3cret", "Timeout exceeded", 50 * time.Millisecond},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
				var logs lockedBuffer
				d := webhook.NewDispatcher(s, slog.New(slog.NewTextHandler(&logs, nil)), nil)
				d.HTTPClient = &http.Client{Timeout: tt.timeout}
				d.Schedule = []time.Duration{time.Hour}
				startDispatcherWith(t, d, nil)
				cfg := newConfig(hooks(tt.url, deploydb.EventDeploymentCreated), nil)
				if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
					t.Fatal(err)
				}
				dl := waitAttempts(t, s, 1, 1)
				as, err := s.FindAttempts(t.Context(), dl.ID)
				if err != nil {
					t.Fatal(err)
				}
				if dl.Status != deploydb.DeliveryPending || as[0].StatusCode != 0 || !strings.Contains(as[0].Error, tt.wantErr) {
					t.Errorf("status %s, attempt %d %q, want pending, no status, error with %q", dl.Status, as[0].StatusCode, as[0].Error, tt.wantErr)
				}
				waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "level=WARN") })
				log := logs.String()
				if strings.Contains(as[0].Error, "s3cret") || strings.Contains(dl.LastError, "s3cret") || strings.Contains(log, "s3cret") {
					t.Errorf("the query string leaked: error %q, log %q", as[0].Error, log)
				}
				for _, want := range []string{fmt.Sprintf("delivery=%d", dl.ID), "url=" + strings.TrimSuffix(tt.url, "?token=s3cret"), "status=0", "error="} {
					if !strings.Contains(log, want) {
						t.Errorf("log %q lacks %q", log, want)
					}
				}
			})
		}
	})

	// A call owed when the process stops is made after a restart.
	t.Run("CrashSafety", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "deploydb.db")
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", nil)
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		s1, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := publish(s1, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := mustOpen(t, path)
		startDispatcher(t, s2, nil)
		waitStatus(t, s2, 1, deploydb.DeliveryDelivered)
		if rec.count() != 1 || rec.requests()[0].ContentType != ctCreated {
			t.Errorf("receiver got %d calls, want the one deployment.created", rec.count())
		}
	})

	// Shutdown cuts an attempt short without recording it: the delivery
	// stays pending with no attempt used, and the next dispatcher sends it
	// again with the same Webhook-Id.
	t.Run("Shutdown", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		srv := mustReceiver(t, rec, "env", func(_ http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				<-r.Context().Done()
			}
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		reg := prometheus.NewRegistry()
		stop := startDispatcherWith(t, webhook.NewDispatcher(s, testLogger(t), reg), func(d *webhook.Dispatcher) {
			d.DrainTimeout = 50 * time.Millisecond
		})
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the call", func() bool { return rec.count() == 1 })
		stop() // fails the test unless Run returns promptly after the drain
		dls := mustDeliveries(t, s, deploydb.DeliveryFilter{})
		if len(dls) != 1 || dls[0].Status != deploydb.DeliveryPending || dls[0].Attempts != 0 {
			t.Fatalf("deliveries %+v, want one pending with no attempt", dls)
		}
		if as, err := s.FindAttempts(t.Context(), dls[0].ID); err != nil || len(as) != 0 {
			t.Fatalf("attempts %v, %v, want none recorded", as, err)
		}
		if got := gather(t, reg)[`deploydb_webhook_attempts_total{outcome="interrupted"}`]; got != 1 {
			t.Errorf("attempts_total{outcome=interrupted} = %v, want 1", got)
		}

		startDispatcher(t, s, nil)
		dl := waitStatus(t, s, 1, deploydb.DeliveryDelivered)
		if dl.Attempts != 1 {
			t.Errorf("%d attempts, want 1", dl.Attempts)
		}
		reqs := rec.requests()
		if len(reqs) != 2 || reqs[0].WebhookID != reqs[1].WebhookID {
			t.Errorf("calls %+v, want the same delivery twice", reqs)
		}
	})

	t.Run("ShutdownDrains", func(t *testing.T) {
		// A call in flight when the dispatcher is told to stop may finish
		// within DrainTimeout; its answer is recorded, so the receiver does
		// not get it again after the restart.
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		rec := &recorder{}
		release := make(chan struct{})
		srv := mustReceiver(t, rec, "env", func(_ http.ResponseWriter, r *http.Request, n int) {
			<-release
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		d := webhook.NewDispatcher(s, testLogger(t), nil)
		d.DrainTimeout = 20 * time.Second
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx) }()
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the call", func() bool { return rec.count() == 1 })
		cancel()
		close(release)
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
		dls := mustDeliveries(t, s, deploydb.DeliveryFilter{})
		if len(dls) != 1 || dls[0].Status != deploydb.DeliveryDelivered || dls[0].Attempts != 1 {
			t.Fatalf("deliveries %+v, want one delivered in one attempt", dls)
		}
	})

	t.Run("RecordFails", func(t *testing.T) {
		// While the database refuses to record attempts, a delivery is
		// sent again only after a pause (its claim lapses), not in a tight
		// loop, and is delivered once recording works again.
		t.Parallel()
		path := filepath.Join(t.TempDir(), "deploydb.db")
		s := mustOpen(t, path)
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`CREATE TRIGGER refuse_attempts BEFORE INSERT ON webhook_attempts BEGIN SELECT RAISE(ABORT, 'injected: disk says no'); END`); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		var mu sync.Mutex
		var times []time.Time
		srv := mustReceiver(t, rec, "env", func(http.ResponseWriter, *http.Request, int) {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		})
		cfg := newConfig(hooks(srv.URL, deploydb.EventDeploymentCreated), nil)
		const pause = 300 * time.Millisecond
		startDispatcherWith(t, webhook.NewDispatcher(s, testLogger(t), nil), func(d *webhook.Dispatcher) {
			d.Schedule = []time.Duration{pause}
			d.Lease = pause
			d.PollInterval = 10 * time.Millisecond
		})
		if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a second call", func() bool { return rec.count() >= 2 })
		mu.Lock()
		gap := times[1].Sub(times[0])
		mu.Unlock()
		// The lease runs from the claim, which comes before the call is
		// made (by a few ms, more on a loaded machine); a tight loop would
		// call again within the 10 ms poll.
		if gap < pause/2 {
			t.Fatalf("sent again %v after an unrecorded attempt, want a pause of about %v", gap, pause)
		}
		if _, err := raw.Exec(`DROP TRIGGER refuse_attempts`); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, 1, deploydb.DeliveryDelivered)
	})

	t.Run("ErrInvalidSettings", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
		d := webhook.NewDispatcher(s, nil, nil)
		d.Jitter = 2
		d.Workers = -1
		err := d.Run(t.Context())
		if deploydb.ErrorCode(err) != deploydb.EINVALID || !strings.Contains(err.Error(), "Jitter") || !strings.Contains(err.Error(), "Workers") {
			t.Errorf("Run = %v, want EINVALID naming Jitter and Workers", err)
		}
	})
}

// call is one webhook call as a receiver saw it; Body is normalized JSON.
type call struct {
	Receiver    string
	ContentType string
	Body        string
}

// attempt is the part of a recorded attempt a test can predict.
type attempt struct {
	StatusCode int
	Response   string
	Error      string
}

func calls(t *testing.T, reqs []request) []call {
	t.Helper()
	out := make([]call, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, call{r.Receiver, r.ContentType, normalize(t, string(r.Body))})
	}
	return out
}

// normalize re-encodes a JSON text with sorted keys and no spaces, so that
// two texts compare equal when they hold the same JSON value.
func normalize(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newConfig returns a config with one service, faas, consuming the test
// artifact through integ (promotion smoke; hooks envHooks) then prod (no
// promotion, no hooks), and the global hooks.
func newConfig(envHooks, globalHooks deploydb.Webhook) *deploydb.Config {
	return &deploydb.Config{
		Checksum: "test",
		Services: map[string]*deploydb.Service{
			"faas": {Ident: "faas", Artifacts: []string{group + ":" + name}, Pipelines: []string{"main"}},
		},
		Environments: map[string]*deploydb.Environment{
			"integ": {Ident: "integ", Webhook: envHooks},
			"prod":  {Ident: "prod"},
		},
		Pipelines: map[string]*deploydb.Pipeline{
			"main": {Ident: "main", Environments: []deploydb.PipelineStage{
				{Environment: "integ", Promotions: []string{"smoke"}},
				{Environment: "prod"},
			}},
		},
		Promotions: map[string]*deploydb.Promotion{
			"smoke": {Ident: "smoke", Type: deploydb.PromotionTypeBasic},
		},
		Webhook: globalHooks,
	}
}

// hooks returns a Webhook that sends events to url.
func hooks(url string, events ...deploydb.EventType) deploydb.Webhook {
	w := deploydb.Webhook{}
	for _, e := range events {
		w[e] = []deploydb.Hook{{URL: url}}
	}
	return w
}

func publish(s deploydb.Store, cfg *deploydb.Config, version string) (*deploydb.Artifact, []*deploydb.Flow, error) {
	return s.PublishArtifact(context.Background(), cfg, deploydb.Artifact{Group: group, Name: name, Version: version, SourceURL: sourceURL}, "ci")
}

func report(s deploydb.Store, cfg *deploydb.Config, dep int64, st deploydb.DeploymentStatus) error {
	_, err := s.ReportDeployment(context.Background(), cfg, deploydb.DeploymentReport{Deployment: dep, Status: st, Actor: "orchestrator"})
	return err
}

func promote(s deploydb.Store, cfg *deploydb.Config, dep int64, st deploydb.PromotionStatus, info string) error {
	_, err := s.ReportPromotion(context.Background(), cfg, deploydb.PromotionReport{Deployment: dep, Promotion: "smoke", Status: st, InfoURL: info, Actor: "tests"})
	return err
}

// mustOpen opens a SQLite store at path, closed when the test ends.
func mustOpen(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startDispatcher runs a dispatcher of s with test settings (a 10 ms retry
// schedule, no jitter), changed by configure, until the test ends.
func startDispatcher(tb testing.TB, s deploydb.Store, configure func(*webhook.Dispatcher)) (stop func()) {
	tb.Helper()
	return startDispatcherWith(tb, webhook.NewDispatcher(s, testLogger(tb), nil), configure)
}

// startDispatcherWith runs d until stop is called or the test ends. stop
// fails the test unless Run returns nil promptly. d gets a 10 ms retry
// schedule and no jitter unless its Schedule was changed already.
func startDispatcherWith(tb testing.TB, d *webhook.Dispatcher, configure func(*webhook.Dispatcher)) (stop func()) {
	tb.Helper()
	if slices.Equal(d.Schedule, webhook.DefaultSchedule()) {
		d.Schedule = []time.Duration{10 * time.Millisecond}
	}
	d.Jitter = 0
	if configure != nil {
		configure(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					tb.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				tb.Errorf("Run did not return within 10 s of the cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !poll(cond) {
		tb.Fatalf("timed out waiting for %s", what)
	}
}

// poll reports whether cond holds within 30 s (generous: a loaded machine with fsync is slow).
func poll(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func mustDeliveries(tb testing.TB, s deploydb.Store, f deploydb.DeliveryFilter) []*deploydb.Delivery {
	tb.Helper()
	dls, err := s.FindDeliveries(context.Background(), f)
	if err != nil {
		tb.Fatal(err)
	}
	return dls
}

// waitDelivery waits until the oldest delivery of deployment dep satisfies
// cond, and returns it.
func waitDelivery(tb testing.TB, s deploydb.Store, dep int64, what string, cond func(*deploydb.Delivery) bool) *deploydb.Delivery {
	tb.Helper()
	var dl *deploydb.Delivery
	waitFor(tb, what, func() bool {
		dls := mustDeliveries(tb, s, deploydb.DeliveryFilter{Deployment: dep})
		if len(dls) == 0 {
			return false
		}
		dl = dls[len(dls)-1]
		return cond(dl)
	})
	return dl
}

func waitStatus(tb testing.TB, s deploydb.Store, dep int64, status string) *deploydb.Delivery {
	tb.Helper()
	return waitDelivery(tb, s, dep, "a "+status+" delivery", func(dl *deploydb.Delivery) bool { return dl.Status == status })
}

func waitAttempts(tb testing.TB, s deploydb.Store, dep int64, n int) *deploydb.Delivery {
	tb.Helper()
	return waitDelivery(tb, s, dep, fmt.Sprintf("%d attempts", n), func(dl *deploydb.Delivery) bool { return dl.Attempts >= n })
}

// gather returns the values of the counters and histogram counts of reg,
// keyed by name{labels}.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// request is one request a receiver got.
type request struct {
	Receiver    string
	Method      string
	ContentType string
	UserAgent   string
	WebhookID   string
	Body        []byte
	// Path is the path and query the request was sent to.
	Path   string
	Header http.Header
}

// recorder keeps the requests of one or more receivers, in arrival order.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// mustReceiver starts a webhook receiver that records each request in rec
// under name and then answers with respond (200 when nil); n counts the
// receiver's requests from 1. It is closed when the test ends.
func mustReceiver(tb testing.TB, rec *recorder, name string, respond func(w http.ResponseWriter, r *http.Request, n int)) *httptest.Server {
	tb.Helper()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		n++
		k := n
		rec.reqs = append(rec.reqs, request{
			Receiver:    name,
			Method:      r.Method,
			ContentType: r.Header.Get("Content-Type"),
			UserAgent:   r.Header.Get("User-Agent"),
			WebhookID:   r.Header.Get("Webhook-Id"),
			Body:        body,
			Path:        r.URL.RequestURI(),
			Header:      r.Header.Clone(),
		})
		rec.mu.Unlock()
		if respond != nil {
			respond(w, r, k)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
