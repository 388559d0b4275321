package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/deploydb/deploydb"
)

// Problem is an RFC 9457 problem detail, with DeployDB's error code, the
// per-field errors of a validation failure, on a conflict the current
// state of the resource, and the id of the request (X-Request-Id) that the
// server's log lines about it carry too.
type Problem struct {
	Type      string                `json:"type"`
	Title     string                `json:"title"`
	Status    int                   `json:"status"`
	Detail    string                `json:"detail"`
	Code      string                `json:"code"`
	Errors    []deploydb.FieldError `json:"errors,omitempty"`
	Current   any                   `json:"current,omitempty"`
	RequestID string                `json:"requestId,omitempty" doc:"the request's X-Request-Id: the server's log lines about the request carry it as request_id"`
}

// statusOf maps each error code to its HTTP status: the one place this
// mapping lives.
var statusOf = map[string]int{
	deploydb.EBADREQUEST:   http.StatusBadRequest,
	deploydb.EINVALID:      http.StatusUnprocessableEntity,
	deploydb.ENOTFOUND:     http.StatusNotFound,
	deploydb.ECONFLICT:     http.StatusConflict,
	deploydb.EUNAUTHORIZED: http.StatusUnauthorized,
	deploydb.EFORBIDDEN:    http.StatusForbidden,
	deploydb.EUNAVAILABLE:  http.StatusServiceUnavailable,
	deploydb.EINTERNAL:     http.StatusInternalServerError,
}

// ProblemType returns the problem type URI of an error code.
func ProblemType(code string) string { return "urn:deploydb:problem:" + code }

// writeError renders err as problem+json. Internal errors are logged with
// the request and shown only as "internal error".
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := deploydb.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = deploydb.EINTERNAL, http.StatusInternalServerError
	}
	p := Problem{Status: status, Code: code, Detail: deploydb.ErrorMessage(err)}
	var e *deploydb.Error
	if errors.As(err, &e) {
		p.Errors, p.Current = e.Fields, e.Current
	}
	if code == deploydb.EINTERNAL {
		logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == deploydb.EUNAVAILABLE {
		// The cause (the driver's error) is for the operator, not the caller.
		logger.Warn("unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="deploydb"`)
	}
	writeProblem(w, p)
}

// writeProblem writes p, filling in its type, title and request id (from
// the X-Request-Id header ServeHTTP set on the response before anything
// else, so that every path to a problem names the request).
func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = ProblemType(p.Code)
	}
	if p.RequestID == "" {
		p.RequestID = w.Header().Get(HeaderRequestID)
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// methodNotAllowed answers a known path with a method it does not serve.
func methodNotAllowed(allow []string) http.HandlerFunc {
	detail := "method not allowed; this path allows " + strings.Join(allow, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, Problem{Status: http.StatusMethodNotAllowed, Code: deploydb.EBADREQUEST, Detail: r.Method + " " + detail})
	}
}
