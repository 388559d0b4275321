// Package webhook turns events into the webhook calls they owe (rendered
// when the event is recorded, into the outbox, in the same transaction) and
// delivers the outbox: at least once, in order per (hook, deployment), with
// retries and every attempt recorded.
package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/deploydb/deploydb"
)

// Payload is the 0.3 body of a deployment webhook.
type Payload struct {
	ID          int64                     `json:"id"`
	Artifact    deploydb.Artifact         `json:"artifact"`
	Service     string                    `json:"service"`
	Environment string                    `json:"environment"`
	CreatedAt   deploydb.Time             `json:"createdAt"`
	Status      deploydb.DeploymentStatus `json:"status"`
	// PromotionResult is set on promotion events.
	PromotionResult *ResultPayload `json:"promotionResult,omitempty"`
}

// ResultPayload is the promotion result inside a promotion event's payload.
type ResultPayload struct {
	ID        int64                    `json:"id"`
	Promotion string                   `json:"promotion"`
	Status    deploydb.PromotionStatus `json:"status"`
	InfoURL   string                   `json:"infoUrl"`
	CreatedAt deploydb.Time            `json:"createdAt"`
}

// ContentType returns the 0.3 content type of an event's payload:
// application/vnd.deploydb.<deployment|promotion><event>.v1+json.
func ContentType(t deploydb.EventType) string {
	return "application/vnd.deploydb." + strings.ReplaceAll(string(t), ".", "") + ".v1+json"
}

// Deliveries returns the webhook calls event ev owes under cfg: the
// environment's hooks for the event first, then the global ones. d is the
// deployment as it was right after the change (nil for flow events without
// one) and r the promotion result on promotion events.
func Deliveries(cfg *deploydb.Config, ev *deploydb.Event, d *deploydb.Deployment, r *deploydb.PromotionResult) ([]deploydb.Delivery, error) {
	hooks := cfg.Hooks(ev.Environment, ev.Type)
	if len(hooks) == 0 {
		return nil, nil
	}
	body, err := Body(ev, d, r)
	if err != nil {
		return nil, err
	}
	out := make([]deploydb.Delivery, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, deploydb.Delivery{
			Event:         ev.ID,
			EventType:     ev.Type,
			Deployment:    ev.Deployment,
			URL:           h.URL,
			Method:        "POST",
			ContentType:   ContentType(ev.Type),
			Body:          body,
			Status:        deploydb.DeliveryPending,
			NextAttemptAt: ev.CreatedAt,
			CreatedAt:     ev.CreatedAt,
			UpdatedAt:     ev.CreatedAt,
		})
	}
	return out, nil
}

// Body renders the 0.3 payload of an event.
func Body(ev *deploydb.Event, d *deploydb.Deployment, r *deploydb.PromotionResult) ([]byte, error) {
	if d == nil {
		// Flow events carry no deployment; send the event record itself.
		return json.Marshal(ev)
	}
	p := Payload{
		ID:          d.ID,
		Artifact:    d.Artifact,
		Service:     d.Service,
		Environment: d.Environment,
		CreatedAt:   d.CreatedAt,
		Status:      d.Status,
	}
	if r != nil {
		p.PromotionResult = &ResultPayload{ID: r.ID, Promotion: r.Promotion, Status: r.Status, InfoURL: r.InfoURL, CreatedAt: r.CreatedAt}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook: render %s: %w", ev.Type, err)
	}
	return b, nil
}
