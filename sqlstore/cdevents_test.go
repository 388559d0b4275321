package sqlstore

import (
	"testing"

	"github.com/deploydb/deploydb"
)

// TestCompileCDEvents: a write under a config with a hook that sends
// CDEvents has the schemas compiled before it begins; one under a config
// without has them not compiled, and a config is looked at once.
func TestCompileCDEvents(t *testing.T) {
	s := New(Driver{Name: "test"})
	plain := &deploydb.Config{HookNamed: map[string]*deploydb.Hook{"ci": {Format: deploydb.HookFormatDeployDB}}}
	s.compileCDEvents(plain)
	if s.cdevents.Load() || s.checked.Load() != plain {
		t.Fatalf("after a config without CDEvents hooks: compiled %v, checked %p, want false, %p", s.cdevents.Load(), s.checked.Load(), plain)
	}
	with := &deploydb.Config{HookNamed: map[string]*deploydb.Hook{"ci": {}, "events": {Format: deploydb.HookFormatCDEvents}}}
	s.compileCDEvents(with)
	if !s.cdevents.Load() {
		t.Fatal("after a config with a CDEvents hook: the schemas are not compiled")
	}
}
