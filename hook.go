package deploydb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"text/template"
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

// hookFuncs are the functions a hook template may call besides the
// text/template builtins (which include urlquery).
var hookFuncs = template.FuncMap{
	// json writes v as JSON: a string as a quoted JSON string.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// pathescape escapes s for use as one segment of a URL path.
	"pathescape": url.PathEscape,
	// base64 encodes s in standard base64 (HTTP Basic credentials).
	"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
}

// ParseHookTemplate compiles one template of a hook. Using a field the
// context does not have is an error when the template runs. The template
// function env returns the values of env by name.
func ParseHookTemplate(name, text string, env map[string]string) (*template.Template, error) {
	t, err := template.New(name).Funcs(hookFuncs).Funcs(template.FuncMap{
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
	return t, nil
}

// RenderHookTemplate runs t on c, refusing output beyond MaxHookRender.
func RenderHookTemplate(t *template.Template, c *HookContext) ([]byte, error) {
	var b limitedBuffer
	if err := t.Execute(&b, c); err != nil {
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
