package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deploydb/deploydb"
)

// Delivery is a webhook delivery as the API shows it (its URL without user
// info, query or fragment), with its attempts on a single delivery.
type Delivery struct {
	ID            int64               `json:"id"`
	Event         int64               `json:"event"`
	EventType     deploydb.EventType  `json:"eventType"`
	Deployment    int64               `json:"deployment,omitempty"`
	URL           string              `json:"url"`
	Method        string              `json:"method"`
	ContentType   string              `json:"contentType"`
	Status        string              `json:"status"`
	Attempts      int                 `json:"attempts"`
	NextAttemptAt deploydb.Time       `json:"nextAttemptAt"`
	LastError     string              `json:"lastError,omitempty"`
	CreatedAt     deploydb.Time       `json:"createdAt"`
	UpdatedAt     deploydb.Time       `json:"updatedAt"`
	History       []*deploydb.Attempt `json:"history,omitempty"`
}

// Deliveries lists webhook deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, f deploydb.DeliveryFilter) ([]Delivery, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Hook != "" {
		q.Set("hook", f.Hook)
	}
	if f.Deployment != 0 {
		q.Set("deployment", strconv.FormatInt(f.Deployment, 10))
	}
	if f.Page.Size > 0 {
		q.Set("perPageSize", strconv.Itoa(f.Page.Size))
		q.Set("pageNumber", strconv.Itoa(f.Page.Number))
	}
	var out []Delivery
	if err := c.do(ctx, http.MethodGet, "/api/webhook-deliveries", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Redeliver queues a failed (or delivered) webhook delivery again. The
// reason is required. Returns ENOTFOUND, or ECONFLICT when it is pending.
func (c *Client) Redeliver(ctx context.Context, id int64, reason string, opts ...CallOption) (*Delivery, error) {
	if err := checkID("delivery id", id); err != nil {
		return nil, err
	}
	var out Delivery
	if err := c.do(ctx, http.MethodPost, "/api/webhook-deliveries/"+itoa(id)+"/redeliver", nil, actionInput{reason}, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}
