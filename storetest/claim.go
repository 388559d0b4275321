package storetest

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// testClaims checks that a dispatcher's claim keeps a delivery from every
// other one until the lease lapses or the claim is released, and keeps
// what is queued behind it behind it.
func testClaims(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		now := f.tick().Time
		f.report(id, started)
		c, s := f.owed(id, deploydb.EventDeploymentCreated), f.owed(id, deploydb.EventDeploymentStarted)
		const lease = time.Minute

		got, err := f.s.ClaimDeliveries(f.ctx, now, 2, lease)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(ds []*deploydb.Delivery) []int64 {
			var out []int64
			for _, d := range ds {
				out = append(out, d.ID)
			}
			return out
		}
		if want := []int64{c[HookIntegA].ID, c[HookIntegB].ID}; !slices.Equal(ids(got), want) {
			t.Fatalf("claimed %v, want the two oldest heads %v", ids(got), want)
		}
		// Claimed: not due for anyone else; what follows them to their
		// hooks stays behind them.
		f.due(now, 100, c[HookGlobal])
		f.due(now.Add(lease-time.Millisecond), 100, c[HookGlobal])
		again, err := f.s.ClaimDeliveries(f.ctx, now, 100, lease)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{c[HookGlobal].ID}; !slices.Equal(ids(again), want) {
			t.Fatalf("second claim %v, want only the unclaimed head %v", ids(again), want)
		}
		// The lease lapses: due again, for whoever comes.
		f.due(now.Add(lease), 100, c[HookIntegA], c[HookIntegB], c[HookGlobal])
		// Released: due at once.
		if err := f.s.ReleaseDeliveries(f.ctx, []int64{c[HookIntegA].ID}); err != nil {
			t.Fatal(err)
		}
		f.due(now, 100, c[HookIntegA])
		// Delivered, the next of its queue is due.
		f.delivered(c[HookIntegA])
		f.due(now, 100, s[HookIntegA])
	})
	t.Run("Concurrent", func(t *testing.T) {
		// Dispatchers claiming at once never get one delivery twice.
		f := newFixture(t, open)
		for i := range 5 {
			f.publish("shared", "1.0."+string(rune('0'+i)))
		}
		now := f.tick().Add(time.Hour)
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := f.s.ClaimDeliveries(f.ctx, now, 2, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, d := range got {
						seen[d.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) == 0 {
			t.Fatal("nothing claimed")
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %d claimed %d times", id, n)
			}
		}
	})
	t.Run("ClaimAndRecord", func(t *testing.T) {
		// Dispatchers claiming while others record their attempts: each
		// call is attempted once, and every queue is worked through in
		// order. A claim that read the outbox before an attempt was
		// recorded and took the delivery after its claim ended would
		// attempt it twice.
		f := newFixture(t, open)
		for i := range 6 {
			f.publish("shared", "2.0."+strconv.Itoa(i))
		}
		now := f.tick().Add(time.Hour)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for idle := 0; idle < 3; {
					got, err := f.s.ClaimDeliveries(f.ctx, now, 3, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						// Others may hold the heads that block the
						// rest: look again a few times.
						idle++
						time.Sleep(time.Millisecond)
						continue
					}
					idle = 0
					for _, d := range got {
						err := f.s.RecordAttempt(f.ctx, deploydb.AttemptResult{
							Attempt: deploydb.Attempt{Delivery: d.ID, StatusCode: 204, CreatedAt: deploydb.NewTime(now)},
							Done:    true, Status: deploydb.DeliveryDelivered, NextAttemptAt: now,
						})
						if err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		all, err := f.s.FindDeliveries(f.ctx, deploydb.DeliveryFilter{Page: deploydb.Page{Size: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 0 {
			t.Fatal("no deliveries")
		}
		for _, d := range all {
			if d.Status != deploydb.DeliveryDelivered || d.Attempts != 1 {
				t.Errorf("delivery %d (%s to %s): %s after %d attempts, want delivered after 1", d.ID, d.EventType, d.Hook, d.Status, d.Attempts)
			}
		}
	})
	t.Run("NextAfterClaimed", func(t *testing.T) {
		// A claimed head is being attempted: it is due again only when
		// its claim lapses, unless an attempt at it is recorded first.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		now := f.tick().Time
		c := f.owed(fl.Deployments[0].ID, deploydb.EventDeploymentCreated)
		got, err := f.s.ClaimDeliveries(f.ctx, now, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c) {
			t.Fatalf("claimed %d deliveries, want the %d heads", len(got), len(c))
		}
		f.nextDeliveryAt(now.Add(time.Minute).Truncate(time.Millisecond))
		// A failed attempt at one makes it due at its retry.
		retry := now.Add(30 * time.Second).Truncate(time.Millisecond)
		f.attempt(c[HookIntegA], 500, false, "", retry)
		f.nextDeliveryAt(retry)
		// Delivered, each of the others: none is due.
		for _, d := range got {
			if d.ID != c[HookIntegA].ID {
				f.delivered(d)
			}
		}
		f.nextDeliveryAt(retry)
	})
}
