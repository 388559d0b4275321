package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/goccy/go-yaml/ast"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// hooksKey is the key of a webhook mapping that lists hook objects with
// their own events filter, beside the event groups.
const hooksKey = "hooks"

// hookKeys are the keys of a hook object.
var hookKeys = []string{"name", "url", "method", "headers", "body", "contentType", "format", "secret", "events"}

// hookMethods are the methods a hook may use.
var hookMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete}

// reservedHeaders are set by DeployDB on every call; a hook may not set
// them itself.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection",
	webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature}

// placedHook is a hook and where the config defines it, for the checks of
// hook names across files.
type placedHook struct {
	hook  *deploydb.Hook
	file  string
	line  int
	field string
	named bool
}

func (d *decoder) place(h *deploydb.Hook, n ast.Node, field string, named bool) {
	d.hooks = append(d.hooks, placedHook{hook: h, file: d.file, line: line(n), field: field, named: named})
}

// isMapping reports whether the resolved node r is a mapping.
func isMapping(r ast.Node) bool {
	switch r.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// hook decodes one hook listed under event: a bare absolute http or https
// URL (the 0.3 form) or a hook object. A bare URL's Display is the URL as
// written in the file (with ${env:NAME} unexpanded) and without a password,
// so that what the API shows holds no secret.
func (d *decoder) hook(n ast.Node, field string, event deploydb.EventType) (*deploydb.Hook, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	if r != nil && isMapping(r) {
		return d.hookObject(n, field, event)
	}
	u, raw, ok := d.hookURL(n, field)
	if !ok {
		return nil, false
	}
	// Named by the URL as written; shown without its password.
	h := &deploydb.Hook{Name: raw, URL: u}
	if shown := redactUserinfo(raw); shown != u {
		h.Display = shown
	}
	d.place(h, n, field, false)
	return h, true
}

// hookList decodes the hooks: list of a webhook mapping: hook objects, each
// added to w under every event of its filter.
func (d *decoder) hookList(w deploydb.Webhook, n ast.Node, field string) {
	items, _ := d.sequence(n, field)
	for i, item := range items {
		f := index(field, i)
		r, ok := d.resolve(item, f)
		if !ok {
			continue
		}
		if r == nil || !isMapping(r) {
			d.errorf(item, f, "must be a hook object (url, events, ...), not %s", describe(r))
			continue
		}
		h, ok := d.hookObject(item, f, "")
		if !ok {
			continue
		}
		for _, ev := range h.Events {
			w[ev] = append(w[ev], *h)
		}
	}
}

// hookObject decodes a hook object. under is the event it is listed under,
// empty for one in a hooks: list, which has an events filter instead.
func (d *decoder) hookObject(n ast.Node, field string, under deploydb.EventType) (*deploydb.Hook, bool) {
	entries, ok := d.object(n, field, hookKeys)
	if !ok {
		return nil, false
	}
	h := &deploydb.Hook{Format: deploydb.HookFormatDeployDB, Env: map[string]string{}}
	var urlText text
	var urlEntry, bodyEntry, eventsEntry *entry
	var headerNodes []entry
	named, eventsGiven := false, false
	for i, e := range entries {
		switch e.key {
		case "name":
			t, tok := d.str(e.value, e.field)
			switch {
			case !tok:
				ok = false
			case !validIdent(t.value):
				d.errorf(e.value, e.field, "invalid hook name %s: letters, digits, '.', '_' and '-'", t)
				ok = false
			default:
				h.Name, named = t.value, true
			}
		case "url":
			urlEntry = &entries[i]
			t, tok := d.templateText(e.value, e.field, h.Env)
			ok = ok && tok
			urlText, h.URL = t, t.value
		case "method":
			t, tok := d.str(e.value, e.field)
			m := strings.ToUpper(t.value)
			switch {
			case !tok:
				ok = false
			case !slices.Contains(hookMethods, m):
				d.errorf(e.value, e.field, "unknown method %s; valid: %s", t, strings.Join(hookMethods, ", "))
				ok = false
			default:
				h.Method = m
			}
		case "headers":
			hs, hok := d.mapping(e.value, e.field)
			ok = ok && hok
			headerNodes = hs
		case "body":
			bodyEntry = &entries[i]
			t, tok := d.templateText(e.value, e.field, h.Env)
			ok = ok && tok
			h.Body, h.BodyShown = t.value, t.raw
		case "contentType":
			t, tok := d.str(e.value, e.field)
			if !tok {
				ok = false
			} else if _, _, err := mime.ParseMediaType(t.value); err != nil {
				d.errorf(e.value, e.field, "invalid content type %s: %v", t, err)
				ok = false
			} else {
				h.ContentType = t.value
			}
		case "format":
			t, tok := d.str(e.value, e.field)
			switch {
			case !tok:
				ok = false
			case t.value == deploydb.HookFormatDeployDB || t.value == deploydb.HookFormatCDEvents:
				h.Format = t.value
			default:
				d.errorf(e.value, e.field, "unknown format %s; valid: %s, %s", t, deploydb.HookFormatDeployDB, deploydb.HookFormatCDEvents)
				ok = false
			}
		case "secret":
			secrets, sok := d.secrets(e.value, e.field)
			ok = ok && sok
			h.Secrets, h.Signed = secrets, len(secrets) > 0
		case "events":
			eventsEntry, eventsGiven = &entries[i], true
		}
	}
	if urlEntry == nil {
		d.addf(line(n), join(field, "url"), "required: a hook object has a url")
		return nil, false
	}
	h.Display = redactUserinfo(urlText.raw)
	if !named {
		// The URL as written is the name; what is shown of it is
		// without user info, query and fragment (ShownHookName).
		h.Name = urlText.raw
	}
	for _, hn := range headerNodes {
		hv, hok := d.header(hn, h.Env)
		if !hok {
			ok = false
			continue
		}
		h.Headers = append(h.Headers, hv)
	}
	if h.Method == http.MethodGet && h.Body != "" {
		d.errorf(bodyEntry.value, bodyEntry.field, "a GET hook sends no body; use POST, PUT or PATCH")
		ok = false
	}
	if h.Method == http.MethodGet && h.Format == deploydb.HookFormatCDEvents {
		d.errorf(n, field, "a GET hook sends no body, and format cdevents sends the CDEvent as the body; use POST")
		ok = false
	}
	// The events the hook fires on.
	supported := deploydb.WebhookEvents
	if h.Format == deploydb.HookFormatCDEvents {
		supported = deploydb.CDEventsEvents
		if bodyEntry != nil {
			d.errorf(bodyEntry.value, bodyEntry.field, "a hook of format cdevents sends the CDEvent; drop body, or use format deploydb")
			ok = false
		}
	}
	switch {
	case under != "" && eventsGiven:
		d.errorf(eventsEntry.keyNode, eventsEntry.field, "a hook listed under %s fires on that event; list hooks with an events filter under %s:", under, hooksKey)
		ok = false
	case under != "":
		if !slices.Contains(supported, under) {
			d.errorf(n, field, "a hook of format cdevents cannot send %s: no CDEvent matches it; cdevents hooks send %s", under, eventList(supported))
			ok = false
		}
		h.Events = nil
	case eventsGiven:
		evs, eok := d.hookEvents(eventsEntry.value, eventsEntry.field, supported, h.Format)
		ok = ok && eok
		h.Events = evs
	case h.Format == deploydb.HookFormatCDEvents:
		// A CDEvents consumer wants every event that has a CDEvent.
		h.Events = slices.Clone(supported)
	default:
		d.addf(line(n), join(field, "events"), "required: the events the hook fires on, such as [deployment.created]; valid: %s", eventList(supported))
		ok = false
	}
	if !ok {
		return nil, false
	}
	if !d.compileHook(h, urlEntry, bodyEntry, headerNodes, under) {
		return nil, false
	}
	d.place(h, n, field, named)
	return h, true
}

// templateText returns the template at n with every ${env:NAME} turned
// into a call of the template function env, its value read into vals: the
// template's text (and so its error messages) never holds a value, and a
// value is never run as template code. Outside an action it becomes
// {{env "NAME"}}; inside one, where it is an argument
// ({{base64 ${env:TOKEN}}}), (env "NAME"). Inside a quoted string in an
// action it cannot work, and is an error that says how to write it.
func (d *decoder) templateText(n ast.Node, field string, vals map[string]string) (text, bool) {
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
	const open = "${env:"
	var b strings.Builder
	inAction, inString := false, byte(0)
	for i := 0; i < len(s); {
		switch {
		case inString != 0:
			if s[i] == '\\' && inString == '"' && i+1 < len(s) {
				b.WriteString(s[i : i+2])
				i += 2
				continue
			}
			if s[i] == inString {
				inString = 0
			} else if strings.HasPrefix(s[i:], open) {
				d.errorf(n, field, "${env:...} inside a quoted string in {{ }} is not expanded; write it as an argument, such as {{printf \"%%s:%%s\" ${env:USER} ${env:TOKEN}}}")
				return text{}, false
			}
		case inAction && strings.HasPrefix(s[i:], "}}"):
			inAction = false
			b.WriteString("}}")
			i += 2
			continue
		case !inAction && strings.HasPrefix(s[i:], "{{"):
			inAction = true
			b.WriteString("{{")
			i += 2
			continue
		case inAction && (s[i] == '"' || s[i] == '`'):
			inString = s[i]
		case strings.HasPrefix(s[i:], open):
			rest := s[i+len(open):]
			j := strings.IndexByte(rest, '}')
			if j < 0 {
				d.errorf(n, field, "unterminated %q: write ${env:NAME}", open)
				return text{}, false
			}
			name := rest[:j]
			i += len(open) + j + 1
			switch v := d.getenv(name); {
			case !validEnvName(name):
				d.errorf(n, field, "invalid environment variable name %q in ${env:...}", name)
				ok = false
			case v == "":
				d.errorf(n, field, "environment variable %s is not set (used as ${env:%s})", name, name)
				ok = false
			default:
				vals[name] = v
			}
			call := "env " + strconv.Quote(name)
			if inAction {
				b.WriteString("(" + call + ")")
			} else {
				b.WriteString("{{" + call + "}}")
			}
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return text{value: b.String(), raw: s, line: line(n)}, ok
}

// redactUserinfo returns the URL s as written (it may not parse as a URL:
// "https://u:pw@{{.Environment}}.example.com") with a password in it
// replaced by xxxxx.
func redactUserinfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// header decodes one header of a hook object.
func (d *decoder) header(e entry, vals map[string]string) (deploydb.HookHeader, bool) {
	name := http.CanonicalHeaderKey(e.key)
	switch {
	case !validHeaderName(e.key):
		d.errorf(e.keyNode, e.field, "invalid header name %q", e.key)
		return deploydb.HookHeader{}, false
	case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, name) }):
		msg := "DeployDB sets this header itself"
		if strings.EqualFold(name, "Content-Type") {
			msg = "set the content type with contentType"
		}
		d.errorf(e.keyNode, e.field, "header %s: %s", name, msg)
		return deploydb.HookHeader{}, false
	case strings.HasPrefix(strings.ToLower(name), "ce-"):
		d.errorf(e.keyNode, e.field, "header %s: CloudEvents headers are set by format cdevents", name)
		return deploydb.HookHeader{}, false
	}
	t, ok := d.templateText(e.value, e.field, vals)
	return deploydb.HookHeader{Name: name, Value: t.value}, ok
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		alnum := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", c) {
			return false
		}
	}
	return true
}

// secrets decodes the secret of a hook object: one "whsec_..." string, or
// a list of them while a secret is rotated. Messages never show a secret.
func (d *decoder) secrets(n ast.Node, field string) ([]string, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return nil, false
	}
	var items []ast.Node
	var fields []string
	if _, isSeq := r.(*ast.SequenceNode); isSeq {
		list, _ := d.sequence(n, field)
		for i, item := range list {
			items, fields = append(items, item), append(fields, index(field, i))
		}
		if len(items) == 0 {
			d.errorf(n, field, "an empty list of secrets; drop the key to send unsigned calls")
			return nil, false
		}
	} else {
		items, fields = []ast.Node{n}, []string{field}
	}
	var out []string
	for i, item := range items {
		t, tok := d.str(item, fields[i])
		if !tok {
			ok = false
			continue
		}
		if _, err := webhook.ParseSecret(t.value); err != nil {
			d.errorf(item, fields[i], "invalid secret: %s (write whsec_ and the base64 of a random key, e.g. from `deploydb webhook secret`)", deploydb.ErrorMessage(err))
			ok = false
			continue
		}
		out = append(out, t.value)
	}
	return out, ok
}

// hookEvents decodes the events filter of a hook object.
func (d *decoder) hookEvents(n ast.Node, field string, supported []deploydb.EventType, format string) ([]deploydb.EventType, bool) {
	items, ok := d.sequence(n, field)
	var out []deploydb.EventType
	for i, item := range items {
		f := index(field, i)
		t, tok := d.str(item, f)
		if !tok {
			ok = false
			continue
		}
		ev := deploydb.EventType(t.value)
		switch {
		case !slices.Contains(deploydb.WebhookEvents, ev):
			d.errorf(item, f, "unknown event %s; valid: %s", t, eventList(deploydb.WebhookEvents))
			ok = false
		case !slices.Contains(supported, ev):
			d.errorf(item, f, "a hook of format %s cannot send %s: no CDEvent matches it; cdevents hooks send %s", format, ev, eventList(supported))
			ok = false
		case slices.Contains(out, ev):
			d.errorf(item, f, "event %s is listed twice", ev)
			ok = false
		default:
			out = append(out, ev)
		}
	}
	if ok && len(out) == 0 {
		d.errorf(n, field, "an empty events filter: the hook would never fire")
		return nil, false
	}
	return out, ok
}

func eventList(evs []deploydb.EventType) string {
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = string(e)
	}
	return strings.Join(names, ", ")
}

// compileHook compiles the templates of h and runs them against a sample of
// every event the hook fires on, so that a mistake shows at load, not at the
// first delivery: a field the context lacks, a URL that is not an absolute
// http(s) URL, a JSON body that is not JSON.
func (d *decoder) compileHook(h *deploydb.Hook, urlEntry, bodyEntry *entry, headers []entry, under deploydb.EventType) bool {
	ts := &deploydb.HookTemplates{}
	ok := true
	parse := func(e *entry, name, text string) *template.Template {
		t, err := deploydb.ParseHookTemplate(name, text, h.Env)
		if err != nil {
			d.errorf(e.value, e.field, "invalid template: %s", templateMessage(err))
			ok = false
		}
		return t
	}
	ts.URL = parse(urlEntry, "url", h.URL)
	// The URL as it may be shown is the URL as written, rendered; should
	// it not parse (an ${env:NAME} inside an action), the text as written
	// is shown.
	ts.Shown, _ = deploydb.ParseHookTemplate("url", h.Display, nil)
	for i, hd := range h.Headers {
		ts.Headers = append(ts.Headers, parse(&headers[i], "header", hd.Value))
	}
	if h.Body != "" {
		ts.Body = parse(bodyEntry, "body", h.Body)
	}
	if !ok {
		return false
	}
	events := h.Events
	if under != "" {
		events = []deploydb.EventType{under}
	}
	jsonBody := h.Body != "" && isJSONType(h.ContentType)
	for _, ev := range events {
		c := deploydb.SampleHookContext(ev)
		u, err := deploydb.RenderHookTemplate(ts.URL, c)
		if err != nil {
			d.errorf(urlEntry.value, urlEntry.field, "template fails on %s: %s", ev, templateMessage(err))
			return false
		}
		if msg := checkURL(string(u)); msg != "" {
			d.errorf(urlEntry.value, urlEntry.field, "on %s the URL renders as %s", ev, msg)
			return false
		}
		for i, t := range ts.Headers {
			v, err := deploydb.RenderHookTemplate(t, c)
			if err != nil {
				d.errorf(headers[i].value, headers[i].field, "template fails on %s: %s", ev, templateMessage(err))
				return false
			}
			if strings.ContainsAny(string(v), "\r\n\x00") {
				d.errorf(headers[i].value, headers[i].field, "on %s the header value holds a line break or NUL", ev)
				return false
			}
		}
		if ts.Body != nil {
			b, err := deploydb.RenderHookTemplate(ts.Body, c)
			if err != nil {
				d.errorf(bodyEntry.value, bodyEntry.field, "template fails on %s: %s", ev, templateMessage(err))
				return false
			}
			if jsonBody && !json.Valid(b) {
				d.errorf(bodyEntry.value, bodyEntry.field, "on %s the body is not valid JSON (content type %s); use {{json .Field}} to quote values", ev, contentTypeOf(h))
				return false
			}
		}
	}
	h.Templates = ts
	return true
}

// isJSONType reports whether a hook's body must be JSON: the content type
// is JSON, or not given (JSON is the default of a body template).
func isJSONType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func contentTypeOf(h *deploydb.Hook) string {
	if h.ContentType == "" {
		return "application/json"
	}
	return h.ContentType
}

// checkURL returns why u is not an absolute http or https URL, or "".
// The message does not show u: it may hold a secret.
func checkURL(u string) string {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "an invalid URL"
	case (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
		return "something other than an absolute http:// or https:// URL"
	case strings.ContainsAny(u, " \"<>\\^`{|}"):
		return "a URL with characters that must be escaped (a space, a quote, ...): use {{urlquery .Field}} in the query, {{pathescape .Field}} in the path"
	}
	return ""
}

// templateMessage returns the text of a template error. Templates hold
// expanded ${env:NAME} values as string constants, and the template
// package quotes the template's text only in parse errors about
// constants, so the text is cut to what names the problem.
func templateMessage(err error) string {
	msg := err.Error()
	// "template: url:1: function "x" not defined" -> "line 1: function "x" not defined"
	if rest, ok := strings.CutPrefix(msg, "template: "); ok {
		if name, after, ok := strings.Cut(rest, ":"); ok && !strings.Contains(name, " ") {
			msg = "line " + after
		}
	}
	return msg
}

// checkHooks gives every hook one definition per name across the config
// and indexes them by name.
func (l *loader) checkHooks(cfg *deploydb.Config) {
	cfg.HookNamed = map[string]*deploydb.Hook{}
	where := map[string]placedHook{}
	for _, p := range l.hooks {
		first, seen := where[p.hook.Name]
		if !seen {
			where[p.hook.Name] = p
			cfg.HookNamed[p.hook.Name] = p.hook
			continue
		}
		if sameHook(first.hook, p.hook) {
			continue
		}
		at := first.file
		if first.line > 0 {
			at += ":" + strconv.Itoa(first.line)
		}
		msg := fmt.Sprintf("hook name %q is also used by a different hook at %s; give each its own name", p.hook.Name, at)
		if !p.named && !first.named {
			msg = fmt.Sprintf("this hook and the one at %s have the same URL %s but differ; give each a name: to tell their deliveries apart", at, p.hook.Name)
		}
		l.problems = append(l.problems, Problem{File: p.file, Line: p.line, Field: p.field, Message: msg})
	}
}

// sameHook reports whether a and b make the same calls.
func sameHook(a, b *deploydb.Hook) bool {
	// The events filter is where the hook is listed, not what it sends.
	return a.URL == b.URL && a.Method == b.Method && slices.Equal(a.Headers, b.Headers) && a.Body == b.Body &&
		a.ContentType == b.ContentType && a.Format == b.Format && slices.Equal(a.Secrets, b.Secrets) &&
		maps.Equal(a.Env, b.Env) && a.IsBare() == b.IsBare()
}
