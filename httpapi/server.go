// Package httpapi serves DeployDB's HTTP API: the route table, decoding,
// encoding and error rendering, each in one place.
package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploydb/deploydb"
)

// Server is the HTTP API over a store and the current config.
type Server struct {
	logger *slog.Logger
	store  deploydb.Store
	config func() *deploydb.Config
	mux    *http.ServeMux
	spec   []byte
	// now returns the current time (freeze windows); tests may replace it.
	now func() time.Time
	// done is closed by CloseStreams to end long-lived responses.
	done      chan struct{}
	closeOnce sync.Once
	// reloader reloads the config (config_handlers.go); nil when the
	// server was built without one.
	reloader Reloader
	// open says when callers without a token may do everything while no
	// token is configured (AllowOpen); sawTokens is set once a token was.
	openLoopback, openAlways atomic.Bool
	sawTokens                atomic.Bool
	// crossOrigin refuses state-changing requests a browser sends from
	// another origin (CSRF).
	crossOrigin *http.CrossOriginProtection
	// metrics counts requests (WithMetrics); nil counts nothing.
	metrics *httpMetrics
	// matrix keeps the status matrix last built (status.go).
	matrix statusCache
}

// AllowOpen says when the API serves callers without a token with every
// right while the configuration has no token (DESIGN.md §7): with
// insecure (--insecure-anonymous) always; with loopback (it listens on
// loopback only) until a token was configured once, and then only to
// requests addressed to a loopback host, so that a web page cannot reach it
// by DNS rebinding. Otherwise, and by default, every route that needs a
// scope refuses callers (401) while there is no token: a reload that
// removes the last token never opens the API. A new Server allows it on
// loopback.
func (s *Server) AllowOpen(loopback, insecure bool) {
	s.openLoopback.Store(loopback)
	s.openAlways.Store(insecure)
}

// closed returns why the API refuses a request that needs a scope under
// auth, or nil.
func (s *Server) closed(r *http.Request, auth *deploydb.Auth) error {
	if auth.Enabled() {
		s.sawTokens.Store(true)
		return nil
	}
	switch {
	case s.openAlways.Load():
		return nil
	case !s.openLoopback.Load() || s.sawTokens.Load():
		return deploydb.Errorf(deploydb.EUNAUTHORIZED, "no API tokens are configured (the last one was removed, or this server listens beyond loopback): add a token to auth/tokens.yml of the configuration and reload")
	case !loopbackHost(r.Host):
		return deploydb.Errorf(deploydb.EFORBIDDEN, "without API tokens this server answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1]), not %q", r.Host)
	}
	return nil
}

// loopbackHost reports whether the Host header names a loopback host.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewServer returns the API handler. config returns the config in force; it
// is called once per request, so a reload takes effect for the next one.
func NewServer(logger *slog.Logger, store deploydb.Store, config func() *deploydb.Config) *Server {
	s := &Server{logger: logger, store: store, config: config, mux: http.NewServeMux(), now: time.Now, done: make(chan struct{}),
		crossOrigin: http.NewCrossOriginProtection()}
	s.spec = mustSpec()
	s.AllowOpen(true, false) // as serve on loopback without tokens
	for _, rt := range routes {
		pattern := rt.Method + " " + rt.Path
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if sw, ok := w.(*statusWriter); ok {
				sw.route = pattern
			}
			handle := func(w http.ResponseWriter, r *http.Request) error { return rt.Handle(s, w, r) }
			var err error
			if rt.Scope != "" { // health checks need no token, look at none, and need no config
				r, err = s.admit(r, rt.Scope)
			}
			switch {
			case err != nil:
			case rt.Idempotent:
				err = s.idempotent(w, r, handle)
			default:
				err = handle(w, r)
			}
			if err != nil {
				if errors.Is(err, errTooLarge) {
					limit := int64(MaxBodyBytes)
					var tl tooLarge
					if errors.As(err, &tl) {
						limit = tl.limit
					}
					writeProblem(w, Problem{Status: http.StatusRequestEntityTooLarge, Code: deploydb.EINVALID,
						Detail: fmt.Sprintf("request body is larger than %d bytes", limit)})
					return
				}
				writeError(w, r, s.log(r), err)
			}
		})
	}
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// admit authenticates the caller of r and checks that it has scope, and
// that the API is open to it (closed); it returns r with the caller in its
// context, or the request as it came (for the logs) and why it is refused.
func (s *Server) admit(r *http.Request, scope deploydb.Scope) (*http.Request, error) {
	auth := s.config().Auth
	ar, err := authenticate(r, auth, scope)
	if err == nil {
		r = ar // with its caller; a refused request keeps its own, for the logs
	}
	if cerr := s.closed(r, auth); cerr != nil {
		err = cerr
	}
	return r, err
}

// Mount serves h at pattern (a ServeMux pattern) beside the API's routes
// and behind the same authentication: a caller needs a token with scope,
// as on a route of the table with that scope, and without tokens
// configured it is served on loopback only. Refusals are problem+json
// (401, 403); requests are logged and counted as the API's are. What is
// mounted is not part of the API's description (OpenAPI, Routes): it is
// not JSON under /api. cmd/deploydb mounts the Go profiler
// (/debug/pprof/) with it, for admin tokens. Call it before serving; it
// panics without a scope (what needs none is served beside the Server, as
// /metrics is) or on a pattern the API serves already.
func (s *Server) Mount(pattern string, scope deploydb.Scope, h http.Handler) {
	if scope == "" {
		panic("httpapi: Mount " + pattern + " without a scope")
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			sw.route = pattern
		}
		r, err := s.admit(r, scope)
		if err != nil {
			writeError(w, r, s.log(r), err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// notFound answers what no route matched: a 405 naming the allowed methods
// when the path exists with other methods (ServeMux's own 405 is plain
// text), else a 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		methodNotAllowed(allow)(w, r)
		return
	}
	writeProblem(w, Problem{Status: http.StatusNotFound, Code: deploydb.ENOTFOUND, Detail: "no such path: " + r.URL.Path})
}

// CloseStreams ends the event streams in progress, so that a graceful
// shutdown (http.Server.RegisterOnShutdown) does not wait for clients that
// would never go idle.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.done) }) }

// ServeHTTP serves the API, recovering from panics as 500s, naming each
// request (X-Request-Id), logging it and counting it (WithMetrics).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	log := s.logger.With("request_id", id)
	r = withLogger(r, log)
	// The API answers JSON only: nothing of it is to be framed, run or
	// sent elsewhere.
	h := w.Header()
	h.Set(HeaderRequestID, id) // first: every problem body repeats it (writeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeProblem(sw, Problem{Status: http.StatusInternalServerError, Code: deploydb.EINTERNAL, Detail: "internal error"})
			}
		}
		route := sw.route
		if route == "" {
			route = s.routeOf(r)
		}
		status := cmp.Or(sw.status, http.StatusOK) // a handler that wrote nothing answered 200
		took := time.Since(start)
		s.metrics.observe(route, status, took)
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", route, "status", status, "duration", took)
	}()
	if err := s.crossOrigin.Check(r); err != nil {
		writeProblem(sw, Problem{Status: http.StatusForbidden, Code: deploydb.EFORBIDDEN, Detail: "cross-origin request refused: " + err.Error()})
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// statusWriter remembers the status of a response, and the route (its
// pattern) that wrote it.
type statusWriter struct {
	http.ResponseWriter
	status int
	route  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// splitModule parses "group:name".
func splitModule(s string) (string, string, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return "", "", badParam("module", fmt.Sprintf("must be group:name, not %q", s))
	}
	return s[:i], s[i+1:], nil
}
