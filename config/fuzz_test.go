package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

// fuzzSecretValue is the value of ${env:SECRET} in fuzzed files: it must
// never show in a problem's message.
const fuzzSecretValue = "s3cr3t-env-V4lue"

// fuzzEnv is the environment fuzzed files may reference.
func fuzzEnv(name string) string {
	switch name {
	case "SET":
		return "value"
	case "SECRET":
		return fuzzSecretValue
	}
	return ""
}

// fuzzDir returns a directory holding baseFiles, made once per fuzz target
// (and worker process) rather than once per input, for speed.
func fuzzDir(f *testing.F) string {
	f.Helper()
	return mustWriteDir(f, baseFiles())
}

// mustLoadFuzzed writes content as file into dir, which holds baseFiles,
// loads it, removes the file again, and checks what must hold for any
// content: no panic, either a config or an *Error whose problems all
// concern the fuzzed file (the base is valid) and never show the value of
// an environment variable.
func mustLoadFuzzed(t *testing.T, dir, file string, content []byte) *deploydb.Config {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}()
	cfg, err := config.LoadWith(dir, config.Options{Getenv: fuzzEnv})
	if err == nil {
		if cfg == nil || len(cfg.Checksum) != 64 {
			t.Fatalf("Load succeeded with config %+v", cfg)
		}
		return cfg
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
		t.Fatalf("Load error %T without problems: %v", err, err)
	}
	if deploydb.ErrorCode(err) != deploydb.EINVALID {
		t.Fatalf("Load error code %q, want %q", deploydb.ErrorCode(err), deploydb.EINVALID)
	}
	for _, pr := range cerr.Problems {
		if pr.File != file || pr.Message == "" {
			t.Fatalf("problem %q is not about %s", pr, file)
		}
		if strings.Contains(pr.String(), fuzzSecretValue) && !bytes.Contains(content, []byte(fuzzSecretValue)) {
			t.Fatalf("problem %q shows the value of ${env:SECRET}", pr)
		}
	}
	return nil
}

// FuzzLoadService fuzzes a service file: it loads, or fails with problems
// that name it.
func FuzzLoadService(f *testing.F) {
	for _, seed := range []string{
		"description: \"Basic Service\"\nartifacts:\n  - basic.group.1:bg1\n  - basic.group.2:bg2\npipelines:\n  - pipe\npromotions:\n  - smoke\n",
		"artifacts: [a:b]\npipelines: [pipe]\nfailure_strategy: Stop\n",
		"description: ${env:SET} ${env:UNSET}\npipelines: &p [pipe]\npromotions: *p\n",
		"pipelines: [pipe\n",
		"<<: {pipelines: [pipe]}\nartifacts: [x:y, x:y, 'a b:c']\n",
	} {
		f.Add([]byte(seed))
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, content []byte) {
		cfg := mustLoadFuzzed(t, dir, "services/fuzz.yml", content)
		if cfg == nil {
			return
		}
		s := cfg.Services["fuzz"]
		if s == nil || s.Ident != "fuzz" || s.Pipeline() != "pipe" || s.Artifacts == nil || s.Promotions == nil {
			t.Fatalf("loaded service %+v", s)
		}
		valid := []deploydb.FailureStrategy{deploydb.FailureNotify, deploydb.FailureRollback, deploydb.FailureIgnore}
		if !slices.Contains(valid, s.FailureStrategy) {
			t.Fatalf("failure strategy %q", s.FailureStrategy)
		}
	})
}

// FuzzLoadFile fuzzes the other kinds of file: which one is picked by kind.
func FuzzLoadFile(f *testing.F) {
	files := []string{"environments/fuzz.yml", "pipelines/fuzz.yml", "promotions/fuzz.yml", "webhook/fuzz.yml"}
	seeds := []struct {
		kind    uint8
		content string
	}{
		{0, "description: \"Basic Environment\"\nwebhook:\n  deployment:\n    created:\n      - http://localhost:10000/job/basicEnv-deploy-created/build\n"},
		{0, "production: true\nwebhook: {flow: {completed: ['https://${env:SET}/x']}}\n"},
		{0, "freezes:\n  - {reason: nights, timezone: Europe/Berlin, days: [mon, fri], from: '22:00', to: '06:00'}\n  - {reason: once, start: 2025-12-20T00:00:00Z, end: 2025-12-21T00:00:00+01:00}\n"},
		{0, "freezes: [{reason: x, days: [sun], from: 0:00, to: 24:00}, {reason: y, days: [xyz], from: 25:00}]\n"},
		{1, "description: \"Basic pipeline\"\nenvironments:\n     integ:\n       promotions:\n          - smoke\n"},
		{1, "environments: {integ: {failureStrategy: rollback}, nope: }\n"},
		{2, "type:  deploydb.models.promotion.ManualLDAPPromotionImpl\nattributes:\n    allowedGroup: ManualPromotionGroup\n"},
		{2, "type: soak\nattributes: {duration: 1h, list: [1, 2.5, true, ~, {a: b}]}\n"},
		{3, "deployment:\n  completed:\n     - http://localhost:10000/a\n     - http://localhost:10000/b\npromotion:\n  completed: []\n"},
		{3, "hooks:\n  - name: jenkins\n    url: https://ci.example.com/job/{{pathescape .Service}}?v={{urlquery .Artifact.Version}}&t=${env:SECRET}\n    method: put\n    headers: {Authorization: 'Basic {{base64 (printf \"%s:%s\" ${env:SET} ${env:SECRET})}}'}\n    body: '{\"v\": {{json .Artifact.Version}}}'\n    secret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_dGVzdA==]\n    events: [deployment.created, promotion.completed]\n"},
		{3, "deployment:\n  failed:\n    - {url: 'https://x.example/{{.Nope}}', body: '{{range 10000000000}}{{end}}'}\n    - {url: '${env:UNSET}', format: cdevents, contentType: 'text/plain; charset=utf-8'}\n  created:\n    - {name: n, url: 'http://h/{{template \"x\"}}', events: [flow.completed]}\n"},
		{3, "hooks: [{url: https://h/, format: cdevents}, {url: 'https://h/{{printf \"%0999999d\" 1}}', events: [environment.created]}, {url: https://h/, method: GET, body: x}]\n"},
		{0, "webhook:\n  hooks:\n    - {url: 'https://{{.Environment}}.example.com/?d={{.Deployment.ID}}', headers: {X-Env: '{{.Environment}}', Content-Type: x}, events: [deployment.completed]}\n"},
		{0, "freezes: [{reason: r, timezone: Nope/Zone, days: [mon], from: '09:00', to: '17:00'}, {reason: r, start: 2025-01-02T00:00:00Z, end: 2025-01-01T00:00:00Z}]\n"},
		{1, "environments:\n  integ: {promotions: [smoke, smoke, nope], manual: true}\n  integ2: {}\n"},
	}
	for _, s := range seeds {
		f.Add(s.kind, []byte(s.content))
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, kind uint8, content []byte) {
		file := files[int(kind)%len(files)]
		cfg := mustLoadFuzzed(t, dir, file, content)
		if cfg == nil {
			return
		}
		for _, p := range cfg.Promotions {
			if p.Attributes == nil || p.Type == "" {
				t.Fatalf("loaded promotion %+v", p)
			}
		}
		for _, p := range cfg.Pipelines {
			if len(p.Environments) == 0 {
				t.Fatalf("loaded pipeline without environments %+v", p)
			}
		}
		for _, e := range cfg.Environments {
			for _, f := range e.Freezes {
				if f.Reason == "" || f.Weekly() && (f.Location == nil || len(f.Days) == 0) {
					t.Fatalf("loaded freeze %+v", f)
				}
			}
			// Answers, and ends, for any windows that load.
			at := time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC)
			e.FrozenAt(at)
			e.NextFreezeChange(at)
		}
	})
}

// FuzzLoadTokens fuzzes auth/tokens.yml: it loads into tokens that each
// have a name, a SHA-256 and valid scopes, or fails with problems that name
// the file and never show a hash.
func FuzzLoadTokens(f *testing.F) {
	hash := deploydb.HashSecret("ddb_fuzz")
	for _, seed := range []string{
		"tokens:\n  - name: jenkins\n    sha256: " + strings.ToUpper(hash) + "\n    scopes: [artifacts:write, deployments:write]\n  - name: alice\n    sha256: " + deploydb.HashSecret("ddb_alice") + "\n    scopes: [read, promotions:write]\n    groups: [release-managers]\nanonymous: [read]\n",
		"tokens: [{name: a, sha256: " + hash + ", scopes: [admin]}, {name: a, sha256: " + hash + ", scopes: []}]\n",
		"tokens: [{name: anonymous, sha256: abc, scopes: [root]}, {name: 'x y', sha256: ddb_" + strings.Repeat("A", 43) + "}]\nanonymous: [admin]\n",
		"anonymous: [read]\n",
		"tokens: {name: x}\nother: 1\n",
	} {
		f.Add([]byte(seed))
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, content []byte) {
		const file = "auth/tokens.yml"
		p := filepath.Join(dir, filepath.FromSlash(file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		cfg, err := config.LoadWith(dir, config.Options{Getenv: fuzzEnv})
		if err != nil {
			var cerr *config.Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Load error %T without problems: %v", err, err)
			}
			for _, pr := range cerr.Problems {
				if pr.File != file || pr.Message == "" {
					t.Fatalf("problem %q is not about %s", pr, file)
				}
				if strings.Contains(strings.ToLower(pr.Message), hash) {
					t.Fatalf("problem %q shows a token's hash", pr)
				}
			}
			return
		}
		for _, tk := range cfg.Auth.Tokens {
			if tk.Name == "" || len(tk.SHA256) != 64 || tk.Scopes == nil {
				t.Fatalf("loaded token %+v", tk)
			}
			for _, s := range tk.Scopes {
				if !slices.Contains(deploydb.Scopes, s) {
					t.Fatalf("token %s has scope %q", tk.Name, s)
				}
			}
		}
		for _, s := range cfg.Auth.Anonymous {
			if s != deploydb.ScopeRead {
				t.Fatalf("anonymous callers may %s", s)
			}
		}
	})
}

// FuzzLoadHook fuzzes the templates and options of a hook object, written
// as a valid YAML hook whatever they hold: it loads into a hook whose
// templates render on a sample of each of its events, or fails with
// problems that name the file and never show an environment variable's
// value.
func FuzzLoadHook(f *testing.F) {
	for _, seed := range []struct {
		url, header, body string
		shape             uint8
	}{
		{"https://ci.example.com/job/deploy-{{.Service}}/build?VERSION={{urlquery .Artifact.Version}}&ID={{.Deployment.ID}}", `Basic {{base64 (printf "%s:%s" ${env:SET} ${env:SECRET})}}`, "", 0},
		{"${env:SECRET}", "Bearer ${env:SECRET}", `{"text": {{json (printf "%s %s failed in %s" .Service .Artifact.Version .Environment)}}}`, 1},
		{"https://h.example/{{pathescape .Reason}}", "{{.Promotion.Name}}", `{{if eq .Event "promotion.completed"}}{"p": {{json .Promotion}}}{{else}}{}{{end}}`, 2},
		{"https://h.example/{{range 100000000}}{{end}}", "{{define \"x\"}}{{template \"x\"}}{{end}}", `{{$x := printf "%0999999d" 1}}{{$x = printf "%s%s" $x $x}}{{$x}}`, 1},
		{"http://u:pw@h.example/{{.Nope}}", "a\nb", "{{json .}}", 4},
		{"https://h.example/{{ \"${env:SECRET}\" }}", "{{env \"SECRET\"}}", "not json {{.Reason}}", 5},
		{"ftp://h/", "{{printf \"%0999999d%0999999d\" 1 2}}", "{{urlquery .Detail}}", 0x12},
		{"https://h.example/", "", "", 0x23},
	} {
		f.Add(seed.url, seed.header, seed.body, seed.shape)
	}
	methods := []string{"", "POST", "put", "GET", "DELETE", "PATCH", "TRACE"}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, url, header, body string, shape uint8) {
		quote := func(s string) string {
			b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
			return string(b)
		}
		var y strings.Builder
		fmt.Fprintf(&y, "hooks:\n  - name: fuzz\n    url: %s\n    headers:\n      X-Fuzz: %s\n", quote(url), quote(header))
		if m := methods[int(shape)%len(methods)]; m != "" {
			fmt.Fprintf(&y, "    method: %s\n", m)
		}
		if body != "" {
			fmt.Fprintf(&y, "    body: %s\n", quote(body))
		}
		if shape&0x10 != 0 {
			y.WriteString("    contentType: text/plain\n")
		}
		if shape&0x20 != 0 {
			y.WriteString("    format: cdevents\n")
		} else {
			y.WriteString("    events: [deployment.created, promotion.completed, environment.modified]\n")
		}
		content := []byte(y.String())
		cfg := mustLoadFuzzed(t, dir, "webhook/fuzz.yml", content)
		if cfg == nil {
			return
		}
		h := cfg.HookNamed["fuzz"]
		if h == nil || h.Templates == nil || len(h.Events) == 0 {
			t.Fatalf("loaded hook %+v", h)
		}
		for _, ev := range h.Events {
			c := deploydb.SampleHookContext(ev)
			if _, err := deploydb.RenderHookTemplate(h.Templates.URL, c); err != nil {
				t.Fatalf("the URL template that loaded fails on %s: %v", ev, err)
			}
			for _, ht := range h.Templates.Headers {
				if _, err := deploydb.RenderHookTemplate(ht, c); err != nil {
					t.Fatalf("a header template that loaded fails on %s: %v", ev, err)
				}
			}
			if h.Templates.Body != nil {
				if _, err := deploydb.RenderHookTemplate(h.Templates.Body, c); err != nil {
					t.Fatalf("the body template that loaded fails on %s: %v", ev, err)
				}
			}
		}
	})
}
