package cdevents_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// linksLoader serves the link schemas the event schemas refer to
// ("links/embeddedlinksarray" relative to https://cdevents.dev/0.5.1/schema/)
// from the files on disk.
type linksLoader struct{ dir string }

func (l linksLoader) Load(url string) (any, error) {
	rest, ok := strings.CutPrefix(url, "https://cdevents.dev/0.5.1/schema/links/")
	if !ok {
		return nil, fmt.Errorf("unexpected schema URL %s", url)
	}
	f, err := os.Open(filepath.Join(l.dir, "links", rest+".json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// MustFileSchema compiles the schema of an event type straight from the
// schema files on disk, independently of the package's embedded registry:
// the file is found by the spec's naming (dev.cdevents.service.deployed.0.3.0
// → servicedeployed.json), and must enumerate typ.
func MustFileSchema(tb testing.TB, typ string) *jsonschema.Schema {
	tb.Helper()
	rest := strings.TrimPrefix(typ, "dev.cdevents.")
	parts := strings.Split(rest, ".")
	if len(parts) != 5 {
		tb.Fatalf("event type %q has no subject.predicate.major.minor.patch shape", typ)
	}
	dir, err := filepath.Abs("schemas")
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(dir, parts[0]+parts[1]+".json")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{"file": jsonschema.FileLoader{}, "https": linksLoader{dir}})
	sch, err := c.Compile(file)
	if err != nil {
		tb.Fatalf("compile %s: %v", file, err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.Contains(string(raw), `"`+typ+`"`) {
		tb.Fatalf("%s does not enumerate %s", file, typ)
	}
	return sch
}

// MustValidateFile validates doc against the schema compiled from disk.
func MustValidateFile(tb testing.TB, typ string, doc []byte) {
	tb.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
	if err != nil {
		tb.Fatalf("not JSON: %v\n%s", err, doc)
	}
	if err := MustFileSchema(tb, typ).Validate(inst); err != nil {
		tb.Fatalf("independent schema check: %v\n%s", err, doc)
	}
}

// MustReadConformance returns the conformance example name (without .json).
func MustReadConformance(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "conformance", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// ConformanceNames lists the conformance examples.
func ConformanceNames(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "conformance", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no conformance examples in testdata/conformance")
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names
}

// MustDecode decodes a JSON object.
func MustDecode(tb testing.TB, doc []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		tb.Fatalf("not a JSON object: %v\n%s", err, doc)
	}
	return m
}

// At returns the value at a dotted path of a decoded object, or nil.
func At(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// MustEdit decodes doc, sets (or with a nil value deletes) the value at a
// dotted path, and encodes it again.
func MustEdit(tb testing.TB, doc []byte, path string, value any) []byte {
	tb.Helper()
	m := MustDecode(tb, doc)
	keys := strings.Split(path, ".")
	o := m
	for _, k := range keys[:len(keys)-1] {
		next, ok := o[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			o[k] = next
		}
		o = next
	}
	last := keys[len(keys)-1]
	if value == nil {
		delete(o, last)
	} else {
		o[last] = value
	}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// RequireInvalid asserts err is an EINVALID *deploydb.Error whose message
// contains every want.
func RequireInvalid(tb testing.TB, err error, want ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error; want EINVALID containing %q", want)
	}
	var e *deploydb.Error
	if !errors.As(err, &e) || e.Code != deploydb.EINVALID {
		tb.Fatalf("error %v (%T) is not an EINVALID *deploydb.Error", err, err)
	}
	for _, w := range want {
		if !strings.Contains(e.Message, w) {
			tb.Errorf("message %q does not contain %q", e.Message, w)
		}
	}
	if len(e.Message) > 600 {
		tb.Errorf("message is %d bytes long; want a short one: %q", len(e.Message), e.Message)
	}
}
