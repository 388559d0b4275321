package web_test

// Tests of problems a review found (each failed on the code it reviewed).

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestApprovalsSelfApproval: with allowSelfApproval: false the approvals
// page offers no Approve to the token that published the artifact, as
// the store refuses it (403).
func TestApprovalsSelfApproval(t *testing.T) {
	s := newSiteWithTokens(t)
	s.cfg.Promotions["release-approval"].Attributes["allowSelfApproval"] = false
	fl, err := func() (*deploydb.Flow, error) {
		_, flows, err := s.store.PublishArtifact(t.Context(), s.cfg, deploydb.Artifact{Group: "com.example", Name: "billing", Version: "9.0.0", SourceURL: "https://ci.example/billing/9.0.0"}, "alice")
		if err != nil {
			return nil, err
		}
		return flows[0], nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range fl.Deployments {
		s.report(t, d.ID, deploydb.DeploymentStarted)
		s.report(t, d.ID, deploydb.DeploymentCompleted)
		if i < 2 {
			if _, err := s.store.ReportPromotion(t.Context(), s.cfg, deploydb.PromotionReport{Deployment: d.ID, Promotion: "smoke", Status: deploydb.PromotionSuccess, Actor: "tests"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	action := "/approvals/" + strconv.FormatInt(fl.Deployments[2].ID, 10) + "/release-approval"
	alice := s.cookie(t, aliceSecret)
	resp := s.post(t, action, url.Values{"decision": {"approve"}}, alice...)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("alice approving her own release = %d, want 403 (the store's rule)", resp.StatusCode)
	}
	_, _, page := s.get(t, "/approvals", alice...)
	if strings.Contains(page, `action="`+action+`"`) {
		t.Errorf("the approvals page offers alice Approve/Reject for the release she published, which the server refuses")
	}
}

// TestRedeliverReasonLimit: the UI's redeliver keeps the API's rule on
// reasons: at most deploydb.MaxArtifactFieldLen characters.
func TestRedeliverReasonLimit(t *testing.T) {
	s := newSiteWithTokens(t)
	s.publish(t, "billing", "1.0.0")
	failed := s.failDelivery(t)
	ops := s.cookie(t, opsSecret)
	long := strings.Repeat("x", 60000)
	resp := s.post(t, "/deliveries/"+strconv.FormatInt(failed.ID, 10)+"/redeliver", url.Values{"reason": {long}}, ops...)
	if page := body(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "reason is too long") {
		t.Errorf("a reason of %d bytes = %d, want 422 saying the reason is too long (the API refuses more than %d):\n%s", len(long), resp.StatusCode, deploydb.MaxArtifactFieldLen, page)
	}
	// Refused: the delivery is as it was.
	d, err := s.store.FindDeliveries(t.Context(), deploydb.DeliveryFilter{Status: deploydb.DeliveryFailed, Page: deploydb.Page{Size: 10}})
	if err != nil || len(d) != 1 || d[0].ID != failed.ID {
		t.Errorf("after the refused redelivery the failed deliveries are %v (%v), want %d still failed", d, err, failed.ID)
	}
}

// TestRefusedDecisionSignIn: a refused decision's page offers to sign in
// and come back to the approvals, not to the path the form posted to
// (which answers posts only).
func TestRefusedDecisionSignIn(t *testing.T) {
	s := newSiteWithTokens(t)
	fl := s.toProd(t, "1.0.0")
	action := "/approvals/" + strconv.FormatInt(fl.Deployments[2].ID, 10) + "/release-approval"
	resp := s.post(t, action, url.Values{"decision": {"approve"}}, s.cookie(t, bobSecret)...)
	page := body(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `/signin?next=%2fapprovals">Sign in with a token</a> that may do this.`) {
		t.Errorf("bob's refused approval = %d:\n%s", resp.StatusCode, page)
	}
}
