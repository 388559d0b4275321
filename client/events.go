package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/deploydb/deploydb"
)

// Following the event stream.
const (
	// streamIdle is how long a stream may stay silent before the client
	// takes it for dead and reconnects: the server sends a heartbeat every
	// 15 s.
	streamIdle = 45 * time.Second
	// Reconnection waits grow from reconnectMin to reconnectMax while
	// attempts keep failing; after a stream that delivered something, the
	// client reconnects at once.
	reconnectMin = time.Second
	reconnectMax = 30 * time.Second
	// maxStreamLine bounds one line of the stream (an event's JSON).
	maxStreamLine = 4 << 20
)

// Events returns the events after f.After that match f's service,
// environment, type and actor, oldest first: at most f.Limit (the server's
// default, 100, when zero; at most 1000). The next page is the one after
// the last event returned. The API cannot select by deployment: a filter
// with f.Deployment set returns EBADREQUEST.
func (c *Client) Events(ctx context.Context, f deploydb.EventFilter) ([]*deploydb.Event, error) {
	if f.Deployment != 0 {
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "events cannot be listed by deployment; filter by service and environment instead")
	}
	q := eventQuery(f)
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []*deploydb.Event
	if err := c.do(ctx, http.MethodGet, "/api/events", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// eventQuery returns the query parameters of f both event routes take.
func eventQuery(f deploydb.EventFilter) url.Values {
	q := url.Values{}
	if f.After != 0 {
		q.Set("after", itoa(f.After))
	}
	setIf(q, "service", f.Service)
	setIf(q, "environment", f.Environment)
	setIf(q, "type", string(f.Type))
	setIf(q, "actor", f.Actor)
	return q
}

// FollowEvents reads the event stream: the events after f.After that match
// f's service, environment, type and actor, then each new one as the
// server records it. It calls fn with each event, in order, and with the
// event's JSON as the server sent it.
//
// It runs until ctx is done (and returns ctx's error) or fn returns an
// error (which it returns). When the connection drops or goes silent, it
// reconnects and resumes after the last event fn received (Last-Event-ID),
// so fn sees each event once; it keeps trying while the server is
// unreachable, unavailable or failing (EUNAVAILABLE, EINTERNAL), and
// returns any other error the server answers with, such as EBADREQUEST for
// a malformed type. f.Limit is ignored; f.Deployment set returns
// EBADREQUEST.
//
// The stream is not bound by the timeout of the client's http.Client,
// which would cut it: a silent connection is detected by the server's
// heartbeats instead.
func (c *Client) FollowEvents(ctx context.Context, f deploydb.EventFilter, fn func(ev *deploydb.Event, raw []byte) error) error {
	if f.Deployment != 0 {
		return deploydb.Errorf(deploydb.EBADREQUEST, "events cannot be followed by deployment; filter by service and environment instead")
	}
	hc := *c.httpClient
	hc.Timeout = 0
	failures := 0
	for {
		progressed, err := c.followOnce(ctx, &hc, &f, fn)
		var stop *stopError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &stop):
			return stop.err
		case err != nil && !retryable(err):
			return err
		}
		if progressed {
			failures = 0
		} else {
			failures++
		}
		if err := pause(ctx, reconnectDelay(failures)); err != nil {
			return err
		}
	}
}

// stopError carries the error fn returned, which ends FollowEvents.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// retryable reports whether FollowEvents should reconnect after err.
func retryable(err error) bool {
	var e *deploydb.Error
	if !errors.As(err, &e) {
		return true // the stream broke off
	}
	return e.Code == deploydb.EUNAVAILABLE || e.Code == deploydb.EINTERNAL
}

// reconnectDelay returns how long to wait after failures failed attempts
// in a row: none after a stream that delivered something, then doubling
// from reconnectMin up to reconnectMax.
func reconnectDelay(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	d := reconnectMin
	for i := 1; i < failures && d < reconnectMax; i++ {
		d *= 2
	}
	return min(d, reconnectMax)
}

func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// followOnce reads one connection of the event stream, advancing f.After
// past each event fn received; a connection after the first resumes with
// f.After as Last-Event-ID. It reports whether the connection delivered
// anything (an event or a heartbeat), and why it ended.
func (c *Client) followOnce(ctx context.Context, hc *http.Client, f *deploydb.EventFilter, fn func(*deploydb.Event, []byte) error) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A connection silent for longer than the heartbeats allow is dead,
	// even if TCP has not noticed.
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()

	target := c.base + "/api/events/stream"
	if q := eventQuery(*f); len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream, application/problem+json")
	req.Header.Set("Cache-Control", "no-cache")
	if f.After > 0 {
		req.Header.Set("Last-Event-ID", itoa(f.After))
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, &deploydb.Error{Code: deploydb.EUNAVAILABLE, Message: fmt.Sprintf("cannot reach the server at %s: %s", c.base, transportError(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return false, parseProblem(resp.StatusCode, b)
	}

	progressed := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	var id string
	var data bytes.Buffer
	for sc.Scan() {
		idle.Reset(streamIdle)
		progressed = true
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if len(line) > 0 {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "id":
				id = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
			// Comments (the heartbeat), event and retry need nothing.
			continue
		}
		// A blank line ends an event.
		if data.Len() == 0 {
			continue
		}
		var ev deploydb.Event
		if err := json.Unmarshal(data.Bytes(), &ev); err != nil {
			// Reading it again would not help.
			return progressed, &stopError{err: &deploydb.Error{Code: deploydb.EINTERNAL, Message: fmt.Sprintf("event %s of the stream is not the JSON expected: %s", id, err)}}
		}
		raw := bytes.Clone(data.Bytes())
		data.Reset()
		if ev.ID <= f.After {
			continue // already received, before a reconnection
		}
		if err := fn(&ev, raw); err != nil {
			return progressed, &stopError{err: err}
		}
		f.After = ev.ID
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return progressed, &stopError{err: &deploydb.Error{Code: deploydb.EINTERNAL, Message: fmt.Sprintf("a line of the event stream is longer than %d bytes", maxStreamLine)}}
		}
		return progressed, err
	}
	return progressed, io.ErrUnexpectedEOF // the server ended the stream
}
