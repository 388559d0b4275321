package storetest

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

func testFindArtifacts(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		var a []*deploydb.Artifact // in publication order
		for _, p := range []struct{ name, version string }{
			{"billing", "1.0.0"}, {"billing", "1.1.0"}, {"search", "1.1.0"}, {"billing", "2.0.0"}, {"batch", "1.10.0"},
		} {
			f.tick()
			x, _ := f.publish(p.name, p.version)
			a = append(a, x)
		}
		newest := func(i ...int) []*deploydb.Artifact {
			out := []*deploydb.Artifact{}
			for _, j := range i {
				out = append(out, a[j])
			}
			return out
		}
		page := func(n, size int) deploydb.Page { return deploydb.Page{Number: n, Size: size} }
		for _, tc := range []struct {
			filter deploydb.ArtifactFilter
			want   []*deploydb.Artifact
		}{
			{deploydb.ArtifactFilter{}, newest(4, 3, 2, 1, 0)},
			{deploydb.ArtifactFilter{Query: "billing"}, newest(3, 1, 0)},
			{deploydb.ArtifactFilter{Query: "ill"}, newest(3, 1, 0)},
			{deploydb.ArtifactFilter{Query: "1.1"}, newest(4, 2, 1)},
			{deploydb.ArtifactFilter{Query: "com.example"}, newest(4, 3, 2, 1, 0)},
			{deploydb.ArtifactFilter{Query: "arch"}, newest(2)},
			{deploydb.ArtifactFilter{Query: "nothing-like-it"}, newest()},
			{deploydb.ArtifactFilter{Group: Group, Name: "billing"}, newest(3, 1, 0)},
			{deploydb.ArtifactFilter{Group: Group, Name: "bill"}, newest()},
			{deploydb.ArtifactFilter{Group: "org.other", Name: "billing"}, newest()},
			{deploydb.ArtifactFilter{Group: Group}, newest(4, 3, 2, 1, 0)},
			{deploydb.ArtifactFilter{Name: "search"}, newest(2)},
			{deploydb.ArtifactFilter{Group: Group, Name: "billing", Query: "2.0"}, newest(3)},
			{deploydb.ArtifactFilter{Page: page(0, 2)}, newest(4, 3)},
			{deploydb.ArtifactFilter{Page: page(1, 2)}, newest(2, 1)},
			{deploydb.ArtifactFilter{Page: page(2, 2)}, newest(0)},
			{deploydb.ArtifactFilter{Page: page(3, 2)}, newest()},
			{deploydb.ArtifactFilter{Group: Group, Name: "billing", Page: page(1, 2)}, newest(0)},
		} {
			if tc.filter.Page == (deploydb.Page{}) {
				tc.filter.Page = pageAll()
			}
			got, err := f.s.FindArtifacts(f.ctx, tc.filter)
			if err != nil {
				t.Fatalf("%+v: %v", tc.filter, err)
			}
			if got == nil {
				t.Errorf("%+v: nil, want a non-nil list", tc.filter)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", tc.filter, diff)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		a, _ := f.publish("billing", "1.0.0")
		for _, id := range []int64{a.ID + 1000, 0, -1} {
			got, err := f.s.FindArtifact(f.ctx, id)
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
	})
}

// history makes a small history of 4 flows and 12 deployments: billing
// 1.0.0 verified in integ, search 1.0.0 just published, shared 1.0.0
// (billing and search): its billing deployment failed in integ, its search
// deployment waits in integ behind search 1.0.0. It returns the flows as
// the store has them now, oldest first.
func (f *fixture) history() []*deploydb.Flow {
	f.t.Helper()
	_, b1 := f.publishOne("billing", "1.0.0")
	f.tick()
	f.verify(b1.Deployments[0].ID)
	f.tick()
	_, s1 := f.publishOne("search", "1.0.0")
	f.tick()
	_, shared := f.publish("shared", "1.0.0")
	f.tick()
	f.report(shared[0].Deployments[0].ID, failed)
	if w := f.deployment(shared[1].Deployments[0].ID); w.Status != notStarted || w.DueAt.IsZero() || w.Waiting == "" {
		f.t.Fatalf("search's shared 1.0.0 in integ is %s, due at %s, waiting %q: want it waiting behind search 1.0.0", w.Status, w.DueAt, w.Waiting)
	}
	return []*deploydb.Flow{f.flow(b1.ID), f.flow(s1.ID), f.flow(shared[0].ID), f.flow(shared[1].ID)}
}

func testFindDeployments(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		flows := f.history()
		var all []*deploydb.Deployment // oldest first
		for _, fl := range flows {
			for i := range fl.Deployments {
				all = append(all, &fl.Deployments[i])
			}
		}
		if len(all) != 12 {
			t.Fatalf("%d deployments, want 12", len(all))
		}
		b1, s1, shared := flows[0], flows[1], flows[2].Artifact.ID
		where := func(ascending bool, keep func(d *deploydb.Deployment) bool) []*deploydb.Deployment {
			out := []*deploydb.Deployment{}
			for _, d := range all {
				if keep(d) {
					out = append(out, d)
				}
			}
			if !ascending {
				slices.Reverse(out)
			}
			return out
		}
		every := func(*deploydb.Deployment) bool { return true }
		for _, tc := range []struct {
			filter deploydb.DeploymentFilter
			want   []*deploydb.Deployment
		}{
			{deploydb.DeploymentFilter{}, where(false, every)},
			{deploydb.DeploymentFilter{Ascending: true}, where(true, every)},
			{deploydb.DeploymentFilter{Artifact: shared}, where(false, func(d *deploydb.Deployment) bool { return d.Artifact.ID == shared })},
			{deploydb.DeploymentFilter{Service: "billing"}, where(false, func(d *deploydb.Deployment) bool { return d.Service == "billing" })},
			{deploydb.DeploymentFilter{Environment: "staging"}, where(false, func(d *deploydb.Deployment) bool { return d.Environment == "staging" })},
			{deploydb.DeploymentFilter{Flow: s1.ID, Ascending: true}, where(true, func(d *deploydb.Deployment) bool { return d.Flow == s1.ID })},
			{deploydb.DeploymentFilter{Status: created}, where(false, func(d *deploydb.Deployment) bool { return d.Status == created })},
			{deploydb.DeploymentFilter{Status: failed}, where(false, func(d *deploydb.Deployment) bool { return d.Status == failed })},
			{deploydb.DeploymentFilter{Status: success}, []*deploydb.Deployment{&b1.Deployments[0]}},
			{deploydb.DeploymentFilter{Service: "search", Environment: "integ", Status: created}, []*deploydb.Deployment{&s1.Deployments[0]}},
			{deploydb.DeploymentFilter{Artifact: b1.Artifact.ID, Status: notStarted, Ascending: true}, []*deploydb.Deployment{&b1.Deployments[2]}},
			{deploydb.DeploymentFilter{Service: "batch"}, where(false, func(*deploydb.Deployment) bool { return false })},
			{deploydb.DeploymentFilter{Page: deploydb.Page{Number: 0, Size: 5}}, where(false, every)[0:5]},
			{deploydb.DeploymentFilter{Page: deploydb.Page{Number: 1, Size: 5}}, where(false, every)[5:10]},
			{deploydb.DeploymentFilter{Page: deploydb.Page{Number: 2, Size: 5}}, where(false, every)[10:12]},
			{deploydb.DeploymentFilter{Page: deploydb.Page{Number: 3, Size: 5}}, where(false, every)[12:]},
			{deploydb.DeploymentFilter{Environment: "integ", Ascending: true, Page: deploydb.Page{Number: 1, Size: 2}},
				where(true, func(d *deploydb.Deployment) bool { return d.Environment == "integ" })[2:4]},
		} {
			if tc.filter.Page == (deploydb.Page{}) {
				tc.filter.Page = pageAll()
			}
			got, err := f.s.FindDeployments(f.ctx, tc.filter)
			if err != nil {
				t.Fatalf("%+v: %v", tc.filter, err)
			}
			if got == nil {
				t.Errorf("%+v: nil, want a non-nil list", tc.filter)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", tc.filter, diff)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		for _, id := range []int64{fl.Deployments[2].ID + 1000, 0, -1} {
			got, err := f.s.FindDeployment(f.ctx, id)
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
	})
}

func testFindFlows(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		flows := f.history()
		b1, s1, b2, s2 := flows[0], flows[1], flows[2], flows[3]
		for _, tc := range []struct {
			filter deploydb.FlowFilter
			want   []*deploydb.Flow
		}{
			{deploydb.FlowFilter{}, []*deploydb.Flow{s2, b2, s1, b1}},
			{deploydb.FlowFilter{Ascending: true}, []*deploydb.Flow{b1, s1, b2, s2}},
			{deploydb.FlowFilter{Service: "billing"}, []*deploydb.Flow{b2, b1}},
			{deploydb.FlowFilter{Artifact: b2.Artifact.ID, Ascending: true}, []*deploydb.Flow{b2, s2}},
			{deploydb.FlowFilter{Service: "search", Artifact: b2.Artifact.ID}, []*deploydb.Flow{s2}},
			{deploydb.FlowFilter{Service: "batch"}, []*deploydb.Flow{}},
			{deploydb.FlowFilter{Page: deploydb.Page{Number: 0, Size: 3}}, []*deploydb.Flow{s2, b2, s1}},
			{deploydb.FlowFilter{Page: deploydb.Page{Number: 1, Size: 3}}, []*deploydb.Flow{b1}},
			{deploydb.FlowFilter{Page: deploydb.Page{Number: 2, Size: 3}}, []*deploydb.Flow{}},
		} {
			if tc.filter.Page == (deploydb.Page{}) {
				tc.filter.Page = pageAll()
			}
			got, err := f.s.FindFlows(f.ctx, tc.filter)
			if err != nil {
				t.Fatalf("%+v: %v", tc.filter, err)
			}
			if got == nil {
				t.Errorf("%+v: nil, want a non-nil list", tc.filter)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", tc.filter, diff)
			}
		}
		// Every flow has its deployments in pipeline order, each as
		// FindDeployment returns it.
		new(ids).check(t, flows)
		for _, fl := range flows {
			for i := range fl.Deployments {
				if diff := cmp.Diff(f.deployment(fl.Deployments[i].ID), &fl.Deployments[i]); diff != "" {
					t.Errorf("flow %d: deployment %d differs from FindDeployment's (-find +flow):\n%s", fl.ID, fl.Deployments[i].ID, diff)
				}
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		for _, id := range []int64{fl.ID + 1000, 0, -1} {
			got, err := f.s.FindFlow(f.ctx, id)
			wantCode(t, err, deploydb.ENOTFOUND)
			if got != nil {
				t.Errorf("returned %+v with an error, want nil", got)
			}
		}
	})
}

func testFindPromotionResult(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		_, flows := f.publish("shared", "1.0.0")
		for _, fl := range flows {
			for _, d := range fl.Deployments {
				for _, r := range d.Promotions {
					got, err := f.s.FindPromotionResult(f.ctx, d.ID, r.ID)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(&r, got); diff != "" {
						t.Errorf("result %d of deployment %d (-want +got):\n%s", r.ID, d.ID, diff)
					}
				}
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		_, fl := f.publishOne("billing", "1.0.0")
		integ, staging := fl.Deployments[0], fl.Deployments[1]
		for _, tc := range []struct {
			name           string
			deployment, id int64
		}{
			{"ResultOfAnotherDeployment", integ.ID, staging.Promotions[0].ID},
			{"UnknownDeployment", fl.Deployments[2].ID + 1000, integ.Promotions[0].ID},
			{"UnknownResult", integ.ID, fl.Deployments[2].Promotions[1].ID + 1000},
		} {
			got, err := f.s.FindPromotionResult(f.ctx, tc.deployment, tc.id)
			if deploydb.ErrorCode(err) != deploydb.ENOTFOUND || got != nil {
				t.Errorf("%s: %+v, %v; want nil, %s", tc.name, got, err, deploydb.ENOTFOUND)
			}
		}
	})
}

func testEmpty(t *testing.T, open Opener) {
	t.Run("Lists", func(t *testing.T) {
		// Lists of an empty store are empty, not nil: the API writes them
		// as [], never null.
		f := newFixture(t, open)
		a, err := f.s.FindArtifacts(f.ctx, deploydb.ArtifactFilter{Page: pageAll()})
		check := func(what string, n int, isNil bool, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if isNil || n != 0 {
				t.Errorf("%s of an empty store: %d, nil %t; want an empty, non-nil list", what, n, isNil)
			}
		}
		check("artifacts", len(a), a == nil, err)
		d, err := f.s.FindDeployments(f.ctx, deploydb.DeploymentFilter{Page: pageAll()})
		check("deployments", len(d), d == nil, err)
		fl, err := f.s.FindFlows(f.ctx, deploydb.FlowFilter{Page: pageAll()})
		check("flows", len(fl), fl == nil, err)
		ds, err := f.s.FindDeliveries(f.ctx, deploydb.DeliveryFilter{Page: pageAll()})
		check("deliveries", len(ds), ds == nil, err)
		due, err := f.s.DueDeliveries(f.ctx, f.clock.Now(), 10)
		check("due deliveries", len(due), due == nil, err)
		cells, err := f.s.FindStatus(f.ctx)
		check("status cells", len(cells), cells == nil, err)
		locks, err := f.s.FindLocks(f.ctx)
		check("locks", len(locks), locks == nil, err)
	})
	t.Run("Ping", func(t *testing.T) {
		f := newFixture(t, open)
		if err := f.s.Ping(f.ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
		if next, err := f.s.NextDeliveryAt(f.ctx); err != nil || !next.IsZero() {
			t.Errorf("next delivery of an empty store: %s, %v; want the zero time", next, err)
		}
	})
}
