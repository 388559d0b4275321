// Package bench measures DeployDB against the targets of DESIGN.md §10: it
// measures the bare store (the limit), generates a realistic model and
// history, drives the real server (bin/deploydb) over loopback HTTP, and
// reports each figure beside its target. cmd/deploydb-bench runs it.
package bench

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deploydb/deploydb"
)

// The environment variables the generated configuration reads: where the
// webhook receiver listens, and the secret that signs the orchestrator's
// calls. Both are read when the configuration loads.
const (
	EnvReceiver   = "DEPLOYDB_BENCH_RECEIVER"
	EnvHookSecret = "DEPLOYDB_BENCH_HOOK_SECRET"
)

// The actors of the model: the names of its API tokens, and so of the
// actors its history and its load record.
const (
	ActorCI           = "ci"              // publishes artifacts
	ActorOrchestrator = "orchestrator"    // reports deployments
	ActorTests        = "tests"           // reports basic promotions
	ActorApprover     = "release-manager" // approves manual promotions
	ActorReader       = "reader"          // reads
	ActorOps          = "ops"             // admin: profiles, redeliveries
)

// ApproverGroup is the group allowed to approve the manual promotion.
const ApproverGroup = "release-managers"

// Hook names of the model: the orchestrator is called on every
// deployment.created (the cue to deploy), the chat channel on failures and
// finished flows.
const (
	HookOrchestrator = "orchestrator"
	HookChat         = "chat"
)

// Model is the configuration DeployDB runs with in the benchmark: services,
// environments, pipelines and promotions, as a platform team of a large
// company would write them.
type Model struct {
	Services     []Service
	Environments []Environment
	Pipelines    []Pipeline
	Promotions   []Promotion
}

// Service is one service of the model: it consumes one artifact.
type Service struct {
	Name            string
	Group           string // the artifact's group
	Artifact        string // the artifact's name
	Pipeline        string
	Promotions      []string
	FailureStrategy deploydb.FailureStrategy
}

// Environment is one environment of the model.
type Environment struct {
	Name       string
	Production bool
}

// Pipeline is one pipeline: its environments in order, each with the
// promotions of that stage.
type Pipeline struct {
	Name   string
	Stages []Stage
}

// Stage is one environment of a pipeline.
type Stage struct {
	Environment string
	Promotions  []string
}

// Promotion is one promotion of the model.
type Promotion struct {
	Name string
	Type string // basic or manual
}

// environments are the model's 20 environments.
var environments = []Environment{
	{"dev", false}, {"integ", false}, {"qa", false}, {"perf", false}, {"security", false},
	{"uat", false}, {"staging", false}, {"preprod", false}, {"sandbox", false}, {"demo", false},
	{"canary", true}, {"prod-eu-west", true}, {"prod-eu-central", true}, {"prod-us-east", true}, {"prod-us-west", true},
	{"prod-ap-south", true}, {"prod-ap-east", true}, {"dr-eu", true}, {"dr-us", true}, {"training", false},
}

// pipelines are the model's pipelines, of 3 to 5 environments; together
// they use every environment.
var pipelines = []Pipeline{
	{"web-eu", []Stage{{"integ", []string{"smoke"}}, {"staging", []string{"integration"}}, {"prod-eu-west", []string{"approval"}}}},
	{"web-us", []Stage{{"integ", []string{"smoke"}}, {"staging", []string{"integration"}}, {"canary", nil}, {"prod-us-east", []string{"approval"}}}},
	{"api-global", []Stage{{"dev", nil}, {"integ", []string{"smoke"}}, {"staging", []string{"integration"}}, {"prod-eu-central", []string{"approval"}}, {"prod-us-east", nil}}},
	{"batch", []Stage{{"integ", []string{"smoke"}}, {"perf", []string{"perf-check"}}, {"prod-eu-west", nil}}},
	{"mobile", []Stage{{"dev", nil}, {"qa", []string{"integration"}}, {"uat", []string{"approval"}}, {"prod-us-west", nil}}},
	{"payments", []Stage{{"integ", []string{"smoke"}}, {"security", []string{"security-scan"}}, {"preprod", []string{"integration"}}, {"prod-eu-central", []string{"approval"}}, {"dr-eu", nil}}},
	{"apac", []Stage{{"integ", []string{"smoke"}}, {"staging", []string{"integration"}}, {"prod-ap-south", []string{"approval"}}, {"prod-ap-east", nil}}},
	{"us-dr", []Stage{{"qa", []string{"integration"}}, {"preprod", nil}, {"prod-us-west", []string{"approval"}}, {"dr-us", nil}}},
	{"internal", []Stage{{"dev", nil}, {"sandbox", []string{"smoke"}}, {"demo", nil}}},
	{"enablement", []Stage{{"sandbox", nil}, {"training", []string{"smoke"}}, {"demo", nil}}},
}

// promotions are the model's promotions.
var promotions = []Promotion{
	{"smoke", deploydb.PromotionTypeBasic},
	{"integration", deploydb.PromotionTypeBasic},
	{"perf-check", deploydb.PromotionTypeBasic},
	{"security-scan", deploydb.PromotionTypeBasic},
	{"approval", deploydb.PromotionTypeManual},
}

// Words that make service names: domain-component.
var (
	domains = []string{
		"accounts", "ads", "alerts", "analytics", "audit", "auth", "billing", "booking", "cart", "catalog",
		"chat", "checkout", "claims", "content", "coupons", "crm", "delivery", "devices", "docs", "email",
		"events", "feeds", "files", "fraud", "gateway", "geo", "identity", "images", "inventory", "invoices",
		"ledger", "loyalty", "maps", "media", "orders", "partners", "payments", "pricing", "profiles", "quotes",
		"ratings", "refunds", "reports", "search", "shipping", "sms", "subscriptions", "tax", "tickets", "wallet",
	}
	components = []string{
		"api", "web", "worker", "scheduler", "consumer", "producer", "admin", "gateway", "sync", "export",
		"import", "cache", "indexer", "notifier", "reporter", "migrator", "proxy", "cron", "stream", "ui",
	}
)

// MaxServices is the most services NewModel names: each pairs a domain
// with a component.
const MaxServices = 1000

// NewModel returns a model of n services (at most MaxServices) over the 20
// environments, 10 pipelines and 5 promotions above. The same n and seed
// give the same model.
func NewModel(n int, seed uint64) (*Model, error) {
	if n < 1 || n > MaxServices {
		return nil, fmt.Errorf("bench: a model has 1 to %d services, not %d", MaxServices, n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6f64656c))
	m := &Model{Environments: slices.Clone(environments), Pipelines: slices.Clone(pipelines), Promotions: slices.Clone(promotions)}
	for i := range n {
		// Interleave domains so that a small model still spans them.
		d, c := domains[i%len(domains)], components[i/len(domains)]
		s := Service{
			Name:     d + "-" + c,
			Group:    "com.example." + d,
			Artifact: d + "-" + c,
			Pipeline: pipelines[rng.IntN(len(pipelines))].Name,
		}
		switch r := rng.IntN(100); {
		case r < 80:
			s.FailureStrategy = deploydb.FailureNotify
		case r < 95:
			s.FailureStrategy = deploydb.FailureRollback
		default:
			s.FailureStrategy = deploydb.FailureIgnore
		}
		if rng.IntN(10) == 0 {
			// Some teams smoke-test every environment.
			s.Promotions = []string{"smoke"}
		}
		m.Services = append(m.Services, s)
	}
	return m, nil
}

// Pipeline returns the pipeline named name, or nil.
func (m *Model) Pipeline(name string) *Pipeline {
	for i := range m.Pipelines {
		if m.Pipelines[i].Name == name {
			return &m.Pipelines[i]
		}
	}
	return nil
}

// Tokens holds the secrets of the model's API tokens, by actor.
type Tokens map[string]string

// NewTokens makes a fresh secret for each actor of the model.
func NewTokens() Tokens {
	t := Tokens{}
	for _, name := range []string{ActorCI, ActorOrchestrator, ActorTests, ActorApprover, ActorReader, ActorOps} {
		var b [32]byte
		_, _ = crand.Read(b[:])
		t[name] = "ddb_" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	return t
}

// NewHookSecret returns a fresh Standard Webhooks secret.
func NewHookSecret() string {
	var b [24]byte
	_, _ = crand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// tokenScopes are the scopes and groups of each actor's token.
var tokenScopes = []struct {
	name   string
	scopes []deploydb.Scope
	groups []string
}{
	{ActorCI, []deploydb.Scope{deploydb.ScopeArtifactsWrite, deploydb.ScopeRead}, nil},
	{ActorOrchestrator, []deploydb.Scope{deploydb.ScopeDeploymentsWrite, deploydb.ScopeRead}, nil},
	{ActorTests, []deploydb.Scope{deploydb.ScopePromotionsWrite, deploydb.ScopeRead}, nil},
	{ActorApprover, []deploydb.Scope{deploydb.ScopePromotionsWrite, deploydb.ScopeRead}, []string{ApproverGroup}},
	{ActorReader, []deploydb.Scope{deploydb.ScopeRead}, nil},
	{ActorOps, []deploydb.Scope{deploydb.ScopeAdmin}, nil},
}

// orchestratorBody is the body of the orchestrator's call: what it needs
// to deploy, and the time of the event, which the benchmark's receiver
// measures the dispatch delay from.
const orchestratorBody = `{"event": {{json .Event}}, "time": {{json .Time}}, "deployment": {{.Deployment.ID}}, "artifact": {{.Artifact.ID}}, ` +
	`"service": {{json .Service}}, "environment": {{json .Environment}}, "version": {{json .Artifact.Version}}}`

// Write writes the model as a configuration directory at dir (created if
// needed), with an auth/tokens.yml of the tokens' hashes when tokens is
// not nil. Its hooks call ${env:DEPLOYDB_BENCH_RECEIVER} and sign with
// ${env:DEPLOYDB_BENCH_HOOK_SECRET}: both must be set to load it.
func (m *Model) Write(dir string, tokens Tokens) error {
	files := map[string]string{}
	for _, e := range m.Environments {
		files["environments/"+e.Name+".yml"] = fmt.Sprintf("description: %q\nproduction: %t\n", e.Name+" environment", e.Production)
	}
	for _, p := range m.Promotions {
		body := fmt.Sprintf("type: %s\ndescription: %q\n", p.Type, p.Name)
		if p.Type == deploydb.PromotionTypeManual {
			body += "attributes:\n  allowedGroup: " + ApproverGroup + "\n"
		}
		files["promotions/"+p.Name+".yml"] = body
	}
	for _, p := range m.Pipelines {
		var b strings.Builder
		names := make([]string, len(p.Stages))
		for i, st := range p.Stages {
			names[i] = st.Environment
		}
		fmt.Fprintf(&b, "description: %q\nenvironments:\n", strings.Join(names, " → "))
		for _, st := range p.Stages {
			if len(st.Promotions) == 0 {
				fmt.Fprintf(&b, "  %s:\n", st.Environment)
				continue
			}
			fmt.Fprintf(&b, "  %s:\n    promotions: [%s]\n", st.Environment, strings.Join(st.Promotions, ", "))
		}
		files["pipelines/"+p.Name+".yml"] = b.String()
	}
	for _, s := range m.Services {
		body := fmt.Sprintf("description: %q\nartifacts: [\"%s:%s\"]\npipelines: [%s]\nfailureStrategy: %s\n",
			s.Name+" service", s.Group, s.Artifact, s.Pipeline, s.FailureStrategy)
		if len(s.Promotions) > 0 {
			body += "promotions: [" + strings.Join(s.Promotions, ", ") + "]\n"
		}
		files["services/"+s.Name+".yml"] = body
	}
	files["webhook/orchestrator.yml"] = `# The orchestrator deploys each deployment it is told of, and reports back.
hooks:
  - name: ` + HookOrchestrator + `
    url: ${env:` + EnvReceiver + `}/deploy/{{pathescape .Environment}}/{{pathescape .Service}}
    events: [deployment.created]
    secret: ${env:` + EnvHookSecret + `}
    body: '` + orchestratorBody + `'
`
	files["webhook/chat.yml"] = `# A chat channel hears of failures and finished flows.
hooks:
  - name: ` + HookChat + `
    url: ${env:` + EnvReceiver + `}/chat
    events: [deployment.failed, flow.completed]
    body: '{"text": {{json (printf "%s %s: %s in %s" .Service .Artifact.Version .Event .Environment)}}}'
`
	if tokens != nil {
		var b strings.Builder
		b.WriteString("tokens:\n")
		for _, t := range tokenScopes {
			secret, ok := tokens[t.name]
			if !ok {
				continue
			}
			scopes := make([]string, len(t.scopes))
			for i, s := range t.scopes {
				scopes[i] = string(s)
			}
			fmt.Fprintf(&b, "  - name: %s\n    sha256: %s\n    scopes: [%s]\n", t.name, deploydb.HashSecret(secret), strings.Join(scopes, ", "))
			if len(t.groups) > 0 {
				fmt.Fprintf(&b, "    groups: [%s]\n", strings.Join(t.groups, ", "))
			}
		}
		files["auth/tokens.yml"] = b.String()
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("bench: write config: %w", err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return fmt.Errorf("bench: write config: %w", err)
		}
	}
	return nil
}

// StagePromotions returns the promotions a deployment of service s in
// environment env must pass, as DeployDB computes them: the service's,
// then the stage's, without duplicates.
func (m *Model) StagePromotions(s *Service, env string) []string {
	p := m.Pipeline(s.Pipeline)
	if p == nil {
		return nil
	}
	out := append([]string(nil), s.Promotions...)
	for _, st := range p.Stages {
		if st.Environment != env {
			continue
		}
		for _, name := range st.Promotions {
			dup := false
			for _, have := range out {
				dup = dup || have == name
			}
			if !dup {
				out = append(out, name)
			}
		}
	}
	return out
}

// PromotionType returns the type of promotion name.
func (m *Model) PromotionType(name string) string {
	for _, p := range m.Promotions {
		if p.Name == name {
			return p.Type
		}
	}
	return deploydb.PromotionTypeBasic
}
