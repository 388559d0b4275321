package web

import (
	"net/http"
	"strconv"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
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
	// May says whether the reader may decide: a token with
	// promotions:write that the engine lets report it (in the group, not
	// its publisher where self-approval is off); Why says why not.
	May bool
	Why string
}

// approvalsView is the data of the approvals page.
type approvalsView struct {
	Waiting []approvalView
	// More says the page looked through approvalsLimit deployments and
	// there may be more.
	More bool
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
	v := approvalsView{More: len(ds) == approvalsLimit}
	for _, d := range ds {
		for _, p := range d.Promotions {
			pr := cfg.Promotions[p.Promotion]
			manual := p.Type == deploydb.PromotionTypeManual || (pr != nil && pr.Type == deploydb.PromotionTypeManual)
			if !manual || p.Status == deploydb.PromotionSuccess || p.Status == deploydb.PromotionFailed {
				continue
			}
			a := approvalView{Deployment: d, Result: p}
			if pr != nil {
				a.Group = pr.AllowedGroup()
			}
			switch {
			case caller == nil || !caller.Allows(deploydb.ScopePromotionsWrite):
			default:
				if err := engine.MayReport(&p, d, engine.Approver{Caller: caller, Promotion: pr}); err != nil {
					a.Why = deploydb.ErrorMessage(err)
				} else {
					a.May = true
				}
			}
			v.Waiting = append(v.Waiting, a)
		}
	}
	return "approvals", view{Title: "Approvals", Nav: "approvals", Data: v}, nil
}

// decide answers POST /approvals/{deployment}/{promotion}: the decision
// (approve or reject) is reported as the promotion's result by the
// signed-in caller, under the API's rules (promotions:write, the
// promotion's allowedGroup, no self-approval where it is refused).
func (u *UI) decide(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	ar, err := u.api.Admit(u.withSession(w, r), deploydb.ScopePromotionsWrite)
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
