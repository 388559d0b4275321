package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Limits that keep a hostile or broken file from costing more than a
// moment. Real configuration files are a few hundred bytes, a handful of
// levels deep.
const (
	// maxFileSize is the largest file Load reads.
	maxFileSize = 1 << 20
	// maxFlowDepth bounds the nesting of [...] and {...}, and maxIndent the
	// column at which a block entry may start (which bounds block nesting):
	// the YAML parser's cost grows with the square of the nesting depth.
	maxFlowDepth = 64
	maxIndent    = 256
	// maxValueDepth bounds the nesting of free-form values (promotion
	// attributes) and of merge keys, which aliases could make recursive.
	maxValueDepth = 32
	// maxSteps bounds the alias resolutions in one file, so that aliases
	// referring to aliases ("billion laughs") cannot blow up.
	maxSteps = 1 << 20
	// maxTokens bounds the YAML tokens (comments aside) of one file: the
	// parser's cost also grows with the square of the keys of a mapping.
	// A large real configuration file has a few hundred.
	maxTokens = 10000
)

// utf8BOM is stripped from the start of a file: some editors write it.
const utf8BOM = "\ufeff"

// decoder turns the YAML syntax tree of one file into values. It records a
// Problem for everything it cannot accept and carries on, so that one pass
// reports every problem in the file. Values that were rejected are reported
// as not ok to the caller, which leaves them out without a second message.
type decoder struct {
	file     string // slash-separated, relative to the configuration directory
	getenv   func(string) string
	problems []Problem
	refs     []ref
	anchors  []anchor
	steps    int
	overrun  bool // maxSteps was exceeded and reported
	hooks    []placedHook
}

// anchor is one "&name" definition, for resolving aliases.
type anchor struct {
	name   string
	offset int
	value  ast.Node
}

// ref is a reference from one model to another, checked once every file is
// loaded.
type ref struct {
	kind  kind
	name  text
	file  string
	field string
}

// entry is one key of a mapping.
type entry struct {
	key     string
	keyNode ast.Node
	value   ast.Node
	field   string // path of the value
}

// text is a string value from a file, after ${env:NAME} expansion.
type text struct {
	value string
	raw   string // before expansion
	line  int
}

// String quotes the value for a message. An expanded value is shown as
// written in the file, never as expanded: it may hold a secret.
func (t text) String() string {
	if t.raw != t.value {
		return strconv.Quote(t.raw) + " (expanded)"
	}
	return strconv.Quote(t.value)
}

func (d *decoder) addf(line int, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// errorf records a problem with the value n.
func (d *decoder) errorf(n ast.Node, field, format string, args ...any) {
	d.addf(line(n), field, format, args...)
}

// line returns the line n starts on, or 0 if it is unknown.
func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// join returns the path of key inside the value at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index returns the path of element i of the list at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parse parses data as one YAML document and returns its body, nil for an
// empty document. It reports a problem and returns false if data is not
// YAML it is willing to parse.
func (d *decoder) parse(data []byte) (body ast.Node, ok bool) {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	defer func() {
		// The parser is third-party code fed with untrusted input: a
		// panic there is a file we cannot read, not a crash of the server.
		if r := recover(); r != nil {
			d.addf(0, "", "YAML syntax error: the parser failed on this file")
			body, ok = nil, false
		}
	}()
	tokens := lexer.Tokenize(string(data))
	if !d.checkSize(tokens) {
		return nil, false
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		var yerr yaml.Error
		if errors.As(err, &yerr) {
			l := 0
			if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
				l = tk.Position.Line
			}
			d.addf(l, "", "YAML syntax error: %s", yerr.GetMessage())
		} else {
			d.addf(0, "", "YAML syntax error: %v", err)
		}
		return nil, false
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, directive := doc.Body.(*ast.DirectiveNode); directive {
			continue // %YAML 1.2 before "---"
		}
		docs = append(docs, doc)
	}
	switch len(docs) {
	case 0:
		return nil, true
	case 1:
		d.collectAnchors(docs[0].Body)
		return docs[0].Body, true
	}
	l := line(docs[1].Body)
	if docs[1].Start != nil && docs[1].Start.Position != nil {
		l = docs[1].Start.Position.Line
	}
	d.addf(l, "", "a file holds one YAML document, this one has %d", len(docs))
	return nil, false
}

// checkSize rejects token streams larger or nested deeper than any
// configuration needs, before the parser spends quadratic time on them.
func (d *decoder) checkSize(tokens token.Tokens) bool {
	depth, lastLine, count := 0, 0, 0
	for _, tk := range tokens {
		if tk.Position == nil {
			continue
		}
		if tk.Type != token.CommentType {
			if count++; count > maxTokens {
				d.addf(tk.Position.Line, "", "more than %d YAML tokens: too large for a configuration file", maxTokens)
				return false
			}
		}
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > maxFlowDepth {
				d.addf(tk.Position.Line, "", "nested more than %d levels deep", maxFlowDepth)
				return false
			}
		case token.SequenceEndType, token.MappingEndType:
			depth = max(depth-1, 0)
		case token.CommentType:
			continue
		}
		// Outside [...] and {...}, a new level of nesting starts a line
		// or follows "-" or "?" on it, always further right.
		first := tk.Position.Line != lastLine
		lastLine = tk.Position.Line
		block := first || tk.Type == token.SequenceEntryType || tk.Type == token.MappingKeyType
		if depth == 0 && block && tk.Position.Column > maxIndent {
			d.addf(tk.Position.Line, "", "indented more than %d columns", maxIndent)
			return false
		}
	}
	return true
}

// collectAnchors records every anchor of the document, in document order.
func (d *decoder) collectAnchors(body ast.Node) {
	ast.Walk(anchorCollector{d}, body)
}

type anchorCollector struct{ d *decoder }

func (c anchorCollector) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil && a.Start != nil && a.Start.Position != nil {
		c.d.anchors = append(c.d.anchors, anchor{name: a.Name.GetToken().Value, offset: a.Start.Position.Offset, value: a.Value})
	}
	return c
}

// resolve follows tags, anchors and aliases to the node that holds the
// value. A nil node stands for null. It reports a problem and returns false
// for an alias it cannot follow.
func (d *decoder) resolve(n ast.Node, field string) (ast.Node, bool) {
	for hops := 0; ; hops++ {
		if d.steps++; d.steps > maxSteps {
			if !d.overrun {
				d.overrun = true
				d.errorf(n, field, "too many aliases: more than %d expansions", maxSteps)
			}
			return nil, false
		}
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			n = v.Value
		case *ast.MappingKeyNode:
			n = v.Value
		case *ast.AliasNode:
			if hops > 100 {
				d.errorf(v, field, "alias refers to itself")
				return nil, false
			}
			target, ok := d.anchor(v, field)
			if !ok {
				return nil, false
			}
			n = target
		case *ast.NullNode:
			return nil, true
		default:
			return n, true
		}
	}
}

// anchor returns the value of the anchor alias a refers to: the last one of
// that name defined before it.
func (d *decoder) anchor(a *ast.AliasNode, field string) (ast.Node, bool) {
	if a.Value == nil || a.Start == nil || a.Start.Position == nil {
		d.errorf(a, field, "alias without a name")
		return nil, false
	}
	name := a.Value.GetToken().Value
	for i := len(d.anchors) - 1; i >= 0; i-- {
		if an := d.anchors[i]; an.name == name && an.offset < a.Start.Position.Offset {
			return an.value, true
		}
	}
	d.errorf(a, field, "alias *%s refers to no anchor &%s defined before it", name, name)
	return nil, false
}

// describe names the type of a resolved node for messages.
func describe(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// mapping returns the entries of the mapping n, in file order, with the
// entries of merge keys ("<<: *defaults") after them. Null is an empty
// mapping.
func (d *decoder) mapping(n ast.Node, field string) ([]entry, bool) {
	return d.mappingDepth(n, field, 0)
}

func (d *decoder) mappingDepth(n ast.Node, field string, depth int) ([]entry, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	var values []*ast.MappingValueNode
	switch v := r.(type) {
	case nil:
		return nil, true
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	default:
		d.errorf(n, field, "must be a mapping (key: value), not %s", describe(r))
		return nil, false
	}
	if depth > maxValueDepth {
		d.errorf(n, field, "merge keys nested more than %d levels deep", maxValueDepth)
		return nil, false
	}
	var own, merged []entry
	ok = true
	for _, mv := range values {
		if mv.Key != nil && mv.Key.IsMergeKey() {
			es, mok := d.merge(mv.Value, field, depth)
			merged = append(merged, es...)
			ok = ok && mok
			continue
		}
		key, kok := d.key(mv.Key, field)
		if !kok {
			ok = false
			continue
		}
		own = append(own, entry{key: key, keyNode: mv.Key, value: mv.Value, field: join(field, key)})
	}
	// Keys written out win over merged ones, earlier merged ones over later.
	seen := make(map[string]bool, len(own)+len(merged))
	for _, e := range own {
		seen[e.key] = true
	}
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			own = append(own, e)
		}
	}
	return own, ok
}

// merge returns the entries a merge key brings in: those of a mapping or of
// a list of mappings.
func (d *decoder) merge(n ast.Node, field string, depth int) ([]entry, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	seq, isSeq := r.(*ast.SequenceNode)
	if !isSeq {
		return d.mappingDepth(n, field, depth+1)
	}
	var out []entry
	for _, item := range seq.Values {
		es, iok := d.mappingDepth(item, field, depth+1)
		out = append(out, es...)
		ok = ok && iok
	}
	return out, ok
}

// key returns the text of a mapping key, which must be a scalar.
func (d *decoder) key(n ast.Node, field string) (string, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return "", false
	}
	if r == nil {
		d.errorf(n, field, "empty key")
		return "", false
	}
	s, ok := scalar(r)
	if !ok {
		d.errorf(n, field, "a key must be a string, not %s", describe(r))
	}
	return s, ok
}

// object returns the entries of the mapping n, reporting every key that is
// neither one of known nor one of legacy (accepted, but not advertised). It
// returns false if n is not a mapping, so that the caller does not also
// report the keys missing from it.
func (d *decoder) object(n ast.Node, field string, known []string, legacy ...string) ([]entry, bool) {
	entries, ok := d.mapping(n, field)
	out := entries[:0]
	for _, e := range entries {
		if !slices.Contains(known, e.key) && !slices.Contains(legacy, e.key) {
			d.errorf(e.keyNode, e.field, "unknown key %q; valid keys: %s", e.key, strings.Join(known, ", "))
			continue
		}
		out = append(out, e)
	}
	return out, ok
}

// sequence returns the elements of the list n. Null is an empty list.
func (d *decoder) sequence(n ast.Node, field string) ([]ast.Node, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	switch v := r.(type) {
	case nil:
		return nil, true
	case *ast.SequenceNode:
		return v.Values, true
	}
	d.errorf(n, field, "must be a list, not %s", describe(r))
	return nil, false
}

// scalar returns the text of a resolved scalar node as written: a number
// or boolean where a string is expected is taken as its text, as YAML
// decoders do.
func scalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	}
	return "", false
}

// str returns the string n with ${env:NAME} expanded. Null is "".
func (d *decoder) str(n ast.Node, field string) (text, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return text{}, false
	}
	if r == nil {
		return text{line: line(n)}, true
	}
	s, ok := scalar(r)
	if !ok {
		d.errorf(n, field, "must be a string, not %s", describe(r))
		return text{}, false
	}
	v, ok := d.expand(s, line(n), field)
	return text{value: v, raw: s, line: line(n)}, ok
}

// boolean returns the boolean n. Null is false.
func (d *decoder) boolean(n ast.Node, field string) (bool, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return false, false
	}
	switch v := r.(type) {
	case nil:
		return false, true
	case *ast.BoolNode:
		return v.Value, true
	}
	d.errorf(n, field, "must be true or false, not %s", describe(r))
	return false, false
}

// expand replaces every ${env:NAME} in s with the value of the environment
// variable NAME. An unset or empty variable is an error: getenv cannot tell
// them apart, and an empty secret or URL is never what was meant. The
// expanded text is not expanded again.
func (d *decoder) expand(s string, line int, field string) (string, bool) {
	return d.expandWith(s, line, field, nil)
}

// expandWith is expand, writing each value as quote returns it when quote
// is not nil; quote also gets the text written before the value.
func (d *decoder) expandWith(s string, line int, field string, quote func(v, before string) string) (string, bool) {
	const open = "${env:"
	if !strings.Contains(s, open) {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+len(open):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			d.addf(line, field, "unterminated %q: write ${env:NAME}", open)
			return "", false
		}
		name := rest[:j]
		s = rest[j+1:]
		if !validEnvName(name) {
			d.addf(line, field, "invalid environment variable name %q in ${env:...}", name)
			ok = false
			continue
		}
		v := d.getenv(name)
		if v == "" {
			d.addf(line, field, "environment variable %s is not set (used as ${env:%s})", name, name)
			ok = false
			continue
		}
		if quote != nil {
			v = quote(v, b.String())
		}
		b.WriteString(v)
	}
	return b.String(), ok
}

// validEnvName reports whether name is a portable environment variable
// name: letters, digits and underscores, not starting with a digit.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// value converts a free-form value (promotion attributes) to Go: a
// map[string]any, []any, string (expanded), int64 or uint64, float64, bool
// or nil.
func (d *decoder) value(n ast.Node, field string, depth int) (any, bool) {
	if depth > maxValueDepth {
		d.errorf(n, field, "nested more than %d levels deep", maxValueDepth)
		return nil, false
	}
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	switch v := r.(type) {
	case nil:
		return nil, true
	case *ast.MappingNode, *ast.MappingValueNode:
		entries, ok := d.mapping(n, field)
		m := make(map[string]any, len(entries))
		for _, e := range entries {
			x, xok := d.value(e.value, e.field, depth+1)
			m[e.key] = x
			ok = ok && xok
		}
		return m, ok
	case *ast.SequenceNode:
		list := make([]any, 0, len(v.Values))
		for i, item := range v.Values {
			x, xok := d.value(item, index(field, i), depth+1)
			list = append(list, x)
			ok = ok && xok
		}
		return list, ok
	case *ast.BoolNode:
		return v.Value, true
	case *ast.IntegerNode:
		return v.Value, true
	case *ast.FloatNode:
		if math.IsInf(v.Value, 0) || math.IsNaN(v.Value) {
			d.errorf(n, field, "must be a finite number")
			return nil, false
		}
		return v.Value, true
	case *ast.InfinityNode, *ast.NanNode:
		d.errorf(n, field, "must be a finite number")
		return nil, false
	case *ast.StringNode, *ast.LiteralNode:
		t, ok := d.str(n, field)
		return t.value, ok
	}
	d.errorf(n, field, "unsupported value: %s", describe(r))
	return nil, false
}
