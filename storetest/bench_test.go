package storetest_test

import (
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/storetest"
)

// TestBenchConfig checks the benchmark model's configuration: every
// reference resolves, pipelines go through 3 to 5 distinct environments,
// and the hook object renders on every event it fires on.
func TestBenchConfig(t *testing.T) {
	shape := storetest.BenchShape{Services: 1000, Environments: 20}
	cfg := storetest.BenchConfig(shape, true)
	if len(cfg.Services) != shape.Services || len(cfg.Environments) != shape.Environments {
		t.Fatalf("%d services and %d environments, want %d and %d", len(cfg.Services), len(cfg.Environments), shape.Services, shape.Environments)
	}
	for id, p := range cfg.Pipelines {
		seen := map[string]bool{}
		for _, st := range p.Environments {
			if cfg.Environments[st.Environment] == nil || seen[st.Environment] {
				t.Errorf("pipeline %s: environment %s unknown or twice", id, st.Environment)
			}
			seen[st.Environment] = true
			for _, pr := range st.Promotions {
				if cfg.Promotions[pr] == nil {
					t.Errorf("pipeline %s: unknown promotion %s", id, pr)
				}
			}
		}
		if n := len(p.Environments); n < 3 || n > 5 {
			t.Errorf("pipeline %s has %d environments, want 3 to 5", id, n)
		}
	}
	for id, s := range cfg.Services {
		if cfg.Pipelines[s.Pipeline()] == nil {
			t.Errorf("service %s: unknown pipeline %q", id, s.Pipeline())
		}
		if got := cfg.ServicesConsuming("com.bench", id); len(got) != 1 {
			t.Errorf("com.bench:%s is consumed by %d services, want 1", id, len(got))
		}
	}
	h, ok := cfg.Hook("jenkins-deploy")
	if !ok || h.IsBare() {
		t.Fatal("no hook object jenkins-deploy")
	}
	for _, ev := range h.Events {
		x := deploydb.SampleHookContext(ev)
		for _, tm := range append(h.Templates.Headers, h.Templates.URL, h.Templates.Body) {
			if _, err := deploydb.RenderHookTemplate(tm, x); err != nil {
				t.Errorf("%s on %s: %v", tm.Name(), ev, err)
			}
		}
	}
	if quiet := storetest.BenchConfig(shape, false); len(quiet.Webhook) != 0 || len(quiet.Hooks("e19", deploydb.EventDeploymentCreated)) != 0 {
		t.Error("the configuration without hooks has hooks")
	}
}
