package cli

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
)

// Token secrets.
const (
	// tokenPrefix starts every secret token new makes, so that one is
	// recognised in a leak (secret scanners) and told from a webhook secret.
	tokenPrefix = "ddb_"
	// tokenBytes is how many random bytes a secret carries: 256 bits.
	tokenBytes = 32
	// maxSecret is the longest secret token hash reads: far above any
	// secret worth having, far below a file read by mistake.
	maxSecret = 4096
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := groupCommand("token", "Make API tokens for auth/tokens.yml: a new secret, or the hash of one",
		`Make the entries of auth/tokens.yml in the configuration directory: token
new makes a fresh random secret and prints it with its entry; token hash
prints the entry of a secret read from standard input. The file holds only
the SHA-256 of each secret, never the secret. Neither command needs a
server.`)
	cmd.AddCommand(a.tokenNewCommand(), a.tokenHashCommand())
	return cmd
}

// tokenFlags are the flags that describe a token's entry.
type tokenFlags struct {
	name   string
	scopes []string
	groups []string
}

func (f *tokenFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the token's `NAME`, recorded as the actor of what its callers do: letters, digits, '.', '_', '-'")
	fl.StringSliceVar(&f.scopes, "scope", nil, "a `SCOPE` the token grants: "+scopeList()+" (repeat, or separate with commas; default read)")
	fl.StringArrayVar(&f.groups, "group", nil, "a `GROUP` the token is in, for manual promotions' allowedGroup (repeat for more)")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions(scopeStrings(), cobra.ShellCompDirectiveNoFileComp))
}

// entry returns the token entry the flags describe, for a secret of hash
// sum, or a usage error naming the flag at fault.
func (f *tokenFlags) entry(sum string) (*tokenEntry, error) {
	if !validTokenName(f.name) {
		return nil, usagef("--name %q is not a valid token name: use ASCII letters, digits, '.', '_' and '-', not starting with '.' or '-'", f.name)
	}
	e := &tokenEntry{Name: f.name, SHA256: sum, Scopes: []deploydb.Scope{}, Groups: []string{}}
	for _, s := range f.scopes {
		sc := deploydb.Scope(strings.TrimSpace(s))
		if !slices.Contains(deploydb.Scopes, sc) {
			return nil, usagef("--scope %q is not a scope: use %s", s, scopeList())
		}
		if !slices.Contains(e.Scopes, sc) {
			e.Scopes = append(e.Scopes, sc)
		}
	}
	if len(e.Scopes) == 0 {
		e.Scopes = append(e.Scopes, deploydb.ScopeRead)
	}
	for _, g := range f.groups {
		if g == "" || strings.TrimSpace(g) != g || !utf8.ValidString(g) || strings.ContainsFunc(g, unicode.IsControl) {
			return nil, usagef("--group %q is not a valid group name: it must be non-empty, without control characters or surrounding spaces", g)
		}
		if !slices.Contains(e.Groups, g) {
			e.Groups = append(e.Groups, g)
		}
	}
	return e, nil
}

// tokenEntry is one token of auth/tokens.yml, and with -o json what the
// token commands print (Secret only from token new).
type tokenEntry struct {
	Secret string           `json:"secret,omitempty"`
	Name   string           `json:"name"`
	SHA256 string           `json:"sha256"`
	Scopes []deploydb.Scope `json:"scopes"`
	Groups []string         `json:"groups"`
}

// writeYAML writes e as an item of the tokens: list, indented to paste
// under it. Groups are left out when there are none.
func (e *tokenEntry) writeYAML(w io.Writer) error {
	scopes := make([]string, len(e.Scopes))
	for i, s := range e.Scopes {
		scopes[i] = yamlScalar(string(s))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n", yamlScalar(e.Name))
	// A hex digest of digits only (or digits and one e) is quoted: it would
	// read as a number.
	fmt.Fprintf(&b, "    sha256: %s\n", yamlScalar(e.SHA256))
	fmt.Fprintf(&b, "    scopes: [%s]\n", strings.Join(scopes, ", "))
	if len(e.Groups) > 0 {
		groups := make([]string, len(e.Groups))
		for i, g := range e.Groups {
			groups[i] = yamlScalar(g)
		}
		fmt.Fprintf(&b, "    groups: [%s]\n", strings.Join(groups, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (a *app) tokenNewCommand() *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:   "new --name NAME [--scope SCOPE ...] [--group GROUP ...]",
		Short: "Make a new random token secret and print it with its auth/tokens.yml entry",
		Long: `Make a new random secret: "ddb_" and the unpadded base64url of 32 random
bytes. Print it on a comment line, then the entry to paste under tokens: in
auth/tokens.yml of the configuration directory: name, the SHA-256 of the
secret, scopes and groups. With -o json print them as one JSON object.

The secret is shown once and stored nowhere: keep it in the caller's secret
store, and keep the comment line out of auth/tokens.yml. Callers send it as
"Authorization: Bearer <secret>", or with deploydb --token or ` + EnvToken + `.

Scopes: ` + scopeList() + ` (admin implies every other); without
--scope the token gets read.`,
		Example: `  deploydb token new --name jenkins --scope artifacts:write --scope deployments:write
  deploydb token new --name alice --scope promotions:write --group release-managers
  deploydb token new --name dashboard -o json | jq -r .secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := a.localFormat()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("name") {
				return usagef("--name is required: the token's name, recorded as the actor of what its callers do")
			}
			secret, err := newTokenSecret()
			if err != nil {
				return err
			}
			e, err := f.entry(deploydb.HashSecret(secret))
			if err != nil {
				return err
			}
			if format == OutputJSON {
				e.Secret = secret
				return writeIndentedJSON(a.env.Stdout, e)
			}
			if _, err := fmt.Fprintf(a.env.Stdout, "# secret: %s\n", secret); err != nil {
				return err
			}
			if err := e.writeYAML(a.env.Stdout); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.env.Stderr, `The secret is shown once and stored nowhere: auth/tokens.yml holds only its SHA-256.
Paste the entry under tokens: in auth/tokens.yml, without the "# secret:" line.
Callers send the secret as "Authorization: Bearer <secret>", or with deploydb --token or %s.
`, EnvToken)
			return err
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) tokenHashCommand() *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:   "hash [--name NAME [--scope SCOPE ...] [--group GROUP ...]]",
		Short: "Print the sha256: line (or, with --name, the entry) of a secret read from standard input",
		Long: `Read a token secret from standard input (all of it, less one trailing
newline) and print its "sha256: <hex>" line for auth/tokens.yml, or with
--name the whole entry to paste under tokens:, as token new prints it. The
secret itself is never printed. With -o json print {"sha256": ...}, or
with --name the entry as token new -o json does, without the secret.

Exits 3 when standard input is empty or the secret could not be sent in an
Authorization header (control characters, or spaces around it).`,
		Example: `  printf '%s' "$JENKINS_TOKEN" | deploydb token hash
  deploydb token hash --name jenkins --scope artifacts:write < jenkins.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := a.localFormat()
			if err != nil {
				return err
			}
			named := cmd.Flags().Changed("name")
			if !named && (len(f.scopes) > 0 || len(f.groups) > 0) {
				return usagef("--scope and --group need --name: without it only the sha256: line is printed")
			}
			secret, err := readSecret(a.env.Stdin)
			if err != nil {
				return err
			}
			sum := deploydb.HashSecret(secret)
			if !named {
				if format == OutputJSON {
					return writeIndentedJSON(a.env.Stdout, struct {
						SHA256 string `json:"sha256"`
					}{sum})
				}
				_, err := fmt.Fprintf(a.env.Stdout, "sha256: %s\n", sum)
				return err
			}
			e, err := f.entry(sum)
			if err != nil {
				return err
			}
			if format == OutputJSON {
				return writeIndentedJSON(a.env.Stdout, e)
			}
			return e.writeYAML(a.env.Stdout)
		},
	}
	f.add(cmd)
	return cmd
}

// localFormat returns the output format of a command that needs no
// server: json, or table (here, the YAML to paste).
func (a *app) localFormat() (string, error) {
	if a.output != OutputTable && a.output != OutputJSON {
		return "", usagef("--output must be %s or %s, not %q", OutputTable, OutputJSON, a.output)
	}
	return a.output, nil
}

// newTokenSecret returns a fresh random secret.
func newTokenSecret() (string, error) {
	key := make([]byte, tokenBytes)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(key), nil
}

// readSecret reads a secret from r: all of it, less one trailing newline
// ("\n" or "\r\n"). Its errors never quote the secret.
func readSecret(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecret+1))
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > maxSecret {
		return "", deploydb.Errorf(deploydb.EINVALID, "the secret on standard input is longer than %d bytes", maxSecret)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	switch {
	case s == "":
		return "", deploydb.Errorf(deploydb.EINVALID, "no secret on standard input")
	case strings.ContainsFunc(s, unicode.IsControl):
		// An HTTP header cannot carry it: no caller could ever send it.
		return "", deploydb.Errorf(deploydb.EINVALID, "the secret on standard input has control characters (more than one line?): no Authorization header can carry it")
	case strings.ContainsAny(s, " \t"):
		// A bearer token (token68) has no spaces: the server would refuse
		// the header.
		return "", deploydb.Errorf(deploydb.EINVALID, "the secret on standard input has spaces, which a bearer token cannot carry")
	}
	return s, nil
}

// writeIndentedJSON writes v as JSON indented by two spaces, as the other
// commands print the server's responses.
func writeIndentedJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// validTokenName reports whether s can name a token: the alphabet of the
// configuration's idents, since the name appears in events, filters and
// messages.
func validTokenName(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// yamlScalar returns s as a YAML scalar that reads back as the string s,
// both as a mapping value and in a flow sequence: plain when that is safe,
// else double-quoted. s must be valid UTF-8 without control characters.
func yamlScalar(s string) string {
	if plainYAML(s) {
		return s
	}
	return strconv.Quote(s)
}

// plainYAML reports whether s reads back as itself written plain.
func plainYAML(s string) bool {
	switch strings.ToLower(s) {
	case "", "y", "n", "yes", "no", "on", "off":
		// YAML 1.1 parsers (yq, PyYAML) read these as booleans, though
		// DeployDB's reads them as strings.
		return false
	}
	if strings.HasSuffix(s, ":") {
		return false
	}
	if '0' <= s[0] && s[0] <= '9' && strings.Trim(s, "0123456789eE._+-:") == "" {
		// A number or a date to some YAML parser (1e5, 1_000, 2024-01-01,
		// 1:30, a digest of digits only), though DeployDB's may read a
		// string.
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case i > 0 && strings.ContainsRune(".-:/@=", c):
		default:
			return false
		}
	}
	// Numbers, dates and the like: ask the parser.
	var v struct {
		K any   `yaml:"k"`
		L []any `yaml:"l"`
	}
	doc := "k: " + s + "\nl: [" + s + "]\n"
	if yaml.Unmarshal([]byte(doc), &v) != nil {
		return false
	}
	return v.K == s && len(v.L) == 1 && v.L[0] == s
}

// scopeStrings returns the scopes, in deploydb.Scopes order.
func scopeStrings() []string {
	list := make([]string, len(deploydb.Scopes))
	for i, s := range deploydb.Scopes {
		list[i] = string(s)
	}
	return list
}

// scopeList returns the scopes for messages: "read, artifacts:write, ...".
func scopeList() string { return strings.Join(scopeStrings(), ", ") }
