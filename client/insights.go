package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// ContentTypeNDJSON is the media type of an import body: one JSON object a
// line.
const ContentTypeNDJSON = "application/x-ndjson"

// Import sends r, an NDJSON file of past deployments (one deployment a
// line, see deploydb.ImportRecord), to the server as it is, and returns
// what the import did. r is closed when it is an io.ReadCloser, as
// net/http closes a request body. Importing the same file again changes nothing.
// Returns EINVALID when a line is bad, with one deploydb.FieldError per
// problem whose Line names the line (nothing is imported then), or when
// the file is too large; EFORBIDDEN without the admin scope.
func (c *Client) Import(ctx context.Context, r io.Reader, opts ...CallOption) (*deploydb.ImportResult, error) {
	var out deploydb.ImportResult
	opts = append([]CallOption{rawBody(r, ContentTypeNDJSON)}, opts...)
	if err := c.do(ctx, http.MethodPost, "/api/import", nil, nil, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// rawBody sends r as the request body, as it is, with contentType (do
// sends the JSON encoding of a value): an import goes as the file was
// written, without being read into memory first. Like http.NewRequest, it
// closes r when r is an io.ReadCloser, and gives the readers that know
// their length a Content-Length (others are sent chunked).
func rawBody(r io.Reader, contentType string) CallOption {
	return func(req *http.Request) {
		rc, ok := r.(io.ReadCloser)
		if !ok {
			rc = io.NopCloser(r)
		}
		req.Body, req.ContentLength = rc, 0 // 0 with a body: unknown, chunked
		switch v := r.(type) {
		case *bytes.Buffer:
			req.ContentLength = int64(v.Len())
		case *bytes.Reader:
			req.ContentLength = int64(v.Len())
		case *strings.Reader:
			req.ContentLength = int64(v.Len())
		}
		req.Header.Set("Content-Type", contentType)
	}
}

// DORAQuery selects a DORA report. Empty fields take the server's
// defaults: the environment marked production: true, all services, and
// the 30 days before To (To: now).
type DORAQuery struct {
	Environment string
	Service     string
	From, To    time.Time
}

// DORAReport is the answer to GET /api/insights/dora: deploydb.DORA.
type DORAReport = deploydb.DORA

// DORA returns the DORA metrics q selects. Returns ENOTFOUND for an
// unknown environment or service; EBADREQUEST when q.From is not before
// q.To, the window is longer than the server allows (400 days), or no
// environment is given and not exactly one is marked production: true.
func (c *Client) DORA(ctx context.Context, q DORAQuery) (*DORAReport, error) {
	v := url.Values{}
	setIf(v, "environment", q.Environment)
	setIf(v, "service", q.Service)
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	var out DORAReport
	if err := c.do(ctx, http.MethodGet, "/api/insights/dora", v, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Diff returns how environments from and to differ: each service whose
// current version differs, or that runs on one side only, with the
// commits between the two versions when the artifacts carry them. Returns
// ENOTFOUND for an unknown environment.
func (c *Client) Diff(ctx context.Context, from, to string) (*deploydb.EnvironmentDiff, error) {
	if err := checkName("environment", from); err != nil {
		return nil, err
	}
	if err := checkName("environment", to); err != nil {
		return nil, err
	}
	v := url.Values{"from": {from}, "to": {to}}
	var out deploydb.EnvironmentDiff
	if err := c.do(ctx, http.MethodGet, "/api/diff", v, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// setTime sets key to t in RFC 3339 (UTC, to the nanosecond the server
// truncates to the millisecond) unless t is zero.
func setTime(q url.Values, key string, t time.Time) {
	if !t.IsZero() {
		q.Set(key, t.UTC().Format(time.RFC3339Nano))
	}
}
