package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

func testIdempotency(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.FindIdempotent(f.ctx, "k1")
		wantCode(t, err, deploydb.ENOTFOUND)
		r := deploydb.IdempotentResponse{Key: "k1", RequestHash: "h1", Status: 201, Location: "/api/artifacts/1", Body: []byte(`{"id":1}`)}
		if err := f.s.SaveIdempotent(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.FindIdempotent(f.ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		r.CreatedAt = f.now()
		if diff := cmp.Diff(&r, got); diff != "" {
			t.Fatalf("stored response (-want +got):\n%s", diff)
		}
	})
	t.Run("FirstWins", func(t *testing.T) {
		f := newFixture(t, open)
		for _, h := range []string{"first", "second"} {
			if err := f.s.SaveIdempotent(f.ctx, deploydb.IdempotentResponse{Key: "k", RequestHash: h, Status: 200, Body: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := f.s.FindIdempotent(f.ctx, "k")
		if err != nil || got.RequestHash != "first" {
			t.Fatalf("FindIdempotent = %+v, %v; want the first response", got, err)
		}
	})
	t.Run("Expires", func(t *testing.T) {
		f := newFixture(t, open)
		if err := f.s.SaveIdempotent(f.ctx, deploydb.IdempotentResponse{Key: "old", RequestHash: "h", Status: 200, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(deploydb.IdempotencyTTL + time.Second)
		_, err := f.s.FindIdempotent(f.ctx, "old")
		wantCode(t, err, deploydb.ENOTFOUND)
		// An expired key may be used again.
		if err := f.s.SaveIdempotent(f.ctx, deploydb.IdempotentResponse{Key: "old", RequestHash: "new", Status: 201, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.FindIdempotent(f.ctx, "old")
		if err != nil || got.RequestHash != "new" {
			t.Fatalf("FindIdempotent = %+v, %v; want the new response", got, err)
		}
	})
}
