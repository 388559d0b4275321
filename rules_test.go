package deploydb_test

import (
	"errors"
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

func TestParseDeploymentReport(t *testing.T) {
	t.Parallel()
	// Every status parses, so that the engine can answer one that may not
	// be reported with the current state (409); anything else is a bad
	// request naming the field.
	for _, s := range deploydb.DeploymentStatuses {
		if got, err := deploydb.ParseDeploymentReport(string(s)); err != nil || got != s {
			t.Errorf("ParseDeploymentReport(%q) = %q, %v; want %q", s, got, err, s)
		}
	}
	for _, s := range []string{"", "BOGUS", "started", "FAILURE", " STARTED"} {
		got, err := deploydb.ParseDeploymentReport(s)
		wantBadStatus(t, "ParseDeploymentReport", s, string(got), err)
	}
}

func TestParsePromotionReport(t *testing.T) {
	t.Parallel()
	want := map[string]deploydb.PromotionStatus{
		"SUCCESS":     deploydb.PromotionSuccess,
		"FAILED":      deploydb.PromotionFailed,
		"FAILURE":     deploydb.PromotionFailed, // the 0.3 Jenkins plugin's spelling
		"NOT_STARTED": deploydb.PromotionNotStarted,
		"STARTED":     deploydb.PromotionStarted,
	}
	for s, w := range want {
		if got, err := deploydb.ParsePromotionReport(s); err != nil || got != w {
			t.Errorf("ParsePromotionReport(%q) = %q, %v; want %q", s, got, err, w)
		}
	}
	for _, s := range []string{"", "success", "PASSED", "COMPLETED", "FAILURE "} {
		got, err := deploydb.ParsePromotionReport(s)
		wantBadStatus(t, "ParsePromotionReport", s, string(got), err)
	}
}

func wantBadStatus(t *testing.T, fn, s, got string, err error) {
	t.Helper()
	var e *deploydb.Error
	if !errors.As(err, &e) || e.Code != deploydb.EBADREQUEST || got != "" {
		t.Errorf("%s(%q) = %q, %v; want EBADREQUEST", fn, s, got, err)
		return
	}
	if len(e.Fields) != 1 || e.Fields[0].Field != "status" {
		t.Errorf("%s(%q) fields = %+v, want one about status", fn, s, e.Fields)
	}
}

func TestFlowStatusTerminal(t *testing.T) {
	t.Parallel()
	for s, want := range map[deploydb.FlowStatus]bool{
		deploydb.FlowCreated:    false,
		deploydb.FlowSuccess:    true,
		deploydb.FlowFailed:     true,
		deploydb.FlowSuperseded: true,
		deploydb.FlowCancelled:  true,
	} {
		if got := s.Terminal(); got != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, want)
		}
	}
}
