package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/output")

// golden compares got with testdata/output/<name>.golden, or rewrites the
// file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "output", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func at(s string) deploydb.Time {
	var t deploydb.Time
	if err := t.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		panic(err)
	}
	return t
}

func sampleArtifact() deploydb.Artifact {
	return deploydb.Artifact{ID: 1, Group: "com.example", Name: "billing", Version: "1.4.2",
		SourceURL: "https://repo.example.com/billing-1.4.2.jar", CreatedAt: at("2025-11-25T22:41:00.123Z")}
}

func sampleDeployments() []*deploydb.Deployment {
	a := sampleArtifact()
	return []*deploydb.Deployment{
		{ID: 2, Artifact: a, Service: "billing", Environment: "staging", Status: deploydb.DeploymentCreated,
			Reason: deploydb.ReasonPipeline, Flow: 1, CreatedAt: at("2025-11-25T22:45:00Z")},
		{ID: 1, Artifact: a, Service: "billing", Environment: "integ", Status: deploydb.DeploymentSuccess,
			Reason: deploydb.ReasonPipeline, Flow: 1,
			Promotions: []deploydb.PromotionResult{
				{ID: 1, Deployment: 1, Promotion: "smoke", Status: deploydb.PromotionSuccess},
				{ID: 2, Deployment: 1, Promotion: "load", Status: deploydb.PromotionSuccess},
			},
			CreatedAt: at("2025-11-25T22:41:00Z"), UpdatedAt: at("2025-11-25T22:44:59.999Z")},
	}
}

func TestTables(t *testing.T) {
	t.Parallel()
	deployments := sampleDeployments()
	flow := &deploydb.Flow{ID: 1, Artifact: sampleArtifact(), Service: "billing", Pipeline: "standard",
		Status: deploydb.FlowCreated, CreatedAt: at("2025-11-25T22:41:00Z"),
		Deployments: []deploydb.Deployment{*deployments[1], *deployments[0],
			{ID: 3, Artifact: sampleArtifact(), Service: "billing", Environment: "prod", Status: deploydb.DeploymentNotStarted, Reason: deploydb.ReasonPipeline, Flow: 1, CreatedAt: at("2025-11-25T22:41:00Z")}},
	}
	a := sampleArtifact()
	tests := []struct {
		name  string
		write func(b *bytes.Buffer) error
	}{
		{"artifacts", func(b *bytes.Buffer) error {
			b2 := a
			b2.ID, b2.Version, b2.CreatedAt = 2, "1.5.0-rc.1", deploydb.Time{}
			return artifactTable(b, []*deploydb.Artifact{&b2, &a})
		}},
		{"deployments", func(b *bytes.Buffer) error { return deploymentTable(b, deployments) }},
		{"deployments_empty", func(b *bytes.Buffer) error { return deploymentTable(b, nil) }},
		{"promotion_result", func(b *bytes.Buffer) error {
			return promotionResultTable(b, []*deploydb.PromotionResult{{ID: 3, Deployment: 1, Promotion: "smoke", Status: deploydb.PromotionFailed,
				InfoURL: "https://ci.example.com/job/smoke/42", CreatedAt: at("2025-11-25T22:41:00Z"), UpdatedAt: at("2025-11-25T22:50:00Z")}})
		}},
		{"flows", func(b *bytes.Buffer) error { return flowTable(b, []*deploydb.Flow{flow}) }},
		{"flow_detail", func(b *bytes.Buffer) error { return flowDetail(b, flow) }},
		{"services", func(b *bytes.Buffer) error {
			return serviceTable(b, []*deploydb.Service{
				{Ident: "billing", Description: "Billing API", Artifacts: []string{"com.example:billing"}, Pipelines: []string{"standard"}, FailureStrategy: deploydb.FailureNotify},
				{Ident: "checkout", Description: "A description that goes on and on,\nover two lines, far longer than a table cell should be", Artifacts: []string{"com.example:checkout", "com.example:checkout-assets"}, Pipelines: []string{"standard"}, Promotions: []string{"load"}, FailureStrategy: deploydb.FailureRollback},
			})
		}},
		{"environments", func(b *bytes.Buffer) error {
			return environmentTable(b, []*deploydb.Environment{{Ident: "integ", Description: "Integration"}, {Ident: "prod", Description: "Production", Production: true}})
		}},
		{"pipelines", func(b *bytes.Buffer) error {
			return pipelineTable(b, []*deploydb.Pipeline{{Ident: "standard", Description: "integ → staging → prod", Environments: []deploydb.PipelineStage{
				{Environment: "integ", Promotions: []string{"smoke"}}, {Environment: "staging", Promotions: []string{"smoke", "load"}}, {Environment: "prod"},
			}}})
		}},
		{"promotions", func(b *bytes.Buffer) error {
			return promotionTable(b, []*deploydb.Promotion{{Ident: "release-approval", Type: "manual", Description: "Release manager approval"}, {Ident: "smoke", Type: "basic"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		// Field order, unknown fields and number formats are the server's.
		if err := writeJSON(&b, []byte(`{"z":1,"a":[1.50,{"x":null}],"new":"field"}`+"\n")); err != nil {
			t.Fatal(err)
		}
		want := "{\n  \"z\": 1,\n  \"a\": [\n    1.50,\n    {\n      \"x\": null\n    }\n  ],\n  \"new\": \"field\"\n}\n"
		if diff := cmp.Diff(want, b.String()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("ErrNotJSON", func(t *testing.T) {
		t.Parallel()
		if err := writeJSON(&bytes.Buffer{}, []byte("<html>")); err == nil {
			t.Error("want an error for a body that is not JSON")
		}
	})
}

func TestCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "-", "a\tb\nc": "a b c", "  x  ": "x"} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
	long := "0123456789012345678901234567890123456789012345678901234567890123456789"
	if got := short(long); len([]rune(got)) != maxDescription {
		t.Errorf("short(70 chars) = %q: %d characters, want %d", got, len([]rune(got)), maxDescription)
	}
}
