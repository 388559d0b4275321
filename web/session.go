package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/deploydb/deploydb"
)

// SessionCookie is the cookie that keeps a signed-in token: the token
// itself, so that every request is authenticated against the tokens in
// force (a token removed from the configuration signs its sessions out at
// the next reload), on every replica alike. It is HttpOnly (no script
// reads it), SameSite=Strict (no other site's page sends it), Secure when
// the UI is served over TLS, and lasts as long as the browser session.
const SessionCookie = "deploydb_session"

// withSession returns r with the token of its session cookie as its
// Authorization, when it has no Authorization of its own. A cookie whose
// token the tokens in force do not know (removed from the configuration,
// or from another server on this host) is dropped: the reader reads as
// an anonymous caller, signed out, rather than being refused.
func (u *UI) withSession(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Header.Get("Authorization") != "" {
		return r
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return r
	}
	if _, ok := u.config().Auth.Authenticate(c.Value); !ok {
		clearSession(w, r)
		return r
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.Value)
	return r
}

// clearSession drops the session cookie.
func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// signInView is the data of the sign-in page.
type signInView struct {
	Next    string
	Problem string
}

// signInPage renders GET /signin.
func (u *UI) signInPage(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	u.render(w, r, http.StatusOK, "signin", view{Title: "Sign in", Data: signInView{Next: localPath(r.URL.Query().Get("next"))}})
}

// signIn answers POST /signin: a known token is kept in the session
// cookie and the browser goes on to the page it came from; another is
// refused, saying so.
func (u *UI) signIn(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, deploydb.Errorf(deploydb.EBADREQUEST, "the sign-in form could not be read: %v", err))
		return
	}
	next := localPath(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	auth := u.config().Auth
	switch {
	case !auth.Enabled():
		u.render(w, r, http.StatusConflict, "signin", view{Title: "Sign in", Data: signInView{Next: next,
			Problem: "This server has no API tokens configured: there is nothing to sign in with. Add tokens to auth/tokens.yml of the configuration and reload."}})
		return
	case token == "":
		u.render(w, r, http.StatusUnprocessableEntity, "signin", view{Title: "Sign in", Data: signInView{Next: next, Problem: "Paste an API token to sign in."}})
		return
	}
	if _, ok := auth.Authenticate(token); !ok {
		u.render(w, r, http.StatusUnauthorized, "signin", view{Title: "Sign in", Data: signInView{Next: next, Problem: "Unknown API token."}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut answers POST /signout: the session cookie is dropped.
func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	clearSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// localPath returns p when it is a path of this site ("/..."), else "/":
// a sign-in never sends the browser elsewhere.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, `\`) {
		return "/"
	}
	return p
}
