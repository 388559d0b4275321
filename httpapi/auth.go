package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/deploydb/deploydb"
)

// scopeByEvent is the scope of POST /api/cdevents: the write scope of what
// the event records (artifacts:write for artifact.published,
// deployments:write for service.*, promotions:write for test runs),
// checked once the event is read.
const scopeByEvent deploydb.Scope = "by event"

// eventScopes are the scopes one of which a caller needs to send CDEvents
// at all.
var eventScopes = []deploydb.Scope{deploydb.ScopeArtifactsWrite, deploydb.ScopeDeploymentsWrite, deploydb.ScopePromotionsWrite}

type callerKey struct{}

// callerOf returns the caller of r, set by authenticate.
func callerOf(r *http.Request) *deploydb.Caller {
	if c, ok := r.Context().Value(callerKey{}).(*deploydb.Caller); ok {
		return c
	}
	return &deploydb.Caller{Name: deploydb.Anonymous}
}

// actor names the caller in the audit trail: its token's name, or
// anonymous.
func actor(r *http.Request) string { return callerOf(r).Name }

// authenticate finds the caller of r under the tokens of cfg and checks
// that it has scope; it returns r with the caller in its context. Without
// tokens configured every caller is anonymous and may do everything (the
// server then listens on loopback only, unless told otherwise).
//
// A missing, malformed or unknown token is EUNAUTHORIZED (401); a known
// caller (or an anonymous one granted some scopes) without scope is
// EFORBIDDEN (403). Messages name the scope, never a secret.
func authenticate(r *http.Request, auth *deploydb.Auth, scope deploydb.Scope) (*http.Request, error) {
	var c *deploydb.Caller
	header := r.Header.Get("Authorization")
	switch {
	case header == "":
		c = auth.AnonymousCaller()
	case !auth.Enabled():
		// A token sent to a server without tokens: no token can be
		// right, and ignoring it would hide a misconfiguration.
		return nil, deploydb.Errorf(deploydb.EUNAUTHORIZED, "this server has no API tokens configured; send no Authorization header, or add the token to auth/tokens.yml")
	default:
		// RFC 9110 §11.1: the scheme is case-insensitive; a token68 has
		// no spaces.
		scheme, secret, _ := strings.Cut(strings.TrimSpace(header), " ")
		secret = strings.TrimSpace(secret)
		if !strings.EqualFold(scheme, "Bearer") || secret == "" || strings.ContainsAny(secret, " \t") {
			return nil, deploydb.Errorf(deploydb.EUNAUTHORIZED, "malformed Authorization header: send Authorization: Bearer <token>")
		}
		found, ok := auth.Authenticate(secret)
		if !ok {
			return nil, deploydb.Errorf(deploydb.EUNAUTHORIZED, "unknown API token")
		}
		c = found
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	switch {
	case scope == "" || c.Allows(scope):
		return r, nil
	case scope == scopeByEvent:
		for _, s := range eventScopes {
			if c.Allows(s) {
				return r, nil
			}
		}
		return nil, denied(c, "artifacts:write, deployments:write or promotions:write")
	}
	return nil, denied(c, string(scope))
}

// denied is the error of a caller without scope.
func denied(c *deploydb.Caller, scope string) error {
	if c.Name == deploydb.Anonymous {
		return deploydb.Errorf(deploydb.EUNAUTHORIZED, "this needs an API token with scope %s: send Authorization: Bearer <token>", scope)
	}
	return deploydb.Errorf(deploydb.EFORBIDDEN, "token %s does not have scope %s", c.Name, scope)
}

// require checks, inside a handler, that the caller of r has scope.
func require(r *http.Request, scope deploydb.Scope) error {
	if c := callerOf(r); !c.Allows(scope) {
		return denied(c, string(scope))
	}
	return nil
}
