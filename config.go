package deploydb

import "sort"

// Config is one immutable, validated snapshot of the model configuration
// directory (DESIGN.md §2). It is replaced whole on reload, never mutated.
type Config struct {
	// Checksum identifies the content of the loaded files; flows record
	// the checksum they were created under.
	Checksum     string                  `json:"checksum"`
	Dir          string                  `json:"dir"`
	Files        []ConfigFile            `json:"files"`
	Services     map[string]*Service     `json:"services"`
	Environments map[string]*Environment `json:"environments"`
	Pipelines    map[string]*Pipeline    `json:"pipelines"`
	Promotions   map[string]*Promotion   `json:"promotions"`
	// Webhook holds the global hooks, merged from every file in webhook/.
	Webhook Webhook `json:"webhook"`
	// Auth holds the API tokens of auth/tokens.yml; nil or empty when
	// there are none. Never shown.
	Auth *Auth `json:"-"`
	// HookNamed holds every hook, global or of an environment, by name.
	HookNamed map[string]*Hook `json:"-"`
}

// Hook returns the hook named name.
func (c *Config) Hook(name string) (*Hook, bool) {
	h, ok := c.HookNamed[name]
	return h, ok
}

// ConfigFile is one file a Config was loaded from.
type ConfigFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Service is an application that consumes artifacts and moves through a
// pipeline.
type Service struct {
	Ident           string          `json:"ident"`
	Description     string          `json:"description"`
	Artifacts       []string        `json:"artifacts"`
	Pipelines       []string        `json:"pipelines"`
	Promotions      []string        `json:"promotions"`
	FailureStrategy FailureStrategy `json:"failureStrategy"`
}

// Pipeline returns the ident of the pipeline the service moves through.
func (s *Service) Pipeline() string {
	if len(s.Pipelines) == 0 {
		return ""
	}
	return s.Pipelines[0]
}

// Consumes reports whether the service consumes artifacts of group:name.
func (s *Service) Consumes(group, name string) bool {
	for _, a := range s.Artifacts {
		if a == group+":"+name {
			return true
		}
	}
	return false
}

// Environment is a place services run together.
type Environment struct {
	Ident       string  `json:"ident"`
	Description string  `json:"description"`
	Production  bool    `json:"production"`
	Webhook     Webhook `json:"webhook"`
	// Freezes are windows in which nothing is activated here.
	Freezes []Freeze `json:"freezes,omitempty"`
}

// Pipeline is an ordered list of environments with their promotions.
type Pipeline struct {
	Ident        string          `json:"ident"`
	Description  string          `json:"description"`
	Environments []PipelineStage `json:"environments"`
}

// PipelineStage is one environment of a pipeline.
type PipelineStage struct {
	Environment string   `json:"environment"`
	Promotions  []string `json:"promotions"`
	// FailureStrategy overrides the service's strategy in this environment
	// when set.
	FailureStrategy FailureStrategy `json:"failureStrategy,omitempty"`
}

// Promotion types.
const (
	PromotionTypeBasic  = "basic"
	PromotionTypeManual = "manual"
	PromotionTypeSoak   = "soak"
)

// Promotion is a named criterion a deployment must satisfy.
type Promotion struct {
	Ident       string         `json:"ident"`
	Type        string         `json:"type"`
	Description string         `json:"description"`
	Attributes  map[string]any `json:"attributes"`
}

// AllowedGroup returns the group whose members may report the result of a
// manual promotion ("" if none).
func (p *Promotion) AllowedGroup() string {
	g, _ := p.Attributes["allowedGroup"].(string)
	return g
}

// AllowsSelfApproval reports whether the caller that published an artifact
// may approve it (allowSelfApproval, true unless set false).
func (p *Promotion) AllowsSelfApproval() bool {
	v, ok := p.Attributes["allowSelfApproval"].(bool)
	return !ok || v
}

// Webhook maps each event to the hooks that fire on it, in file order.
type Webhook map[EventType][]Hook

// ServicesConsuming returns, sorted by ident, the services that consume
// group:name.
func (c *Config) ServicesConsuming(group, name string) []*Service {
	var out []*Service
	for _, s := range c.Services {
		if s.Consumes(group, name) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ident < out[j].Ident })
	return out
}

// Hooks returns the recipients of event in environment env: the
// environment's hooks first, then the global ones.
func (c *Config) Hooks(env string, event EventType) []Hook {
	var out []Hook
	if e, ok := c.Environments[env]; ok {
		out = append(out, e.Webhook[event]...)
	}
	return append(out, c.Webhook[event]...)
}

// StagePromotions returns the promotions a deployment of service in the
// given pipeline stage must pass: the service's promotions plus the
// stage's, de-duplicated, in that order.
func StagePromotions(s *Service, stage PipelineStage) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{s.Promotions, stage.Promotions} {
		for _, p := range list {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}
