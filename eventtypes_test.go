package deploydb_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestEventTypes: EventTypes names every EventType constant once, so that
// what lists them all (live pages, completion) misses none.
func TestEventTypes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "status.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); ok && id.Name == "EventType" {
				for _, val := range v.Values {
					declared = append(declared, val.(*ast.BasicLit).Value[1:len(val.(*ast.BasicLit).Value)-1])
				}
			}
		}
	}
	var listed []string
	for _, e := range deploydb.EventTypes {
		listed = append(listed, string(e))
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) < 20 || !slices.Equal(declared, listed) {
		t.Errorf("EventTypes = %v, want every constant of status.go: %v", listed, declared)
	}
}
