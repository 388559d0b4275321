package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestCoordFreeze: a freeze window in force holds activation like a lock,
// the deployment says why it waits, and once the window is gone (here by a
// config reload that removes it) the timer activates it.
func TestCoordFreeze(t *testing.T) {
	t.Parallel()
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	end := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	w := newWorld(t, map[string]string{
		"environments/staging.yml": fmt.Sprintf("description: Staging\nfreezes:\n  - reason: release train\n    start: %s\n    end: %s\n", start, end),
	})
	a := w.publish("billing", "1.0.0")
	integ := w.flowOf("billing", a.ID).Deployments[0]
	w.deliver(integ.ID)
	staging := w.flowOf("billing", a.ID).Deployments[1]
	if staging.Status != deploydb.DeploymentNotStarted || staging.DueAt.IsZero() || !strings.HasPrefix(staging.Waiting, "frozen: release train") {
		t.Fatalf("staging during the freeze = %s due %v waiting %q, want NOT_STARTED, due, frozen: release train", staging.Status, staging.DueAt, staging.Waiting)
	}
	var env map[string]any
	w.c.call("GET", "/api/environments/staging", nil, 200, &env)
	if fr, _ := env["frozen"].(string); !strings.HasPrefix(fr, "release train") {
		t.Fatalf("environment frozen = %v", env["frozen"])
	}

	// Lift the freeze: the reload swaps the config and the timer activates
	// what waited.
	if err := os.WriteFile(filepath.Join(w.cfgDir, "environments", "staging.yml"), []byte("description: Staging\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.c.call("POST", "/api/config/reload", nil, 200, nil)
	if !pollUntil(10*time.Second, func() bool { return w.dep(staging.ID).Status == deploydb.DeploymentCreated }) {
		t.Fatalf("staging after the freeze ended = %+v, want CREATED", w.dep(staging.ID))
	}
	w.waitHook(deploydb.EventDeploymentCreated, about(staging.ID), 1)
}
