package cli

import (
	"bytes"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func TestCoordinationTables(t *testing.T) {
	t.Parallel()
	a := sampleArtifact()
	next := a
	next.ID, next.Version = 2, "1.5.0"
	lock := &deploydb.Lock{Environment: "prod", Reason: "release freeze", Actor: "anonymous", CreatedAt: at("2025-11-26T08:00:00Z")}
	waiting := &deploydb.Deployment{ID: 9, Artifact: next, Service: "billing", Environment: "prod", Status: deploydb.DeploymentNotStarted,
		Reason: deploydb.ReasonPipeline, Flow: 2, Position: 2, DueAt: at("2025-11-26T09:00:00Z"), Waiting: "locked: release freeze",
		FailureStrategy: deploydb.FailureNotify, CreatedAt: at("2025-11-26T07:00:00Z"), UpdatedAt: at("2025-11-26T09:00:00Z"),
		Promotions: []deploydb.PromotionResult{
			{ID: 5, Deployment: 9, Promotion: "release-approval", Type: "manual", Status: deploydb.PromotionNotStarted, CreatedAt: at("2025-11-26T07:00:00Z")},
			{ID: 6, Deployment: 9, Promotion: "bake", Type: "soak", SoakMs: 3600000, Status: deploydb.PromotionNotStarted, CreatedAt: at("2025-11-26T07:00:00Z")},
		}}
	cellOf := func(id int64, art deploydb.Artifact, st deploydb.DeploymentStatus) *client.CellDeployment {
		return &client.CellDeployment{ID: id, Flow: 1, Artifact: art.InMatrix(), Status: st, Reason: deploydb.ReasonPipeline}
	}
	completed := cellOf(8, next, deploydb.DeploymentCompleted)
	status := &client.Status{
		Environments: []client.StatusEnvironment{
			{Name: "integ"}, {Name: "staging", Frozen: "weekend (until 2025-11-29T06:00:00.000Z)"}, {Name: "prod", Lock: lock},
		},
		Services: []client.StatusService{
			{Service: "billing", Pipeline: "standard", Cells: []client.StatusCell{
				{Environment: "integ", Current: cellOf(1, a, deploydb.DeploymentSuccess), InFlight: cellOf(7, next, deploydb.DeploymentStarted)},
				// A COMPLETED deployment is current and in flight: shown once.
				{Environment: "staging", Current: completed, InFlight: completed},
				{Environment: "prod", Current: cellOf(3, a, deploydb.DeploymentSuccess), LastAttempt: cellOf(10, next, deploydb.DeploymentFailed), Locked: true},
			}},
			{Service: "checkout", Pipeline: "standard", Cells: []client.StatusCell{
				{Environment: "integ", Current: cellOf(4, a, deploydb.DeploymentFailed)},
				{Environment: "staging"},
				{Environment: "prod", Locked: true},
			}},
			// A service whose pipeline does not go through prod.
			{Service: "tools", Pipeline: "short", Cells: []client.StatusCell{
				{Environment: "integ", InFlight: cellOf(11, next, deploydb.DeploymentCreated)},
			}},
		},
	}
	tests := []struct {
		name  string
		write func(b *bytes.Buffer) error
	}{
		{"deployments_waiting", func(b *bytes.Buffer) error {
			return deploymentTable(b, append([]*deploydb.Deployment{waiting}, sampleDeployments()...))
		}},
		{"deployment_detail", func(b *bytes.Buffer) error { return deploymentDetail(b, waiting) }},
		{"deployment_detail_no_promotions", func(b *bytes.Buffer) error { return deploymentDetail(b, sampleDeployments()[0]) }},
		{"promotion_results_soak", func(b *bytes.Buffer) error {
			return promotionResultTable(b, []*deploydb.PromotionResult{
				{ID: 5, Deployment: 9, Promotion: "release-approval", Type: "manual", Status: deploydb.PromotionSuccess, ReportedBy: "alice", CreatedAt: at("2025-11-26T07:00:00Z"), UpdatedAt: at("2025-11-26T10:00:00Z")},
				{ID: 6, Deployment: 9, Promotion: "bake", Type: "soak", SoakMs: 3600000, Status: deploydb.PromotionStarted, DueAt: at("2025-11-26T11:00:00Z"), CreatedAt: at("2025-11-26T07:00:00Z")},
			})
		}},
		{"environment_views", func(b *bytes.Buffer) error {
			return environmentViewTable(b, []*client.EnvironmentView{
				{Environment: deploydb.Environment{Ident: "integ", Description: "Integration"}},
				{Environment: deploydb.Environment{Ident: "staging", Description: "Staging"}, Frozen: "weekend (until 2025-11-29T06:00:00.000Z)"},
				{Environment: deploydb.Environment{Ident: "prod", Description: "Production", Production: true}, Lock: lock},
			})
		}},
		{"lock", func(b *bytes.Buffer) error { return lockTable(b, lock) }},
		{"status", func(b *bytes.Buffer) error { return statusMatrix(b, status) }},
		{"status_empty", func(b *bytes.Buffer) error {
			return statusMatrix(b, &client.Status{Environments: []client.StatusEnvironment{{Name: "integ"}, {Name: "prod"}}})
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
