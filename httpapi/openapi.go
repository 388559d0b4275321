package httpapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// The OpenAPI 3.1 description is generated from the route table and the Go
// types the handlers decode and encode, so it cannot drift from them; tests
// validate real responses against it.

var (
	timeType     = reflect.TypeOf(deploydb.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	rawType      = reflect.TypeOf(json.RawMessage(nil))
)

// enums lists the values of the named string types the API uses.
var enums = map[reflect.Type][]string{
	reflect.TypeOf(deploydb.DeploymentStatus("")): strs(deploydb.DeploymentStatuses),
	reflect.TypeOf(deploydb.FlowStatus("")):       {"CREATED", "SUCCESS", "FAILED", "SUPERSEDED", "CANCELLED"},
	reflect.TypeOf(deploydb.PromotionStatus("")):  {"NOT_STARTED", "STARTED", "SUCCESS", "FAILED"},
	reflect.TypeOf(deploydb.Reason("")):           {"pipeline", "rollback", "hotfix", "retry"},
	reflect.TypeOf(deploydb.FailureStrategy("")):  {"notify", "rollback", "ignore"},
}

func strs[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// special holds the schemas of types whose JSON is written by hand.
var special = map[reflect.Type]map[string]any{
	timeType:     {"type": []string{"string", "null"}, "format": "date-time"}, // null when not (yet) set
	durationType: {"type": "integer"},
	rawType:      {},
	reflect.TypeOf(deploydb.Webhook(nil)): {
		"type":        "object",
		"description": "hooks by kind and event: {\"deployment\": {\"created\": [\"url\", {hook object}]}, \"promotion\": {\"completed\": [...]}}: a bare URL hook as its URL as written, a hook object as what may be shown of it (no secret, no header value)",
		"additionalProperties": map[string]any{
			"type": "object",
			"additionalProperties": map[string]any{"type": "array", "items": map[string]any{"oneOf": []any{
				map[string]any{"type": "string"},
				map[string]any{
					"type":     "object",
					"required": []string{"name", "url"},
					"properties": map[string]any{
						"name":        map[string]any{"type": "string"},
						"url":         map[string]any{"type": "string", "description": "as written, ${env:NAME} unexpanded"},
						"method":      map[string]any{"type": "string"},
						"headers":     map[string]any{"type": "array", "items": map[string]any{"type": "object", "required": []string{"name"}, "properties": map[string]any{"name": map[string]any{"type": "string"}}}},
						"body":        map[string]any{"type": "string"},
						"contentType": map[string]any{"type": "string"},
						"format":      map[string]any{"type": "string", "enum": []string{deploydb.HookFormatDeployDB, deploydb.HookFormatCDEvents}},
						"signed":      map[string]any{"type": "boolean"},
						"events":      map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
					},
				},
			}}},
		},
	},
	reflect.TypeOf(deploydb.Pipeline{}): {
		"type":     "object",
		"required": []string{"ident", "description", "environments"},
		"properties": map[string]any{
			"ident":       map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"environments": map[string]any{
				"type":        "object",
				"description": "the pipeline's environments, in pipeline order",
				"additionalProperties": map[string]any{
					"type":     "object",
					"required": []string{"promotions"},
					"properties": map[string]any{
						"promotions":      map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						"failureStrategy": map[string]any{"type": "string", "enum": enums[reflect.TypeOf(deploydb.FailureStrategy(""))]},
					},
				},
			},
		},
	},
}

type specBuilder struct {
	schemas map[string]any
}

// schema returns the JSON Schema of t, registering named structs as
// components and referring to them.
func (b *specBuilder) schema(t reflect.Type) map[string]any {
	if s, ok := special[t]; ok {
		if t.Kind() == reflect.Struct {
			b.schemas[t.Name()] = s
			return map[string]any{"$ref": "#/components/schemas/" + t.Name()}
		}
		return s
	}
	if vals, ok := enums[t]; ok {
		return map[string]any{"type": "string", "enum": vals}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": b.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := t.Name()
		if _, done := b.schemas[name]; !done {
			b.schemas[name] = nil // break cycles
			props := map[string]any{}
			var required []string
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := f.Tag.Get("json")
				if !f.IsExported() || tag == "-" {
					continue
				}
				fname, opts, _ := strings.Cut(tag, ",")
				if fname == "" {
					fname = f.Name
				}
				ps := b.schema(f.Type)
				if f.Type.Kind() == reflect.Pointer {
					// A pointer field is null when there is none.
					ps = map[string]any{"anyOf": []any{ps, map[string]any{"type": "null"}}}
				}
				if e := f.Tag.Get("enum"); e != "" {
					ps = map[string]any{"type": "string", "enum": strings.Split(e, ",")}
				}
				if d := f.Tag.Get("doc"); d != "" {
					ps = maps.Clone(ps) // never a schema of special's
					ps["description"] = d
				}
				props[fname] = ps
				if !strings.Contains(opts, "omitempty") {
					required = append(required, fname)
				}
			}
			s := map[string]any{"type": "object", "properties": props}
			if len(required) > 0 {
				s["required"] = required
			}
			b.schemas[name] = s
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("openapi: no schema for %s", t))
}

var pathParam = regexp.MustCompile(`\{([a-zA-Z]+)\}`)

// Spec builds the OpenAPI 3.1 document of the route table.
func Spec() map[string]any {
	b := &specBuilder{schemas: map[string]any{}}
	b.schema(reflect.TypeOf(Problem{}))
	paths := map[string]any{}
	for _, rt := range routes {
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + operationName(rt.Path),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			typ := "string"
			if m[1] == "id" || m[1] == "resultId" {
				typ = "integer"
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": typ}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": q.Type}})
		}
		if rt.Idempotent {
			params = append(params, map[string]any{"name": HeaderIdempotencyKey, "in": "header", "schema": map[string]any{"type": "string", "maxLength": maxIdempotencyKeyLen},
				"description": "a retry with the same key (and the same request) gets the first successful response back, with Idempotent-Replayed: true; keys are kept 24 h"})
		}
		if rt.ETag {
			params = append(params, map[string]any{"name": "If-None-Match", "in": "header", "schema": map[string]any{"type": "string"},
				"description": "the ETag of a response received before: 304 Not Modified, without a body, while the answer is still the same"})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.Request != nil {
			ct := cmp.Or(rt.RequestType, "application/json")
			op["requestBody"] = map[string]any{
				"required": true,
				"content":  map[string]any{ct: map[string]any{"schema": b.schema(reflect.TypeOf(rt.Request))}},
			}
			if rt.RequestType == "application/x-ndjson" {
				op["requestBody"].(map[string]any)["description"] = "one JSON object a line, each as the schema says"
			}
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(rt.Status)}
		if rt.Response != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": b.schema(reflect.TypeOf(rt.Response))}}
		}
		if rt.Status == http.StatusMethodNotAllowed {
			ok["content"] = problemContent()
		}
		responses[strconv.Itoa(rt.Status)] = ok
		errs := slices.Concat(rt.Errors, []int{500, 503})
		switch rt.Scope {
		case "":
			op["security"] = []any{}
		default:
			scope := string(rt.Scope)
			if rt.Scope == scopeByEvent {
				scope = "artifacts:write, deployments:write or promotions:write, by the event's type"
			}
			op["security"] = []any{map[string]any{"token": []any{}}}
			op["x-deploydb-scope"] = scope
			op["description"] = "Needs an API token with scope " + scope + " (admin allows everything)."
			errs = append(errs, 401, 403)
		}
		for _, code := range errs {
			responses[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code), "content": problemContent()}
		}
		if rt.ETag {
			responses["304"] = map[string]any{"description": "Not Modified: the answer is the one If-None-Match named"}
		}
		for code, r := range responses {
			headers := map[string]any{HeaderRequestID: map[string]any{"$ref": "#/components/headers/RequestId"}}
			if rt.ETag && (code == strconv.Itoa(rt.Status) || code == "304") {
				headers["ETag"] = map[string]any{"description": "a digest of the answer's bytes", "schema": map[string]any{"type": "string"}}
			}
			if code == strconv.Itoa(rt.Status) && slices.ContainsFunc(rt.Query, func(p param) bool { return p.Name == "cursor" }) {
				headers[HeaderNextCursor] = map[string]any{"description": "after a full page: the cursor of the next page", "schema": map[string]any{"type": "string"}}
			}
			r.(map[string]any)["headers"] = headers
		}
		op["responses"] = responses
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "DeployDB API",
			"version": "1",
			"description": "The system of record for artifact deployments through pipelines of environments. Errors are application/problem+json (RFC 9457). " +
				"Every response carries X-Request-Id, which problem bodies repeat as requestId and the server's log lines about the request carry as request_id.",
		},
		"paths": paths,
		"components": map[string]any{"schemas": b.schemas, "headers": map[string]any{
			"RequestId": map[string]any{
				"description": fmt.Sprintf("The request's id: the caller's own %s when it is 1 to %d printable ASCII characters without spaces, else one the server made up. "+
					"The server's log lines about the request carry it as request_id, and problem bodies as requestId.", HeaderRequestID, maxRequestIDLen),
				"schema": map[string]any{"type": "string", "maxLength": maxRequestIDLen},
			},
		}, "securitySchemes": map[string]any{
			"token": map[string]any{"type": "http", "scheme": "bearer",
				"description": "An API token of auth/tokens.yml. Without tokens configured, DeployDB serves anonymous callers (on loopback only, unless told otherwise)."},
		}},
		"security": []any{map[string]any{"token": []any{}}},
	}
}

func problemContent() map[string]any {
	return map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}
}

// operationName turns /api/deployments/{id}/promotions into
// DeploymentsIdPromotions.
func operationName(path string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(strings.TrimPrefix(path, "/api"), func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '-' || r == '.' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func mustSpec() []byte {
	b, err := json.MarshalIndent(Spec(), "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}
