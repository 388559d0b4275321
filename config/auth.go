package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/deploydb/deploydb"
)

// authDir holds the API tokens, in tokensFile.
const (
	authDir    = "auth"
	tokensFile = "tokens.yml"
)

// secretText matches a secret as deploydb token new makes them: ddb_ and
// the 43 characters of base64url of 32 bytes.
var secretText = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])ddb_[A-Za-z0-9_-]{43}(?:$|[^A-Za-z0-9_-])`)

// hexText matches what may be a hash, or a hand-made secret, in a message.
var hexText = regexp.MustCompile(`[0-9A-Fa-f]{32,}|ddb_[A-Za-z0-9_-]+`)

// reservedActors are names DeployDB records writes under itself: no token
// may take one, or the audit trail could not tell them apart.
var reservedActors = []string{deploydb.Anonymous, "deploydb", "config"}

// loadAuth reads auth/tokens.yml into cfg.Auth: none is no tokens. It is not
// part of the model, so not of the checksum or the files listed: a token
// change is not a model change.
func (l *loader) loadAuth(cfg *deploydb.Config) {
	cfg.Auth = &deploydb.Auth{Tokens: []deploydb.Token{}, Anonymous: []deploydb.Scope{}}
	dir := filepath.Join(l.dir, authDir)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		l.addf(authDir, 0, "%s", describeErr(err))
		return
	case !info.IsDir():
		l.addf(authDir, 0, "not a directory")
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.addf(authDir, 0, "%s", describeErr(err))
		return
	}
	found := ""
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".") || !isYAML(name):
		case name == tokensFile || name == "tokens.yaml":
			if found != "" {
				l.addf(authDir+"/"+name, 0, "the tokens are in %s/%s already: keep one file", authDir, found)
				continue
			}
			found = name
		default:
			l.addf(authDir+"/"+name, 0, "unknown file: the API tokens are in %s/%s", authDir, tokensFile)
		}
	}
	if found == "" {
		return
	}
	file := authDir + "/" + found
	n := len(l.files)
	data, ok := l.read(file)
	l.files = l.files[:n] // not part of the model's checksum
	if !ok {
		return
	}
	d := &decoder{file: file, getenv: l.getenv}
	defer func() {
		// Messages quote what they reject: never a hash or a secret.
		for i := range d.problems {
			d.problems[i].Message = hexText.ReplaceAllString(d.problems[i].Message, "(redacted)")
		}
		l.problems = append(l.problems, d.problems...)
	}()
	if loc := secretText.FindIndex(data); loc != nil {
		// `deploydb token new >> auth/tokens.yml` would put the secret
		// here, in a file that is read, copied and committed.
		start := loc[0] + bytes.Index(data[loc[0]:loc[1]], []byte("ddb_"))
		d.addf(1+bytes.Count(data[:start], []byte("\n")), "", "holds what looks like a token's secret (ddb_...): keep only its sha256 in this file, and give the secret to the caller alone")
		return
	}
	body, ok := d.parse(data)
	if !ok {
		return
	}
	d.auth(cfg.Auth, body)
}

// auth decodes auth/tokens.yml: {tokens: [{name, sha256, scopes, groups}],
// anonymous: [scope, ...]}.
func (d *decoder) auth(a *deploydb.Auth, body ast.Node) {
	entries, _ := d.object(body, "", []string{"tokens", "anonymous"})
	var anonymous *entry
	for i, e := range entries {
		switch e.key {
		case "tokens":
			items, _ := d.sequence(e.value, e.field)
			names, hashes := map[string]string{}, map[string]string{}
			for i, item := range items {
				f := index(e.field, i)
				t, ok := d.token(item, f)
				if !ok {
					continue
				}
				if other, dup := names[t.Name]; dup {
					d.errorf(item, f, "token %q is also defined at %s", t.Name, other)
					continue
				}
				if other, dup := hashes[t.SHA256]; dup {
					d.errorf(item, f, "token %q has the same sha256 as %s: each token needs its own secret", t.Name, other)
					continue
				}
				names[t.Name], hashes[t.SHA256] = f, t.Name
				a.Tokens = append(a.Tokens, t)
			}
		case "anonymous":
			anonymous = &entries[i]
			scopes, ok := d.scopes(e.value, e.field)
			if ok && slices.ContainsFunc(scopes, func(s deploydb.Scope) bool { return s != deploydb.ScopeRead }) {
				d.errorf(e.value, e.field, "callers without a token may only read ([read]): give every writer a token, so that its writes name it")
				ok = false
			}
			if ok {
				a.Anonymous = scopes
			}
		}
	}
	if anonymous != nil && len(a.Anonymous) > 0 && len(a.Tokens) == 0 && len(d.problems) == 0 {
		d.errorf(anonymous.keyNode, anonymous.field, "anonymous scopes apply only beside tokens: without any token every caller may do everything (on loopback only); add a token")
	}
}

// token decodes one token. Messages never show a hash: it is what stands
// between a guessed secret and the API.
func (d *decoder) token(n ast.Node, field string) (deploydb.Token, bool) {
	t := deploydb.Token{Scopes: []deploydb.Scope{}, Groups: []string{}}
	entries, ok := d.object(n, field, []string{"name", "sha256", "scopes", "groups"})
	if !ok {
		return t, false
	}
	var haveName, haveHash, haveScopes bool
	for _, e := range entries {
		switch e.key {
		case "name":
			haveName = true
			v, vok := d.str(e.value, e.field)
			switch {
			case !vok:
				ok = false
			case !validIdent(v.value):
				d.errorf(e.value, e.field, "invalid token name %s: letters, digits, '.', '_' and '-'", v)
				ok = false
			case slices.Contains(reservedActors, v.value):
				d.errorf(e.value, e.field, "token name %s is reserved: DeployDB records its own writes under it", v)
				ok = false
			default:
				t.Name = v.value
			}
		case "sha256":
			haveHash = true
			v, vok := d.str(e.value, e.field)
			h := strings.ToLower(v.value)
			switch {
			case !vok:
				ok = false
			case len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "":
				d.errorf(e.value, e.field, "must be the 64 hex digits of the SHA-256 of the token's secret (never the secret itself): make one with `deploydb token new`")
				ok = false
			default:
				t.SHA256 = h
			}
		case "scopes":
			s, sok := d.scopes(e.value, e.field)
			ok = ok && sok
			t.Scopes, haveScopes = s, true
		case "groups":
			items, gok := d.sequence(e.value, e.field)
			ok = ok && gok
			for i, item := range items {
				g, iok := d.str(item, index(e.field, i))
				if !iok || g.value == "" {
					if iok {
						d.errorf(item, index(e.field, i), "a group name is a non-empty string")
					}
					ok = false
					continue
				}
				if !slices.Contains(t.Groups, g.value) {
					t.Groups = append(t.Groups, g.value)
				}
			}
		}
	}
	for _, req := range []struct {
		have       bool
		key, about string
	}{
		{haveName, "name", "a token has a name: the actor its writes are recorded under"},
		{haveHash, "sha256", "the SHA-256 of the token's secret: make one with `deploydb token new`"},
		{haveScopes, "scopes", "what the token may do: " + scopeList()},
	} {
		if !req.have {
			d.addf(line(n), join(field, req.key), "required: %s", req.about)
			ok = false
		}
	}
	return t, ok
}

// scopes decodes a list of scopes.
func (d *decoder) scopes(n ast.Node, field string) ([]deploydb.Scope, bool) {
	items, ok := d.sequence(n, field)
	out := []deploydb.Scope{}
	for i, item := range items {
		f := index(field, i)
		v, vok := d.str(item, f)
		s := deploydb.Scope(v.value)
		switch {
		case !vok:
			ok = false
		case !slices.Contains(deploydb.Scopes, s):
			d.errorf(item, f, "unknown scope %s; valid: %s", v, scopeList())
			ok = false
		case !slices.Contains(out, s):
			out = append(out, s)
		}
	}
	return out, ok
}

func scopeList() string {
	names := make([]string, len(deploydb.Scopes))
	for i, s := range deploydb.Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
