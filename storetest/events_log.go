package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// wakeWait bounds how long the suite waits for EventsCommitted to fire. A
// store that notifies synchronously fires before the write returns; the
// bound only keeps a broken store from hanging the suite.
const wakeWait = 10 * time.Second

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wantWake fails the test unless ch is closed within wakeWait.
func wantWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wakeWait):
		t.Fatalf("EventsCommitted did not fire within %s after %s", wakeWait, after)
	}
}

// eventLog builds a history with events of several services, environments,
// types and actors: billing 1.0.0 verified in integ and completed in
// staging, search 1.0.0 started in integ, batch 1.0.0 failed in integ.
func (f *fixture) eventLog() []*deploydb.Event {
	f.t.Helper()
	_, billing := f.publishOne("billing", "1.0.0")
	_, search := f.publishOne("search", "1.0.0")
	f.tick()
	f.verify(billing.Deployments[0].ID)
	f.tick()
	f.report(search.Deployments[0].ID, started)
	_, batch := f.publishOne("batch", "1.0.0")
	f.tick()
	f.report(billing.Deployments[1].ID, completed)
	f.report(batch.Deployments[0].ID, failed)
	return f.events(0)
}

// filterEvents is FindEvents done by hand: the events of all after f.After
// that match every non-zero field of f, at most f.Limit.
func filterEvents(all []*deploydb.Event, f deploydb.EventFilter) []*deploydb.Event {
	out := []*deploydb.Event{}
	for _, ev := range all {
		switch {
		case ev.ID <= f.After,
			f.Deployment != 0 && ev.Deployment != f.Deployment,
			f.Service != "" && ev.Service != f.Service,
			f.Environment != "" && ev.Environment != f.Environment,
			f.Type != "" && ev.Type != f.Type,
			f.Actor != "" && ev.Actor != f.Actor:
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, ev)
	}
	return out
}

// testEventLog checks FindEvents' filters and cursor, the operator's reason
// on events, and EventsCommitted, which live views of the log wait on.
func testEventLog(t *testing.T, open Opener) {
	t.Run("Filters", func(t *testing.T) {
		f := newFixture(t, open)
		all := f.eventLog()
		mid := all[len(all)/2].ID
		filters := map[string]deploydb.EventFilter{
			"Service":            {Service: "billing"},
			"Environment":        {Environment: "integ"},
			"OtherEnvironment":   {Environment: "staging"},
			"Type":               {Type: deploydb.EventDeploymentCreated},
			"Actor":              {Actor: actorOrchestrator},
			"ServiceAndType":     {Service: "billing", Type: deploydb.EventDeploymentCompleted},
			"EnvironmentAndType": {Environment: "integ", Type: deploydb.EventDeploymentStarted},
			"ActorAndService":    {Actor: actorCI, Service: "search"},
			"ServiceAfter":       {Service: "billing", After: mid},
			"EnvironmentLimit":   {Environment: "integ", Limit: 2},
			"TypeAfterLimit":     {Type: deploydb.EventDeploymentCreated, After: all[0].ID, Limit: 2},
		}
		for name, filter := range filters {
			t.Run(name, func(t *testing.T) {
				want := filterEvents(all, filter)
				// The history must make each filter matter: it keeps
				// some events and drops others.
				if len(want) == 0 || len(want) == len(all) {
					t.Fatalf("filter %+v keeps %d of %d events; the history does not test it", filter, len(want), len(all))
				}
				limit := filter.Limit
				if limit == 0 {
					filter.Limit = deploydb.MaxPageSize
				}
				got, err := f.s.FindEvents(f.ctx, filter)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("FindEvents(%+v) (-want +got):\n%s", filter, diff)
				}
				if limit == 0 {
					// No limit means MaxPageSize.
					filter.Limit = 0
					if got, err := f.s.FindEvents(f.ctx, filter); err != nil || !cmp.Equal(want, got) {
						t.Errorf("FindEvents(%+v) without a limit: %d events, %v; want %d", filter, len(got), err, len(want))
					}
				}
			})
		}
		t.Run("PagesThroughOnce", func(t *testing.T) {
			// A cursor and a limit page through the matching events once.
			filter := deploydb.EventFilter{Environment: "integ", Limit: 3}
			var paged []*deploydb.Event
			for {
				evs, err := f.s.FindEvents(f.ctx, filter)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 {
					break
				}
				paged = append(paged, evs...)
				filter.After = evs[len(evs)-1].ID
			}
			if diff := cmp.Diff(filterEvents(all, deploydb.EventFilter{Environment: "integ"}), paged); diff != "" {
				t.Errorf("integ events read 3 at a time (-want +got):\n%s", diff)
			}
		})
		t.Run("NoMatch", func(t *testing.T) {
			for _, filter := range []deploydb.EventFilter{
				{Service: "nobody"}, {Environment: "nowhere"}, {Type: "no.such"}, {Actor: "nobody"},
				{Service: "search", Environment: "staging"}, {After: all[len(all)-1].ID},
			} {
				got, err := f.s.FindEvents(f.ctx, filter)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || len(got) != 0 {
					t.Errorf("FindEvents(%+v) = %d events (nil: %t), want an empty, non-nil list", filter, len(got), got == nil)
				}
			}
		})
	})

	t.Run("Reason", func(t *testing.T) {
		// An operator's action is recorded with who and why, and reads
		// back with both.
		f := newFixture(t, open)
		last := f.lastEvent()
		a := deploydb.Action{Actor: "alice", Reason: "release freeze: INC-42"}
		if _, err := f.s.LockEnvironment(f.ctx, f.cfg, "prod", a); err != nil {
			t.Fatal(err)
		}
		evs, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{After: last, Type: deploydb.EventEnvironmentLocked, Actor: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Fatalf("%d environment.locked events by alice, want 1", len(evs))
		}
		if ev := evs[0]; ev.Environment != "prod" || ev.Reason != a.Reason || !ev.CreatedAt.Equal(f.now().Time) {
			t.Errorf("event %+v, want environment prod, reason %q, created %s", ev, a.Reason, f.now())
		}
	})

	t.Run("LastEventID", func(t *testing.T) {
		// What a live page follows the log from: the latest event,
		// 0 before any.
		f := newFixture(t, open)
		last := func() int64 {
			t.Helper()
			id, err := f.s.LastEventID(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		before := last()
		if want := f.lastEvent(); before != want {
			t.Fatalf("LastEventID = %d, want %d (the log's last)", before, want)
		}
		f.publishOne("billing", "1.0.0")
		after := last()
		if after <= before || after != f.lastEvent() {
			t.Errorf("after a publication LastEventID = %d (was %d), want the log's last, %d", after, before, f.lastEvent())
		}
	})
	t.Run("EventsCommitted", func(t *testing.T) {
		f := newFixture(t, open)
		first, second := f.s.EventsCommitted(), f.s.EventsCommitted()
		if first == nil || second == nil {
			t.Fatal("EventsCommitted returned a nil channel")
		}
		if closed(first) || closed(second) {
			t.Fatal("EventsCommitted fired before any commit")
		}
		last := f.lastEvent()
		_, fl := f.publishOne("billing", "1.0.0")
		// Every waiter wakes, not just one.
		wantWake(t, first, "a publication")
		wantWake(t, second, "a publication")
		// A woken reader finds the events committed.
		if len(f.events(last)) == 0 {
			t.Fatal("EventsCommitted fired but no new event is readable")
		}

		// The next call waits for the next commit.
		next := f.s.EventsCommitted()
		if closed(next) {
			t.Fatal("EventsCommitted fired again without a new commit")
		}
		// Reads, refused writes and writes that record no event do not
		// fire it.
		f.events(0)
		_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: fl.Deployments[1].ID, Status: started, Actor: actorOrchestrator})
		wantCode(t, err, deploydb.ECONFLICT)
		if err := f.s.SaveIdempotent(f.ctx, deploydb.IdempotentResponse{Key: "k", RequestHash: "h", Status: 200, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if closed(next) {
			t.Error("EventsCommitted fired after a commit that recorded no event")
		}
		f.report(fl.Deployments[0].ID, started)
		wantWake(t, next, "a report")
	})

	t.Run("LiveReaders", func(t *testing.T) {
		// Readers that wait on EventsCommitted between reads see every
		// event as it is committed. The writer waits for every reader to
		// catch up before it writes again, so a reader that waits for a
		// commit that has already happened holds everything up.
		f := newFixture(t, open)
		const readers, writes = 8, 20
		var (
			progress [readers]atomic.Int64
			seen     [readers][]int64
			errs     = make(chan error, readers)
			caughtUp = make(chan struct{}, 1)
			done     = make(chan struct{})
			wg       sync.WaitGroup
			final    int64
		)
		for r := range readers {
			wg.Go(func() {
				var after int64
				for {
					wake := f.s.EventsCommitted()
					evs, err := f.s.FindEvents(f.ctx, deploydb.EventFilter{After: after, Limit: 7})
					if err != nil {
						errs <- err
						return
					}
					for _, ev := range evs {
						seen[r] = append(seen[r], ev.ID)
						after = ev.ID
					}
					if len(evs) > 0 {
						progress[r].Store(after)
						select {
						case caughtUp <- struct{}{}:
						default:
						}
						continue // there may be more than one page
					}
					select {
					case <-wake:
					case <-done:
						if after >= final {
							return
						}
					case <-time.After(wakeWait):
						errs <- fmt.Errorf("reader %d waited %s after event %d for a commit that did not come or was not signalled", r, wakeWait, after)
						return
					}
				}
			})
		}
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				close(done)
				wg.Wait()
			}
		}
		defer stop() // also when the test fails early
		for i := range writes {
			if _, _, err := f.s.PublishArtifact(f.ctx, f.cfg, Artifact("search", "2."+strconv.Itoa(i)), actorCI); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			last := f.lastEvent()
			deadline := time.After(wakeWait)
			for r := 0; r < readers; {
				if progress[r].Load() >= last {
					r++
					continue
				}
				select {
				case <-caughtUp:
				case err := <-errs:
					t.Fatal(err)
				case <-deadline:
					t.Fatalf("reader %d did not read event %d within %s of its commit", r, last, wakeWait)
				}
			}
		}
		final = f.lastEvent()
		stop()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var want []int64
		for _, ev := range f.events(0) {
			want = append(want, ev.ID)
		}
		for r := range readers {
			if diff := cmp.Diff(want, seen[r]); diff != "" {
				t.Errorf("reader %d saw (-want +got):\n%s", r, diff)
			}
		}
	})
}
