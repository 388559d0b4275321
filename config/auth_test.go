package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

var (
	jenkinsSecret = "ddb_jenkins-secret"
	aliceSecret   = "ddb_alice-secret"
)

func TestLoad_Tokens(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"auth/tokens.yml": `
tokens:
  - name: jenkins
    sha256: ` + strings.ToUpper(deploydb.HashSecret(jenkinsSecret)) + `
    scopes: [artifacts:write, deployments:write]
  - name: alice
    sha256: ` + deploydb.HashSecret(aliceSecret) + `
    scopes: [read, promotions:write]
    groups: [release-managers, release-managers]
anonymous: [read]
`}))
	cfg := mustLoad(t, dir)
	want := &deploydb.Auth{
		Tokens: []deploydb.Token{
			{Name: "jenkins", SHA256: deploydb.HashSecret(jenkinsSecret), Scopes: []deploydb.Scope{deploydb.ScopeArtifactsWrite, deploydb.ScopeDeploymentsWrite}, Groups: []string{}},
			{Name: "alice", SHA256: deploydb.HashSecret(aliceSecret), Scopes: []deploydb.Scope{deploydb.ScopeRead, deploydb.ScopePromotionsWrite}, Groups: []string{"release-managers"}},
		},
		Anonymous: []deploydb.Scope{deploydb.ScopeRead},
	}
	if diff := cmp.Diff(want, cfg.Auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
	for _, f := range cfg.Files {
		if strings.HasPrefix(f.Path, "auth/") {
			t.Errorf("the tokens file is listed as a model file: %v", cfg.Files)
		}
	}
	c, ok := cfg.Auth.Authenticate(aliceSecret)
	if !ok || c.Name != "alice" || !c.Allows(deploydb.ScopePromotionsWrite) || c.Allows(deploydb.ScopeAdmin) || !c.InGroup("release-managers") {
		t.Errorf("alice authenticates as %+v, %v", c, ok)
	}
	if _, ok := cfg.Auth.Authenticate("ddb_guess"); ok {
		t.Error("an unknown secret authenticates")
	}
	b, _ := json.Marshal(cfg)
	if strings.Contains(strings.ToLower(string(b)), deploydb.HashSecret(aliceSecret)) {
		t.Errorf("the config JSON shows a hash: %s", b)
	}
}

func TestLoad_TokenProblems(t *testing.T) {
	t.Parallel()
	const file = "auth/tokens.yml"
	hash := deploydb.HashSecret("x")
	tests := []struct {
		name, yaml string
		want       []config.Problem
	}{
		{
			name: "Missing",
			yaml: "tokens:\n  - name: ci\n",
			want: []config.Problem{
				{File: file, Line: 2, Field: "tokens[0].sha256", Message: "required: the SHA-256 of the token's secret: make one with `deploydb token new`"},
				{File: file, Line: 2, Field: "tokens[0].scopes", Message: "required: what the token may do: read, artifacts:write, deployments:write, promotions:write, admin"},
			},
		},
		{
			name: "SecretNotHash",
			yaml: "tokens:\n  - {name: ci, sha256: hunter2, scopes: [read]}\n",
			want: []config.Problem{{File: file, Line: 2, Field: "tokens[0].sha256", Message: "must be the 64 hex digits of the SHA-256 of the token's secret (never the secret itself): make one with `deploydb token new`"}},
		},
		{
			name: "UnknownScope",
			yaml: "tokens:\n  - {name: ci, sha256: " + hash + ", scopes: [write]}\n",
			want: []config.Problem{{File: file, Line: 2, Field: "tokens[0].scopes[0]", Message: `unknown scope "write"; valid: read, artifacts:write, deployments:write, promotions:write, admin`}},
		},
		{
			name: "DuplicateName",
			yaml: "tokens:\n  - {name: ci, sha256: " + hash + ", scopes: [read]}\n  - {name: ci, sha256: " + deploydb.HashSecret("y") + ", scopes: [read]}\n",
			want: []config.Problem{{File: file, Line: 3, Field: "tokens[1]", Message: `token "ci" is also defined at tokens[0]`}},
		},
		{
			name: "DuplicateSecret",
			yaml: "tokens:\n  - {name: ci, sha256: " + hash + ", scopes: [read]}\n  - {name: cd, sha256: " + hash + ", scopes: [read]}\n",
			want: []config.Problem{{File: file, Line: 3, Field: "tokens[1]", Message: `token "cd" has the same sha256 as ci: each token needs its own secret`}},
		},
		{
			name: "AnonymousWrite",
			yaml: "tokens:\n  - {name: ci, sha256: " + hash + ", scopes: [read]}\nanonymous: [read, artifacts:write]\n",
			want: []config.Problem{{File: file, Line: 3, Field: "anonymous", Message: "callers without a token may only read ([read]): give every writer a token, so that its writes name it"}},
		},
		{
			name: "AnonymousWithoutTokens",
			yaml: "anonymous: [read]\n",
			want: []config.Problem{{File: file, Line: 1, Field: "anonymous", Message: "anonymous scopes apply only beside tokens: without any token every caller may do everything (on loopback only); add a token"}},
		},
		{
			name: "ReservedName",
			yaml: "tokens:\n  - {name: deploydb, sha256: " + hash + ", scopes: [read]}\n",
			want: []config.Problem{{File: file, Line: 2, Field: "tokens[0].name", Message: `token name "deploydb" is reserved: DeployDB records its own writes under it`}},
		},
		{
			name: "HashNotEchoed",
			yaml: "tokens:\n  - {name: ci, sha256: " + hash + ", scopes: [" + hash + "]}\n",
			want: []config.Problem{{File: file, Line: 2, Field: "tokens[0].scopes[0]", Message: `unknown scope "(redacted)"; valid: read, artifacts:write, deployments:write, promotions:write, admin`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustProblems(t, mustWriteDir(t, with(map[string]string{file: tt.yaml})), noEnv)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("SecretInFile", func(t *testing.T) {
		t.Parallel()
		got := mustProblems(t, mustWriteDir(t, with(map[string]string{file: "tokens:\n  # secret: ddb_T-MCiBHCrzKhYHvuKo_Qgy1xiM8yfZLniLcOpDwNX0M\n  - {name: ddb_release_pipeline_prod_eu, sha256: " + hash + ", scopes: [read]}\n"})), noEnv)
		want := []config.Problem{{File: file, Line: 2, Message: "holds what looks like a token's secret (ddb_...): keep only its sha256 in this file, and give the secret to the caller alone"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("NotAFile", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "auth", "tokens.yml"), 0o755); err != nil {
			t.Fatal(err)
		}
		got := mustProblems(t, dir, noEnv) // and no panic
		if len(got) != 1 || got[0].Message != "not a regular file" {
			t.Errorf("problems = %v", got)
		}
	})
	t.Run("UnknownFile", func(t *testing.T) {
		t.Parallel()
		got := mustProblems(t, mustWriteDir(t, with(map[string]string{"auth/token.yml": "tokens: []\n"})), noEnv)
		want := []config.Problem{{File: "auth/token.yml", Message: "unknown file: the API tokens are in auth/tokens.yml"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
}
