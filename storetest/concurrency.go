package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// racers is how many goroutines race for one change.
const racers = 50

// race runs fn(i) for i in [0, n) in n goroutines released at once, and
// returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner fails the test unless exactly one of errs is nil and every other
// is ECONFLICT, and returns the winner's index.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	return oneWinnerLosing(t, errs, deploydb.ECONFLICT)
}

// oneWinnerLosing is oneWinner for losers that get code.
func oneWinnerLosing(t *testing.T, errs []error, code string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch deploydb.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("racers %d and %d both won", winner, i)
			}
			winner = i
		case code:
		default:
			t.Errorf("racer %d: %v, want success or %s", i, err, code)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	return winner
}

// countEvents returns how many events of each type were recorded after id.
func (f *fixture) countEvents(after int64) map[deploydb.EventType]int {
	f.t.Helper()
	n := map[deploydb.EventType]int{}
	for _, ev := range f.events(after) {
		n[ev.Type]++
	}
	return n
}

// countDeliveries returns how many deliveries of each event type were
// enqueued for events after id.
func (f *fixture) countDeliveries(after int64) map[deploydb.EventType]int {
	f.t.Helper()
	n := map[deploydb.EventType]int{}
	for _, d := range f.deliveries(deploydb.DeliveryFilter{}) {
		if d.Event > after {
			n[d.EventType]++
		}
	}
	return n
}

func wantCounts(t *testing.T, what string, want, got map[deploydb.EventType]int) {
	t.Helper()
	for typ := range got {
		if _, ok := want[typ]; !ok {
			want[typ] = 0
		}
	}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%d %s %s, want %d", got[typ], typ, what, n)
		}
	}
}

func testConcurrency(t *testing.T, open Opener) {
	t.Run("ReportDeployment", func(t *testing.T) {
		// Every racer reports STARTED on one CREATED deployment: one wins,
		// the others see what won.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		after := f.lastEvent()
		f.tick()
		returned := make([]*deploydb.Deployment, racers)
		errs := race(racers, func(i int) error {
			var err error
			returned[i], err = f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: started, Actor: actorOrchestrator})
			return err
		})
		winner := oneWinner(t, errs)
		f.wantReadBack(returned[winner])
		for i, err := range errs {
			if i == winner {
				continue
			}
			var e *deploydb.Error
			if errors.As(err, &e) {
				if cur, ok := e.Current.(*deploydb.Deployment); !ok || cur.Status != started {
					t.Errorf("racer %d: conflict Current %+v, want the deployment STARTED", i, e.Current)
				}
			}
		}
		f.wantStatuses(fl.ID, deploydb.FlowCreated, started, notStarted, notStarted)
		wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventDeploymentStarted: 1}, f.countEvents(after))
		wantCounts(t, "deliveries", map[deploydb.EventType]int{deploydb.EventDeploymentStarted: 3}, f.countDeliveries(after))
	})

	t.Run("CompletedOrFailed", func(t *testing.T) {
		// Half the racers report COMPLETED, half FAILED: the flow ends up
		// as the winner said, with the events of that one change only.
		f := newFixture(t, open)
		_, fl := f.publishOne("search", "1.0.0")
		id := fl.Deployments[0].ID
		f.report(id, started)
		after := f.lastEvent()
		f.tick()
		status := func(i int) deploydb.DeploymentStatus {
			if i%2 == 0 {
				return completed
			}
			return failed
		}
		errs := race(racers, func(i int) error {
			_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: status(i), Actor: actorOrchestrator})
			return err
		})
		if status(oneWinner(t, errs)) == completed {
			// search has no promotions in integ: verified at once.
			f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
			wantCounts(t, "events", map[deploydb.EventType]int{
				deploydb.EventDeploymentCompleted: 1, deploydb.EventDeploymentVerified: 1, deploydb.EventDeploymentCreated: 1,
			}, f.countEvents(after))
		} else {
			f.wantStatuses(fl.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
			wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventDeploymentFailed: 1}, f.countEvents(after))
		}
	})

	t.Run("ReportPromotion", func(t *testing.T) {
		// Every racer reports the one result billing's integ deployment
		// awaits, half SUCCESS and half FAILED: one wins.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		id := fl.Deployments[0].ID
		f.report(id, completed)
		after := f.lastEvent()
		f.tick()
		status := func(i int) deploydb.PromotionStatus {
			if i%2 == 0 {
				return deploydb.PromotionSuccess
			}
			return deploydb.PromotionFailed
		}
		returned := make([]*deploydb.PromotionResult, racers)
		errs := race(racers, func(i int) error {
			var err error
			returned[i], err = f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: id, Promotion: "smoke", Status: status(i), InfoURL: infoURL(int64(i), "smoke"), Actor: actorTests})
			return err
		})
		winner := oneWinner(t, errs)
		if r := returned[winner]; r.Status != status(winner) || r.InfoURL != infoURL(int64(winner), "smoke") {
			t.Errorf("winner %d got result %+v, want its own report", winner, r)
		}
		d := f.deployment(id)
		if len(d.Promotions) != 1 || !cmp.Equal(d.Promotions[0], *returned[winner]) {
			t.Errorf("stored results %+v, want the winner's %+v", d.Promotions, returned[winner])
		}
		if status(winner) == deploydb.PromotionSuccess {
			f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
			wantCounts(t, "events", map[deploydb.EventType]int{
				deploydb.EventPromotionCompleted: 1, deploydb.EventDeploymentVerified: 1, deploydb.EventDeploymentCreated: 1,
			}, f.countEvents(after))
			// integ: 2 hooks + global; staging: 1 hook + global.
			wantCounts(t, "deliveries", map[deploydb.EventType]int{
				deploydb.EventPromotionCompleted: 3, deploydb.EventDeploymentVerified: 3, deploydb.EventDeploymentCreated: 2,
			}, f.countDeliveries(after))
		} else {
			f.wantStatuses(fl.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
			wantCounts(t, "events", map[deploydb.EventType]int{
				deploydb.EventPromotionCompleted: 1, deploydb.EventDeploymentFailed: 1,
			}, f.countEvents(after))
			wantCounts(t, "deliveries", map[deploydb.EventType]int{
				deploydb.EventPromotionCompleted: 3, deploydb.EventDeploymentFailed: 3,
			}, f.countDeliveries(after))
		}
	})

	t.Run("StalePlans", func(t *testing.T) {
		// A write reads its plan before it queues (sqlstore's preread),
		// then another write changes the service first: in the same
		// batch, or in one committed before. Each of 8 services' integ
		// deployments awaits two results, reported at once: whichever
		// goes second must see the first, or the deployment is never
		// verified. Three rounds, so that both orders of batches come.
		f := newFixture(t, open)
		f.cfg = stalePlansModel()
		const services = 8
		for round := range 3 {
			ids := make([]int64, services)
			for i := range services {
				_, fls := f.publish("race-"+strconv.Itoa(i), "1."+strconv.Itoa(round))
				ids[i] = fls[0].Deployments[0].ID
				f.report(ids[i], started)
				f.report(ids[i], completed)
			}
			f.tick()
			errs := race(2*services, func(i int) error {
				_, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: ids[i/2], Promotion: []string{"smoke", "checks"}[i%2],
					Status: deploydb.PromotionSuccess, Actor: actorTests})
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Errorf("round %d, racer %d: %v", round, i, err)
				}
			}
			for i, id := range ids {
				d := f.deployment(id)
				if d.Status != success || len(d.Promotions) != 2 {
					t.Errorf("round %d, race-%d: deployment %s with %d results, want SUCCESS with 2", round, i, d.Status, len(d.Promotions))
				}
			}
		}
	})
	t.Run("PublishArtifact", func(t *testing.T) {
		// Every racer publishes the same artifact: one wins.
		f := newFixture(t, open)
		returned := make([]*deploydb.Artifact, racers)
		errs := race(racers, func(i int) error {
			var err error
			returned[i], _, err = f.s.PublishArtifact(f.ctx, f.cfg, Artifact("shared", "1.0.0"), actorCI)
			return err
		})
		winner := oneWinner(t, errs)
		st := f.state()
		if len(st.Artifacts) != 1 || st.Artifacts[0].ID != returned[winner].ID {
			t.Errorf("stored artifacts %+v, want the winner's only", st.Artifacts)
		}
		if len(st.Flows) != 2 {
			t.Errorf("%d flows, want 2 (billing and search)", len(st.Flows))
		}
		wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventArtifactPublished: 1, deploydb.EventDeploymentCreated: 2}, f.countEvents(0))
		wantCounts(t, "deliveries", map[deploydb.EventType]int{deploydb.EventDeploymentCreated: 6}, f.countDeliveries(0))
	})

	t.Run("Independent", func(t *testing.T) {
		// Changes to different services, or to one service in different
		// environments, do not conflict. Each service has a flow active
		// in each environment: 1.0.0 in prod, 2.0.0 in staging, 3.0.0 in
		// integ. Every racer completes and verifies its own deployment.
		f := newFixture(t, open)
		services := []string{"billing", "search", "batch"}
		var active []int64
		flows := map[string][]*deploydb.Flow{}
		for _, s := range services {
			_, v1 := f.publishOne(s, "1.0.0")
			f.verify(v1.Deployments[0].ID)
			f.verify(v1.Deployments[1].ID)
			_, v2 := f.publishOne(s, "2.0.0")
			f.verify(v2.Deployments[0].ID)
			_, v3 := f.publishOne(s, "3.0.0")
			flows[s] = []*deploydb.Flow{v1, v2, v3}
			f.wantStatuses(v1.ID, deploydb.FlowCreated, success, success, created)
			f.wantStatuses(v2.ID, deploydb.FlowCreated, success, created, notStarted)
			f.wantStatuses(v3.ID, deploydb.FlowCreated, created, notStarted, notStarted)
			active = append(active, v1.Deployments[2].ID, v2.Deployments[1].ID, v3.Deployments[0].ID)
		}
		f.tick()
		errs := race(len(active), func(i int) error {
			d, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: active[i], Status: completed, Actor: actorOrchestrator})
			if err != nil {
				return err
			}
			for _, r := range d.Promotions {
				_, err = f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: active[i], Promotion: r.Promotion, Status: deploydb.PromotionSuccess, Actor: actorTests})
				if err != nil {
					return err
				}
			}
			return nil
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("racer %d: deployment %d: %v", i, active[i], err)
			}
		}
		// Whichever finished first, each flow moved on once the one ahead
		// of it freed the next environment.
		for _, s := range services {
			f.wantStatuses(flows[s][0].ID, deploydb.FlowSuccess, success, success, success)
			f.wantStatuses(flows[s][1].ID, deploydb.FlowCreated, success, success, created)
			f.wantStatuses(flows[s][2].ID, deploydb.FlowCreated, success, created, notStarted)
		}
	})

	t.Run("Serialized", func(t *testing.T) {
		// Racers publish versions of one service at once: exactly one is
		// activated in integ, the others wait for it. When it is
		// verified, the newest waiting one takes integ and every other
		// one is superseded, each announced once.
		f := newFixture(t, open)
		const n = 20
		flows := make([]*deploydb.Flow, n)
		errs := race(n, func(i int) error {
			_, fls, err := f.s.PublishArtifact(f.ctx, f.cfg, Artifact("billing", "1.0."+strconv.Itoa(i)), actorCI)
			if err == nil {
				flows[i] = fls[0]
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: publish: %v", i, err)
			}
		}
		var first *deploydb.Flow
		oldest, newest := flows[0], flows[0]
		for _, fl := range flows {
			got := f.flow(fl.ID)
			switch integ := got.Deployments[0]; {
			case integ.Status == created && first == nil:
				first = got
			case integ.Status == created:
				t.Errorf("flows %d and %d are both active in integ", first.ID, fl.ID)
			case integ.Status != notStarted || integ.DueAt.IsZero() || integ.Waiting == "":
				t.Errorf("flow %d: integ is %s, due at %s, waiting %q; want it CREATED or waiting", fl.ID, integ.Status, integ.DueAt, integ.Waiting)
			}
			if fl.ID > newest.ID {
				newest = fl
			}
			if fl.ID < oldest.ID {
				oldest = fl
			}
		}
		// The first one published found integ free.
		if first == nil || first.ID != oldest.ID {
			t.Fatalf("flow %v is active in integ, want the first published, %d", first, oldest.ID)
		}
		after := f.lastEvent()
		f.verify(first.Deployments[0].ID)
		for _, fl := range flows {
			switch fl.ID {
			case first.ID:
				f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
			case newest.ID:
				f.wantStatuses(fl.ID, deploydb.FlowCreated, created, notStarted, notStarted)
			default:
				f.wantStatuses(fl.ID, deploydb.FlowSuperseded, deploydb.DeploymentSuperseded, deploydb.DeploymentSuperseded, deploydb.DeploymentSuperseded)
			}
		}
		// Each superseded flow's integ deployment is announced to integ's
		// hooks; its other deployments, never due, are recorded quietly.
		wantCounts(t, "events", map[deploydb.EventType]int{
			deploydb.EventDeploymentCompleted: 1, deploydb.EventPromotionCompleted: 1, deploydb.EventDeploymentVerified: 1,
			deploydb.EventDeploymentCreated: 2, deploydb.EventDeploymentSuperseded: 3 * (n - 2),
		}, f.countEvents(after))
		wantCounts(t, "deliveries", map[deploydb.EventType]int{
			deploydb.EventDeploymentCompleted: 3, deploydb.EventPromotionCompleted: 3, deploydb.EventDeploymentVerified: 3,
			deploydb.EventDeploymentCreated: 3 + 2, deploydb.EventDeploymentSuperseded: 3 * (n - 2),
		}, f.countDeliveries(after))
	})

	t.Run("CancelFlow", func(t *testing.T) {
		// Every racer cancels one flow: one wins, and its deployments are
		// cancelled once.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		_, next := f.publishOne("billing", "2.0.0")
		after := f.lastEvent()
		f.tick()
		errs := race(racers, func(int) error {
			_, err := f.s.CancelFlow(f.ctx, f.cfg, fl.ID, alice())
			return err
		})
		oneWinner(t, errs)
		f.wantStatuses(fl.ID, deploydb.FlowCancelled, cancelled, cancelled, cancelled)
		f.wantStatuses(next.ID, deploydb.FlowCreated, created, notStarted, notStarted)
		wantCounts(t, "events", map[deploydb.EventType]int{
			deploydb.EventOperatorCancel: 1, deploydb.EventDeploymentCancelled: 3, deploydb.EventDeploymentCreated: 1,
		}, f.countEvents(after))
		wantCounts(t, "deliveries", map[deploydb.EventType]int{
			deploydb.EventDeploymentCancelled: 3, deploydb.EventDeploymentCreated: 3,
		}, f.countDeliveries(after))
	})

	t.Run("RetryDeployment", func(t *testing.T) {
		// Every racer retries one failed deployment: it is retried once.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, failed)
		after := f.lastEvent()
		f.tick()
		errs := race(racers, func(int) error {
			_, err := f.s.RetryDeployment(f.ctx, f.cfg, fl.Deployments[0].ID, alice())
			return err
		})
		oneWinner(t, errs)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, failed, created, notStarted, notStarted)
		wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventOperatorRetry: 1, deploydb.EventDeploymentCreated: 1}, f.countEvents(after))
	})

	t.Run("Locks", func(t *testing.T) {
		// Every racer locks prod: one lock is taken. Then every racer
		// unlocks it: one releases it, the others find it unlocked.
		f := newFixture(t, open)
		after := f.lastEvent()
		errs := race(racers, func(i int) error {
			_, err := f.s.LockEnvironment(f.ctx, f.cfg, "prod", deploydb.Action{Actor: "operator-" + strconv.Itoa(i), Reason: "incident 42"})
			return err
		})
		winner := oneWinner(t, errs)
		f.wantLocks(map[string]*deploydb.Lock{"prod": {Environment: "prod", Reason: "incident 42", Actor: "operator-" + strconv.Itoa(winner), CreatedAt: f.now()}})
		errs = race(racers, func(int) error { return f.s.UnlockEnvironment(f.ctx, f.cfg, "prod", alice()) })
		oneWinnerLosing(t, errs, deploydb.ENOTFOUND)
		f.wantLocks(map[string]*deploydb.Lock{})
		wantCounts(t, "events", map[deploydb.EventType]int{deploydb.EventEnvironmentLocked: 1, deploydb.EventEnvironmentUnlocked: 1}, f.countEvents(after))
		wantCounts(t, "deliveries", map[deploydb.EventType]int{deploydb.EventEnvironmentLocked: 1, deploydb.EventEnvironmentUnlocked: 1}, f.countDeliveries(after))
	})
}

// stalePlansModel is Model with one-environment pipelines for services
// race-0 to race-7, whose deployments each await two basic results.
func stalePlansModel() *deploydb.Config {
	cfg := Model()
	cfg.Pipelines["race"] = &deploydb.Pipeline{Ident: "race", Environments: []deploydb.PipelineStage{{Environment: "integ", Promotions: []string{"smoke", "checks"}}}}
	cfg.Promotions["checks"] = &deploydb.Promotion{Ident: "checks", Type: deploydb.PromotionTypeBasic}
	for i := range 8 {
		name := "race-" + strconv.Itoa(i)
		cfg.Services[name] = &deploydb.Service{Ident: name, Artifacts: []string{Group + ":" + name}, Pipelines: []string{"race"}}
	}
	return cfg
}
