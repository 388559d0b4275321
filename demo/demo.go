// Package demo runs DeployDB's demo: a configuration of eight services
// moving through dev, integ, staging and prod, and a simulated CI,
// orchestrator, test jobs and release manager that drive them through the
// server's HTTP API, as the real ones would: publish, deploy, verify, fail
// and roll back, every few seconds. deploydb serve --demo runs it, so that
// a newcomer sees the whole system move in the browser within a minute.
package demo

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/deploydb/deploydb"
)

//go:embed config
var configFiles embed.FS

// EnvOrchestrator is the environment variable the demo configuration's
// orchestrator hook takes its URL from (${env:DEPLOYDB_DEMO_ORCHESTRATOR}).
const EnvOrchestrator = "DEPLOYDB_DEMO_ORCHESTRATOR"

// The demo's callers: each has a token of its own, so that the history
// says who did what.
const (
	CI           = "ci"           // publishes artifacts
	Orchestrator = "orchestrator" // reports deployments
	Tests        = "test-jobs"    // reports smoke tests
	ReleaseBot   = "release-bot"  // approves what people leave waiting
	You          = "you"          // the person at the browser: admin, release manager
)

// Tokens maps each caller of the demo to its token's secret.
type Tokens map[string]string

// WriteConfig writes the demo configuration into dir (which must be empty
// or not exist), with API tokens made for this run: anonymous callers may
// read, each simulated caller has the scope it needs, and You may do
// everything, approvals of the release-managers group included.
func WriteConfig(dir string) (Tokens, error) {
	sub, err := fs.Sub(configFiles, "config")
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		return nil, fmt.Errorf("demo: write the configuration: %w", err)
	}
	tokens := Tokens{}
	scopes := []struct {
		name, scopes, groups string
	}{
		{CI, `[read, "artifacts:write"]`, `[]`},
		{Orchestrator, `[read, "deployments:write"]`, `[]`},
		{Tests, `[read, "promotions:write"]`, `[]`},
		{ReleaseBot, `[read, "promotions:write"]`, `[release-managers]`},
		{You, `[admin]`, `[release-managers]`},
	}
	var b strings.Builder
	b.WriteString("# Made by deploydb serve --demo for this run; the secrets are in its log.\nanonymous: [read]\ntokens:\n")
	for _, s := range scopes {
		secret, err := newSecret()
		if err != nil {
			return nil, err
		}
		tokens[s.name] = secret
		fmt.Fprintf(&b, "  - {name: %s, sha256: %s, scopes: %s, groups: %s}\n", s.name, deploydb.HashSecret(secret), s.scopes, s.groups)
	}
	if err := os.MkdirAll(filepath.Join(dir, "auth"), 0o700); err != nil {
		return nil, fmt.Errorf("demo: write the tokens: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth", "tokens.yml"), []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write the tokens: %w", err)
	}
	return tokens, nil
}

// newSecret returns a token secret as deploydb token new makes them.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("demo: make a token: %w", err)
	}
	return "ddb_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
