package config_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// hookEnv is a getenv for hook tests.
func hookEnv(name string) string {
	switch name {
	case "JENKINS_TOKEN":
		return "t0k3n"
	case "HOOK_SECRET":
		return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	case "BRACES":
		return "{{.Service}}"
	}
	return ""
}

const jenkinsHooks = `
hooks:
  - name: jenkins-deploy
    url: https://jenkins.example.com/job/deploy-{{.Service}}/buildWithParameters?token=${env:JENKINS_TOKEN}&VERSION={{urlquery .Artifact.Version}}
    headers:
      X-Note: "{{.Environment}}"
    events: [deployment.created]
    secret: [ "${env:HOOK_SECRET}", "whsec_c2Vjb25kLXNlY3JldA==" ]
  - name: cd
    url: https://cd.example.com/events
    format: cdevents
deployment:
  failed:
    - https://plain.example.com/failed
    - name: pager
      url: https://events.pagerduty.com/v2/enqueue
      body: '{"routing_key": "k", "summary": {{json .Service}}}'
`

func TestLoad_HookObjects(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": jenkinsHooks}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	created := cfg.Hooks("integ", deploydb.EventDeploymentCreated)
	if len(created) != 1 || created[0].Name != "jenkins-deploy" {
		t.Fatalf("deployment.created hooks = %+v, want jenkins-deploy only", created)
	}
	j := created[0]
	if j.IsBare() || j.Templates == nil || len(j.Templates.Headers) != 1 {
		t.Fatalf("jenkins hook not compiled: %+v", j)
	}
	if j.Display != "https://jenkins.example.com/job/deploy-{{.Service}}/buildWithParameters?token=${env:JENKINS_TOKEN}&VERSION={{urlquery .Artifact.Version}}" {
		t.Errorf("Display = %q, want the URL as written", j.Display)
	}
	if want := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldA=="}; !slices.Equal(j.Secrets, want) || !j.Signed {
		t.Errorf("Secrets = %q, want %q", j.Secrets, want)
	}
	c := deploydb.SampleHookContext(deploydb.EventDeploymentCreated)
	c.Artifact.Version = "1.0 beta&x"
	u, err := deploydb.RenderHookTemplate(j.Templates.URL, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://jenkins.example.com/job/deploy-service/buildWithParameters?token=t0k3n&VERSION=1.0+beta%26x"; string(u) != want {
		t.Errorf("URL renders %q, want %q", u, want)
	}

	// A cdevents hook without a filter fires on every event that has a CDEvent.
	for _, ev := range deploydb.WebhookEvents {
		hs := cfg.Hooks("integ", ev)
		has := slices.ContainsFunc(hs, func(h deploydb.Hook) bool { return h.Name == "cd" })
		if has != slices.Contains(deploydb.CDEventsEvents, ev) {
			t.Errorf("cd hook on %s: %v", ev, has)
		}
	}
	failed := cfg.Hooks("integ", deploydb.EventDeploymentFailed)
	var names []string
	for _, h := range failed {
		names = append(names, h.Name)
	}
	if want := []string{"https://plain.example.com/failed", "pager"}; !slices.Equal(names, want) {
		t.Errorf("deployment.failed hooks = %q, want %q", names, want)
	}
	for _, name := range []string{"jenkins-deploy", "cd", "pager", "https://plain.example.com/failed"} {
		if _, ok := cfg.Hook(name); !ok {
			t.Errorf("Hook(%q) not found", name)
		}
	}

	// What the API shows: no secret, no header value, the URL as written.
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"t0k3n", "MfKQ9r8", "c2Vjb25k"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("config JSON shows secret %q: %s", secret, b)
		}
	}
	var shown struct {
		Webhook map[string]map[string][]json.RawMessage `json:"webhook"`
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatal(err)
	}
	var jenkins map[string]any
	if err := json.Unmarshal(shown.Webhook["deployment"]["created"][0], &jenkins); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name":    "jenkins-deploy",
		"url":     "https://jenkins.example.com/job/deploy-{{.Service}}/buildWithParameters?token=${env:JENKINS_TOKEN}&VERSION={{urlquery .Artifact.Version}}",
		"headers": []any{map[string]any{"name": "X-Note"}},
		"format":  "deploydb",
		"signed":  true,
		"events":  []any{"deployment.created"},
	}
	if diff := cmp.Diff(want, jenkins); diff != "" {
		t.Errorf("shown hook mismatch (-want +got):\n%s", diff)
	}
	if string(shown.Webhook["deployment"]["failed"][0]) != `"https://plain.example.com/failed"` {
		t.Errorf("a bare URL hook is shown as %s, want the 0.3 string", shown.Webhook["deployment"]["failed"][0])
	}
	// And it reads back.
	var back deploydb.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("config JSON does not read back: %v", err)
	}
	if got := back.Webhook[deploydb.EventDeploymentCreated][0].Name; got != "jenkins-deploy" {
		t.Errorf("read back hook name %q", got)
	}
}

// An ${env:NAME} value is a constant of the template, never template code.
func TestLoad_HookEnvValueIsNotTemplate(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": `
hooks:
  - url: https://example.com/x
    body: '{"v": "${env:BRACES}"}'
    events: [deployment.created]
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Hooks("integ", deploydb.EventDeploymentCreated)[0]
	b, err := deploydb.RenderHookTemplate(h.Templates.Body, deploydb.SampleHookContext(deploydb.EventDeploymentCreated))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"v": "{{.Service}}"}` {
		t.Errorf("body = %s, want the variable's text as it is", b)
	}
}

func TestLoad_HookProblems(t *testing.T) {
	t.Parallel()
	const file = "webhook/hooks.yml"
	tests := []struct {
		name string
		yaml string
		want []config.Problem
	}{
		{
			name: "MissingURL",
			yaml: "hooks:\n  - method: POST\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].url", Message: "required: a hook object has a url"}},
		},
		{
			name: "UnknownKey",
			yaml: "hooks:\n  - url: https://x.example\n    tiemout: 5s\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].tiemout", Message: `unknown key "tiemout"; valid keys: name, url, method, headers, body, contentType, format, secret, events`}},
		},
		{
			name: "BadMethod",
			yaml: "hooks:\n  - url: https://x.example\n    method: FETCH\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].method", Message: `unknown method "FETCH"; valid: POST, PUT, PATCH, GET, DELETE`}},
		},
		{
			name: "GetWithBody",
			yaml: "hooks:\n  - url: https://x.example\n    method: get\n    body: '{}'\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 4, Field: "hooks[0].body", Message: "a GET hook sends no body; use POST, PUT or PATCH"}},
		},
		{
			name: "TemplateSyntax",
			yaml: "hooks:\n  - url: https://x.example/{{.Service\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].url", Message: `invalid template: line 1: unclosed action`}},
		},
		{
			name: "TemplateUnknownField",
			yaml: "deployment:\n  created:\n    - url: https://x.example/\n      body: '{\"v\": {{json .Artifact.Versoin}}}'\n",
			want: []config.Problem{{File: file, Line: 4, Field: "deployment.created[0].body", Message: `template fails on deployment.created: line 1:22: executing "body" at <.Artifact.Versoin>: can't evaluate field Versoin in type deploydb.HookArtifact`}},
		},
		{
			name: "TemplateUnknownFunction",
			yaml: "hooks:\n  - url: https://x.example/{{lower .Service}}\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].url", Message: `invalid template: line 1: function "lower" not defined`}},
		},
		{
			name: "URLNotHTTP",
			yaml: "hooks:\n  - url: '{{.Service}}/deploy'\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].url", Message: `on deployment.created the URL renders as something other than an absolute http:// or https:// URL`}},
		},
		{
			name: "BodyNotJSON",
			yaml: "hooks:\n  - url: https://x.example\n    body: '{\"service\": {{.Service}}}'\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].body", Message: `on deployment.created the body is not valid JSON (content type application/json); use {{json .Field}} to quote values`}},
		},
		{
			name: "BadSecret",
			yaml: "hooks:\n  - url: https://x.example\n    secret: hunter2\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].secret", Message: `invalid secret: a webhook secret starts with "whsec_" followed by base64 (write whsec_ and the base64 of a random key, e.g. from ` + "`deploydb webhook secret`)"}},
		},
		{
			name: "ReservedHeader",
			yaml: "hooks:\n  - url: https://x.example\n    headers:\n      content-type: text/plain\n      webhook-id: x\n      ce-type: y\n    events: [deployment.created]\n",
			want: []config.Problem{
				{File: file, Line: 4, Field: "hooks[0].headers.content-type", Message: "header Content-Type: set the content type with contentType"},
				{File: file, Line: 5, Field: "hooks[0].headers.webhook-id", Message: "header Webhook-Id: DeployDB sets this header itself"},
				{File: file, Line: 6, Field: "hooks[0].headers.ce-type", Message: "header Ce-Type: CloudEvents headers are set by format cdevents"},
			},
		},
		{
			name: "CDEventsWithBody",
			yaml: "hooks:\n  - url: https://x.example\n    format: cdevents\n    body: '{}'\n",
			want: []config.Problem{{File: file, Line: 4, Field: "hooks[0].body", Message: "a hook of format cdevents sends the CDEvent; drop body, or use format deploydb"}},
		},
		{
			name: "CDEventsUnmappedEvent",
			yaml: "hooks:\n  - url: https://x.example\n    format: cdevents\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 4, Field: "hooks[0].events[0]", Message: "a hook of format cdevents cannot send deployment.created: no CDEvent matches it; cdevents hooks send deployment.completed, environment.created, environment.modified, environment.deleted"}},
		},
		{
			name: "EventsUnderEvent",
			yaml: "deployment:\n  created:\n    - url: https://x.example\n      events: [deployment.failed]\n",
			want: []config.Problem{{File: file, Line: 4, Field: "deployment.created[0].events", Message: "a hook listed under deployment.created fires on that event; list hooks with an events filter under hooks:"}},
		},
		{
			name: "UnknownEventInFilter",
			yaml: "hooks:\n  - url: https://x.example\n    events: [deployment.finished]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].events[0]", Message: `unknown event "deployment.finished"; valid: ` + strings.Join(eventNames(deploydb.WebhookEvents), ", ")}},
		},
		{
			name: "EmptyEvents",
			yaml: "hooks:\n  - url: https://x.example\n    events: []\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].events", Message: "an empty events filter: the hook would never fire"}},
		},
		{
			name: "MissingEnvInHeader",
			yaml: "hooks:\n  - url: https://x.example\n    headers:\n      Authorization: Bearer ${env:NO_SUCH_TOKEN}\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 4, Field: "hooks[0].headers.Authorization", Message: "environment variable NO_SUCH_TOKEN is not set (used as ${env:NO_SUCH_TOKEN})"}},
		},
		{
			name: "NameUsedTwice",
			yaml: "hooks:\n  - name: a\n    url: https://x.example\n    events: [deployment.created]\n  - name: a\n    url: https://y.example\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 5, Field: "hooks[1]", Message: `hook name "a" is also used by a different hook at webhook/hooks.yml:2; give each its own name`}},
		},
		{
			name: "SameURLDifferentHooks",
			yaml: "deployment:\n  created:\n    - url: https://x.example\n      body: '{\"a\": 1}'\n  failed:\n    - url: https://x.example\n      body: '{\"a\": 2}'\n",
			want: []config.Problem{{File: file, Line: 6, Field: "deployment.failed[0]", Message: `this hook and the one at webhook/hooks.yml:3 have the same URL https://x.example but differ; give each a name: to tell their deliveries apart`}},
		},
		{
			name: "HookNotObject",
			yaml: "hooks:\n  - https://x.example\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0]", Message: `must be a hook object (url, events, ...), not a string`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustProblems(t, mustWriteDir(t, with(map[string]string{file: tt.yaml})), hookEnv)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
			for _, p := range got {
				for _, secret := range []string{"t0k3n", "MfKQ9r8", "hunter2"} {
					if strings.Contains(p.Message, secret) {
						t.Errorf("message shows a secret: %s", p.Message)
					}
				}
			}
		})
	}
}

// The same hook listed under several events is one hook.
func TestLoad_HookListedTwice(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": `
deployment:
  created: [{name: slack, url: "https://hooks.slack.example/T/B/x", body: '{"text": {{json .Event}}}'}]
  failed: [{name: slack, url: "https://hooks.slack.example/T/B/x", body: '{"text": {{json .Event}}}'}]
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HookNamed) != 1 {
		t.Errorf("HookNamed = %v, want one hook", cfg.HookNamed)
	}
}

func eventNames(evs []deploydb.EventType) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e)
	}
	return out
}

// Inside an action, ${env:NAME} is a string argument; base64 makes HTTP
// Basic credentials.
func TestLoad_HookEnvInAction(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": `
hooks:
  - url: https://example.com/x
    headers:
      Authorization: Basic {{base64 (printf "deploydb:%s" ${env:JENKINS_TOKEN})}}
    events: [deployment.created]
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Hooks("integ", deploydb.EventDeploymentCreated)[0]
	b, err := deploydb.RenderHookTemplate(h.Templates.Headers[0], deploydb.SampleHookContext(deploydb.EventDeploymentCreated))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Basic ZGVwbG95ZGI6dDBrM24="; string(b) != want { // base64("deploydb:t0k3n")
		t.Errorf("header = %s, want %s", b, want)
	}
}

// No value of ${env:NAME} reaches what is shown of a hook, nor an error
// message about its templates.
func TestLoad_HookEnvNeverShown(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": `
hooks:
  - name: pager
    url: https://admin:${env:JENKINS_TOKEN}@{{.Environment}}.example.com/v2/enqueue
    body: '{"routing_key": "${env:JENKINS_TOKEN}", "summary": {{json .Service}}}'
    events: [deployment.failed]
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := cfg.Hook("pager")
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "t0k3n") || !strings.Contains(string(b), `"body":"{\"routing_key\": \"${env:JENKINS_TOKEN}\"`) {
		t.Errorf("config JSON shows a value, or not the body as written: %s", b)
	}
	if h.Display != "https://admin:xxxxx@{{.Environment}}.example.com/v2/enqueue" {
		t.Errorf("Display = %q, want the password redacted", h.Display)
	}
	got, err := deploydb.RenderHookTemplate(h.Templates.Body, deploydb.SampleHookContext(deploydb.EventDeploymentFailed))
	if err != nil || !strings.Contains(string(got), `"routing_key": "t0k3n"`) {
		t.Errorf("body renders %s, %v: want the value sent", got, err)
	}

	for _, yaml := range []string{
		// Execution error at the argument that holds the value.
		"hooks:\n  - url: https://x.example\n    headers: {X-K: '{{slice ${env:JENKINS_TOKEN} 2 99}}'}\n    events: [deployment.created]\n",
		// Parse error next to it.
		"hooks:\n  - url: https://x.example\n    headers: {X-K: '{{${env:JENKINS_TOKEN} | nosuch}}'}\n    events: [deployment.created]\n",
		"hooks:\n  - url: https://x.example/${env:JENKINS_TOKEN}/{{.Nope}}\n    events: [deployment.created]\n",
	} {
		ps := mustProblems(t, mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": yaml})), hookEnv)
		for _, p := range ps {
			if strings.Contains(p.Message, "t0k3n") {
				t.Errorf("message shows the value: %s", p.Message)
			}
		}
	}
}

func TestLoad_HookProblemsMore(t *testing.T) {
	t.Parallel()
	const file = "webhook/hooks.yml"
	tests := []struct {
		name, yaml string
		want       []config.Problem
	}{
		{
			name: "EnvInsideQuotedString",
			yaml: "hooks:\n  - url: https://x.example\n    headers: {Authorization: 'Basic {{base64 \"${env:JENKINS_TOKEN}:x\"}}'}\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].headers.Authorization", Message: `${env:...} inside a quoted string in {{ }} is not expanded; write it as an argument, such as {{printf "%s:%s" ${env:USER} ${env:TOKEN}}}`}},
		},
		{
			name: "UnescapedQuery",
			yaml: "hooks:\n  - url: https://x.example/deploy?v={{.Artifact.Version}}\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].url", Message: "on deployment.created the URL renders as a URL with characters that must be escaped (a space, a quote, ...): use {{urlquery .Field}} in the query, {{pathescape .Field}} in the path"}},
		},
		{
			name: "UnquotedJSON",
			yaml: "hooks:\n  - url: https://x.example\n    body: '{\"v\": \"{{.Artifact.Version}}\"}'\n    events: [deployment.created]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "hooks[0].body", Message: "on deployment.created the body is not valid JSON (content type application/json); use {{json .Field}} to quote values"}},
		},
		{
			name: "GetCDEvents",
			yaml: "hooks:\n  - url: https://x.example\n    method: GET\n    format: cdevents\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0]", Message: "a GET hook sends no body, and format cdevents sends the CDEvent as the body; use POST"}},
		},
		{
			name: "EventsRequired",
			yaml: "hooks:\n  - url: https://x.example\n",
			want: []config.Problem{{File: file, Line: 2, Field: "hooks[0].events", Message: "required: the events the hook fires on, such as [deployment.created]; valid: " + strings.Join(eventNames(deploydb.WebhookEvents), ", ")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustProblems(t, mustWriteDir(t, with(map[string]string{file: tt.yaml})), hookEnv)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// One hook listed under two events, by an alias, is one hook; bare URLs
// that differ only in their password are two.
func TestLoad_HookSameDefinition(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"webhook/hooks.yml": `
deployment:
  failed: [&slack {name: slack, url: "https://hooks.slack.example/T/B/x", body: '{"text": {{json .Event}}}'}]
  verified: [*slack]
  created: ["https://u:p1@ci.example/hook", "https://u:p2@ci.example/hook"]
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: hookEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HookNamed) != 3 {
		t.Errorf("HookNamed = %v, want slack and the two bare URLs", cfg.HookNamed)
	}
}
