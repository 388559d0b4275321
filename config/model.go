package config

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml/ast"

	"github.com/deploydb/deploydb"
)

// kind is one kind of model, named after its directory.
type kind string

// The kinds of model, in the order they are loaded.
const (
	kindService     kind = "services"
	kindEnvironment kind = "environments"
	kindPipeline    kind = "pipelines"
	kindPromotion   kind = "promotions"
	kindWebhook     kind = "webhook"
)

// noun returns the singular name of the kind, for messages.
func (k kind) noun() string {
	switch k {
	case kindService:
		return "service"
	case kindEnvironment:
		return "environment"
	case kindPipeline:
		return "pipeline"
	case kindPromotion:
		return "promotion"
	}
	return "webhook"
}

// refTo records a reference to the model of kind k named by t, to check
// once every file is loaded. An empty name is reported here.
func (d *decoder) refTo(k kind, t text, n ast.Node, field string) bool {
	if t.value == "" {
		d.errorf(n, field, "must name a %s, not be empty", k.noun())
		return false
	}
	d.refs = append(d.refs, ref{kind: k, name: t, file: d.file, field: field})
	return true
}

// idents returns the list of model names at n, each recorded as a
// reference to kind k. A name listed twice is an error. It reports false
// if it found a problem.
func (d *decoder) idents(k kind, n ast.Node, field string) ([]string, bool) {
	items, ok := d.sequence(n, field)
	out := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, item := range items {
		f := index(field, i)
		t, tok := d.str(item, f)
		switch {
		case !tok:
			ok = false
			continue
		case seen[t.value]:
			d.errorf(item, f, "%s %s is listed twice", k.noun(), t)
			ok = false
			continue
		case !d.refTo(k, t, item, f):
			ok = false
			continue
		}
		seen[t.value] = true
		out = append(out, t.value)
	}
	return out, ok
}

// failureStrategy returns the failure strategy among entries, accepting
// 0.3's spelling failure_strategy and its Stop. It returns "" when none is
// set.
func (d *decoder) failureStrategy(entries []entry) deploydb.FailureStrategy {
	var found *entry
	for i, e := range entries {
		if e.key != "failureStrategy" && e.key != "failure_strategy" {
			continue
		}
		if found != nil {
			d.errorf(e.keyNode, e.field, "set either %s or %s, not both", found.key, e.key)
			continue
		}
		found = &entries[i]
	}
	if found == nil {
		return ""
	}
	t, ok := d.str(found.value, found.field)
	if !ok || t.value == "" {
		return ""
	}
	switch v := strings.ToLower(t.value); v {
	case "notify", "stop":
		return deploydb.FailureNotify
	case string(deploydb.FailureRollback), string(deploydb.FailureIgnore):
		return deploydb.FailureStrategy(v)
	}
	d.errorf(found.value, found.field, "unknown failure strategy %s; valid: notify, rollback, ignore", t)
	return ""
}

// service decodes a services/<ident>.yml file.
func (d *decoder) service(ident string, body ast.Node) *deploydb.Service {
	s := &deploydb.Service{Ident: ident, Artifacts: []string{}, Pipelines: []string{}, Promotions: []string{}}
	entries, bodyOK := d.object(body, "", []string{"description", "artifacts", "pipelines", "promotions", "failureStrategy"}, "failure_strategy")
	var pipelines *entry
	pipelinesOK := true
	for i, e := range entries {
		switch e.key {
		case "description":
			t, _ := d.str(e.value, e.field)
			s.Description = t.value
		case "artifacts":
			s.Artifacts = d.artifacts(e.value, e.field)
		case "pipelines":
			pipelines = &entries[i]
			s.Pipelines, pipelinesOK = d.idents(kindPipeline, e.value, e.field)
		case "promotions":
			s.Promotions, _ = d.idents(kindPromotion, e.value, e.field)
		}
	}
	s.FailureStrategy = d.failureStrategy(entries)
	if s.FailureStrategy == "" {
		s.FailureStrategy = deploydb.FailureNotify
	}
	// One pipeline per service for now: an artifact starts one flow per
	// consuming service, and a flow follows one pipeline.
	switch {
	case !bodyOK:
	case pipelines == nil:
		d.addf(line(body), "pipelines", "required: the service's pipeline, as a list of one")
	case len(s.Pipelines) > 1:
		d.errorf(pipelines.value, pipelines.field, "a service moves through exactly one pipeline, not %d", len(s.Pipelines))
	case len(s.Pipelines) == 0 && pipelinesOK:
		d.errorf(pipelines.value, pipelines.field, "required: the service's pipeline, as a list of one")
	}
	return s
}

// artifacts decodes a list of "group:name".
func (d *decoder) artifacts(n ast.Node, field string) []string {
	items, _ := d.sequence(n, field)
	out := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, item := range items {
		f := index(field, i)
		t, ok := d.str(item, f)
		if !ok {
			continue
		}
		group, name, found := strings.Cut(t.value, ":")
		switch {
		case !found || group == "" || name == "" || strings.Contains(name, ":"):
			d.errorf(item, f, "artifact %s must be group:name, with exactly one colon", t)
		case strings.IndexFunc(t.value, unicode.IsSpace) >= 0:
			d.errorf(item, f, "artifact %s must not contain spaces", t)
		case seen[t.value]:
			d.errorf(item, f, "artifact %s is listed twice", t)
		default:
			seen[t.value] = true
			out = append(out, t.value)
		}
	}
	return out
}

// environment decodes an environments/<ident>.yml file.
func (d *decoder) environment(ident string, body ast.Node) *deploydb.Environment {
	env := &deploydb.Environment{Ident: ident, Webhook: deploydb.Webhook{}, Freezes: []deploydb.Freeze{}}
	entries, _ := d.object(body, "", []string{"description", "webhook", "production", "freezes"})
	for _, e := range entries {
		switch e.key {
		case "description":
			t, _ := d.str(e.value, e.field)
			env.Description = t.value
		case "production":
			env.Production, _ = d.boolean(e.value, e.field)
		case "webhook":
			d.webhook(env.Webhook, e.value, e.field)
		case "freezes":
			env.Freezes = d.freezes(e.value, e.field)
		}
	}
	return env
}

// pipeline decodes a pipelines/<ident>.yml file.
func (d *decoder) pipeline(ident string, body ast.Node) *deploydb.Pipeline {
	p := &deploydb.Pipeline{Ident: ident, Environments: []deploydb.PipelineStage{}}
	entries, bodyOK := d.object(body, "", []string{"description", "environments"})
	var envs *entry
	envsOK := true
	for i, e := range entries {
		switch e.key {
		case "description":
			t, _ := d.str(e.value, e.field)
			p.Description = t.value
		case "environments":
			envs = &entries[i]
			p.Environments, envsOK = d.stages(e.value, e.field)
		}
	}
	switch {
	case !bodyOK:
	case envs == nil:
		d.addf(line(body), "environments", "required: a pipeline has at least one environment")
	case len(p.Environments) == 0 && envsOK:
		d.errorf(envs.value, envs.field, "a pipeline has at least one environment")
	}
	return p
}

// stages decodes the environments of a pipeline: a mapping from each
// environment, in pipeline order, to its stage settings. It reports false
// if it found a problem.
func (d *decoder) stages(n ast.Node, field string) ([]deploydb.PipelineStage, bool) {
	out := []deploydb.PipelineStage{}
	if r, ok := d.resolve(n, field); ok {
		if _, isSeq := r.(*ast.SequenceNode); isSeq {
			d.errorf(n, field, "must be a mapping from each environment, in pipeline order, to its settings ({promotions: [...]}), not a list")
			return out, false
		}
	}
	entries, ok := d.mapping(n, field)
	for _, e := range entries {
		t := text{value: e.key, raw: e.key, line: line(e.keyNode)}
		if !d.refTo(kindEnvironment, t, e.keyNode, e.field) {
			ok = false
			continue
		}
		stage := deploydb.PipelineStage{Environment: e.key, Promotions: []string{}}
		settings, _ := d.object(e.value, e.field, []string{"promotions", "failureStrategy"}, "failure_strategy")
		for _, s := range settings {
			if s.key == "promotions" {
				stage.Promotions, _ = d.idents(kindPromotion, s.value, s.field)
			}
		}
		stage.FailureStrategy = d.failureStrategy(settings)
		out = append(out, stage)
	}
	return out, ok
}

// promotion decodes a promotions/<ident>.yml file.
func (d *decoder) promotion(ident string, body ast.Node) *deploydb.Promotion {
	p := &deploydb.Promotion{Ident: ident, Attributes: map[string]any{}}
	entries, bodyOK := d.object(body, "", []string{"type", "description", "attributes"})
	var typ, attrs *entry
	attrsOK := true
	attrNodes := map[string]ast.Node{}
	for i, e := range entries {
		switch e.key {
		case "type":
			typ = &entries[i]
			t, ok := d.str(e.value, e.field)
			switch {
			case !ok:
			case t.value == "":
				d.errorf(e.value, e.field, "required: basic, manual or soak")
			default:
				if p.Type = promotionType(t.value); p.Type == "" {
					d.errorf(e.value, e.field, "unknown promotion type %s; valid: basic, manual, soak", t)
				}
			}
		case "description":
			t, _ := d.str(e.value, e.field)
			p.Description = t.value
		case "attributes":
			attrs = &entries[i]
			var list []entry
			list, attrsOK = d.mapping(e.value, e.field)
			for _, a := range list {
				v, ok := d.value(a.value, a.field, 1)
				p.Attributes[a.key] = v
				attrNodes[a.key] = a.value
				attrsOK = attrsOK && ok
			}
		}
	}
	if !bodyOK {
		return p
	}
	if typ == nil {
		d.addf(line(body), "type", "required: basic, manual or soak")
		return p
	}
	if !attrsOK {
		return p // the attributes' problems are reported already
	}
	// A missing attribute is pointed at on the attributes key, or else on
	// the type that needs it.
	at := typ.value
	if attrs != nil {
		at = attrs.keyNode
	}
	switch p.Type {
	case deploydb.PromotionTypeManual:
		g, ok := p.Attributes["allowedGroup"]
		if s, isString := g.(string); !ok {
			d.errorf(at, "attributes.allowedGroup", "required for a manual promotion: the group allowed to report its result")
		} else if !isString || s == "" {
			d.errorf(attrNodes["allowedGroup"], "attributes.allowedGroup", "must be a group name, a non-empty string")
		}
		if v, ok := p.Attributes["allowSelfApproval"]; ok {
			if _, isBool := v.(bool); !isBool {
				d.errorf(attrNodes["allowSelfApproval"], "attributes.allowSelfApproval", "must be true or false: whether the token that published the artifact may approve it")
			}
		}
	case deploydb.PromotionTypeSoak:
		v, ok := p.Attributes["duration"]
		if !ok {
			d.errorf(at, "attributes.duration", "required for a soak promotion: how long the deployment must stay completed, such as \"30m\"")
			break
		}
		s, _ := v.(string)
		if dur, err := time.ParseDuration(s); err != nil || dur <= 0 {
			d.errorf(attrNodes["duration"], "attributes.duration", "must be a positive duration such as \"30m\" or \"2h\"")
		}
	}
	return p
}

// promotionType normalises a promotion type, accepting the 0.3 class
// names, and returns "" if it is unknown.
func promotionType(s string) string {
	switch v := strings.ToLower(s); v {
	case deploydb.PromotionTypeBasic, deploydb.PromotionTypeManual, deploydb.PromotionTypeSoak:
		return v
	}
	// 0.3 named a Java class: deploydb.models.promotion.BasicPromotionImpl.
	class := s[strings.LastIndexByte(s, '.')+1:]
	switch class {
	case "BasicPromotionImpl":
		return deploydb.PromotionTypeBasic
	case "ManualLDAPPromotionImpl":
		return deploydb.PromotionTypeManual
	}
	return ""
}

// webhook decodes the hooks at n into w, after those already there:
// {deployment: {created: [hook, ...], ...}, promotion: {...}, flow: {...},
// hooks: [hook object with events, ...]}.
func (d *decoder) webhook(w deploydb.Webhook, n ast.Node, field string) {
	groups, _ := d.mapping(n, field)
	for _, g := range groups {
		if g.key == hooksKey {
			d.hookList(w, g.value, g.field)
			continue
		}
		valid := eventsOf(g.key)
		if len(valid) == 0 {
			d.errorf(g.keyNode, g.field, "unknown event group %q; valid: %s, or %s: [...]", g.key, strings.Join(eventGroups(), ", "), hooksKey)
			continue
		}
		events, _ := d.mapping(g.value, g.field)
		for _, e := range events {
			event := deploydb.EventType(g.key + "." + e.key)
			if !slices.Contains(valid, event) {
				names := make([]string, len(valid))
				for i, v := range valid {
					names[i] = string(v)
				}
				d.errorf(e.keyNode, e.field, "unknown event %q; valid: %s", event, strings.Join(names, ", "))
				continue
			}
			items, _ := d.sequence(e.value, e.field)
			for i, item := range items {
				f := index(e.field, i)
				if h, ok := d.hook(item, f, event); ok {
					w[event] = append(w[event], *h)
				}
			}
		}
	}
}

// hookURL decodes an absolute http or https URL and returns it, and as
// written in the file.
func (d *decoder) hookURL(n ast.Node, field string) (string, string, bool) {
	r, ok := d.resolve(n, field)
	if !ok {
		return "", "", false
	}
	if _, isScalar := scalar(r); r != nil && !isScalar {
		d.errorf(n, field, "must be a URL, not %s", describe(r))
		return "", "", false
	}
	t, ok := d.str(n, field)
	if !ok {
		return "", "", false
	}
	if t.value == "" {
		d.errorf(n, field, "must be a URL, not empty")
		return "", "", false
	}
	u, err := url.Parse(t.value)
	if err != nil {
		reason := err
		var uerr *url.Error
		if errors.As(err, &uerr) {
			reason = uerr.Err // without the URL, which may hold a secret
		}
		d.errorf(n, field, "invalid URL %s: %v", t, reason)
		return "", "", false
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := t.String()
		if t.raw == t.value && u.User != nil {
			shown = strconv.Quote(u.Redacted()) // no password in messages
		}
		d.errorf(n, field, "invalid URL %s: must be an absolute http:// or https:// URL", shown)
		return "", "", false
	}
	return t.value, t.raw, true
}

// eventGroups returns the first parts of the webhook event names
// ("deployment"), in the order of deploydb.WebhookEvents.
func eventGroups() []string {
	var out []string
	for _, e := range deploydb.WebhookEvents {
		g, _, _ := strings.Cut(string(e), ".")
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// eventsOf returns the webhook events of group.
func eventsOf(group string) []deploydb.EventType {
	var out []deploydb.EventType
	for _, e := range deploydb.WebhookEvents {
		if strings.HasPrefix(string(e), group+".") {
			out = append(out, e)
		}
	}
	return out
}
