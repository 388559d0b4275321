package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
)

// HeaderRequestID names a request: every response carries it, every log
// line about the request and every problem body (requestId) repeats it. A
// caller (or a proxy in front) may send its own; one that is not short and
// printable is replaced by one DeployDB makes up.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen is the longest X-Request-Id taken from a caller.
const maxRequestIDLen = 64

// requestID returns the id of r: the caller's X-Request-Id when it is
// 1 to maxRequestIDLen printable ASCII characters without spaces, else a
// new random one (26 characters, 128 bits).
func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); validRequestID(id) {
		return id
	}
	return rand.Text()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// loggerKey is the context key of a request's logger.
type loggerKey struct{}

// withLogger returns r with logger as the logger of its request.
func withLogger(r *http.Request, logger *slog.Logger) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), loggerKey{}, logger))
}

// log returns the logger of request r: the server's, with the request's
// id (request_id) on every line.
func (s *Server) log(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return s.logger
}
