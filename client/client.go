// Package client is the Go client of DeployDB's HTTP API. It speaks the
// API's JSON and returns the domain types of package deploydb; every
// failure is a *deploydb.Error whose code is the one the server sent.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/deploydb/deploydb"
)

// DefaultUserAgent is the User-Agent a Client sends unless told otherwise.
const DefaultUserAgent = "deploydb-client"

// maxErrorBody bounds how much of an error response is read: a problem
// document is small, and an HTML error page from a proxy need not be read
// whole.
const maxErrorBody = 1 << 20

// Client calls one DeployDB server. It is safe for concurrent use.
type Client struct {
	base       string // scheme://host[/prefix], without a trailing slash
	token      string
	userAgent  string
	httpClient *http.Client
	onBody     func(body []byte)
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes the client send "Authorization: Bearer token" with every
// request. An empty token sends no Authorization header.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.httpClient = hc }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithResponseBody registers fn to receive the body of every successful
// response exactly as the server sent it, before it is decoded. The command
// line uses it to print the API's JSON unchanged.
func WithResponseBody(fn func(body []byte)) Option {
	return func(c *Client) { c.onBody = fn }
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080",
// or with a path prefix when the server sits behind a proxy). Returns
// EINVALID if baseURL is not an absolute http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &deploydb.Error{Code: deploydb.EINVALID,
			Message: fmt.Sprintf("server URL %q must be an absolute http:// or https:// URL", baseURL),
			Fields:  []deploydb.FieldError{{Field: "server", Message: "must be an absolute http:// or https:// URL"}}}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, &deploydb.Error{Code: deploydb.EINVALID,
			Message: fmt.Sprintf("server URL %q must not have a query or fragment", baseURL),
			Fields:  []deploydb.FieldError{{Field: "server", Message: "must not have a query or fragment"}}}
	}
	c := &Client{
		base:       strings.TrimRight(u.String(), "/"),
		userAgent:  DefaultUserAgent,
		httpClient: http.DefaultClient,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.httpClient == nil {
		c.httpClient = http.DefaultClient
	}
	return c, nil
}

// BaseURL returns the URL of the server the client calls.
func (c *Client) BaseURL() string { return c.base }

// CallOption configures one write request.
type CallOption func(*http.Request)

// IdempotencyKey sends key as the Idempotency-Key header, so that a retry of
// the same write with the same key gets the first response instead of
// applying the write twice (on servers that honour it). An empty key sends
// nothing.
func IdempotencyKey(key string) CallOption {
	return func(r *http.Request) {
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
	}
}

// do sends one request and decodes a 2xx response body into out (when out
// is not nil). in, when not nil, is sent as the JSON body. Any other status
// becomes a *deploydb.Error; a transport failure becomes EUNAVAILABLE.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, opts ...CallOption) error {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, opt := range opts {
		opt(req)
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		}
		return &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: fmt.Sprintf("cannot reach the server at %s: %s", c.base, transportError(err))}
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return parseProblem(resp.StatusCode, b)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		}
		return &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: fmt.Sprintf("reading the response of %s %s: %s", method, path, err)}
	}
	if c.onBody != nil {
		c.onBody(b)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &deploydb.Error{Code: deploydb.EINTERNAL, Message: fmt.Sprintf("the response of %s %s is not the JSON expected: %s", method, path, err)}
	}
	return nil
}

// transportError returns the innermost useful text of a transport failure,
// without Go's "Get \"http://...\":" prefix that repeats the URL.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// problem is the RFC 9457 problem document the server sends on failure.
type problem struct {
	Type    string                `json:"type"`
	Title   string                `json:"title"`
	Status  int                   `json:"status"`
	Detail  string                `json:"detail"`
	Code    string                `json:"code"`
	Errors  []deploydb.FieldError `json:"errors"`
	Current json.RawMessage       `json:"current"`
}

// knownCode reports whether code is one of the closed set of deploydb
// error codes.
func knownCode(code string) bool {
	switch code {
	case deploydb.EBADREQUEST, deploydb.EINVALID, deploydb.ENOTFOUND, deploydb.ECONFLICT,
		deploydb.EUNAUTHORIZED, deploydb.EFORBIDDEN, deploydb.EUNAVAILABLE, deploydb.EINTERNAL:
		return true
	}
	return false
}

// CodeOfStatus returns the deploydb error code of an HTTP error status, for
// responses that carry no code of their own.
func CodeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return deploydb.EBADREQUEST
	case http.StatusUnauthorized:
		return deploydb.EUNAUTHORIZED
	case http.StatusForbidden:
		return deploydb.EFORBIDDEN
	case http.StatusNotFound:
		return deploydb.ENOTFOUND
	case http.StatusConflict:
		return deploydb.ECONFLICT
	case http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return deploydb.EINVALID
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		// A proxy in front of a server that is down answers 502 or 504:
		// to the caller that is the same as the server saying 503.
		return deploydb.EUNAVAILABLE
	}
	return deploydb.EINTERNAL
}

// parseProblem turns an error response into a *deploydb.Error: the code
// from the problem document when it names a known one, else from the
// status; the message from detail, else title, else the status text.
func parseProblem(status int, body []byte) *deploydb.Error {
	var p problem
	_ = json.Unmarshal(body, &p) // a body that is not a problem still has a status
	e := &deploydb.Error{Code: p.Code, Message: p.Detail, Fields: p.Errors}
	if !knownCode(e.Code) {
		e.Code = CodeOfStatus(status)
	}
	if e.Message == "" {
		e.Message = p.Title
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("the server answered %d %s", status, http.StatusText(status))
	}
	if len(p.Current) > 0 && string(p.Current) != "null" {
		e.Current = p.Current
	}
	return e
}
