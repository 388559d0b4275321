package httpapi

import (
	"context"
	"net/http"

	"github.com/deploydb/deploydb"
)

// What the web UI (package web) needs of the API server: it reads under
// the API's rules and from the matrix the API keeps.

// Admit authenticates r for scope as the API's routes do: r with its
// caller (CallerOf), or why it is refused (a *deploydb.Error: 401, 403).
func (s *Server) Admit(r *http.Request, scope deploydb.Scope) (*http.Request, error) {
	return s.admit(r, scope)
}

// CallerOf returns the caller Admit found for r, nil if none.
func CallerOf(r *http.Request) *deploydb.Caller { return callerOf(r) }

// StatusOf returns the HTTP status of err, as the API answers it: 500 for
// an error without a known code.
func StatusOf(err error) int {
	if status, ok := statusOf[deploydb.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Matrix returns the service × environment matrix as GET /api/status
// does, from the matrix the server keeps: environments in pipeline order
// with their locks and freezes as of now, every service's row.
func (s *Server) Matrix(ctx context.Context, r *http.Request) (*deploydb.Matrix, error) {
	b, err := s.statusMatrix(ctx)
	if err != nil {
		return nil, err
	}
	return &deploydb.Matrix{Environments: s.columns(r, b), Services: b.rows}, nil
}

// MatrixAt returns the matrix as it was at instant at, as GET
// /api/status?at= answers it (the services of r's ?service= only).
func (s *Server) MatrixAt(r *http.Request, at deploydb.Time) (*deploydb.Matrix, error) {
	return s.statusAt(r, at)
}

// MountPage serves h at pattern beside the API's routes, logged and
// counted as they are, with no authentication of its own: h admits its
// callers itself (Admit), so that it can answer them in HTML. Call it
// before serving; it panics on a pattern the API serves already.
func (s *Server) MountPage(pattern string, h http.Handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			sw.route = pattern
		}
		h.ServeHTTP(w, r)
	})
}

// DeliveryViewOf returns d as the API shows it: its URL and hook name
// without what may be secret.
func DeliveryViewOf(d *deploydb.Delivery) DeliveryView { return deliveryView(d) }

// StreamEvents answers r with the event log live, as GET
// /api/events/stream does (Server-Sent Events), for a caller Admit let in.
func (s *Server) StreamEvents(w http.ResponseWriter, r *http.Request) error {
	return s.streamEvents(w, r)
}

// RequireReason checks an operator action's reason as the API does
// (required, at most deploydb.MaxArtifactFieldLen characters) and returns
// it trimmed.
func RequireReason(reason string) (string, error) { return requireReason(reason) }
