package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deploydb/deploydb"
)

// Delivery is a webhook delivery as the API shows it.
type Delivery = deploydb.DeliveryView

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
