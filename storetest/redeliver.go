package storetest

import (
	"testing"

	"github.com/deploydb/deploydb"
)

func testRedeliver(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		f.publishOne("billing", "1.0.0")
		ds := f.deliveries(deploydb.DeliveryFilter{Hook: HookIntegA})
		if len(ds) != 1 || ds[0].URL != HookIntegA {
			t.Fatalf("deliveries to integ-a = %+v", ds)
		}
		d := ds[0]
		f.attempt(d, 410, true, deploydb.DeliveryFailed, f.now().Time)
		f.tick()
		got, err := f.s.Redeliver(f.ctx, d.ID, alice())
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != deploydb.DeliveryPending || !got.NextAttemptAt.Equal(f.now().Time) || got.Attempts != 1 {
			t.Fatalf("redelivered = %+v, want pending, due now, its attempt kept", got)
		}
		read, err := f.s.FindDelivery(f.ctx, d.ID)
		if err != nil || read.Status != deploydb.DeliveryPending {
			t.Fatalf("FindDelivery = %+v, %v", read, err)
		}
		evs := f.events(0)
		last := evs[len(evs)-1]
		if last.Type != deploydb.EventOperatorRedeliver || last.Actor != alice().Actor || last.Reason != alice().Reason {
			t.Fatalf("last event = %+v, want operator.redeliver by alice with her reason", last)
		}
	})
	t.Run("ErrPending", func(t *testing.T) {
		f := newFixture(t, open)
		f.publishOne("billing", "1.0.0")
		d := f.deliveries(deploydb.DeliveryFilter{})[0]
		_, err := f.s.Redeliver(f.ctx, d.ID, alice())
		wantCode(t, err, deploydb.ECONFLICT)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.Redeliver(f.ctx, 404, alice())
		wantCode(t, err, deploydb.ENOTFOUND)
		_, err = f.s.FindDelivery(f.ctx, 404)
		wantCode(t, err, deploydb.ENOTFOUND)
	})
}
