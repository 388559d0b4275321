package deploydb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// Hook formats: what a hook sends when it has no body template.
const (
	// HookFormatDeployDB sends the DeployDB 0.3 payload of the event.
	HookFormatDeployDB = "deploydb"
	// HookFormatCDEvents sends the event as a CDEvent (CloudEvents binary
	// mode), for the events that have one.
	HookFormatCDEvents = "cdevents"
)

// MaxHookRender bounds what one template of a hook may produce.
const MaxHookRender = 1 << 20

// MaxHookTemplate bounds the text of one template of a hook, and so how
// deep its actions may nest (text/template's parser recurses on each).
const MaxHookTemplate = 64 << 10

// Hook is one webhook recipient: a bare URL (the 0.3 form) or an object
// that shapes the call (method, headers, body) for a real orchestrator.
type Hook struct {
	// Name identifies the hook in the delivery log and across reloads: the
	// name given in the config, else the URL as it may be shown.
	Name string `json:"name"`
	// URL is where the call goes, with ${env:NAME} expanded; a template
	// when Templates is set.
	URL string `json:"-"`
	// Display is the URL as it may be shown (API, logs): as written in the
	// config, ${env:NAME} unexpanded and passwords redacted. Empty means
	// URL may be shown.
	Display string `json:"url"`
	// Method is the HTTP method; empty means POST.
	Method string `json:"method,omitempty"`
	// Headers are sent with every call, in order; their values are
	// templates.
	Headers []HookHeader `json:"headers,omitempty"`
	// Body is the template of the body; empty means the format's payload.
	Body string `json:"-"`
	// BodyShown is the body as written in the config, ${env:NAME}
	// unexpanded: what may be shown.
	BodyShown string `json:"body,omitempty"`
	// ContentType replaces the format's content type when set.
	ContentType string `json:"contentType,omitempty"`
	// Format is HookFormatDeployDB (the default) or HookFormatCDEvents.
	Format string `json:"format,omitempty"`
	// Secrets are the Standard Webhooks secrets ("whsec_..."), newest
	// first; with any, every call is signed with each. Never shown.
	Secrets []string `json:"-"`
	// Signed reports whether the hook has secrets, for showing.
	Signed bool `json:"signed,omitempty"`
	// Events is the hook's event filter as configured (hooks: lists); the
	// Webhook map it sits in is what decides when it fires.
	Events []EventType `json:"events,omitempty"`
	// Env holds the values of the ${env:NAME} its templates use, read at
	// load; templates call env "NAME" for them, so that no value is ever
	// part of a template's text (or of its error messages).
	Env map[string]string `json:"-"`
	// Templates are the compiled templates; nil for a bare URL.
	Templates *HookTemplates `json:"-"`
}

// HookHeader is one header of a hook.
type HookHeader struct {
	Name string `json:"name"`
	// Value is the template of the value, ${env:NAME} expanded. Never
	// shown: headers carry credentials.
	Value string `json:"-"`
}

// HookTemplates are a hook's compiled templates.
type HookTemplates struct {
	URL *template.Template
	// Shown renders the URL as it may be shown: from the URL as written,
	// ${env:NAME} unexpanded.
	Shown   *template.Template
	Headers []*template.Template
	// Body is nil when the hook sends its format's payload.
	Body *template.Template
}

// Shown returns the form of the hook's URL that may be shown.
func (h Hook) Shown() string {
	if h.Display != "" {
		return h.Display
	}
	return h.URL
}

// IsBare reports whether h is a bare URL hook (the 0.3 form).
func (h Hook) IsBare() bool { return h.Templates == nil }

// HookContext is what a hook's templates see: one event, documented in
// docs/config.md. Fields that do not apply to the event are zero.
type HookContext struct {
	// Event is the event type, e.g. "deployment.created".
	Event       string
	EventID     int64
	Service     string
	Environment string
	Artifact    HookArtifact
	Deployment  HookDeployment
	Flow        HookFlow
	// Promotion is set on promotion events.
	Promotion HookPromotion
	// Time is when the event happened, RFC 3339 UTC.
	Time string
	// Actor is who caused the event; Reason why, in an operator's words.
	Actor  string
	Reason string
	// Detail says what happened in words when the type does not.
	Detail string
}

// HookArtifact is the artifact of a HookContext.
type HookArtifact struct {
	ID        int64
	Group     string
	Name      string
	Version   string
	SourceURL string
}

// HookDeployment is the deployment of a HookContext.
type HookDeployment struct {
	ID     int64
	Status string
	// Reason is pipeline, rollback or hotfix.
	Reason string
}

// HookFlow is the flow of a HookContext.
type HookFlow struct {
	ID int64
}

// HookPromotion is the promotion result of a HookContext.
type HookPromotion struct {
	Name    string
	Status  string
	InfoURL string
}

// ParseHookTemplate compiles one template of a hook. Using a field the
// context does not have is an error when the template runs. The template
// function env returns the values of env by name.
//
// A hook template renders one event once: range, template, define and
// block are refused, as nothing in the context is a list and without them
// a template has no loop and no recursion, so that RenderHookTemplate ends
// in time bounded by the template's size, which is at most
// MaxHookTemplate.
func ParseHookTemplate(name, text string, env map[string]string) (*template.Template, error) {
	if len(text) > MaxHookTemplate {
		return nil, fmt.Errorf("template: %s:1: the template is %d bytes long; a hook template is at most %d", name, len(text), MaxHookTemplate)
	}
	t, err := template.New(name).Funcs(hookFuncs(&renderBudget{})).Funcs(template.FuncMap{
		"env": func(name string) (string, error) {
			v, ok := env[name]
			if !ok {
				return "", fmt.Errorf("environment variable %s was not read at load", name)
			}
			return v, nil
		},
	}).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, cleanTemplateError(err)
	}
	if err := straightLine(t); err != nil {
		return nil, err
	}
	return t, nil
}

// straightLine refuses the actions that loop or recurse: range, template,
// and the templates define and block add.
func straightLine(t *template.Template) error {
	for _, other := range t.Templates() {
		if other.Name() != t.Name() {
			return fmt.Errorf("template: %s: define and block are not supported in a hook template (it defines %q)", at(other.Tree, other.Root), other.Name())
		}
	}
	if t.Tree == nil || t.Root == nil {
		return nil
	}
	var refused parse.Node
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if refused != nil || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode, *parse.TemplateNode:
			refused = n
		}
	}
	walk(t.Root)
	if refused == nil {
		return nil
	}
	why := "range is not supported in a hook template: it renders one event, which has no list to range over"
	if refused.Type() == parse.NodeTemplate {
		why = "template is not supported in a hook template: write the text in place"
	}
	return fmt.Errorf("template: %s: %s", at(t.Tree, refused), why)
}

// at says where n is in the template: name:line, as parse errors have it.
func at(t *parse.Tree, n parse.Node) string {
	loc, _ := t.ErrorContext(n)
	if i := strings.LastIndexByte(loc, ':'); i > 0 {
		loc = loc[:i]
	}
	return loc
}

// RenderHookTemplate runs t on c. Its output is at most MaxHookRender
// bytes, and so is what the template's functions produce in all: a
// template that would make more fails.
func RenderHookTemplate(t *template.Template, c *HookContext) ([]byte, error) {
	// The functions are bound to this render's budget; the clone is
	// cheap (the parse tree is shared) and leaves t safe to run
	// concurrently.
	run, err := t.Clone()
	if err != nil {
		return nil, err
	}
	run.Funcs(hookFuncs(&renderBudget{left: MaxHookRender}))
	var b limitedBuffer
	if err := run.Execute(&b, c); err != nil {
		return nil, cleanTemplateError(err)
	}
	return b.Bytes(), nil
}

var errRenderTooBig = fmt.Errorf("renders more than %d bytes", MaxHookRender)

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxHookRender {
		return 0, errRenderTooBig
	}
	return b.Buffer.Write(p)
}

// renderBudget is how many bytes the functions of one render may still
// produce. Each function checks an upper bound of its result against it
// before it makes the result, so that no call allocates beyond it.
type renderBudget struct {
	left int
	// overshoot is the most a result exceeded its bound by: zero unless
	// a bound is wrong, which the tests check.
	overshoot int
}

// spend takes n bytes of the budget, or fails when fewer are left.
func (b *renderBudget) spend(n int) error {
	if n > b.left {
		return errRenderTooBig
	}
	b.left -= n
	return nil
}

// call checks bound against the budget, runs f, and takes what its result
// really uses.
func (b *renderBudget) call(bound int, f func() string) (string, error) {
	if bound > b.left {
		return "", errRenderTooBig
	}
	s := f()
	b.overshoot = max(b.overshoot, len(s)-bound)
	return s, b.spend(len(s))
}

// hookFuncs are the functions a hook template may call besides the
// text/template builtins: json, pathescape and base64, and in place of the
// builtins that make strings (printf, print, println, html, js, urlquery)
// the same functions held to the render's budget.
func hookFuncs(b *renderBudget) template.FuncMap {
	return template.FuncMap{
		// json writes v as JSON: a string as a quoted JSON string.
		"json": func(v any) (string, error) {
			bound := escapeFactor*argSize(v) + 64
			if bound > b.left {
				return "", errRenderTooBig
			}
			out, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			b.overshoot = max(b.overshoot, len(out)-bound)
			return string(out), b.spend(len(out))
		},
		// pathescape escapes s for use as one segment of a URL path.
		"pathescape": func(s string) (string, error) {
			return b.call(3*len(s), func() string { return url.PathEscape(s) })
		},
		// base64 encodes s in standard base64 (HTTP Basic credentials).
		"base64": func(s string) (string, error) {
			return b.call(base64.StdEncoding.EncodedLen(len(s)), func() string { return base64.StdEncoding.EncodeToString([]byte(s)) })
		},
		"printf": func(format string, args ...any) (string, error) {
			return b.call(printfBound(format, args), func() string { return fmt.Sprintf(format, args...) })
		},
		"print": func(args ...any) (string, error) {
			return b.call(argsSize(args), func() string { return fmt.Sprint(args...) })
		},
		"println": func(args ...any) (string, error) {
			return b.call(argsSize(args)+1, func() string { return fmt.Sprintln(args...) })
		},
		"html": func(args ...any) (string, error) {
			return b.call(escapeFactor*argsSize(args), func() string { return template.HTMLEscaper(args...) })
		},
		"js": func(args ...any) (string, error) {
			return b.call(escapeFactor*argsSize(args), func() string { return template.JSEscaper(args...) })
		},
		"urlquery": func(args ...any) (string, error) {
			return b.call(3*argsSize(args), func() string { return template.URLQueryEscaper(args...) })
		},
	}
}

// escapeFactor bounds how much escaping grows a text: one byte becomes at
// most six (\u0000 in JSON and JavaScript, &#34; in HTML, \xff or
// 0xff with a separator in a printf verb).
const escapeFactor = 6

// argSize bounds the length of v as the print functions write it with
// %v, %+v or %#v: exact for strings, measured for the rest (the
// context's values are small).
func argSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return 4 * len(v) // [1 2 255]
	case nil:
		return len("<nil>")
	}
	return max(len(fmt.Sprintf("%#v", v)), len(fmt.Sprintf("%+v", v)))
}

// argsSize bounds the length of args as print or Sprint writes them.
func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		n += argSize(a) + 1 // a space between operands
	}
	return n
}

// maxPrintfStar is the largest width or precision fmt takes from an
// argument (*); one written in the format is at most 1e7+9 (printfNum).
const maxPrintfStar = 1e6

// printfBound bounds the length of fmt.Sprintf(format, args...): the
// format's text, then for every verb, parsed as fmt parses it, its width
// and precision and the longest argument escaped, and the arguments again
// as fmt lists extra ones. It overestimates on purpose: it is cheap, and
// exact enough for the short texts hook templates make.
func printfBound(format string, args []any) int {
	longest, all, leaves := 0, 0, 1
	for _, a := range args {
		n := argSize(a)
		longest, all = max(longest, n), all+n
		leaves = max(leaves, printLeaves(reflect.ValueOf(a), 0))
	}
	// %!(EXTRA type=value, ...), and the format's own text.
	bound := len(format) + 2*all + 64*len(args) + 16
	end := len(format)
	for i := 0; i < end; {
		if format[i] != '%' {
			i++
			continue
		}
		// As fmt's doPrintf: flags, an argument index, a width, a
		// precision (with its own index), an index, and the verb.
		for i++; i < end && strings.IndexByte("#0+- ", format[i]) >= 0; i++ {
		}
		var wid, prec int
		var afterIndex bool
		i, afterIndex = printfIndex(format, i)
		if i < end && format[i] == '*' {
			i, wid, afterIndex = i+1, maxPrintfStar, false
		} else {
			wid, _, i = printfNum(format, i)
		}
		if i+1 < end && format[i] == '.' {
			i, afterIndex = printfIndex(format, i+1)
			if i < end && format[i] == '*' {
				i, prec, afterIndex = i+1, maxPrintfStar, false
			} else {
				prec, _, i = printfNum(format, i)
			}
		}
		if !afterIndex {
			i, _ = printfIndex(format, i)
		}
		if i < end {
			_, size := utf8.DecodeRuneInString(format[i:])
			i += size
		}
		// The verb's text: an argument escaped, each of its values padded
		// to the width (or the precision: zeros, digits), a float's 300
		// digits, or %!v(type=value) for a wrong verb.
		bound += (wid+prec)*leaves + escapeFactor*longest + 512
	}
	return bound
}

// printLeaves counts the values fmt pads one by one when it prints v with
// a width or precision: one for a scalar, each field or element of a
// composite. The context's types are shallow: past a depth of 8 (a cycle)
// it counts one.
func printLeaves(v reflect.Value, depth int) int {
	if depth > 8 {
		return 1
	}
	n := 0
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			n = printLeaves(v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			n += printLeaves(v.Field(i), depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			n += printLeaves(v.Index(i), depth+1)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			n += printLeaves(it.Key(), depth+1) + printLeaves(it.Value(), depth+1)
		}
	}
	return max(n, 1)
}

// printfNum reads a number at s[i:] as fmt does: digits while the value is
// at most 1e6, so up to 1e7+9; a longer one makes fmt skip the rest of s.
func printfNum(s string, i int) (num int, isnum bool, next int) {
	for next = i; next < len(s) && '0' <= s[next] && s[next] <= '9'; next++ {
		if num > 1e6 {
			return 0, false, len(s)
		}
		num, isnum = num*10+int(s[next]-'0'), true
	}
	return num, isnum, next
}

// printfIndex skips an argument index [n] at s[i:] as fmt does, and says
// whether it was well-formed.
func printfIndex(s string, i int) (next int, ok bool) {
	if i >= len(s) || s[i] != '[' {
		return i, false
	}
	if len(s)-i < 3 {
		return i + 1, false
	}
	j := strings.IndexByte(s[i+1:], ']')
	if j < 0 {
		return i + 1, false
	}
	_, isnum, end := printfNum(s[:i+1+j], i+1)
	return i + 2 + j, isnum && end == i+1+j
}

// cleanTemplateError drops the template package's wrapping where it only
// repeats the template's name.
func cleanTemplateError(err error) error {
	var ee template.ExecError
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// SampleHookContext returns a context for event with every field that can
// be set on it set, to run templates against when a config is loaded. Free
// text holds quotes, spaces and ampersands, as real versions and reasons
// may, so that a template that does not escape them fails at load.
func SampleHookContext(event EventType) *HookContext {
	c := &HookContext{
		Event:       string(event),
		EventID:     1,
		Service:     "service",
		Environment: "environment",
		Artifact:    HookArtifact{ID: 1, Group: "com.example", Name: "artifact", Version: `1.0.0 "rc" & more`, SourceURL: "https://example.com/artifact-1.0.0.jar"},
		Deployment:  HookDeployment{ID: 1, Status: string(DeploymentCreated), Reason: string(ReasonPipeline)},
		Flow:        HookFlow{ID: 1},
		Time:        "2026-01-01T00:00:00.000Z",
		Actor:       "anonymous",
		Reason:      `"why" & how`,
		Detail:      `what "happened" & more`,
	}
	if event == EventPromotionCompleted {
		c.Promotion = HookPromotion{Name: "promotion", Status: string(PromotionSuccess), InfoURL: "https://example.com/info"}
	}
	return c
}
