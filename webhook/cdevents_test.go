package webhook_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
	"github.com/deploydb/deploydb/webhook"
)

// A hook of format cdevents hears, as CDEvents in CloudEvents binary mode,
// the environments the config announces and every completed deployment:
// service.deployed the first time in an environment, service.upgraded
// after, service.rolledback for a rollback. Every event sent is valid
// against the CDEvents 0.5.1 schemas.
func TestCDEventsHook(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	recv := mustReceiver(t, rec, "cd", nil)
	cfg := loadHooks(t, "hooks:\n  - name: cd\n    url: "+recv.URL+"/events\n    format: cdevents\n", nil)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = cfg.Hook })
	ctx := t.Context()

	if _, err := s.SyncEnvironments(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	complete := func(dep int64) {
		t.Helper()
		for _, st := range []deploydb.DeploymentStatus{deploydb.DeploymentStarted, deploydb.DeploymentCompleted} {
			if err := report(s, cfg, dep, st); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := publish(s, cfg, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	complete(1) // integ: the first version there
	if err := promote(s, cfg, 1, deploydb.PromotionSuccess, ""); err != nil {
		t.Fatal(err)
	}
	complete(2) // prod
	if _, _, err := publish(s, cfg, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	complete(3) // integ again: an upgrade
	if err := report(s, cfg, 3, deploydb.DeploymentFailed); err == nil {
		// COMPLETED cannot go back to FAILED by a report; the promotion fails it.
		t.Fatal("a completed deployment accepted FAILED")
	}
	if err := promote(s, cfg, 3, deploydb.PromotionFailed, ""); err != nil {
		t.Fatal(err)
	}
	rb, err := s.Rollback(ctx, cfg, 3, deploydb.Action{Actor: "ops", Reason: "2.0.0 fails smoke"})
	if err != nil {
		t.Fatal(err)
	}
	complete(rb.ID)

	type seen struct {
		typ, subject, env, artifact string
	}
	want := []seen{
		{cdevents.EnvironmentCreated, "integ", "", ""},
		{cdevents.EnvironmentCreated, "prod", "", ""},
		{cdevents.ServiceDeployed, "faas", "integ", "pkg:maven/com.example.cucumber/cukes@1.0.0"},
		{cdevents.ServiceDeployed, "faas", "prod", "pkg:maven/com.example.cucumber/cukes@1.0.0"},
		{cdevents.ServiceUpgraded, "faas", "integ", "pkg:maven/com.example.cucumber/cukes@2.0.0"},
		{cdevents.ServiceRolledback, "faas", "integ", "pkg:maven/com.example.cucumber/cukes@1.0.0"},
	}
	waitFor(t, "every CDEvent", func() bool { return rec.count() >= len(want) })
	reqs := rec.requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d calls, want %d", len(reqs), len(want))
	}
	got := map[seen]bool{}
	for _, r := range reqs {
		if err := cdevents.Validate(r.Body); err != nil {
			t.Errorf("invalid CDEvent %s: %v", r.Body, err)
		}
		var doc struct {
			Context struct{ ID, Source, Type, Timestamp string }
			Subject struct {
				ID      string
				Content struct {
					Environment struct{ ID string }
					ArtifactID  string
				}
			}
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatal(err)
		}
		h := r.Header
		if h.Get("Ce-Specversion") != "1.0" || h.Get("Ce-Type") != doc.Context.Type || h.Get("Ce-Id") != doc.Context.ID ||
			h.Get("Ce-Source") != doc.Context.Source || h.Get("Ce-Time") != doc.Context.Timestamp || r.ContentType != "application/json" {
			t.Errorf("CloudEvents headers %v do not carry the context %+v", h, doc.Context)
		}
		got[seen{doc.Context.Type, doc.Subject.ID, doc.Subject.Content.Environment.ID, doc.Subject.Content.ArtifactID}] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing %+v; got %v", w, got)
		}
	}
	// What DeployDB sends, it reads back.
	for _, r := range reqs {
		if r.Header.Get("Ce-Type") != cdevents.ServiceDeployed {
			continue
		}
		in, err := cdevents.Parse(r.Body)
		if err != nil {
			t.Fatalf("Parse of an emitted service.deployed: %v", err)
		}
		if in.Service != "faas" || in.Artifact.Group != group || in.Artifact.Version != "1.0.0" || in.Deployment == 0 {
			t.Errorf("read back %+v", in)
		}
	}
	if webhook.CDEventID(7) != "deploydb-event-7" {
		t.Error("CDEventID changed: consumers dedupe on it")
	}
}
