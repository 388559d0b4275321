package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/web"
)

// Token secrets of newSiteWithTokens.
const (
	readerSecret = "reader-secret-1"
	aliceSecret  = "alice-secret-1" // promotions:write, release-managers
	bobSecret    = "bob-secret-1"   // promotions:write, no group
	opsSecret    = "ops-secret-1"   // admin
)

// newSiteWithTokens is newSite with API tokens configured: nobody reads
// without one.
func newSiteWithTokens(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "examples", "config"))); err != nil {
		t.Fatal(err)
	}
	tokens := "tokens:\n" +
		"  - {name: reader, sha256: " + deploydb.HashSecret(readerSecret) + ", scopes: [read]}\n" +
		"  - {name: alice, sha256: " + deploydb.HashSecret(aliceSecret) + ", scopes: [read, \"promotions:write\"], groups: [release-managers]}\n" +
		"  - {name: bob, sha256: " + deploydb.HashSecret(bobSecret) + ", scopes: [read, \"promotions:write\"]}\n" +
		"  - {name: ops, sha256: " + deploydb.HashSecret(opsSecret) + ", scopes: [admin]}\n"
	if err := os.MkdirAll(filepath.Join(dir, "auth"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth", "tokens.yml"), []byte(tokens), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return serveSite(t, cfg, filepath.Join(t.TempDir(), "deploydb.db"))
}

// post sends a form as a browser on the site's own pages does, without
// following a redirect.
func (s *site) post(t *testing.T, path string, form url.Values, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSignIn(t *testing.T) {
	s := newSiteWithTokens(t)

	// Without a token nothing is read: 401, in HTML, with a way in.
	status, _, page := s.get(t, "/services/billing")
	if status != http.StatusUnauthorized || !strings.Contains(page, `<a href="/signin?next=%2fservices%2fbilling">Sign in with a token</a>`) {
		t.Fatalf("GET /services/billing without a token = %d:\n%s", status, page)
	}

	// An unknown token is refused, saying so; no cookie.
	resp := s.post(t, "/signin", url.Values{"token": {"nope"}, "next": {"/services/billing"}})
	if page := body(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Unknown API token.") || len(resp.Cookies()) != 0 {
		t.Errorf("sign in with an unknown token = %d, cookies %v:\n%s", resp.StatusCode, resp.Cookies(), page)
	}

	// A known one: kept in a session cookie, and back to the page.
	resp = s.post(t, "/signin", url.Values{"token": {readerSecret}, "next": {"/services/billing"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/services/billing" {
		t.Fatalf("sign in = %d to %q, want 303 to /services/billing", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want the session's", cookies)
	}
	c := cookies[0]
	if c.Name != web.SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.MaxAge != 0 || !c.Expires.IsZero() || c.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, for the browser session, not Secure over plain HTTP", c)
	}
	status, _, page = s.get(t, "/services/billing", "Cookie", c.Name+"="+c.Value)
	if status != 200 || !strings.Contains(page, "signed in as reader") {
		t.Errorf("GET /services/billing signed in = %d:\n%s", status, page)
	}

	// Signing out drops the cookie.
	resp = s.post(t, "/signout", nil, "Cookie", c.Name+"="+c.Value)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("sign out = %d, cookies %v: want the session's deleted", resp.StatusCode, resp.Cookies())
	}

	// A sign-in never sends the browser to another site.
	for _, next := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`, "services"} {
		resp = s.post(t, "/signin", url.Values{"token": {readerSecret}, "next": {next}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("sign in with next %q went to %q, want /", next, loc)
		}
	}

	// Another site's page cannot sign a browser in (or do anything).
	resp = s.post(t, "/signin", url.Values{"token": {readerSecret}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign in = %d, cookies %v: want 403", resp.StatusCode, resp.Cookies())
	}
}

// cookie signs in with secret and returns the session cookie's header.
func (s *site) cookie(t *testing.T, secret string) []string {
	t.Helper()
	resp := s.post(t, "/signin", url.Values{"token": {secret}})
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("sign in = %d", resp.StatusCode)
	}
	c := resp.Cookies()[0]
	return []string{"Cookie", c.Name + "=" + c.Value}
}

// toProd drives a flow of billing to its prod deployment COMPLETED, where
// release-approval (manual, release-managers) waits.
func (s *site) toProd(t *testing.T, version string) *deploydb.Flow {
	t.Helper()
	fl := s.publish(t, "billing", version)
	for i, d := range fl.Deployments {
		s.report(t, d.ID, deploydb.DeploymentStarted)
		s.report(t, d.ID, deploydb.DeploymentCompleted)
		if i < 2 {
			if _, err := s.store.ReportPromotion(t.Context(), s.cfg, deploydb.PromotionReport{Deployment: d.ID, Promotion: "smoke", Status: deploydb.PromotionSuccess, Actor: "tests"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fl
}

func TestApprovals(t *testing.T) {
	s := newSiteWithTokens(t)
	fl := s.toProd(t, "1.0.0")
	prod := fl.Deployments[2].ID
	action := "/approvals/" + strconv.FormatInt(prod, 10) + "/release-approval"

	// A reader sees what waits, and that it is not theirs to decide.
	reader := s.cookie(t, readerSecret)
	status, _, page := s.get(t, "/approvals", reader...)
	if status != 200 || !strings.Contains(page, "release-approval") || !strings.Contains(page, "group release-managers") || !strings.Contains(page, "not for reader") || strings.Contains(page, `action="`+action+`"`) {
		t.Fatalf("GET /approvals as reader = %d:\n%s", status, page)
	}
	// Nor can they post it.
	resp := s.post(t, action, url.Values{"decision": {"approve"}}, reader...)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve as reader = %d, want 403", resp.StatusCode)
	}
	// bob may report promotions, but is not a release manager.
	bob := s.cookie(t, bobSecret)
	resp = s.post(t, action, url.Values{"decision": {"approve"}}, bob...)
	if page := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "release-managers") {
		t.Errorf("approve as bob = %d, want 403 naming the group:\n%s", resp.StatusCode, page)
	}
	// Without a token at all: 401.
	if resp := s.post(t, action, url.Values{"decision": {"approve"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("approve without a token = %d, want 401", resp.StatusCode)
	}
	if d, err := s.store.FindDeployment(t.Context(), prod); err != nil || d.Status != deploydb.DeploymentCompleted {
		t.Fatalf("after the refusals the deployment is %v (%v), want still COMPLETED", d.Status, err)
	}

	// alice is: she gets the buttons, and her approval verifies it.
	alice := s.cookie(t, aliceSecret)
	_, _, page = s.get(t, "/approvals", alice...)
	if !strings.Contains(page, `<form class="decide" method="post" action="`+action+`">`) {
		t.Fatalf("alice has no approve button:\n%s", page)
	}
	resp = s.post(t, action, url.Values{"decision": {"approve"}}, alice...)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals" {
		t.Fatalf("approve as alice = %d:\n%s", resp.StatusCode, body(t, resp))
	}
	if d, err := s.store.FindDeployment(t.Context(), prod); err != nil || d.Status != deploydb.DeploymentSuccess {
		t.Fatalf("after alice's approval the deployment is %v (%v), want SUCCESS", d.Status, err)
	}
	_, _, page = s.get(t, "/approvals", alice...)
	if !strings.Contains(page, "Nothing waits for a decision.") {
		t.Errorf("the approval is still listed")
	}
	_, _, page = s.get(t, "/flows/"+strconv.FormatInt(fl.ID, 10), alice...)
	if !strings.Contains(page, `release-approval: success <span class="note">by alice</span>`) {
		t.Errorf("the flow does not say who approved")
	}

	// Rejecting fails the next one.
	fl2 := s.toProd(t, "1.1.0")
	action2 := "/approvals/" + strconv.FormatInt(fl2.Deployments[2].ID, 10) + "/release-approval"
	if resp := s.post(t, action2, url.Values{"decision": {"reject"}}, alice...); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject as alice = %d", resp.StatusCode)
	}
	if d, err := s.store.FindDeployment(t.Context(), fl2.Deployments[2].ID); err != nil || d.Status != deploydb.DeploymentFailed {
		t.Errorf("after the rejection the deployment is %v (%v), want FAILED", d.Status, err)
	}
	// A decision that is neither: 400, nothing changes.
	if resp := s.post(t, action2, url.Values{"decision": {"maybe"}}, alice...); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("decision maybe = %d, want 400", resp.StatusCode)
	}
}

func TestDeliveries(t *testing.T) {
	s := newSiteWithTokens(t)
	s.publish(t, "billing", "1.0.0")
	// The example's hooks call 127.0.0.1:9999; one call is given up on
	// (the receiver said 410), as the dispatcher records it.
	failed := s.failDelivery(t)
	id := strconv.FormatInt(failed.ID, 10)
	action := "/deliveries/" + id + "/redeliver"

	reader := s.cookie(t, readerSecret)
	status, _, page := s.get(t, "/deliveries", reader...)
	if status != 200 || !strings.Contains(page, "HTTP 410 Gone") || !strings.Contains(page, "an admin token may redeliver") || strings.Contains(page, `action="`+action+`"`) {
		t.Fatalf("GET /deliveries as reader = %d:\n%s", status, page)
	}
	if resp := s.post(t, action, url.Values{}, reader...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("redeliver as reader = %d, want 403", resp.StatusCode)
	}

	ops := s.cookie(t, opsSecret)
	_, _, page = s.get(t, "/deliveries", ops...)
	if !strings.Contains(page, `<form class="decide" method="post" action="`+action+`">`) || !strings.Contains(page, `<label class="sr" for="reason-`+id+`">`) {
		t.Fatalf("ops has no redeliver button:\n%s", page)
	}
	resp := s.post(t, action, url.Values{"reason": {"receiver fixed"}}, ops...)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/deliveries?redelivered="+id {
		t.Fatalf("redeliver as ops = %d:\n%s", resp.StatusCode, body(t, resp))
	}
	ds, err := s.store.FindDeliveries(t.Context(), deploydb.DeliveryFilter{Status: deploydb.DeliveryPending, Page: deploydb.Page{Size: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ds, func(d *deploydb.Delivery) bool { return d.ID == failed.ID }) {
		t.Errorf("delivery %d is not pending again", failed.ID)
	}
	evs, err := s.store.FindEvents(t.Context(), deploydb.EventFilter{Type: deploydb.EventOperatorRedeliver})
	if err != nil || len(evs) != 1 || evs[0].Actor != "ops" || evs[0].Reason != "receiver fixed" {
		t.Errorf("the redelivery was not recorded as ops's, with the reason: %v %+v", err, evs)
	}
	_, _, page = s.get(t, "/deliveries?redelivered="+id, ops...)
	if !strings.Contains(page, "Delivery "+id+" is queued again.") || !strings.Contains(page, "No failed deliveries.") {
		t.Errorf("after the redelivery:\n%s", page)
	}
	// Pending already: refused, saying so.
	if resp := s.post(t, action, url.Values{}, ops...); resp.StatusCode != http.StatusConflict || !strings.Contains(body(t, resp), "pending already") {
		t.Errorf("redeliver a pending delivery = %d, want 409", resp.StatusCode)
	}
}

// TestSignInOverTLS: served over TLS, the session cookie is Secure too.
func TestSignInOverTLS(t *testing.T) {
	s := newSiteWithTokens(t)
	tls := httptest.NewTLSServer(s.Config.Handler)
	t.Cleanup(tls.Close)
	c := tls.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(t.Context(), "POST", tls.URL+"/signin", strings.NewReader(url.Values{"token": {readerSecret}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("sign in over TLS = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if ck := resp.Cookies()[0]; !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over TLS %+v: want Secure, HttpOnly, SameSite=Strict", ck)
	}
}

// TestStaleSession: a session whose token the server does not know (removed
// from the configuration, or a cookie left by another server on this
// host) reads as a caller without a token, and the cookie is dropped.
func TestStaleSession(t *testing.T) {
	// A server without tokens: everyone reads, whatever the cookie.
	s := newSite(t)
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: "ddb_from-another-server"})
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("GET / with a stale cookie = %d, cookies %v: want 200 and the cookie dropped", resp.StatusCode, resp.Cookies())
	}

	// A server whose tokens no longer hold the session's: refused as
	// anyone without a token is (here nobody reads without one), and
	// signed out.
	ts := newSiteWithTokens(t)
	status, h, page := ts.get(t, "/", "Cookie", web.SessionCookie+"=ddb_removed-token")
	if status != http.StatusUnauthorized || !strings.Contains(page, "Sign in with a token") || !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("GET / with a removed token's cookie = %d, Set-Cookie %q", status, h.Get("Set-Cookie"))
	}
}
