package storetest

import (
	"maps"
	"slices"
	"testing"

	"github.com/deploydb/deploydb"
)

func testSyncEnvironments(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		type change struct {
			typ deploydb.EventType
			env string
		}
		sync := func(cfg *deploydb.Config, want ...change) {
			t.Helper()
			evs, err := f.s.SyncEnvironments(f.ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			for _, ev := range evs {
				got = append(got, change{ev.Type, ev.Environment})
				if ev.ID == 0 || ev.Actor != "config" {
					t.Errorf("event %+v: want an id and actor config", ev)
				}
				// Global hooks hear of it; an environment gone has none.
				ds := f.deliveries(deploydb.DeliveryFilter{Hook: HookGlobal})
				if !slices.ContainsFunc(ds, func(d *deploydb.Delivery) bool { return d.Event == ev.ID }) {
					t.Errorf("no delivery of %s %s to the global hook", ev.Type, ev.Environment)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("sync announced %v, want %v", got, want)
			}
		}
		cfg := Model()
		var all []change
		for _, env := range slices.Sorted(maps.Keys(cfg.Environments)) {
			all = append(all, change{deploydb.EventEnvironmentCreated, env})
		}
		sync(cfg, all...)
		sync(cfg) // nothing changed

		// A hook change is not a change of the environment.
		changed := Model()
		changed.Environments["staging"].Webhook = deploydb.Webhook{}
		sync(changed)

		changed.Environments["staging"].Description = "staging, now in eu-west"
		delete(changed.Environments, "integ")
		changed.Environments["qa"] = &deploydb.Environment{Ident: "qa"}
		sync(changed,
			change{deploydb.EventEnvironmentCreated, "qa"},
			change{deploydb.EventEnvironmentModified, "staging"},
			change{deploydb.EventEnvironmentDeleted, "integ"})
		sync(changed)

		evs := f.events(0)
		if n := len(evs); n != len(all)+3 {
			t.Errorf("%d events in the log, want %d", n, len(all)+3)
		}
	})
	// A store with a history that never synced (made before environments
	// were kept) has had its environments all along.
	t.Run("History", func(t *testing.T) {
		f := newFixture(t, open)
		f.publishOne("billing", "1.0.0")
		before := len(f.events(0))
		evs, err := f.s.SyncEnvironments(f.ctx, f.cfg)
		if err != nil || len(evs) != 0 || len(f.events(0)) != before {
			t.Fatalf("first sync of a store with a history announced %v (%v)", evs, err)
		}
		changed := Model()
		delete(changed.Environments, "prod")
		evs, err = f.s.SyncEnvironments(f.ctx, changed)
		if err != nil || len(evs) != 1 || evs[0].Type != deploydb.EventEnvironmentDeleted || evs[0].Environment != "prod" {
			t.Fatalf("sync after = %v, %v; want prod deleted", evs, err)
		}
	})
}
