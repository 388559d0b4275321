// Package web serves DeployDB's web UI: pages rendered on the server from
// embedded templates (html/template), readable without JavaScript, with a
// little script that keeps them live from the event stream. It reads what
// the API reads, under the API's rules (DESIGN.md §9).
package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// UI serves the web UI's pages.
type UI struct {
	api    *httpapi.Server
	store  deploydb.Store
	config func() *deploydb.Config
	logger *slog.Logger
	pages  map[string]*template.Template
	// now returns the current time ("5 minutes ago"); tests replace it.
	now func() time.Time
}

// New returns the UI beside the API server api (whose authentication and
// status matrix it uses), over the store it reads the rest from and the
// configuration in force.
func New(logger *slog.Logger, api *httpapi.Server, store deploydb.Store, config func() *deploydb.Config) *UI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &UI{api: api, store: store, config: config, logger: logger, now: time.Now}
	u.pages = parsePages(u.funcs())
	return u
}

// Mount serves the UI's pages and files beside the API's routes.
func (u *UI) Mount() {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	u.api.MountPage("GET /{$}", u.page(u.matrix))
	u.api.MountPage("GET /services/{name}", u.page(u.service))
	u.api.MountPage("GET /flows/{id}", u.page(u.flow))
	u.api.MountPage("GET /environments/{name}", u.page(u.environment))
	u.api.MountPage("GET /live", http.HandlerFunc(u.live))
	u.api.MountPage("GET /approvals", u.page(u.approvals))
	u.api.MountPage("POST /approvals/{deployment}/{promotion}", http.HandlerFunc(u.decide))
	u.api.MountPage("GET /deliveries", u.page(u.deliveries))
	u.api.MountPage("POST /deliveries/{id}/redeliver", http.HandlerFunc(u.redeliver))
	u.api.MountPage("GET /signin", http.HandlerFunc(u.signInPage))
	u.api.MountPage("POST /signin", http.HandlerFunc(u.signIn))
	u.api.MountPage("POST /signout", http.HandlerFunc(u.signOut))
	u.api.MountPage("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
}

// cacheFor lets browsers keep the static files a little while: they change
// with the binary only.
func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		setSecurityHeaders(w)
		h.ServeHTTP(w, r)
	})
}

// setSecurityHeaders sets what every page answers with: the page may load
// its own styles, scripts and event stream, and nothing else; it is never
// framed.
func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// view is what every page's template gets.
type view struct {
	Title string
	// Nav names the page in the navigation bar.
	Nav string
	// Caller is who reads the page.
	Caller *deploydb.Caller
	// After is the latest event when the page was read: its script
	// follows the log from there.
	After int64
	// Stream narrows the events the page follows (a query of /live:
	// "service=billing"); "" follows them all.
	Stream string
	// Data is the page's own.
	Data any
}

// page turns a page's handler into an http.Handler: it admits the caller
// with the read scope and renders what the handler returns, or an error
// page.
func (u *UI) page(fn func(r *http.Request) (string, view, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		ar, err := u.api.Admit(u.withSession(w, r), deploydb.ScopeRead)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		// Read before the page's data, so that what the page shows is
		// at least as new: an event the page missed cannot be before it.
		after, err := u.store.LastEventID(ar.Context())
		if err != nil {
			u.fail(w, ar, err)
			return
		}
		name, v, err := fn(ar)
		if err != nil {
			u.fail(w, ar, err)
			return
		}
		v.After = after
		v.Caller = httpapi.CallerOf(ar)
		u.render(w, ar, http.StatusOK, name, v)
	})
}

// render writes page name with v. The page is rendered whole before
// anything is sent, so that a template error is a clean 500.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		u.logger.ErrorContext(r.Context(), "web: render page", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page with the status err calls for.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpapi.StatusOf(err), deploydb.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		u.logger.ErrorContext(r.Context(), "web: page", "path", r.URL.Path, "error", err)
		msg = "internal error"
	}
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		// Back to the page the form was on (/approvals, /deliveries),
		// not to a path that only takes posts.
		next = "/" + strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	}
	u.render(w, r, status, "error", view{Title: http.StatusText(status), Data: errorView{Status: status, Message: msg,
		SignIn: status == http.StatusUnauthorized || status == http.StatusForbidden, Next: localPath(next)}})
}

type errorView struct {
	Status  int
	Message string
	// SignIn offers to sign in (with another token), and come back to
	// Next.
	SignIn bool
	Next   string
}

// parsePages parses each page's template with the layout.
func parsePages(funcs template.FuncMap) map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/partials.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, file := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(file, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, file))
	}
	return pages
}

// funcs are the templates' functions.
func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":         u.ago,
		"eventTypes":  eventTypes,
		"statusClass": statusClass,
		"cell":        u.cell,
		"row":         u.row,
		"when":        func(t deploydb.Time) string { return t.UTC().Format(time.RFC3339) },
		"lower": func(s any) string {
			return strings.ToLower(fmt.Sprint(s))
		},
	}
}

// ago says how long before now t was, as people say it: "3 min ago".
func (u *UI) ago(t deploydb.Time) string {
	if t.IsZero() {
		return ""
	}
	d := u.now().Sub(t.Time)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// withTimeout bounds a page's reads.
func withTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// eventTypes lists the event types a live page listens for, space-separated:
// all of them (an import changes the matrix too).
func eventTypes() string {
	out := make([]string, len(deploydb.EventTypes))
	for i, t := range deploydb.EventTypes {
		out[i] = string(t)
	}
	return strings.Join(out, " ")
}

// statusClass returns the colour class of a deployment's, a flow's or a
// promotion's status; the status is always shown in words beside it.
func statusClass(status any) string {
	switch fmt.Sprint(status) {
	case "SUCCESS":
		return "ok"
	case "FAILED":
		return "failed"
	case "CANCELLED", "SUPERSEDED":
		return "none"
	default:
		return "pending"
	}
}

// live answers GET /live: the event stream (GET /api/events/stream) for
// the pages' script, admitted as the pages are, by the session cookie too
// (EventSource cannot send an Authorization header).
func (u *UI) live(w http.ResponseWriter, r *http.Request) {
	ar, err := u.api.Admit(u.withSession(w, r), deploydb.ScopeRead)
	if err != nil {
		http.Error(w, deploydb.ErrorMessage(err), httpapi.StatusOf(err))
		return
	}
	if err := u.api.StreamEvents(w, ar); err != nil {
		http.Error(w, deploydb.ErrorMessage(err), httpapi.StatusOf(err))
	}
}
