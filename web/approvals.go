package web

import (
	"net/http"
	"strconv"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/httpapi"
)

// approvalsLimit bounds the deployments the approvals page looks through:
// those COMPLETED and waiting for their promotions.
const approvalsLimit = 1000

// approvalView is one manual promotion waiting for a decision.
type approvalView struct {
	Deployment *deploydb.Deployment
	Result     deploydb.PromotionResult
	// Group is the promotion's allowedGroup: who may decide.
	Group string
	// May says whether the reader may decide (a token with
	// promotions:write in that group).
	May bool
}

// approvals renders /approvals: the manual promotions waiting for a
// decision, oldest first, each with approve and reject for a signed-in
// token that may decide.
func (u *UI) approvals(r *http.Request) (string, view, error) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	ds, err := u.store.FindDeployments(ctx, deploydb.DeploymentFilter{Status: deploydb.DeploymentCompleted, Ascending: true, Page: deploydb.Page{Size: approvalsLimit}})
	if err != nil {
		return "", view{}, err
	}
	cfg := u.config()
	caller := httpapi.CallerOf(r)
	var out []approvalView
	for _, d := range ds {
		for _, p := range d.Promotions {
			if p.Type != deploydb.PromotionTypeManual || p.Status == deploydb.PromotionSuccess || p.Status == deploydb.PromotionFailed {
				continue
			}
			a := approvalView{Deployment: d, Result: p}
			if pr := cfg.Promotions[p.Promotion]; pr != nil {
				a.Group, _ = pr.Attributes["allowedGroup"].(string)
			}
			a.May = caller != nil && caller.Allows(deploydb.ScopePromotionsWrite) && (a.Group == "" || caller.InGroup(a.Group))
			out = append(out, a)
		}
	}
	return "approvals", view{Title: "Approvals", Nav: "approvals", Data: out}, nil
}

// decide answers POST /approvals/{deployment}/{promotion}: the decision
// (approve or reject) is reported as the promotion's result by the
// signed-in caller, under the API's rules (promotions:write, the
// promotion's allowedGroup, no self-approval where it is refused).
func (u *UI) decide(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	ar, err := u.api.Admit(withSession(r), deploydb.ScopePromotionsWrite)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("deployment"), 10, 64)
	if err != nil || id <= 0 {
		u.fail(w, ar, deploydb.Errorf(deploydb.ENOTFOUND, "no deployment %q", r.PathValue("deployment")))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, ar, deploydb.Errorf(deploydb.EBADREQUEST, "the form could not be read: %v", err))
		return
	}
	var status deploydb.PromotionStatus
	switch r.PostForm.Get("decision") {
	case "approve":
		status = deploydb.PromotionSuccess
	case "reject":
		status = deploydb.PromotionFailed
	default:
		u.fail(w, ar, deploydb.Errorf(deploydb.EBADREQUEST, "decision must be approve or reject, not %q", r.PostForm.Get("decision")))
		return
	}
	caller := httpapi.CallerOf(ar)
	_, err = u.store.ReportPromotion(ar.Context(), u.config(), deploydb.PromotionReport{
		Deployment: id, Promotion: r.PathValue("promotion"), Status: status, Actor: caller.Name, Caller: caller,
	})
	if err != nil {
		u.fail(w, ar, err)
		return
	}
	http.Redirect(w, r, "/approvals", http.StatusSeeOther)
}
