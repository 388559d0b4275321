package deploydb

import (
	"errors"
	"fmt"
)

// Error codes: a closed set, mapped to HTTP statuses and CLI exit codes in
// one place each (httpapi and cli).
const (
	EBADREQUEST   = "bad_request"  // malformed request: wrong type, bad parameter
	EINVALID      = "invalid"      // well-formed but fails validation
	ENOTFOUND     = "not_found"    // the thing does not exist
	ECONFLICT     = "conflict"     // duplicate, or a transition the state does not allow
	EUNAUTHORIZED = "unauthorized" // no or unknown credentials
	EFORBIDDEN    = "forbidden"    // known caller without the right
	EUNAVAILABLE  = "unavailable"  // a dependency (the database) is not reachable
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is DeployDB's one error type. Message is safe to show to callers;
// internal errors are shown as "internal error" and logged instead.
type Error struct {
	Code    string
	Message string
	// Fields lists per-field validation problems (EINVALID, EBADREQUEST).
	Fields []FieldError
	// Current optionally carries the current state of the resource a
	// conflicting request was about, so that the loser of a race can see
	// what won.
	Current any
}

// FieldError names one invalid field and what is wrong with it.
type FieldError struct {
	// Line is the line of the input the field is on, for inputs of many
	// lines (an import); 0 otherwise.
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ErrorFields returns the field problems of the first *Error in err's
// chain, if any.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

func (e *Error) Error() string {
	return fmt.Sprintf("deploydb error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and
// "internal error" for any other error, so that internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
