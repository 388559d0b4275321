package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/deploydb/deploydb"
)

// MaxBodyBytes is the largest request body the API reads (1 MiB).
const MaxBodyBytes = 1 << 20

// errTooLarge marks a body over MaxBodyBytes; it becomes a 413.
var errTooLarge = errors.New("request body too large")

// tooLarge is a body over limit bytes (errTooLarge, for a route whose
// limit is not MaxBodyBytes).
type tooLarge struct{ limit int64 }

func (e tooLarge) Error() string { return fmt.Sprintf("request body is larger than %d bytes", e.limit) }

// Is makes a tooLarge errTooLarge.
func (e tooLarge) Is(target error) bool { return target == errTooLarge }

// decode reads a JSON request body into v. Unknown fields are ignored
// (forward compatible); malformed JSON and wrong types are EBADREQUEST
// naming the field.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &tooLarge):
			return errTooLarge
		case errors.Is(err, io.EOF):
			return deploydb.Errorf(deploydb.EBADREQUEST, "request body is empty; expected a JSON object")
		case errors.As(err, &typeErr):
			field := typeErr.Field
			if field == "" {
				return deploydb.Errorf(deploydb.EBADREQUEST, "request body must be a JSON object, not %s", typeErr.Value)
			}
			return &deploydb.Error{Code: deploydb.EBADREQUEST, Message: fmt.Sprintf("field %s must be %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value),
				Fields: []deploydb.FieldError{{Field: field, Message: "must be " + jsonKind(typeErr.Type.Kind().String())}}}
		case errors.As(err, &syntaxErr):
			return deploydb.Errorf(deploydb.EBADREQUEST, "request body is not valid JSON: %s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return deploydb.Errorf(deploydb.EBADREQUEST, "request body is not valid JSON: unexpected end")
		default:
			var de *deploydb.Error
			if errors.As(err, &de) {
				return de
			}
			return deploydb.Errorf(deploydb.EBADREQUEST, "request body is not valid JSON: %s", err.Error())
		}
	}
	// Anything after the first JSON value is a client bug worth reporting.
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return deploydb.Errorf(deploydb.EBADREQUEST, "request body must hold exactly one JSON value")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "bool":
		return "a boolean"
	case goKind == "slice", goKind == "array":
		return "an array"
	}
	return "an object"
}

// encode writes v as JSON with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pathID parses a numeric path parameter. Returns EBADREQUEST for anything
// but a positive integer.
func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &deploydb.Error{Code: deploydb.EBADREQUEST, Message: fmt.Sprintf("%s must be a positive integer, not %q", name, s),
			Fields: []deploydb.FieldError{{Field: name, Message: "must be a positive integer"}}}
	}
	return id, nil
}

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &deploydb.Error{Code: deploydb.EBADREQUEST, Message: fmt.Sprintf("%s must be an integer, not %q", name, s),
			Fields: []deploydb.FieldError{{Field: name, Message: "must be an integer"}}}
	}
	return n, nil
}

// queryID parses an optional numeric id query parameter (0 when absent).
func queryID(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &deploydb.Error{Code: deploydb.EBADREQUEST, Message: fmt.Sprintf("%s must be a positive integer, not %q", name, s),
			Fields: []deploydb.FieldError{{Field: name, Message: "must be a positive integer"}}}
	}
	return id, nil
}

// page parses pageNumber (0-based) and perPageSize (1..MaxPageSize).
func page(r *http.Request) (deploydb.Page, error) {
	n, err := queryInt(r, "pageNumber", 0)
	if err != nil {
		return deploydb.Page{}, err
	}
	if n < 0 {
		return deploydb.Page{}, badParam("pageNumber", "must be 0 or more")
	}
	size, err := queryInt(r, "perPageSize", deploydb.DefaultPageSize)
	if err != nil {
		return deploydb.Page{}, err
	}
	if size < 1 || size > deploydb.MaxPageSize {
		return deploydb.Page{}, badParam("perPageSize", fmt.Sprintf("must be between 1 and %d", deploydb.MaxPageSize))
	}
	if n > (1<<31)/size {
		return deploydb.Page{}, badParam("pageNumber", "is too large")
	}
	return deploydb.Page{Number: n, Size: size}, nil
}

// ascending parses order=asc|desc (default desc: newest first).
func ascending(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("order") {
	case "", "desc":
		return false, nil
	case "asc":
		return true, nil
	}
	return false, badParam("order", "must be asc or desc")
}

func badParam(name, msg string) error {
	return &deploydb.Error{Code: deploydb.EBADREQUEST, Message: name + " " + msg, Fields: []deploydb.FieldError{{Field: name, Message: msg}}}
}
