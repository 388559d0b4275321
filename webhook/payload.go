// Package webhook turns events into the webhook calls they owe (rendered
// when the event is recorded, into the outbox, in the same transaction) and
// delivers the outbox: at least once, in order per (hook, deployment), with
// retries and every attempt recorded.
package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/deploydb/deploydb"
)

// Payload is the 0.3 body of a deployment webhook.
type Payload struct {
	ID          int64                     `json:"id"`
	Artifact    ArtifactPayload           `json:"artifact"`
	Service     string                    `json:"service"`
	Environment string                    `json:"environment"`
	CreatedAt   deploydb.Time             `json:"createdAt"`
	Status      deploydb.DeploymentStatus `json:"status"`
	// PromotionResult is set on promotion events.
	PromotionResult *ResultPayload `json:"promotionResult,omitempty"`
}

// ArtifactPayload is the artifact inside a payload: the 0.3 fields.
type ArtifactPayload struct {
	ID        int64         `json:"id"`
	Group     string        `json:"group"`
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	SourceURL string        `json:"sourceUrl"`
	CreatedAt deploydb.Time `json:"createdAt"`
}

// ResultPayload is the promotion result inside a promotion event's payload.
type ResultPayload struct {
	ID        int64                    `json:"id"`
	Promotion string                   `json:"promotion"`
	Status    deploydb.PromotionStatus `json:"status"`
	InfoURL   string                   `json:"infoUrl"`
	CreatedAt deploydb.Time            `json:"createdAt"`
}

// ContentType returns the 0.3 content type of an event's payload:
// application/vnd.deploydb.<deployment|promotion><event>.v1+json.
func ContentType(t deploydb.EventType) string {
	return "application/vnd.deploydb." + strings.ReplaceAll(string(t), ".", "") + ".v1+json"
}

// RenderFailed starts the error of an attempt whose call could not be
// rendered from the hook's templates, and of a delivery whose CDEvent
// could not be made when it was queued (which fails at once, with no call
// to make).
const RenderFailed = "cannot render the hook's call: "

// redactShown returns the URL s as written in the config (it may not parse
// as a URL: "${env:SLACK_URL}") without user info, query and fragment.
func redactShown(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		s = scheme + "://" + host
		if path != "" || strings.Contains(rest, "/") {
			s += "/" + path
		}
	}
	return s
}

// Change is one recorded event with what it is about, as it was right
// after the change.
type Change struct {
	Event *deploydb.Event
	// Deployment is nil for events without one (flow.completed carries the
	// flow, environment events neither).
	Deployment *deploydb.Deployment
	// Result is the promotion result of promotion events.
	Result *deploydb.PromotionResult
	Flow   *deploydb.Flow
	// Upgrade is set on deployment.completed when the service ran a version
	// in the environment before (service.upgraded rather than
	// service.deployed).
	Upgrade bool
}

// Artifact returns the artifact the change is about, if any.
func (c Change) Artifact() *deploydb.Artifact {
	switch {
	case c.Deployment != nil:
		return &c.Deployment.Artifact
	case c.Flow != nil:
		return &c.Flow.Artifact
	}
	return nil
}

// Context returns what hook templates see of the change.
func Context(c Change) *deploydb.HookContext {
	ev := c.Event
	x := &deploydb.HookContext{
		Event:       string(ev.Type),
		EventID:     ev.ID,
		Service:     ev.Service,
		Environment: ev.Environment,
		Flow:        deploydb.HookFlow{ID: ev.Flow},
		Time:        ev.CreatedAt.Time.UTC().Format(deploydb.TimeFormat),
		Actor:       ev.Actor,
		Reason:      ev.Reason,
		Detail:      ev.Detail,
	}
	if a := c.Artifact(); a != nil {
		x.Artifact = deploydb.HookArtifact{ID: a.ID, Group: a.Group, Name: a.Name, Version: a.Version, SourceURL: a.SourceURL}
	}
	if d := c.Deployment; d != nil {
		x.Deployment = deploydb.HookDeployment{ID: d.ID, Status: string(d.Status), Reason: string(d.Reason)}
		if x.Service == "" {
			x.Service = d.Service
		}
		if x.Environment == "" {
			x.Environment = d.Environment
		}
	}
	if r := c.Result; r != nil {
		x.Promotion = deploydb.HookPromotion{Name: r.Promotion, Status: string(r.Status), InfoURL: r.InfoURL}
	}
	return x
}

// NeedsUpgrade reports whether the calls c owes under cfg depend on
// Change.Upgrade, which costs the store a query to find out.
func NeedsUpgrade(cfg *deploydb.Config, ev *deploydb.Event) bool {
	if ev.Type != deploydb.EventDeploymentCompleted {
		return false
	}
	for _, h := range cfg.Hooks(ev.Environment, ev.Type) {
		if h.Format == deploydb.HookFormatCDEvents && h.Templates != nil {
			return true
		}
	}
	return false
}

// Deliveries returns the webhook calls change c owes under cfg: the
// environment's hooks for the event first, then the global ones, each
// rendered for the event. A hook whose templates fail on this event (they
// were checked at load on a sample, so only data can make them fail) gives
// a delivery that is already failed, with the reason, so the change itself
// still commits and the failure shows in the delivery log.
func Deliveries(cfg *deploydb.Config, c Change) ([]deploydb.Delivery, error) {
	ev := c.Event
	hooks := cfg.Hooks(ev.Environment, ev.Type)
	if len(hooks) == 0 {
		return nil, nil
	}
	var payload, context []byte
	var x *deploydb.HookContext
	out := make([]deploydb.Delivery, 0, len(hooks))
	for _, h := range hooks {
		dl := deploydb.Delivery{
			Event:         ev.ID,
			EventType:     ev.Type,
			Deployment:    ev.Deployment,
			Hook:          h.Name,
			ShownURL:      redactShown(h.Shown()),
			Method:        http.MethodPost,
			ContentType:   ContentType(ev.Type),
			Signed:        len(h.Secrets) > 0,
			Status:        deploydb.DeliveryPending,
			NextAttemptAt: ev.CreatedAt,
			CreatedAt:     ev.CreatedAt,
			UpdatedAt:     ev.CreatedAt,
		}
		if h.Display == "" {
			// The URL holds no value of ${env:NAME}: it may be kept, and
			// used should the hook leave the configuration.
			dl.URL = h.URL
		}
		if payload == nil {
			b, err := Body(ev, c.Deployment, c.Result)
			if err != nil {
				return nil, err
			}
			payload = b
		}
		dl.Body = payload
		if !h.IsBare() {
			if x == nil {
				x = Context(c)
				b, err := json.Marshal(x)
				if err != nil {
					return nil, fmt.Errorf("webhook: context of %s: %w", ev.Type, err)
				}
				context = b
			}
			if h.Templates.Shown != nil {
				if shown, err := deploydb.RenderHookTemplate(h.Templates.Shown, x); err == nil {
					dl.ShownURL = redactShown(string(shown))
				}
			}
			dl.Context = context
			dl.URL = ""
			if h.Format == deploydb.HookFormatCDEvents {
				body, headers, err := cdevent(cfg, c)
				if err != nil {
					dl.Status, dl.LastError = deploydb.DeliveryFailed, RenderFailed+err.Error()
				}
				dl.Body, dl.ContentType, dl.Headers = body, "application/json", headers
			}
		}
		out = append(out, dl)
	}
	return out, nil
}

// Request is one call as it is sent.
type Request struct {
	Method, URL string
	Headers     []deploydb.HookHeader
	ContentType string
	// Body is nil for a call without one (GET).
	Body []byte
}

// NewRequest returns the call dl makes to hook h, which is the hook of
// that name in the configuration in force, nil when the configuration has
// none: a hook object's URL, headers and body are rendered now, from the
// event as it was recorded, so that they carry the ${env:NAME} values and
// templates in force (a rotated token, a fixed template), and none is
// stored. A call queued for a hook that is gone is made as it was queued
// if nothing of it came from the hook's configuration; else NewRequest
// says why it cannot be made.
func NewRequest(dl *deploydb.Delivery, h *deploydb.Hook) (*Request, error) {
	r := &Request{Method: dl.Method, URL: dl.URL, Headers: dl.Headers, ContentType: dl.ContentType, Body: dl.Body}
	switch {
	case h == nil && (dl.URL == "" || len(dl.Context) > 0):
		return nil, fmt.Errorf("hook %q is no longer in the configuration: the call cannot be made without it", ShownHookName(dl.Hook))
	case h == nil:
		// A bare URL hook without ${env:NAME}, or a call queued before
		// hooks had names.
	case h.IsBare():
		r.Method, r.URL = http.MethodPost, h.URL
	default:
		if len(dl.Context) == 0 {
			return nil, fmt.Errorf("hook %q is a hook object now, and this call was queued for a bare URL: redeliver after the hook is one again, or not at all", ShownHookName(dl.Hook))
		}
		var x deploydb.HookContext
		if err := json.Unmarshal(dl.Context, &x); err != nil {
			return nil, fmt.Errorf("the event of the call: %w", err)
		}
		if err := render(r, h, &x); err != nil {
			return nil, fmt.Errorf("%s%w", RenderFailed, err)
		}
	}
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	if r.Method == http.MethodGet {
		r.Body, r.ContentType = nil, ""
	}
	return r, nil
}

// render shapes r as hook object h says, for the event x.
func render(r *Request, h *deploydb.Hook, x *deploydb.HookContext) error {
	u, err := deploydb.RenderHookTemplate(h.Templates.URL, x)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	r.URL = string(u)
	if h.Method != "" {
		r.Method = h.Method
	}
	headers := slices.Clone(r.Headers) // the format's: CloudEvents'
	for i, t := range h.Templates.Headers {
		v, err := deploydb.RenderHookTemplate(t, x)
		if err != nil {
			return fmt.Errorf("header %s: %w", h.Headers[i].Name, err)
		}
		if strings.ContainsAny(string(v), "\r\n\x00") {
			return fmt.Errorf("header %s: the value holds a line break or NUL", h.Headers[i].Name)
		}
		headers = append(headers, deploydb.HookHeader{Name: h.Headers[i].Name, Value: string(v)})
	}
	r.Headers = headers
	if h.Format != deploydb.HookFormatCDEvents && h.Templates.Body != nil {
		b, err := deploydb.RenderHookTemplate(h.Templates.Body, x)
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
		r.Body, r.ContentType = b, "application/json"
	}
	if h.ContentType != "" {
		r.ContentType = h.ContentType
	}
	return nil
}

// ShownHookName returns the name of a hook as the API and logs show it: an
// unnamed hook is named by its URL as written, which is shown without user
// info, query and fragment.
func ShownHookName(name string) string { return redactShown(name) }

// Body renders the 0.3 payload of an event.
func Body(ev *deploydb.Event, d *deploydb.Deployment, r *deploydb.PromotionResult) ([]byte, error) {
	if d == nil {
		// Flow events carry no deployment; send the event record itself.
		return json.Marshal(ev)
	}
	p := Payload{
		ID: d.ID,
		Artifact: ArtifactPayload{ID: d.Artifact.ID, Group: d.Artifact.Group, Name: d.Artifact.Name, Version: d.Artifact.Version,
			SourceURL: d.Artifact.SourceURL, CreatedAt: d.Artifact.CreatedAt},
		Service:     d.Service,
		Environment: d.Environment,
		CreatedAt:   d.CreatedAt,
		Status:      d.Status,
	}
	if r != nil {
		p.PromotionResult = &ResultPayload{ID: r.ID, Promotion: r.Promotion, Status: r.Status, InfoURL: r.InfoURL, CreatedAt: r.CreatedAt}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook: render %s: %w", ev.Type, err)
	}
	return b, nil
}
