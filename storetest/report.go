package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

// Shorter names for the statuses the tests below use a lot.
const (
	notStarted = deploydb.DeploymentNotStarted
	created    = deploydb.DeploymentCreated
	started    = deploydb.DeploymentStarted
	completed  = deploydb.DeploymentCompleted
	success    = deploydb.DeploymentSuccess
	failed     = deploydb.DeploymentFailed
)

// wantStatuses fails the test unless the deployments of flow id have the
// statuses want, in pipeline order, and the flow has status fs.
func (f *fixture) wantStatuses(id int64, fs deploydb.FlowStatus, want ...deploydb.DeploymentStatus) *deploydb.Flow {
	f.t.Helper()
	fl := f.flow(id)
	var got []deploydb.DeploymentStatus
	for _, d := range fl.Deployments {
		got = append(got, d.Status)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("flow %d: deployment statuses (-want +got):\n%s", id, diff)
	}
	if fl.Status != fs {
		f.t.Errorf("flow %d: status %s, want %s", id, fl.Status, fs)
	}
	return fl
}

// wantReadBack fails the test unless the store returns d when asked for it.
func (f *fixture) wantReadBack(d *deploydb.Deployment) {
	f.t.Helper()
	if diff := cmp.Diff(d, f.deployment(d.ID)); diff != "" {
		f.t.Errorf("deployment read back differs from the one returned (-returned +read):\n%s", diff)
	}
}

func testReportDeployment(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		want := fl.Deployments[0]

		now := f.tick()
		got := f.report(want.ID, started)
		want.Moved(started, now)
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("after STARTED (-want +got):\n%s", diff)
		}
		f.wantReadBack(got)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, started, notStarted, notStarted)

		// COMPLETED puts every promotion result STARTED: it now awaits them.
		now = f.tick()
		got = f.report(want.ID, completed)
		want.Moved(completed, now)
		want.Promotions = append([]deploydb.PromotionResult{}, want.Promotions...)
		for i := range want.Promotions {
			want.Promotions[i].Status, want.Promotions[i].UpdatedAt = deploydb.PromotionStarted, now
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("after COMPLETED (-want +got):\n%s", diff)
		}
		f.wantReadBack(got)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, completed, notStarted, notStarted)
	})

	t.Run("CompletedWithoutStarted", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		got := f.report(fl.Deployments[0].ID, completed)
		if got.Status != completed {
			t.Errorf("status %s, want COMPLETED", got.Status)
		}
		f.wantReadBack(got)
	})

	t.Run("NoPromotions", func(t *testing.T) {
		// search has no promotions in integ: COMPLETED is verified at once
		// and staging is next.
		f := newFixture(t, open)
		_, fl := f.publishOne("search", "1.0.0")
		f.report(fl.Deployments[0].ID, started)
		now := f.tick()
		got := f.report(fl.Deployments[0].ID, completed)
		if got.Status != success || !got.UpdatedAt.Equal(now.Time) {
			t.Errorf("status %s updated %s, want SUCCESS at %s", got.Status, got.UpdatedAt, now)
		}
		f.wantReadBack(got)
		after := f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
		if next := after.Deployments[1]; !next.UpdatedAt.Equal(now.Time) {
			t.Errorf("staging updated at %s, want %s", next.UpdatedAt, now)
		}
		if !after.UpdatedAt.Equal(fl.UpdatedAt.Time) {
			t.Errorf("flow updated at %s, want unchanged %s: it is still in progress", after.UpdatedAt, fl.UpdatedAt)
		}
	})

	for _, from := range []deploydb.DeploymentStatus{created, started} {
		t.Run("FailedFrom"+string(from), func(t *testing.T) {
			// FAILED stops the flow: nothing after it is activated.
			f := newFixture(t, open)
			_, fl := f.publishOne("billing", "1.0.0")
			id := fl.Deployments[0].ID
			if from == started {
				f.report(id, started)
			}
			now := f.tick()
			got := f.report(id, failed)
			if got.Status != failed || !got.UpdatedAt.Equal(now.Time) {
				t.Errorf("status %s updated %s, want FAILED at %s", got.Status, got.UpdatedAt, now)
			}
			for _, r := range got.Promotions {
				if r.Status != deploydb.PromotionNotStarted {
					t.Errorf("promotion %s is %s, want NOT_STARTED: the deployment never completed", r.Promotion, r.Status)
				}
			}
			f.wantReadBack(got)
			after := f.wantStatuses(fl.ID, deploydb.FlowFailed, failed, notStarted, notStarted)
			if !after.UpdatedAt.Equal(now.Time) {
				t.Errorf("flow updated at %s, want %s", after.UpdatedAt, now)
			}
		})
	}

	// Each case drives the first deployment of a flow (billing, or search
	// that has no promotions in integ) to a status, then reports a status
	// the state machine does not allow from there.
	for _, tc := range []struct {
		name    string
		service string
		path    []deploydb.DeploymentStatus
		report  deploydb.DeploymentStatus
	}{
		{"ErrStartedFromStarted", "billing", []deploydb.DeploymentStatus{started}, started},
		{"ErrStartedFromCompleted", "billing", []deploydb.DeploymentStatus{completed}, started},
		{"ErrCompletedFromCompleted", "billing", []deploydb.DeploymentStatus{started, completed}, completed},
		{"ErrFailedFromCompleted", "billing", []deploydb.DeploymentStatus{completed}, failed},
		{"ErrStartedFromSuccess", "search", []deploydb.DeploymentStatus{completed}, started},
		{"ErrCompletedFromSuccess", "search", []deploydb.DeploymentStatus{completed}, completed},
		{"ErrFailedFromSuccess", "search", []deploydb.DeploymentStatus{completed}, failed},
		{"ErrStartedFromFailed", "billing", []deploydb.DeploymentStatus{failed}, started},
		{"ErrCompletedFromFailed", "billing", []deploydb.DeploymentStatus{started, failed}, completed},
		{"ErrFailedFromFailed", "search", []deploydb.DeploymentStatus{failed}, failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			_, fl := f.publishOne(tc.service, "1.0.0")
			id := fl.Deployments[0].ID
			for _, s := range tc.path {
				f.report(id, s)
			}
			before := f.state()
			f.tick()
			got, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: tc.report, Actor: actorOrchestrator})
			e := wantCode(t, err, deploydb.ECONFLICT)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
			f.wantCurrent(e, id)
			f.unchanged(before)
		})
	}

	t.Run("ErrNotStarted", func(t *testing.T) {
		// A deployment waiting for an earlier environment cannot be
		// reported on.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		before := f.state()
		for _, s := range []deploydb.DeploymentStatus{started, completed, failed} {
			id := fl.Deployments[1].ID
			_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: s, Actor: actorOrchestrator})
			f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), id)
		}
		f.unchanged(before)
	})

	t.Run("ErrStatusNotReportable", func(t *testing.T) {
		// The engine moves deployments to these statuses, never a report.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		before := f.state()
		// A known status is a conflict with the current state (0.3's 406);
		// anything else is a bad request.
		for _, s := range []deploydb.DeploymentStatus{notStarted, created, success, deploydb.DeploymentSuperseded, deploydb.DeploymentCancelled} {
			_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: fl.Deployments[0].ID, Status: s, Actor: actorOrchestrator})
			f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), fl.Deployments[0].ID)
		}
		for _, s := range []deploydb.DeploymentStatus{"", "DONE", "started"} {
			_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: fl.Deployments[0].ID, Status: s, Actor: actorOrchestrator})
			wantCode(t, err, deploydb.EBADREQUEST)
		}
		f.unchanged(before)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		before := f.state()
		for _, id := range []int64{fl.Deployments[2].ID + 1000, 0, -1} {
			_, err := f.s.ReportDeployment(f.ctx, f.cfg, deploydb.DeploymentReport{Deployment: id, Status: started, Actor: actorOrchestrator})
			wantCode(t, err, deploydb.ENOTFOUND)
		}
		f.unchanged(before)
	})
}

func testReportPromotion(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		d := f.report(fl.Deployments[0].ID, completed)
		want := d.Promotions[0]

		now := f.tick()
		got := f.promote(d.ID, "smoke", deploydb.PromotionSuccess)
		want.Status, want.InfoURL, want.ReportedBy, want.UpdatedAt = deploydb.PromotionSuccess, infoURL(d.ID, "smoke"), actorTests, now
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("returned result (-want +got):\n%s", diff)
		}
		read, err := f.s.FindPromotionResult(f.ctx, d.ID, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, read); diff != "" {
			t.Errorf("result read back differs from the one returned (-returned +read):\n%s", diff)
		}
		// Its only promotion succeeded: the deployment is verified and
		// staging is next.
		after := f.wantStatuses(fl.ID, deploydb.FlowCreated, success, created, notStarted)
		if diff := cmp.Diff([]deploydb.PromotionResult{*got}, after.Deployments[0].Promotions); diff != "" {
			t.Errorf("the deployment's results (-want +got):\n%s", diff)
		}
		if u := after.Deployments[0].UpdatedAt; !u.Equal(now.Time) {
			t.Errorf("deployment updated at %s, want %s", u, now)
		}
	})

	t.Run("WaitsForEveryPromotion", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		staging := fl.Deployments[1].ID
		f.report(staging, completed)

		f.promote(staging, "smoke", deploydb.PromotionSuccess)
		after := f.wantStatuses(fl.ID, deploydb.FlowCreated, success, completed, notStarted)
		var got []deploydb.PromotionStatus
		for _, r := range after.Deployments[1].Promotions {
			got = append(got, r.Status)
		}
		if diff := cmp.Diff([]deploydb.PromotionStatus{deploydb.PromotionSuccess, deploydb.PromotionStarted}, got); diff != "" {
			t.Errorf("staging results (-want +got):\n%s", diff)
		}

		f.promote(staging, "approval", deploydb.PromotionSuccess)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, success, created)
	})

	t.Run("LastEnvironment", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		f.verify(fl.Deployments[1].ID)
		f.report(fl.Deployments[2].ID, completed)
		f.promote(fl.Deployments[2].ID, "smoke", deploydb.PromotionSuccess)
		f.wantStatuses(fl.ID, deploydb.FlowCreated, success, success, completed)
		now := f.tick()
		f.promote(fl.Deployments[2].ID, "approval", deploydb.PromotionSuccess)
		after := f.wantStatuses(fl.ID, deploydb.FlowSuccess, success, success, success)
		if !after.UpdatedAt.Equal(now.Time) {
			t.Errorf("flow updated at %s, want %s", after.UpdatedAt, now)
		}
	})

	t.Run("Failed", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		staging := fl.Deployments[1].ID
		f.report(staging, completed)
		now := f.tick()
		got := f.promote(staging, "smoke", deploydb.PromotionFailed)
		if got.Status != deploydb.PromotionFailed {
			t.Errorf("result status %s, want FAILED", got.Status)
		}
		after := f.wantStatuses(fl.ID, deploydb.FlowFailed, success, failed, notStarted)
		if !after.UpdatedAt.Equal(now.Time) || !after.Deployments[1].UpdatedAt.Equal(now.Time) {
			t.Errorf("flow and deployment updated at %s and %s, want %s", after.UpdatedAt, after.Deployments[1].UpdatedAt, now)
		}
		// The other result is left as it was; nobody awaits it any more.
		if r := after.Deployments[1].Promotions[1]; r.Promotion != "approval" || r.Status != deploydb.PromotionStarted {
			t.Errorf("other result %s is %s, want approval STARTED", r.Promotion, r.Status)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		before := f.state()
		for _, tc := range []struct {
			id        int64
			promotion string
		}{
			{fl.Deployments[2].ID + 1000, "smoke"}, // no such deployment
			{fl.Deployments[0].ID, "approval"},     // configured, but not in integ
			{fl.Deployments[0].ID, "load-test"},    // not configured at all
			{fl.Deployments[0].ID, ""},
		} {
			_, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: tc.id, Promotion: tc.promotion, Status: deploydb.PromotionSuccess, Actor: actorTests})
			wantCode(t, err, deploydb.ENOTFOUND)
		}
		f.unchanged(before)
	})

	// Each case drives billing's integ deployment (promotion smoke) along a
	// path, then reports smoke, which it does not await.
	for _, tc := range []struct {
		name string
		path func(f *fixture, id int64)
	}{
		{"ErrNotCompletedCreated", func(f *fixture, id int64) {}},
		{"ErrNotCompletedStarted", func(f *fixture, id int64) { f.report(id, started) }},
		{"ErrDeploymentFailed", func(f *fixture, id int64) { f.report(id, failed) }},
		{"ErrAlreadyReported", func(f *fixture, id int64) { f.verify(id) }},
		{"ErrAlreadyFailed", func(f *fixture, id int64) {
			f.report(id, completed)
			f.promote(id, "smoke", deploydb.PromotionFailed)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			_, fl := f.publishOne("billing", "1.0.0")
			id := fl.Deployments[0].ID
			tc.path(f, id)
			before := f.state()
			f.tick()
			for _, s := range []deploydb.PromotionStatus{deploydb.PromotionSuccess, deploydb.PromotionFailed} {
				got, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: id, Promotion: "smoke", Status: s, Actor: actorTests})
				e := wantCode(t, err, deploydb.ECONFLICT)
				if got != nil {
					t.Errorf("returned %+v with an error, want nil", got)
				}
				f.wantCurrent(e, id)
			}
			f.unchanged(before)
		})
	}

	t.Run("ErrAlreadyReportedOther", func(t *testing.T) {
		// staging awaits approval, but smoke was reported already.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.verify(fl.Deployments[0].ID)
		staging := fl.Deployments[1].ID
		f.report(staging, completed)
		f.promote(staging, "smoke", deploydb.PromotionSuccess)
		before := f.state()
		_, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: staging, Promotion: "smoke", Status: deploydb.PromotionFailed, Actor: actorTests})
		f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), staging)
		f.unchanged(before)
	})

	t.Run("ErrStatus", func(t *testing.T) {
		// FAILURE, 0.3's alias of FAILED, is parsed by the API, not the
		// store; a result is only ever reported SUCCESS or FAILED.
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, completed)
		before := f.state()
		for _, s := range []deploydb.PromotionStatus{"FAILURE", "", "success"} {
			_, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: fl.Deployments[0].ID, Promotion: "smoke", Status: s, Actor: actorTests})
			wantCode(t, err, deploydb.EBADREQUEST)
		}
		for _, s := range []deploydb.PromotionStatus{deploydb.PromotionStarted, deploydb.PromotionNotStarted} {
			_, err := f.s.ReportPromotion(f.ctx, f.cfg, deploydb.PromotionReport{Deployment: fl.Deployments[0].ID, Promotion: "smoke", Status: s, Actor: actorTests})
			f.wantCurrent(wantCode(t, err, deploydb.ECONFLICT), fl.Deployments[0].ID)
		}
		f.unchanged(before)
	})
}
