package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
)

// deliveriesRows is how many failed deliveries the page shows, newest first.
const deliveriesRows = 200

// deliveriesView is the data of the deliveries page.
type deliveriesView struct {
	Failed []deploydb.DeliveryView
	More   bool
	// May says whether the reader may redeliver (admin).
	May bool
	// Done names the delivery just queued again, if any.
	Done int64
}

// deliveries renders /deliveries: the webhook deliveries that failed for
// good, newest first, each with a redeliver button for an admin.
func (u *UI) deliveries(r *http.Request) (string, view, error) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	ds, err := u.store.FindDeliveries(ctx, deploydb.DeliveryFilter{Status: deploydb.DeliveryFailed, Page: deploydb.Page{Size: deliveriesRows + 1}})
	if err != nil {
		return "", view{}, err
	}
	v := deliveriesView{}
	if len(ds) > deliveriesRows {
		ds, v.More = ds[:deliveriesRows], true
	}
	for _, d := range ds {
		v.Failed = append(v.Failed, httpapi.DeliveryViewOf(d))
	}
	caller := httpapi.CallerOf(r)
	v.May = caller != nil && caller.Allows(deploydb.ScopeAdmin)
	v.Done, _ = strconv.ParseInt(r.URL.Query().Get("redelivered"), 10, 64)
	return "deliveries", view{Title: "Failed webhook deliveries", Nav: "deliveries", Data: v}, nil
}

// redeliver answers POST /deliveries/{id}/redeliver: the delivery is queued
// again, due now, by the signed-in admin, with the reason given.
func (u *UI) redeliver(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	ar, err := u.api.Admit(u.withSession(w, r), deploydb.ScopeAdmin)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		u.fail(w, ar, deploydb.Errorf(deploydb.ENOTFOUND, "no webhook delivery %q", r.PathValue("id")))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, ar, deploydb.Errorf(deploydb.EBADREQUEST, "the form could not be read: %v", err))
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		reason = "redelivered from the web UI"
	}
	if reason, err = httpapi.RequireReason(reason); err != nil {
		u.fail(w, ar, err)
		return
	}
	if _, err := u.store.Redeliver(ar.Context(), id, deploydb.Action{Actor: httpapi.CallerOf(ar).Name, Reason: reason}); err != nil {
		u.fail(w, ar, err)
		return
	}
	http.Redirect(w, r, "/deliveries?redelivered="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}
