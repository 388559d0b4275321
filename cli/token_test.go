package cli

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/deploydb/deploydb"
)

// tokensFile is auth/tokens.yml as the lead's loader reads it.
type tokensFile struct {
	Tokens []struct {
		Name   string   `yaml:"name"`
		SHA256 string   `yaml:"sha256"`
		Scopes []string `yaml:"scopes"`
		Groups []string `yaml:"groups"`
	} `yaml:"tokens"`
	Anonymous []string `yaml:"anonymous"`
}

// pasted parses entry pasted under tokens: in a file that goes on after it,
// strictly, and returns the one token.
func pasted(t *testing.T, entry string) tokensFile {
	t.Helper()
	doc := "tokens:\n" + entry + "anonymous: [read]\n"
	var f tokensFile
	if err := yaml.UnmarshalWithOptions([]byte(doc), &f, yaml.Strict()); err != nil {
		t.Fatalf("entry does not load:\n%s\n%v", doc, err)
	}
	if len(f.Tokens) != 1 || len(f.Anonymous) != 1 {
		t.Fatalf("entry pasted under tokens: reads as %+v:\n%s", f, doc)
	}
	return f
}

// splitSecret returns the secret of token new's first line and the rest.
func splitSecret(t *testing.T, stdout string) (secret, entry string) {
	t.Helper()
	first, entry, ok := strings.Cut(stdout, "\n")
	secret, found := strings.CutPrefix(first, "# secret: ")
	if !ok || !found {
		t.Fatalf("first line is not the secret:\n%s", stdout)
	}
	return secret, entry
}

func TestTokenNew(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "token", "new", "--name", "jenkins",
			"--scope", "artifacts:write", "--scope", "deployments:write,admin", "--scope", "admin",
			"--group", "release-managers", "--group", "cn=release managers,ou=groups", "--group", "true")
		if r.err != nil {
			t.Fatal(r.err, r.stderr)
		}
		secret, entry := splitSecret(t, r.stdout)
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, "ddb_"))
		if !strings.HasPrefix(secret, "ddb_") || err != nil || len(key) != 32 {
			t.Errorf("secret %q is not ddb_ and the base64url of 32 bytes: %d bytes, %v", secret, len(key), err)
		}
		tok := pasted(t, entry).Tokens[0]
		if tok.SHA256 != deploydb.HashSecret(secret) {
			t.Errorf("sha256 %q, want HashSecret(secret) %q", tok.SHA256, deploydb.HashSecret(secret))
		}
		if tok.Name != "jenkins" {
			t.Errorf("name %q", tok.Name)
		}
		if diff := cmp.Diff([]string{"artifacts:write", "deployments:write", "admin"}, tok.Scopes); diff != "" {
			t.Errorf("scopes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"release-managers", "cn=release managers,ou=groups", "true"}, tok.Groups); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		if strings.Count(r.stdout, secret) != 1 || strings.Contains(r.stderr, secret) {
			t.Errorf("the secret is printed other than on the first line:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
		for _, want := range []string{"shown once", "stored nowhere", "Authorization: Bearer <secret>", "--token", EnvToken} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
	})

	t.Run("DefaultScopeRead", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "token", "new", "--name", "123")
		if r.err != nil {
			t.Fatal(r.err, r.stderr)
		}
		_, entry := splitSecret(t, r.stdout)
		tok := pasted(t, entry).Tokens[0]
		if tok.Name != "123" || !cmp.Equal(tok.Scopes, []string{"read"}) || tok.Groups != nil {
			t.Errorf("entry %+v, want name 123 (a string), scopes [read], no groups:\n%s", tok, entry)
		}
		if strings.Contains(entry, "groups") {
			t.Errorf("entry shows groups without --group:\n%s", entry)
		}
	})

	t.Run("SecretsDiffer", func(t *testing.T) {
		t.Parallel()
		seen := map[string]bool{}
		for range 3 {
			r := execute(t, Env{}, "token", "new", "--name", "ci")
			if r.err != nil {
				t.Fatal(r.err)
			}
			secret, _ := splitSecret(t, r.stdout)
			if seen[secret] {
				t.Fatalf("secret %q made twice", secret)
			}
			seen[secret] = true
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{}, "token", "new", "--name", "dashboard", "-o", "json")
		if r.err != nil {
			t.Fatal(r.err, r.stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		secret, _ := got["secret"].(string)
		if !strings.HasPrefix(secret, "ddb_") {
			t.Fatalf("secret %v", got["secret"])
		}
		want := map[string]any{
			"secret": secret,
			"name":   "dashboard",
			"sha256": deploydb.HashSecret(secret),
			"scopes": []any{"read"},
			"groups": []any{},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("JSON (-want +got):\n%s", diff)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"MissingName", []string{"--scope", "read"}, "--name is required"},
			{"EmptyName", []string{"--name", ""}, `--name "" is not a valid token name`},
			{"NameWithSpace", []string{"--name", "ci bot"}, `--name "ci bot" is not a valid token name`},
			{"NameStartsWithDash", []string{"--name", "-ci"}, `--name "-ci" is not a valid token name`},
			{"NameStartsWithDot", []string{"--name", ".ci"}, `--name ".ci" is not a valid token name`},
			{"UnknownScope", []string{"--name", "ci", "--scope", "write"}, `--scope "write" is not a scope: use read, artifacts:write, deployments:write, promotions:write, admin`},
			{"EmptyGroup", []string{"--name", "ci", "--group", ""}, `--group "" is not a valid group name`},
			{"GroupWithNewline", []string{"--name", "ci", "--group", "a\nb"}, `--group "a\nb" is not a valid group name`},
			{"BadOutput", []string{"--name", "ci", "-o", "yaml"}, `--output must be table or json, not "yaml"`},
			{"Argument", []string{"ci"}, `unknown command "ci"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := execute(t, Env{}, append([]string{"token", "new"}, tt.args...)...)
				if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
					t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 saying %q and nothing on stdout", r.code, r.stdout, r.stderr, tt.want)
				}
			})
		}
	})
}

func TestTokenHash(t *testing.T) {
	t.Parallel()
	want := deploydb.HashSecret("s3cret")

	for name, in := range map[string]string{"LF": "s3cret\n", "CRLF": "s3cret\r\n", "NoNewline": "s3cret"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := execute(t, Env{Stdin: strings.NewReader(in)}, "token", "hash")
			if r.err != nil {
				t.Fatal(r.err, r.stderr)
			}
			if r.stdout != "sha256: "+want+"\n" {
				t.Errorf("stdout %q, want the sha256: line of %q", r.stdout, "s3cret")
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Errorf("the secret is echoed:\n%s%s", r.stdout, r.stderr)
			}
		})
	}

	t.Run("Entry", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{Stdin: strings.NewReader("s3cret\n")}, "token", "hash",
			"--name", "alice", "--scope", "promotions:write", "--group", "release-managers")
		if r.err != nil {
			t.Fatal(r.err, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret") || strings.Contains(r.stdout, "#") {
			t.Errorf("the entry shows the secret or a secret line:\n%s%s", r.stdout, r.stderr)
		}
		tok := pasted(t, r.stdout).Tokens[0]
		if tok.Name != "alice" || tok.SHA256 != want || !cmp.Equal(tok.Scopes, []string{"promotions:write"}) || !cmp.Equal(tok.Groups, []string{"release-managers"}) {
			t.Errorf("entry %+v", tok)
		}
	})

	t.Run("SameEntryAsNew", func(t *testing.T) {
		t.Parallel()
		args := []string{"--name", "jenkins", "--scope", "artifacts:write", "--group", "ops team"}
		n := execute(t, Env{}, append([]string{"token", "new"}, args...)...)
		if n.err != nil {
			t.Fatal(n.err)
		}
		secret, entry := splitSecret(t, n.stdout)
		h := execute(t, Env{Stdin: strings.NewReader(secret + "\n")}, append([]string{"token", "hash"}, args...)...)
		if h.err != nil {
			t.Fatal(h.err)
		}
		if h.stdout != entry {
			t.Errorf("token hash prints\n%s\ntoken new printed\n%s", h.stdout, entry)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		r := execute(t, Env{Stdin: strings.NewReader("s3cret\n")}, "token", "hash", "-o", "json")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if diff := cmp.Diff("{\n  \"sha256\": \""+want+"\"\n}\n", r.stdout); diff != "" {
			t.Errorf("JSON (-want +got):\n%s", diff)
		}
		r = execute(t, Env{Stdin: strings.NewReader("s3cret\n")}, "token", "hash", "--name", "ci", "-o", "json")
		if r.err != nil {
			t.Fatal(r.err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		wantEntry := map[string]any{"name": "ci", "sha256": want, "scopes": []any{"read"}, "groups": []any{}}
		if diff := cmp.Diff(wantEntry, got); diff != "" {
			t.Errorf("JSON (-want +got):\n%s", diff)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		const secret = "hunter2-very-secret"
		tests := []struct {
			name  string
			stdin string
			args  []string
			code  int
			want  string
		}{
			{"Empty", "", nil, ExitInvalid, "no secret on standard input"},
			{"OnlyNewline", "\n", nil, ExitInvalid, "no secret on standard input"},
			{"TwoLines", secret + "\n" + secret + "\n", nil, ExitInvalid, "control characters"},
			{"TrailingSpace", secret + " \n", nil, ExitInvalid, "has spaces"},
			{"TooLong", strings.Repeat(secret, 1000), nil, ExitInvalid, "longer than 4096 bytes"},
			{"ScopeWithoutName", secret, []string{"--scope", "read"}, ExitUsage, "--scope and --group need --name"},
			{"BadScope", secret, []string{"--name", "ci", "--scope", "root"}, ExitUsage, `--scope "root" is not a scope`},
			{"BadName", secret, []string{"--name", "ci/bot"}, ExitUsage, `--name "ci/bot" is not a valid token name`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := execute(t, Env{Stdin: strings.NewReader(tt.stdin)}, append([]string{"token", "hash"}, tt.args...)...)
				if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
					t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d saying %q and nothing on stdout", r.code, r.stdout, r.stderr, tt.code, tt.want)
				}
				if strings.Contains(r.stderr, secret) {
					t.Errorf("the secret is echoed:\n%s", r.stderr)
				}
			})
		}
	})
}

// Every name, digest and group name token commands accept reads back as
// the same string, in an entry pasted under tokens:.
func TestTokenEntryYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		name := rapid.StringMatching(`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,10}`).Draw(t, "name")
		sum := rapid.OneOf(
			rapid.StringMatching(`[0-9a-f]{64}`),
			rapid.StringMatching(`[0-9]{64}`),
			rapid.StringMatching(`[0-9]{20}e[0-9]{43}`),
		).Draw(t, "sha256")
		g := rapid.OneOf(
			rapid.StringMatching(`[a-zA-Z0-9_][a-zA-Z0-9._:/@=-]{0,12}`),
			rapid.String(),
		).Filter(func(s string) bool {
			return s != "" && strings.TrimSpace(s) == s && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
		}).Draw(t, "group")
		e := &tokenEntry{Name: name, SHA256: sum, Scopes: deploydb.Scopes, Groups: []string{g}}
		var b strings.Builder
		if err := e.writeYAML(&b); err != nil {
			t.Fatal(err)
		}
		doc := []byte("tokens:\n" + b.String())
		// As a loader decoding into strings reads it, and as one that
		// looks at what each scalar is.
		var f tokensFile
		if err := yaml.UnmarshalWithOptions(doc, &f, yaml.Strict()); err != nil {
			t.Fatalf("entry does not load: %v\n%s", err, doc)
		}
		var v struct {
			Tokens []map[string]any `yaml:"tokens"`
		}
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"name": name, "sha256": sum, "scopes": []any{}, "groups": []any{g}}
		for _, s := range deploydb.Scopes {
			want["scopes"] = append(want["scopes"].([]any), string(s))
		}
		if len(v.Tokens) != 1 || !cmp.Equal(v.Tokens[0], want) {
			t.Fatalf("entry reads back as %#v from\n%s", v.Tokens, doc)
		}
		if len(f.Tokens) != 1 || f.Tokens[0].Name != name || f.Tokens[0].SHA256 != sum || !cmp.Equal(f.Tokens[0].Groups, []string{g}) {
			t.Fatalf("entry reads back as %+v from\n%s", f.Tokens, doc)
		}
	})
}

// Scalars other YAML parsers (yq, PyYAML) would read as numbers, dates or
// booleans are quoted; the rest are written plain.
func TestYAMLScalar(t *testing.T) {
	t.Parallel()
	digits := strings.Repeat("1234567890", 6) + "1234"
	for s, want := range map[string]string{
		"jenkins":         "jenkins",
		"artifacts:write": "artifacts:write",
		"v1.2":            "v1.2",
		"123":             `"123"`,
		"1.0":             `"1.0"`,
		"2024-01-01":      `"2024-01-01"`,
		"yes":             `"yes"`,
		"Off":             `"Off"`,
		"null":            `"null"`,
		"a: b":            `"a: b"`,
		"#x":              `"#x"`,
		`say "hi"`:        `"say \"hi\""`,
		digits:            `"` + digits + `"`,
	} {
		if got := yamlScalar(s); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", s, got, want)
		}
	}
}
