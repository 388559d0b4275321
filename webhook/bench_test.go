package webhook_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/webhook"
)

// benchHooks are hook objects of the examples, with the environment they
// read and a (service, environment) they fire for on deployment.created.
var benchHooks = []struct {
	example, hook, service, environment string
	env                                 map[string]string
}{
	// URL and header templates, the 0.3 body.
	{"jenkins", "jenkins-deploy", "billing", "staging", map[string]string{
		"JENKINS_URL": "http://jenkins.example.test", "JENKINS_JOB_TOKEN": "deploy-from-deploydb",
		"JENKINS_USER": "deploydb", "JENKINS_API_TOKEN": "11f3c5e7a9b1d3f5e7a9b1d3f5e7a9b1d3"}},
	// A body template.
	{"rundeck", "rundeck-deploy", "inventory", "qa", map[string]string{
		"RUNDECK_URL": "http://rundeck.example.test", "RUNDECK_JOB_ID": "3f2a8c1e-7b4d-4e0a-9c55-0d6b1f0e8a21", "RUNDECK_TOKEN": "Xq3v9RkLmN2pT8wZ",
		"AUDIT_URL": "http://audit.example.test/deploydb", "DEPLOYDB_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
}

// benchChange is a deployment.created of svc in env.
func benchChange(svc, env string) webhook.Change {
	at := deploydb.NewTime(time.Date(2026, time.March, 1, 10, 0, 0, 0, time.UTC))
	d := &deploydb.Deployment{ID: 4242, Flow: 1717, Service: svc, Environment: env, Status: deploydb.DeploymentCreated, Reason: deploydb.ReasonPipeline,
		Artifact:   deploydb.Artifact{ID: 99, Group: "com.example", Name: svc, Version: "2.14.0+build.7", SourceURL: "https://repo.example.com/com/example/" + svc + "/2.14.0/" + svc + "-2.14.0.jar", CreatedAt: at},
		Promotions: []deploydb.PromotionResult{}, CreatedAt: at, UpdatedAt: at}
	ev := &deploydb.Event{ID: 123456, Type: deploydb.EventDeploymentCreated, Service: svc, Environment: env, Artifact: 99, Flow: 1717, Deployment: 4242,
		Status: string(deploydb.DeploymentCreated), Actor: "ci", CreatedAt: at}
	return webhook.Change{Event: ev, Deployment: d, Flow: &deploydb.Flow{ID: 1717, Artifact: d.Artifact, Service: svc}}
}

// BenchmarkNewRequest renders the call of a queued delivery for a hook
// object, as the dispatcher does before each attempt: URL, headers and
// body from the event kept with the delivery.
func BenchmarkNewRequest(b *testing.B) {
	for _, bh := range benchHooks {
		b.Run(bh.example, func(b *testing.B) {
			cfg, err := config.LoadWith(filepath.Join("..", "examples", bh.example), config.Options{Getenv: func(k string) string { return bh.env[k] }})
			if err != nil {
				b.Fatal(err)
			}
			h, ok := cfg.Hook(bh.hook)
			if !ok || h.IsBare() {
				b.Fatalf("examples/%s has no hook object %s", bh.example, bh.hook)
			}
			ds, err := webhook.Deliveries(cfg, benchChange(bh.service, bh.environment))
			if err != nil {
				b.Fatal(err)
			}
			var dl *deploydb.Delivery
			for i := range ds {
				if ds[i].Hook == bh.hook {
					dl = &ds[i]
				}
			}
			if dl == nil {
				b.Fatalf("no delivery for %s", bh.hook)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := webhook.NewRequest(dl, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeliveries makes the deliveries a change owes, as a write does
// inside its transaction: the 0.3 payload, and the event context kept for
// hook objects.
func BenchmarkDeliveries(b *testing.B) {
	for _, bh := range benchHooks {
		b.Run(bh.example, func(b *testing.B) {
			cfg, err := config.LoadWith(filepath.Join("..", "examples", bh.example), config.Options{Getenv: func(k string) string { return bh.env[k] }})
			if err != nil {
				b.Fatal(err)
			}
			c := benchChange(bh.service, bh.environment)
			b.ReportAllocs()
			for b.Loop() {
				ds, err := webhook.Deliveries(cfg, c)
				if err != nil || len(ds) == 0 {
					b.Fatalf("%d deliveries, %v", len(ds), err)
				}
			}
		})
	}
}
