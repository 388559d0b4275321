package storetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploydb/deploydb"
)

// queue names the deliveries one change of one deployment owes, by hook.
type queue map[string]*deploydb.Delivery

// owed returns the deliveries of event type typ about deployment id, by
// hook URL.
func (f *fixture) owed(id int64, typ deploydb.EventType) queue {
	f.t.Helper()
	q := queue{}
	for _, d := range f.deliveries(deploydb.DeliveryFilter{Deployment: id}) {
		if d.EventType == typ {
			q[d.URL] = d
		}
	}
	if len(q) == 0 {
		f.t.Fatalf("no %s deliveries for deployment %d", typ, id)
	}
	return q
}

// due fails the test unless DueDeliveries at now returns want, in order.
func (f *fixture) due(now time.Time, limit int, want ...*deploydb.Delivery) {
	f.t.Helper()
	got, err := f.s.DueDeliveries(f.ctx, now, limit)
	if err != nil {
		f.t.Fatal(err)
	}
	if want == nil {
		want = []*deploydb.Delivery{}
	}
	// Deliveries are compared by identity: attempts change the rest.
	key := func(ds []*deploydb.Delivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, string(d.EventType)+" "+d.URL+" #"+strconv.FormatInt(d.ID, 10))
		}
		return out
	}
	if diff := cmp.Diff(key(want), key(got)); diff != "" {
		f.t.Errorf("due deliveries at %s (-want +got):\n%s", now.Format(time.RFC3339Nano), diff)
	}
}

// attempt records one attempt at d made now; done ends the delivery with
// status, otherwise it is retried at next.
func (f *fixture) attempt(d *deploydb.Delivery, code int, done bool, status string, next time.Time) deploydb.Attempt {
	f.t.Helper()
	a := deploydb.Attempt{Delivery: d.ID, StatusCode: code, Latency: 42*time.Millisecond + 17*time.Nanosecond, Response: "HTTP " + strconv.Itoa(code), CreatedAt: f.now()}
	if err := f.s.RecordAttempt(f.ctx, deploydb.AttemptResult{Attempt: a, Done: done, Status: status, NextAttemptAt: next}); err != nil {
		f.t.Fatalf("record attempt at delivery %d: %v", d.ID, err)
	}
	return a
}

func (f *fixture) delivered(d *deploydb.Delivery) {
	f.t.Helper()
	f.attempt(d, 204, true, deploydb.DeliveryDelivered, time.Time{})
}

func (f *fixture) nextDeliveryAt(want time.Time) {
	f.t.Helper()
	got, err := f.s.NextDeliveryAt(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if !got.Equal(want) || got.IsZero() != want.IsZero() {
		f.t.Errorf("next delivery at %s, want %s", got, want)
	}
}

func testOutbox(t *testing.T, open Opener) {
	t.Run("HeadOfQueue", func(t *testing.T) {
		// Calls about one deployment reach one hook in the order they
		// happened: only the oldest pending one of each (hook, deployment)
		// is due.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		f.tick()
		f.report(id, started)
		c, s := f.owed(id, deploydb.EventDeploymentCreated), f.owed(id, deploydb.EventDeploymentStarted)

		now := f.tick().Time
		f.due(now, 100, c[HookIntegA], c[HookIntegB], c[HookGlobal])

		f.delivered(c[HookIntegA])
		f.due(now, 100, c[HookIntegB], c[HookGlobal], s[HookIntegA])

		// A retry scheduled later holds back what follows it to that hook.
		retry := now.Add(time.Minute)
		f.attempt(c[HookIntegB], 503, false, "", retry)
		f.due(now, 100, c[HookGlobal], s[HookIntegA])
		f.due(retry.Add(-time.Millisecond), 100, c[HookGlobal], s[HookIntegA])
		f.due(retry, 100, c[HookGlobal], s[HookIntegA], c[HookIntegB])

		// A delivery given up on no longer holds anything back.
		f.attempt(c[HookIntegB], 410, true, deploydb.DeliveryFailed, time.Time{})
		f.due(retry, 100, c[HookGlobal], s[HookIntegA], s[HookIntegB])

		// Queues of other deployments are independent; the limit takes the
		// oldest first.
		f.tick()
		_, other := f.publishOne("search", "1.0.0")
		o := f.owed(other.Deployments[0].ID, deploydb.EventDeploymentCreated)
		later := f.tick().Time
		f.due(later, 100, c[HookGlobal], s[HookIntegA], s[HookIntegB], o[HookIntegA], o[HookIntegB], o[HookGlobal])
		f.due(later, 4, c[HookGlobal], s[HookIntegA], s[HookIntegB], o[HookIntegA])
		f.due(later, 1, c[HookGlobal])
	})

	t.Run("NotYetDue", func(t *testing.T) {
		f := newFixture(t, open)
		before := f.clock.Now()
		f.tick()
		_, fl := f.publishOne("billing", "1.0.0")
		f.due(before, 100)
		c := f.owed(fl.Deployments[0].ID, deploydb.EventDeploymentCreated)
		f.due(f.clock.Now(), 100, c[HookIntegA], c[HookIntegB], c[HookGlobal])
	})

	t.Run("RecordAttempt", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		d := f.owed(fl.Deployments[0].ID, deploydb.EventDeploymentCreated)[HookIntegA]
		var want []deploydb.Attempt
		find := func() *deploydb.Delivery {
			t.Helper()
			for _, x := range f.deliveries(deploydb.DeliveryFilter{}) {
				if x.ID == d.ID {
					return x
				}
			}
			t.Fatalf("delivery %d is gone", d.ID)
			return nil
		}

		// A failed attempt: retried later, with the error kept.
		f.tick()
		retry := f.clock.Now().Add(5 * time.Second)
		a := deploydb.Attempt{Delivery: d.ID, Latency: 10 * time.Second, Error: "dial tcp 10.0.0.1:80: connect: connection refused", CreatedAt: f.now()}
		if err := f.s.RecordAttempt(f.ctx, deploydb.AttemptResult{Attempt: a, NextAttemptAt: retry}); err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
		got := find()
		if got.Status != deploydb.DeliveryPending || got.Attempts != 1 || !got.NextAttemptAt.Equal(deploydb.NewTime(retry).Time) || got.LastError != a.Error {
			t.Errorf("after a failed attempt: status %s, %d attempts, next at %s, last error %q; want pending, 1, %s, %q",
				got.Status, got.Attempts, got.NextAttemptAt, got.LastError, deploydb.NewTime(retry), a.Error)
		}

		// An HTTP error: retried later.
		f.tick()
		retry = f.clock.Now().Add(30 * time.Second)
		want = append(want, f.attempt(d, 503, false, "", retry))
		got = find()
		if got.Status != deploydb.DeliveryPending || got.Attempts != 2 || !got.NextAttemptAt.Equal(deploydb.NewTime(retry).Time) || got.LastError == "" {
			t.Errorf("after HTTP 503: status %s, %d attempts, next at %s, last error %q; want pending, 2, %s and an error",
				got.Status, got.Attempts, got.NextAttemptAt, got.LastError, deploydb.NewTime(retry))
		}

		// Delivered: done.
		f.tick()
		want = append(want, f.attempt(d, 204, true, deploydb.DeliveryDelivered, time.Time{}))
		got = find()
		if got.Status != deploydb.DeliveryDelivered || got.Attempts != 3 {
			t.Errorf("after delivery: status %s, %d attempts; want delivered, 3", got.Status, got.Attempts)
		}
		if diff := cmp.Diff(d.Body, got.Body); diff != "" {
			t.Errorf("attempts changed the body (-before +after):\n%s", diff)
		}

		attempts, err := f.s.FindAttempts(f.ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var gotA []deploydb.Attempt
		var last int64
		for _, a := range attempts {
			if a.ID <= last {
				t.Errorf("attempt id %d after %d, want oldest first with increasing ids", a.ID, last)
			}
			last = a.ID
			gotA = append(gotA, *a)
		}
		if diff := cmp.Diff(want, gotA, cmpopts.IgnoreFields(deploydb.Attempt{}, "ID")); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		// The other deliveries have no attempts.
		other := f.owed(fl.Deployments[0].ID, deploydb.EventDeploymentCreated)[HookIntegB]
		if attempts, err := f.s.FindAttempts(f.ctx, other.ID); err != nil || len(attempts) != 0 {
			t.Errorf("attempts of an untried delivery: %v, %v; want none", attempts, err)
		}
	})

	t.Run("RecordAttemptFailed", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		d := f.owed(fl.Deployments[0].ID, deploydb.EventDeploymentCreated)[HookGlobal]
		f.attempt(d, 410, true, deploydb.DeliveryFailed, time.Time{})
		ds, err := f.s.FindDeliveries(f.ctx, deploydb.DeliveryFilter{Status: deploydb.DeliveryFailed, Page: pageAll()})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].ID != d.ID || ds[0].Attempts != 1 {
			t.Errorf("failed deliveries: %+v, want delivery %d after 1 attempt", ds, d.ID)
		}
	})

	t.Run("RecordAttemptErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		f.publishOne("billing", "1.0.0")
		before := f.state()
		err := f.s.RecordAttempt(f.ctx, deploydb.AttemptResult{
			Attempt: deploydb.Attempt{Delivery: 1 << 40, StatusCode: 204, CreatedAt: f.now()},
			Done:    true, Status: deploydb.DeliveryDelivered,
		})
		wantCode(t, err, deploydb.ENOTFOUND)
		f.unchanged(before)
	})

	t.Run("NextDeliveryAt", func(t *testing.T) {
		f := newFixture(t, open)
		f.nextDeliveryAt(time.Time{})
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		t0 := f.now().Time
		f.nextDeliveryAt(t0)
		t1 := f.tick().Time
		f.report(id, started)
		f.nextDeliveryAt(t0)
		c, s := f.owed(id, deploydb.EventDeploymentCreated), f.owed(id, deploydb.EventDeploymentStarted)

		// integ-a's first call is retried in an hour; the others are
		// delivered. integ-a's second call waits behind the first, so the
		// next due is integ-b's and the global hook's second.
		retry := deploydb.NewTime(t0.Add(time.Hour)).Time
		f.attempt(c[HookIntegA], 500, false, "", retry)
		f.delivered(c[HookIntegB])
		f.delivered(c[HookGlobal])
		f.nextDeliveryAt(t1)

		// Now only integ-a's queue is left: nothing is due before the retry.
		f.delivered(s[HookIntegB])
		f.delivered(s[HookGlobal])
		f.due(t1, 100)
		f.nextDeliveryAt(retry)

		f.delivered(c[HookIntegA])
		f.nextDeliveryAt(t1)
		f.delivered(s[HookIntegA])
		f.nextDeliveryAt(time.Time{})
	})

	t.Run("FindDeliveries", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		_, other := f.publishOne("search", "1.0.0")
		f.report(fl.Deployments[0].ID, started)
		all, err := f.s.FindDeliveries(f.ctx, deploydb.DeliveryFilter{Page: pageAll()})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 9 {
			t.Fatalf("%d deliveries, want 9 (3 hooks for 3 events)", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID >= all[i-1].ID {
				t.Errorf("delivery %d after %d, want newest first", all[i].ID, all[i-1].ID)
			}
		}
		f.delivered(all[8])
		where := func(keep func(d *deploydb.Delivery) bool) []int64 {
			out := []int64{}
			for _, d := range all {
				if keep(d) {
					out = append(out, d.ID)
				}
			}
			return out
		}
		for _, tc := range []struct {
			filter deploydb.DeliveryFilter
			want   []int64
		}{
			{deploydb.DeliveryFilter{Deployment: other.Deployments[0].ID}, where(func(d *deploydb.Delivery) bool { return d.Deployment == other.Deployments[0].ID })},
			{deploydb.DeliveryFilter{Status: deploydb.DeliveryDelivered}, []int64{all[8].ID}},
			{deploydb.DeliveryFilter{Status: deploydb.DeliveryPending}, where(func(d *deploydb.Delivery) bool { return d.ID != all[8].ID })},
			{deploydb.DeliveryFilter{Status: deploydb.DeliveryFailed}, []int64{}},
			{deploydb.DeliveryFilter{Status: deploydb.DeliveryPending, Deployment: fl.Deployments[0].ID},
				where(func(d *deploydb.Delivery) bool { return d.Deployment == fl.Deployments[0].ID && d.ID != all[8].ID })},
			{deploydb.DeliveryFilter{Page: deploydb.Page{Number: 1, Size: 4}}, where(func(*deploydb.Delivery) bool { return true })[4:8]},
			{deploydb.DeliveryFilter{Page: deploydb.Page{Number: 2, Size: 4}}, []int64{all[8].ID}},
		} {
			if tc.filter.Page == (deploydb.Page{}) {
				tc.filter.Page = pageAll()
			}
			ds, err := f.s.FindDeliveries(f.ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			got := []int64{}
			for _, d := range ds {
				got = append(got, d.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", tc.filter, diff)
			}
		}
	})
}
