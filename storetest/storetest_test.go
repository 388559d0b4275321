package storetest_test

import (
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/storetest"
)

// TestModel checks that the suite's configuration is one the config loader
// would accept: every reference resolves and every hook is for a known event.
func TestModel(t *testing.T) {
	cfg := storetest.Model()
	known := map[deploydb.EventType]bool{}
	for _, e := range deploydb.WebhookEvents {
		known[e] = true
	}
	checkHooks := func(where string, w deploydb.Webhook) {
		for e, hooks := range w {
			if !known[e] {
				t.Errorf("%s: hooks for unknown event %s", where, e)
			}
			for _, h := range hooks {
				if h.URL == "" {
					t.Errorf("%s: %s hook without a URL", where, e)
				}
			}
		}
	}
	checkPromotions := func(where string, ps []string) {
		for _, p := range ps {
			if cfg.Promotions[p] == nil {
				t.Errorf("%s: unknown promotion %s", where, p)
			}
		}
	}
	for id, s := range cfg.Services {
		if s.Ident != id {
			t.Errorf("service %s has ident %s", id, s.Ident)
		}
		if cfg.Pipelines[s.Pipeline()] == nil {
			t.Errorf("service %s: unknown pipeline %q", id, s.Pipeline())
		}
		checkPromotions("service "+id, s.Promotions)
	}
	for id, p := range cfg.Promotions {
		if p.Ident != id {
			t.Errorf("promotion %s has ident %s", id, p.Ident)
		}
		if p.Type == deploydb.PromotionTypeSoak {
			s, _ := p.Attributes["duration"].(string)
			if d, err := time.ParseDuration(s); err != nil || d != storetest.SoakTime {
				t.Errorf("promotion %s: duration %q, want %s", id, s, storetest.SoakTime)
			}
		}
	}
	for id, p := range cfg.Pipelines {
		for _, st := range p.Environments {
			if cfg.Environments[st.Environment] == nil {
				t.Errorf("pipeline %s: unknown environment %s", id, st.Environment)
			}
			checkPromotions("pipeline "+id, st.Promotions)
		}
	}
	for id, e := range cfg.Environments {
		checkHooks("environment "+id, e.Webhook)
	}
	checkHooks("global", cfg.Webhook)
	if len(cfg.ServicesConsuming(storetest.Group, "orphan")) != 0 {
		t.Error("a service consumes orphan")
	}
	if a := storetest.Artifact("billing", "1.0.0"); a.Validate() != nil {
		t.Errorf("Artifact: %v", a.Validate())
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	c := storetest.NewClock(start)
	if !c.Now().Equal(start) {
		t.Errorf("now %s, want %s", c.Now(), start)
	}
	if got := c.Advance(time.Second); !got.Equal(start.Add(time.Second)) || !c.Now().Equal(got) {
		t.Errorf("after Advance: %s and now %s, want %s", got, c.Now(), start.Add(time.Second))
	}
}
