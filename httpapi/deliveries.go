package httpapi

import (
	"net/http"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// DeliveryView is deploydb.DeliveryView, shared with the client.
type DeliveryView = deploydb.DeliveryView

func deliveryView(d *deploydb.Delivery) DeliveryView {
	return DeliveryView{ID: d.ID, Event: d.Event, EventType: d.EventType, Deployment: d.Deployment, Hook: webhook.ShownHookName(d.Hook), URL: webhook.ShownURL(d), Method: d.Method,
		ContentType: d.ContentType, Signed: d.Signed, Status: d.Status, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastError: d.LastError,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := deploydb.DeliveryFilter{Status: q.Get("status"), Hook: q.Get("hook"), Page: p}
	switch f.Status {
	case "", deploydb.DeliveryPending, deploydb.DeliveryDelivered, deploydb.DeliveryFailed:
	default:
		return badParam("status", "must be pending, delivered or failed")
	}
	if f.Deployment, err = queryID(r, "deployment"); err != nil {
		return err
	}
	list, err := s.store.FindDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]DeliveryView, 0, len(list))
	for _, d := range list {
		out = append(out, deliveryView(d))
	}
	encode(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.store.FindDelivery(r.Context(), id)
	if err != nil {
		return err
	}
	v := deliveryView(d)
	if v.History, err = s.store.FindAttempts(r.Context(), id); err != nil {
		return err
	}
	encode(w, http.StatusOK, v)
	return nil
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	reason, err := readReason(w, r)
	if err != nil {
		return err
	}
	d, err := s.store.Redeliver(r.Context(), id, deploydb.Action{Actor: actor(r), Reason: reason})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, deliveryView(d))
	return nil
}
