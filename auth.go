package deploydb

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
)

// Scope is what a token allows (DESIGN.md §7).
type Scope string

// Scopes.
const (
	ScopeRead             Scope = "read"
	ScopeArtifactsWrite   Scope = "artifacts:write"
	ScopeDeploymentsWrite Scope = "deployments:write"
	ScopePromotionsWrite  Scope = "promotions:write"
	// ScopeAdmin allows operator actions and implies every other scope.
	ScopeAdmin Scope = "admin"
)

// Scopes lists the scopes, in the order messages list them.
var Scopes = []Scope{ScopeRead, ScopeArtifactsWrite, ScopeDeploymentsWrite, ScopePromotionsWrite, ScopeAdmin}

// Anonymous is the actor of a caller without a token.
const Anonymous = "anonymous"

// Auth is who may call DeployDB: the tokens of auth/tokens.yml.
type Auth struct {
	Tokens []Token `json:"tokens"`
	// Anonymous holds the scopes granted to callers without a token when
	// tokens are configured (a wall dashboard: [read]).
	Anonymous []Scope `json:"anonymous"`
}

// Token is one API token: a name, the SHA-256 of its secret (never the
// secret), what it may do and the groups it is in (manual promotions).
type Token struct {
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the secret. Never shown.
	SHA256 string   `json:"-"`
	Scopes []Scope  `json:"scopes"`
	Groups []string `json:"groups"`
}

// Enabled reports whether tokens are configured: without any, DeployDB
// serves anonymous callers only (and only on loopback, unless told).
func (a *Auth) Enabled() bool { return a != nil && len(a.Tokens) > 0 }

// Caller is who makes a request.
type Caller struct {
	// Name is the token's name, or Anonymous.
	Name   string
	Scopes []Scope
	Groups []string
	// Open is set when no tokens are configured: the caller may do
	// everything, manual approvals included.
	Open bool
}

// Allows reports whether the caller has scope s (admin has them all).
func (c *Caller) Allows(s Scope) bool {
	if c.Open || s == "" {
		return true
	}
	return slices.Contains(c.Scopes, s) || slices.Contains(c.Scopes, ScopeAdmin)
}

// InGroup reports whether the caller is in group g.
func (c *Caller) InGroup(g string) bool { return c.Open || slices.Contains(c.Groups, g) }

// AnonymousCaller returns the caller without a token under a.
func (a *Auth) AnonymousCaller() *Caller {
	if !a.Enabled() {
		return &Caller{Name: Anonymous, Open: true}
	}
	return &Caller{Name: Anonymous, Scopes: slices.Clone(a.Anonymous)}
}

// Authenticate returns the token whose secret is secret, comparing its
// hash with every token's in constant time, or false.
func (a *Auth) Authenticate(secret string) (*Caller, bool) {
	if a == nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	got := []byte(hex.EncodeToString(sum[:]))
	var found *Token
	for i := range a.Tokens {
		// Every token is compared, so the time taken does not say which.
		if subtle.ConstantTimeCompare(got, []byte(a.Tokens[i].SHA256)) == 1 {
			found = &a.Tokens[i]
		}
	}
	if found == nil {
		return nil, false
	}
	return &Caller{Name: found.Name, Scopes: slices.Clone(found.Scopes), Groups: slices.Clone(found.Groups)}, true
}

// HashSecret returns the hex SHA-256 of a token's secret: what
// auth/tokens.yml holds.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
