// Package httpapi serves DeployDB's HTTP API: the route table, decoding,
// encoding and error rendering, each in one place.
package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// requireTokens refuses every scoped route while no token is
	// configured (RequireTokens).
	requireTokens atomic.Bool
	// crossOrigin refuses state-changing requests a browser sends from
	// another origin (CSRF).
	crossOrigin *http.CrossOriginProtection
}

// RequireTokens makes every route that needs a scope refuse callers (401)
// while the configuration has no API token: a server listening beyond
// loopback must not become open to everyone because a reload removed the
// last token.
func (s *Server) RequireTokens(on bool) { s.requireTokens.Store(on) }

// NewServer returns the API handler. config returns the config in force; it
// is called once per request, so a reload takes effect for the next one.
func NewServer(logger *slog.Logger, store deploydb.Store, config func() *deploydb.Config) *Server {
	s := &Server{logger: logger, store: store, config: config, mux: http.NewServeMux(), now: time.Now, done: make(chan struct{}),
		crossOrigin: http.NewCrossOriginProtection()}
	s.spec = mustSpec()
	for _, rt := range routes {
		s.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			handle := func(w http.ResponseWriter, r *http.Request) error { return rt.Handle(s, w, r) }
			auth := s.config().Auth
			var err error
			if rt.Scope != "" { // health checks need no token, and look at none
				r, err = authenticate(r, auth, rt.Scope)
			}
			switch {
			case rt.Scope != "" && s.requireTokens.Load() && !auth.Enabled():
				err = deploydb.Errorf(deploydb.EUNAUTHORIZED, "no API tokens are configured, and this server listens beyond loopback: add a token to auth/tokens.yml of the configuration and reload")
			case err != nil:
			case rt.Idempotent:
				err = s.idempotent(w, r, handle)
			default:
				err = handle(w, r)
			}
			if err != nil {
				if errors.Is(err, errTooLarge) {
					writeProblem(w, Problem{Status: http.StatusRequestEntityTooLarge, Code: deploydb.EINVALID,
						Detail: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)})
					return
				}
				writeError(w, r, s.logger, err)
			}
		})
	}
	s.mux.HandleFunc("/", s.notFound)
	return s
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

// ServeHTTP serves the API, recovering from panics as 500s and logging
// each request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The API answers JSON only: nothing of it is to be framed, run or
	// sent elsewhere.
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if err := s.crossOrigin.Check(r); err != nil {
		writeProblem(w, Problem{Status: http.StatusForbidden, Code: deploydb.EFORBIDDEN, Detail: "cross-origin request refused: " + err.Error()})
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			s.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			if sw.status == 0 {
				writeProblem(sw, Problem{Status: http.StatusInternalServerError, Code: deploydb.EINTERNAL, Detail: "internal error"})
			}
		}
		s.logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	}()
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
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
