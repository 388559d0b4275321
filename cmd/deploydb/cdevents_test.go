package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deploydb/deploydb"
)

// conformance reads a CDEvents 0.5.1 conformance example as a document to
// change.
func conformance(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "cdevents", "testdata", "conformance", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// sub returns the object at path in doc.
func sub(doc map[string]any, path ...string) map[string]any {
	for _, p := range path {
		doc = doc[p].(map[string]any)
	}
	return doc
}

// postCDEvent posts doc with content type ct and returns the status and body.
func postCDEvent(t *testing.T, base, ct string, doc any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/api/cdevents", bytes.NewReader(b))
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// cdeventsConfig writes the configuration the conformance examples fit:
// service mySubject123 of oci:myapp, through test123 (promotion smoke),
// then dev.
func cdeventsConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/mySubject123.yml": "artifacts: [\"oci:myapp\"]\npipelines: [main]\n",
		"environments/test123.yml":  "description: where the conformance examples deploy\n",
		"environments/dev.yml":      "description: next\n",
		"pipelines/main.yml":        "environments:\n  test123: {promotions: [smoke]}\n  dev: {}\n",
		"promotions/smoke.yml":      "type: basic\n",
	})
	return dir
}

// TestCDEventsIn drives a flow with CDEvents only, from the conformance
// examples of the specification: a published artifact starts the flow, a
// service.deployed completes the deployment, a finished test suite is the
// promotion result, a CloudEvent in structured mode completes the next
// environment. What maps to nothing is answered 422 with why, and nothing
// changes.
func TestCDEventsIn(t *testing.T) {
	t.Parallel()
	srv := launch(t, cdeventsConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	c := api{t: t, url: srv.URL}
	const version = "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
	want := func(doc any, ct string, status int, contains string) map[string]any {
		t.Helper()
		code, body := postCDEvent(t, srv.URL, ct, doc)
		if code != status || !strings.Contains(string(body), contains) {
			t.Fatalf("POST /api/cdevents = %d %s, want %d with %q", code, body, status, contains)
		}
		var out map[string]any
		_ = json.Unmarshal(body, &out)
		return out
	}
	// The events of the flows: the server announces its environments
	// (environment.created) on its own time.
	events := func() int {
		var evs []deploydb.Event
		c.call("GET", "/api/events?limit=1000", nil, 200, &evs)
		n := 0
		for _, ev := range evs {
			if !strings.HasPrefix(string(ev.Type), "environment.") {
				n++
			}
		}
		return n
	}

	// The example as it is names no source URL for the artifact.
	before := events()
	want(conformance(t, "artifact_published"), "application/json", 422, "customData.sourceUrl")
	// Types DeployDB does not take in, and events that map to nothing.
	want(conformance(t, "incident_detected"), "application/json", 422, "artifact.published")
	want(conformance(t, "service_deployed"), "application/json", 422, "no deployment of oci:myapp")
	want(conformance(t, "testsuiterun_finished"), "application/json", 422, `test \"Auth TestSuite\" is not a promotion`)
	want(map[string]any{"context": map[string]any{}}, "application/json", 422, "context")
	want(conformance(t, "service_deployed"), "text/plain", 400, "application/cloudevents+json")
	if n := events(); n != before {
		t.Fatalf("refused events changed the log: %d events, then %d", before, n)
	}

	published := conformance(t, "artifact_published")
	sub(published, "subject")["id"] = "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427?download_url=https%3A%2F%2Fregistry.example%2Fmyapp"
	out := want(published, "application/json", 200, `"recorded":"artifact"`)
	art := out["artifact"].(map[string]any)
	if art["group"] != "oci" || art["name"] != "myapp" || art["version"] != version || art["sourceUrl"] != "https://registry.example/myapp" {
		t.Fatalf("artifact = %v", art)
	}
	// Sent again, the same event (source and id) gets the same answer; the
	// same artifact in another event finds it recorded.
	want(published, "application/json", 200, `"recorded":"artifact"`)
	sub(published, "context")["id"] = "another-event"
	want(published, "application/json", 200, `"recorded":"unchanged"`)

	flow := c.flowOf(int64(art["id"].(float64)))
	first := flow.Deployments[0]
	if first.Environment != "test123" || first.Status != deploydb.DeploymentCreated {
		t.Fatalf("first deployment = %+v", first)
	}
	out = want(conformance(t, "service_deployed"), "application/json", 200, `"recorded":"deployment"`)
	if d := out["deployment"].(map[string]any); d["status"] != "COMPLETED" || int64(d["id"].(float64)) != first.ID {
		t.Fatalf("deployment after service.deployed = %v", d)
	}
	want(conformance(t, "service_deployed"), "application/json", 200, `"recorded":"deployment"`) // the same event
	again := conformance(t, "service_deployed")
	sub(again, "context")["id"] = "deployed-again"
	want(again, "application/json", 200, `"recorded":"unchanged"`)

	suite := conformance(t, "testsuiterun_finished")
	content := sub(suite, "subject", "content")
	content["outcome"] = "success"
	sub(content, "environment")["id"] = "test123"
	sub(content, "testSuite")["name"] = "smoke"
	sub(content, "testSuite")["uri"] = "https://testkube.example/runs/1"
	out = want(suite, "application/json", 200, `"recorded":"promotionResult"`)
	if r := out["promotionResult"].(map[string]any); r["status"] != "SUCCESS" || r["infoUrl"] != "https://testkube.example/runs/1" {
		t.Fatalf("promotion result = %v", r)
	}
	want(suite, "application/json", 200, `"recorded":"promotionResult"`) // the same event again
	flow = c.flowOf(flow.Artifact.ID)
	if flow.Deployments[0].Status != deploydb.DeploymentSuccess || flow.Deployments[1].Status != deploydb.DeploymentCreated {
		t.Fatalf("after the test suite: %+v", flow.Deployments)
	}

	// A CloudEvent in structured mode, its data the CDEvent.
	upgraded := conformance(t, "service_upgraded")
	sub(upgraded, "subject", "content", "environment")["id"] = "dev"
	ce := map[string]any{"specversion": "1.0", "id": "ce-1", "source": "/argocd", "type": "dev.cdevents.service.upgraded.0.3.0", "datacontenttype": "application/json", "data": upgraded}
	want(ce, "application/cloudevents+json", 200, `"recorded":"deployment"`)
	flow = c.flowOf(flow.Artifact.ID)
	if flow.Status != deploydb.FlowSuccess || flow.Deployments[1].Status != deploydb.DeploymentSuccess {
		t.Fatalf("after service.upgraded in dev: %+v", flow)
	}
	var evs []deploydb.Event
	c.call("GET", "/api/events?type=promotion.completed", nil, 200, &evs)
	if len(evs) != 1 {
		t.Fatalf("promotion.completed events = %+v, want one: the repeated event changed nothing", evs)
	}
	c.call("GET", "/api/events?type=deployment.completed", nil, 200, &evs)
	if len(evs) != 2 || evs[0].Actor != "anonymous" {
		t.Fatalf("deployment.completed events = %+v", evs)
	}
}

// The same deployment reported by many CDEvents at once (several senders,
// or retries racing): one completes it, every other is told it is
// unchanged, none fails.
func TestCDEventsInConcurrent(t *testing.T) {
	t.Parallel()
	srv := launch(t, cdeventsConfig(t), filepath.Join(t.TempDir(), "deploydb.db"), nil)
	published := conformance(t, "artifact_published")
	sub(published, "subject")["id"] = "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
	published["customData"] = map[string]any{"sourceUrl": "https://registry.example/myapp"}
	if code, body := postCDEvent(t, srv.URL, "application/json", published); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	const n = 12
	results := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := conformance(t, "service_deployed")
			sub(doc, "context")["id"] = fmt.Sprintf("sender-%d", i)
			code, body := postCDEvent(t, srv.URL, "application/json", doc)
			var out struct{ Recorded string }
			_ = json.Unmarshal(body, &out)
			results <- fmt.Sprintf("%d %s", code, out.Recorded)
		}()
	}
	wg.Wait()
	close(results)
	got := map[string]int{}
	for r := range results {
		got[r]++
	}
	if got["200 deployment"] != 1 || got["200 unchanged"] != n-1 {
		t.Fatalf("answers %v, want one deployment and %d unchanged", got, n-1)
	}
}
