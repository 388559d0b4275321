package storetest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

func testPublishArtifact(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, open)
		in := Artifact("billing", "1.0.0")
		a, flows, err := f.s.PublishArtifact(f.ctx, f.cfg, in, actorCI)
		if err != nil {
			t.Fatal(err)
		}
		now := f.now()
		if a.ID <= 0 {
			t.Fatalf("artifact id %d, want > 0", a.ID)
		}
		want := &deploydb.Artifact{ID: a.ID, Group: in.Group, Name: in.Name, Version: in.Version, SourceURL: in.SourceURL, CreatedAt: now, PublishedBy: actorCI}
		if diff := cmp.Diff(want, a); diff != "" {
			t.Errorf("returned artifact (-want +got):\n%s", diff)
		}
		if len(flows) != 1 {
			t.Fatalf("%d flows, want 1 (one service consumes billing)", len(flows))
		}
		if diff := cmp.Diff(newFlow("billing", *want, f.cfg.Checksum, now), flows[0], ignoreIDs()); diff != "" {
			t.Errorf("returned flow (-want +got):\n%s", diff)
		}
		new(ids).check(t, flows)

		got, err := f.s.FindArtifact(f.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("artifact read back differs from the one returned (-returned +read):\n%s", diff)
		}
		if diff := cmp.Diff(flows[0], f.flow(flows[0].ID)); diff != "" {
			t.Errorf("flow read back differs from the one returned (-returned +read):\n%s", diff)
		}
		for i := range flows[0].Deployments {
			d := &flows[0].Deployments[i]
			if diff := cmp.Diff(d, f.deployment(d.ID)); diff != "" {
				t.Errorf("deployment read back differs from the one returned (-returned +read):\n%s", diff)
			}
		}
	})

	t.Run("OneFlowPerService", func(t *testing.T) {
		f := newFixture(t, open)
		a, flows := f.publish("shared", "1.0.0")
		now := f.now()
		if len(flows) != 2 {
			t.Fatalf("%d flows, want 2 (billing and search consume shared)", len(flows))
		}
		// Flows come in service order, each with its own promotions.
		for i, service := range []string{"billing", "search"} {
			if diff := cmp.Diff(newFlow(service, *a, f.cfg.Checksum, now), flows[i], ignoreIDs()); diff != "" {
				t.Errorf("flow %d (-want +got):\n%s", i, diff)
			}
			if diff := cmp.Diff(flows[i], f.flow(flows[i].ID)); diff != "" {
				t.Errorf("flow read back differs from the one returned (-returned +read):\n%s", diff)
			}
		}
		new(ids).check(t, flows)
	})

	t.Run("FailureStrategy", func(t *testing.T) {
		// batch ignores failures, but pipeline standard overrides that in
		// prod; search has no strategy and gets the default, notify.
		f := newFixture(t, open)
		for _, service := range []string{"batch", "search"} {
			_, fl := f.publishOne(service, "1.0.0")
			var got, want []deploydb.FailureStrategy
			for i, d := range fl.Deployments {
				got = append(got, d.FailureStrategy)
				want = append(want, layout(service)[i].strategy)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: failure strategies (-want +got):\n%s", service, diff)
			}
		}
	})

	t.Run("IDsIncrease", func(t *testing.T) {
		f := newFixture(t, open)
		var last ids
		var lastArtifact int64
		for _, p := range []struct{ name, version string }{
			{"billing", "1.0.0"}, {"shared", "1.0.0"}, {"search", "1.0.0"}, {"billing", "1.0.1"}, {"batch", "0.1.0"},
		} {
			f.tick()
			a, flows := f.publish(p.name, p.version)
			if a.ID <= lastArtifact {
				t.Errorf("artifact id %d after %d, want increasing ids", a.ID, lastArtifact)
			}
			lastArtifact = a.ID
			last.check(t, flows)
		}
	})

	t.Run("OKLongestFields", func(t *testing.T) {
		f := newFixture(t, open)
		in := Artifact("billing", strings.Repeat("9", deploydb.MaxArtifactVersionLen))
		in.SourceURL = "https://repo.example.com/"
		in.SourceURL += strings.Repeat("a", deploydb.MaxArtifactFieldLen-len(in.SourceURL))
		a, _, err := f.s.PublishArtifact(f.ctx, f.cfg, in, actorCI)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.s.FindArtifact(f.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != in.Version || got.SourceURL != in.SourceURL {
			t.Errorf("read back version of %d and sourceUrl of %d characters, want %d and %d unchanged",
				len(got.Version), len(got.SourceURL), len(in.Version), len(in.SourceURL))
		}
	})

	// long returns "test-" padded with a to n characters, as 0.3's tests do.
	long := func(n int) string { return "test-" + strings.Repeat("a", n-5) }
	for _, tc := range []struct {
		name   string
		modify func(a *deploydb.Artifact)
		fields []string
	}{
		{"ErrGroupRequired", func(a *deploydb.Artifact) { a.Group = "" }, []string{"group"}},
		{"ErrNameRequired", func(a *deploydb.Artifact) { a.Name = "" }, []string{"name"}},
		{"ErrVersionRequired", func(a *deploydb.Artifact) { a.Version = "" }, []string{"version"}},
		{"ErrSourceURLRequired", func(a *deploydb.Artifact) { a.SourceURL = "" }, []string{"sourceUrl"}},
		{"ErrGroupTooLong", func(a *deploydb.Artifact) { a.Group = long(deploydb.MaxArtifactFieldLen + 1) }, []string{"group"}},
		{"ErrNameTooLong", func(a *deploydb.Artifact) { a.Name = long(deploydb.MaxArtifactFieldLen + 1) }, []string{"name"}},
		{"ErrVersionTooLong", func(a *deploydb.Artifact) { a.Version = long(deploydb.MaxArtifactVersionLen + 1) }, []string{"version"}},
		{"ErrSourceURLTooLong", func(a *deploydb.Artifact) { a.SourceURL = long(deploydb.MaxArtifactFieldLen + 1) }, []string{"sourceUrl"}},
		{"ErrEveryField", func(a *deploydb.Artifact) { *a = deploydb.Artifact{} }, []string{"group", "name", "version", "sourceUrl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			f.publish("billing", "0.9.0")
			before := f.state()
			in := Artifact("billing", "1.0.0")
			tc.modify(&in)
			a, flows, err := f.s.PublishArtifact(f.ctx, f.cfg, in, actorCI)
			e := wantCode(t, err, deploydb.EINVALID)
			if a != nil || flows != nil {
				t.Errorf("returned %v and %v with an error, want nil", a, flows)
			}
			var got []string
			for _, fe := range e.Fields {
				got = append(got, fe.Field)
			}
			if diff := cmp.Diff(tc.fields, got); diff != "" {
				t.Errorf("invalid fields (-want +got):\n%s", diff)
			}
			f.unchanged(before)
		})
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		f := newFixture(t, open)
		f.publish("billing", "1.0.0")
		before := f.state()
		_, _, err := f.s.PublishArtifact(f.ctx, f.cfg, Artifact("orphan", "1.0.0"), actorCI)
		wantCode(t, err, deploydb.ENOTFOUND)
		f.unchanged(before)
	})

	t.Run("ErrDuplicate", func(t *testing.T) {
		f := newFixture(t, open)
		a, fl := f.publishOne("billing", "1.0.0")
		f.report(fl.Deployments[0].ID, deploydb.DeploymentStarted)
		before := f.state()
		f.tick()
		// Same group, name and version: a conflict even from another URL.
		dup := Artifact("billing", "1.0.0")
		dup.SourceURL = "https://elsewhere.example.com/billing.jar"
		got, flows, err := f.s.PublishArtifact(f.ctx, f.cfg, dup, actorCI)
		wantCode(t, err, deploydb.ECONFLICT)
		if got != nil || flows != nil {
			t.Errorf("returned %v and %v with an error, want nil", got, flows)
		}
		f.unchanged(before)
		if stored, err := f.s.FindArtifact(f.ctx, a.ID); err != nil {
			t.Fatal(err)
		} else if diff := cmp.Diff(a, stored); diff != "" {
			t.Errorf("stored artifact changed (-before +after):\n%s", diff)
		}
	})

	t.Run("OtherVersion", func(t *testing.T) {
		f := newFixture(t, open)
		a1, _ := f.publishOne("billing", "1.0.0")
		a2, _ := f.publishOne("billing", "1.0.1")
		if a1.ID == a2.ID {
			t.Errorf("both versions got id %d", a1.ID)
		}
	})
}
