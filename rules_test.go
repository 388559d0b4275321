package deploydb_test

import (
	"testing"

	"github.com/deploydb/deploydb"
)

// designTable is DESIGN.md §3's transition table, written out again by hand
// so that rules.go is checked against the document, not against itself.
var designTable = map[[2]deploydb.DeploymentStatus]deploydb.Mover{
	{deploydb.DeploymentNotStarted, deploydb.DeploymentCreated}:    deploydb.MoverEngine,
	{deploydb.DeploymentCreated, deploydb.DeploymentStarted}:       deploydb.MoverReport,
	{deploydb.DeploymentCreated, deploydb.DeploymentCompleted}:     deploydb.MoverReport,
	{deploydb.DeploymentStarted, deploydb.DeploymentCompleted}:     deploydb.MoverReport,
	{deploydb.DeploymentCreated, deploydb.DeploymentFailed}:        deploydb.MoverReport,
	{deploydb.DeploymentStarted, deploydb.DeploymentFailed}:        deploydb.MoverReport,
	{deploydb.DeploymentCompleted, deploydb.DeploymentSuccess}:     deploydb.MoverEngine,
	{deploydb.DeploymentCompleted, deploydb.DeploymentFailed}:      deploydb.MoverEngine,
	{deploydb.DeploymentNotStarted, deploydb.DeploymentSuperseded}: deploydb.MoverEngine,
	{deploydb.DeploymentNotStarted, deploydb.DeploymentCancelled}:  deploydb.MoverOperator,
	{deploydb.DeploymentCreated, deploydb.DeploymentCancelled}:     deploydb.MoverOperator,
	{deploydb.DeploymentStarted, deploydb.DeploymentCancelled}:     deploydb.MoverOperator,
}

// statusesAndStrangers is every status plus values that are not statuses.
var statusesAndStrangers = append(append([]deploydb.DeploymentStatus{}, deploydb.DeploymentStatuses...), "", "BOGUS", "started", "FAILURE")

func TestCanTransition(t *testing.T) {
	t.Parallel()
	if got := len(deploydb.DeploymentStatuses); got != 8 {
		t.Fatalf("DeploymentStatuses has %d statuses, DESIGN.md §3 names 8: update this test's table", got)
	}
	for _, from := range statusesAndStrangers {
		for _, to := range statusesAndStrangers {
			want, wantOK := designTable[[2]deploydb.DeploymentStatus{from, to}]
			got, ok := deploydb.CanTransition(from, to)
			if ok != wantOK || got != want {
				t.Errorf("CanTransition(%q, %q) = %q, %v; want %q, %v", from, to, got, ok, want, wantOK)
			}
		}
	}
}

func TestCanReport(t *testing.T) {
	t.Parallel()
	// Only the orchestrator's rows of the table.
	want := map[[2]deploydb.DeploymentStatus]bool{
		{deploydb.DeploymentCreated, deploydb.DeploymentStarted}:   true,
		{deploydb.DeploymentCreated, deploydb.DeploymentCompleted}: true,
		{deploydb.DeploymentStarted, deploydb.DeploymentCompleted}: true,
		{deploydb.DeploymentCreated, deploydb.DeploymentFailed}:    true,
		{deploydb.DeploymentStarted, deploydb.DeploymentFailed}:    true,
	}
	for _, from := range statusesAndStrangers {
		for _, to := range statusesAndStrangers {
			if got := deploydb.CanReport(from, to); got != want[[2]deploydb.DeploymentStatus{from, to}] {
				t.Errorf("CanReport(%q, %q) = %v, want %v", from, to, got, !got)
			}
		}
	}
	// An orchestrator may report only what ParseDeploymentReport accepts.
	for k := range want {
		if _, err := deploydb.ParseDeploymentReport(string(k[1])); err != nil {
			t.Errorf("CanReport allows %s -> %s but ParseDeploymentReport refuses %s: %v", k[0], k[1], k[1], err)
		}
	}
}

// TestStatusClassesAgreeWithTable checks that Terminal and Active, which
// callers use instead of the table, say what the table says.
func TestStatusClassesAgreeWithTable(t *testing.T) {
	t.Parallel()
	for _, from := range deploydb.DeploymentStatuses {
		out := false
		for _, to := range deploydb.DeploymentStatuses {
			if _, ok := deploydb.CanTransition(from, to); ok {
				out = true
			}
		}
		if from.Terminal() == out {
			t.Errorf("%s: Terminal() = %v but it has transitions out: %v", from, from.Terminal(), out)
		}
		// Active: handed to the orchestrator (reached from CREATED) and
		// not finished.
		wantActive := from == deploydb.DeploymentCreated || from == deploydb.DeploymentStarted || from == deploydb.DeploymentCompleted
		if from.Active() != wantActive {
			t.Errorf("%s: Active() = %v, want %v", from, from.Active(), wantActive)
		}
		if !from.Valid() {
			t.Errorf("%s: Valid() = false", from)
		}
	}
	for _, s := range []deploydb.DeploymentStatus{"", "BOGUS", "success"} {
		if s.Valid() {
			t.Errorf("%q: Valid() = true", s)
		}
	}
}
