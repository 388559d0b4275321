package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestWebhookDeliveries: a delivery the receiver refused with 410 is listed
// as failed and an operator redelivers it; the receiver then gets it.
func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/integ/deploy" && calls.Add(1) == 1 {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	srv := launch(t, writeConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), map[string]string{"HOOK": recv.URL})
	c := api{t: t, url: srv.URL}
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)

	var failed []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(failed) == 0 && time.Now().Before(deadline) {
		c.call("GET", "/api/webhook-deliveries?status=failed&hook="+url.QueryEscape("${env:HOOK}/integ/deploy"), nil, 200, &failed)
		time.Sleep(10 * time.Millisecond)
	}
	if len(failed) != 1 || failed[0]["eventType"] != "deployment.created" || !strings.Contains(fmt.Sprint(failed[0]["lastError"]), "410") {
		t.Fatalf("failed deliveries = %v", failed)
	}
	id := int64(failed[0]["id"].(float64))
	path := fmt.Sprintf("/api/webhook-deliveries/%d", id)

	c.call("POST", path+"/redeliver", map[string]any{}, 422, nil) // a reason is required
	var again map[string]any
	c.call("POST", path+"/redeliver", map[string]any{"reason": "Jenkins job restored"}, 200, &again)
	if again["status"] != "pending" {
		t.Fatalf("redelivered = %v", again)
	}
	var one map[string]any
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.call("GET", path, nil, 200, &one)
		if one["status"] == "delivered" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	hist, _ := one["history"].([]any)
	if one["status"] != "delivered" || len(hist) != 2 || calls.Load() != 2 {
		t.Fatalf("after redelivery: %v (receiver got %d calls)", one, calls.Load())
	}
	c.call("GET", "/api/webhook-deliveries/999999", nil, 404, nil)

	var evs []deploydb.Event
	c.call("GET", "/api/events?type=operator.redeliver", nil, 200, &evs)
	if len(evs) != 1 || evs[0].Reason != "Jenkins job restored" || evs[0].Actor != "anonymous" {
		t.Fatalf("redeliver audit events = %+v", evs)
	}
}
