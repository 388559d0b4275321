package cdevents

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/deploydb/deploydb"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// schemaFiles holds the CDEvents 0.5.1 schemas, unchanged (schemas/NOTICE).
//
//go:embed schemas/*.json schemas/links/*.json
var schemaFiles embed.FS

// registry is the compiled schemas, by event type.
type registry struct {
	schemas map[string]*jsonschema.Schema
	// byKind maps a kind ("service.deployed") to the event type 0.5.1
	// defines for it, to say which version is expected.
	byKind map[string]string
}

// schemas compiles the embedded schemas once, on first use (or Compile);
// the result is never modified afterwards.
var schemas = sync.OnceValues(compileSchemas)

// Compile compiles the embedded schemas now, if they are not yet (once per
// process; it takes tens of milliseconds). DeployDB renders the events it
// emits inside the write transaction that records them, which every write
// of its batch waits for: the store calls Compile before it begins a write
// that may render one, so that the first does not pay for it there.
// Returns an error only for a broken build (the embedded schemas do not
// compile).
func Compile() error {
	_, err := schemas()
	return err
}

func compileSchemas() (*registry, error) {
	c := jsonschema.NewCompiler()
	// Formats (date-time, uri, uri-reference) are only annotations in
	// draft 2020-12 unless asserted; CDEvents means them as constraints.
	c.AssertFormat()
	r := &registry{schemas: make(map[string]*jsonschema.Schema), byKind: make(map[string]string)}
	ids := make(map[string]string) // event type → schema $id
	for _, pattern := range []string{"schemas/links/*.json", "schemas/*.json"} {
		names, err := fs.Glob(schemaFiles, pattern)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			data, err := schemaFiles.ReadFile(name)
			if err != nil {
				return nil, err
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("cdevents: schema %s: %w", name, err)
			}
			id, _ := lookup(doc, "$id").(string)
			if id == "" {
				return nil, fmt.Errorf("cdevents: schema %s has no $id", name)
			}
			if err := c.AddResource(id, doc); err != nil {
				return nil, fmt.Errorf("cdevents: schema %s: %w", name, err)
			}
			if strings.HasPrefix(name, "schemas/links/") {
				continue
			}
			enum, _ := lookup(doc, "properties", "context", "properties", "type", "enum").([]any)
			if len(enum) != 1 {
				return nil, fmt.Errorf("cdevents: schema %s does not name one event type", name)
			}
			typ, _ := enum[0].(string)
			if kindOf(typ) == "" {
				return nil, fmt.Errorf("cdevents: schema %s names event type %q", name, typ)
			}
			ids[typ] = id
		}
	}
	for typ, id := range ids {
		sch, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("cdevents: compile schema of %s: %w", typ, err)
		}
		r.schemas[typ] = sch
		r.byKind[kindOf(typ)] = typ
	}
	return r, nil
}

// lookup returns the value at path in a decoded JSON document, or nil.
func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// Validate checks one CDEvent document (context and subject, not a
// CloudEvent envelope) against the CDEvents 0.5.1 schema of its
// context.type, formats included. Returns EINVALID naming the problem (the
// JSON pointer and the schema's message; Fields lists each) for a document
// that is not JSON, is larger than MaxDocumentSize or deeper than
// MaxDocumentDepth, has an unknown type, or does not match its schema. Any
// other error is a broken build (the embedded schemas do not compile).
func Validate(doc []byte) error {
	_, err := validate(doc)
	return err
}

// validate is Validate returning the event type.
func validate(doc []byte) (string, error) {
	if len(doc) > MaxDocumentSize {
		return "", deploydb.Errorf(deploydb.EINVALID, "the CDEvent is %d bytes; DeployDB reads at most %d", len(doc), MaxDocumentSize)
	}
	if err := checkDepth(doc); err != nil {
		return "", err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return "", deploydb.Errorf(deploydb.EINVALID, "the CDEvent is not JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", deploydb.Errorf(deploydb.EINVALID, "a CDEvent is a JSON object with context and subject, not %s", jsonKind(v))
	}
	ctx, ok := obj["context"]
	if !ok {
		return "", deploydb.Errorf(deploydb.EINVALID, "context is missing: a CDEvent is a JSON object with context and subject")
	}
	ctxObj, ok := ctx.(map[string]any)
	if !ok {
		return "", deploydb.Errorf(deploydb.EINVALID, "context must be an object, not %s", jsonKind(ctx))
	}
	t, ok := ctxObj["type"]
	if !ok {
		return "", deploydb.Errorf(deploydb.EINVALID, "context.type is missing: it names the event (%s, ...)", ServiceDeployed)
	}
	typ, ok := t.(string)
	if !ok {
		return "", deploydb.Errorf(deploydb.EINVALID, "context.type must be a string, not %s", jsonKind(t))
	}
	reg, err := schemas()
	if err != nil {
		return "", err // a broken build: EINTERNAL
	}
	sch := reg.schemas[typ]
	if sch == nil {
		if known := reg.byKind[kindOf(typ)]; known != "" {
			return "", deploydb.Errorf(deploydb.EINVALID, "context.type %s is not a CDEvents %s event type: this version of the specification defines %s",
				short(typ), SpecVersion, known)
		}
		return "", deploydb.Errorf(deploydb.EINVALID, "context.type %s is not a CDEvents %s event type (dev.cdevents.<subject>.<predicate>.<version>)",
			short(typ), SpecVersion)
	}
	if err := sch.Validate(v); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return "", fmt.Errorf("cdevents: validate %s: %w", typ, err)
		}
		return "", schemaError(typ, verr)
	}
	return typ, nil
}

// schemaError turns a validation error tree into one readable message (its
// first problem) and a field error per problem.
func schemaError(typ string, verr *jsonschema.ValidationError) error {
	var fields []deploydb.FieldError
	seen := make(map[deploydb.FieldError]bool)
	var walk func(e *jsonschema.ValidationError)
	add := func(f deploydb.FieldError) {
		if !seen[f] {
			seen[f] = true
			fields = append(fields, f)
		}
	}
	walk = func(e *jsonschema.ValidationError) {
		switch e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			if len(e.Causes) > 0 {
				// One problem per alternative would read as if each were
				// required; say that none matched, and why each did not.
				add(deploydb.FieldError{Field: pointer(e.InstanceLocation), Message: alternatives(e)})
				return
			}
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		add(deploydb.FieldError{Field: pointer(e.InstanceLocation), Message: leafMessage(e)})
	}
	walk(verr)
	// The library reports properties in map order; sort for messages that
	// do not change from one call to the next.
	slices.SortFunc(fields, func(a, b deploydb.FieldError) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	if len(fields) == 0 {
		fields = append(fields, deploydb.FieldError{Field: "", Message: verr.Error()})
	}
	where := fields[0].Field
	if where == "" {
		where = "(document)"
	}
	msg := "invalid " + typ + " event: " + where + ": " + fields[0].Message
	if len(fields) > 1 {
		msg += " (and " + strconv.Itoa(len(fields)-1) + " more)"
	}
	const maxFields = 20
	if len(fields) > maxFields {
		fields = fields[:maxFields]
	}
	return &deploydb.Error{Code: deploydb.EINVALID, Message: msg, Fields: fields}
}

// alternatives describes an anyOf or oneOf that no alternative matched, by
// the first problem of each alternative.
func alternatives(e *jsonschema.ValidationError) string {
	base := pointer(e.InstanceLocation)
	var why []string
	for _, c := range e.Causes {
		for len(c.Causes) > 0 {
			c = c.Causes[0]
		}
		m := leafMessage(c)
		if rel := strings.TrimPrefix(pointer(c.InstanceLocation), base); rel != "" {
			m = rel + ": " + m
		}
		if !slices.Contains(why, m) {
			why = append(why, m)
		}
	}
	return "matches none of the allowed shapes (" + strings.Join(why, "; ") + ")"
}

// leafMessage returns the schema's message of one problem without the
// "at '<pointer>': " prefix the library puts before it.
func leafMessage(e *jsonschema.ValidationError) string {
	s := e.Error()
	prefix := "at " + libQuote(pointer(e.InstanceLocation)) + ": "
	return cut(strings.TrimPrefix(s, prefix), 200)
}

// cut shortens s to at most max bytes (on a rune boundary), marking the cut;
// the library quotes offending values in full.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// libQuote quotes as the jsonschema library does in its messages.
func libQuote(s string) string {
	s = fmt.Sprintf("%q", s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}

// pointer returns the JSON pointer (RFC 6901) of an instance location.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// checkDepth refuses documents nested deeper than MaxDocumentDepth before
// they are decoded.
func checkDepth(doc []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range doc {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxDocumentDepth {
				return deploydb.Errorf(deploydb.EINVALID, "the CDEvent is nested deeper than %d levels", MaxDocumentDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return "a number"
	}
}
