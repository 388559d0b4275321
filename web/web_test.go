package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/httpapi"
	"github.com/deploydb/deploydb/sqlite"
	"github.com/deploydb/deploydb/web"
)

// site is a real API server with the UI mounted, over a SQLite file and
// the example configuration.
type site struct {
	*httptest.Server
	store *sqlite.Store
	cfg   *deploydb.Config
}

func newSite(t *testing.T) *site {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "examples", "config"))
	if err != nil {
		t.Fatal(err)
	}
	return serveSite(t, cfg, filepath.Join(t.TempDir(), "deploydb.db"))
}

// serveSite serves the API with the UI under cfg over the SQLite file db,
// until tb ends.
func serveSite(tb testing.TB, cfg *deploydb.Config, db string) *site {
	tb.Helper()
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	current := func() *deploydb.Config { return cfg }
	api := httpapi.NewServer(logger, store, current)
	web.New(logger, api, store, current).Mount()
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &site{Server: srv, store: store, cfg: cfg}
}

// failDelivery makes the oldest call due fail for good, as the dispatcher
// records a 410, and returns it.
func (s *site) failDelivery(t *testing.T) *deploydb.Delivery {
	t.Helper()
	now := time.Now()
	due, err := s.store.ClaimDeliveries(t.Context(), now, 1, time.Minute)
	if err != nil || len(due) != 1 {
		t.Fatalf("claim: %v, %d deliveries", err, len(due))
	}
	if err := s.store.RecordAttempt(t.Context(), deploydb.AttemptResult{
		Attempt: deploydb.Attempt{Delivery: due[0].ID, StatusCode: 410, Error: "HTTP 410 Gone: the receiver asked to stop this delivery", CreatedAt: deploydb.NewTime(now)},
		Done:    true, Status: deploydb.DeliveryFailed, NextAttemptAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	return due[0]
}

// get fetches path and returns the status, the headers and the body.
func (s *site) get(t *testing.T, path string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// publish publishes version of service's artifact and returns its flow.
func (s *site) publish(t *testing.T, service, version string) *deploydb.Flow {
	t.Helper()
	_, flows, err := s.store.PublishArtifact(t.Context(), s.cfg, deploydb.Artifact{Group: "com.example", Name: service, Version: version, SourceURL: "https://ci.example/" + service + "/" + version}, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 {
		t.Fatalf("%d flows, want 1", len(flows))
	}
	return flows[0]
}

func (s *site) report(t *testing.T, deployment int64, status deploydb.DeploymentStatus) {
	t.Helper()
	if _, err := s.store.ReportDeployment(t.Context(), s.cfg, deploydb.DeploymentReport{Deployment: deployment, Status: status, Actor: "orchestrator"}); err != nil {
		t.Fatal(err)
	}
}

// rowOf returns the matrix row of service in page, "" if none.
func rowOf(page, service string) string {
	_, after, ok := strings.Cut(page, `<tr data-service="`+service+`">`)
	if !ok {
		return ""
	}
	row, _, _ := strings.Cut(after, "</tr>")
	return row
}

func TestMatrix(t *testing.T) {
	s := newSite(t)
	billing := s.publish(t, "billing", "1.4.2")
	integ := billing.Deployments[0].ID
	s.report(t, integ, deploydb.DeploymentStarted)
	s.report(t, integ, deploydb.DeploymentCompleted)
	checkout := s.publish(t, "checkout", "2.0.0")
	s.report(t, checkout.Deployments[0].ID, deploydb.DeploymentStarted)
	s.report(t, checkout.Deployments[0].ID, deploydb.DeploymentFailed)

	status, h, page := s.get(t, "/")
	if status != 200 {
		t.Fatalf("GET / = %d:\n%s", status, page)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// Environments in pipeline order.
	i, j, k := strings.Index(page, `data-env="integ"`), strings.Index(page, `data-env="staging"`), strings.Index(page, `data-env="prod"`)
	if i < 0 || i >= j || j >= k {
		t.Errorf("columns not integ, staging, prod in that order (at %d, %d, %d)", i, j, k)
	}
	// billing 1.4.2 completed in integ, not verified yet (smoke is
	// pending): said in words, not only in colour.
	row := rowOf(page, "billing")
	if row == "" {
		t.Fatalf("no row for billing:\n%s", page)
	}
	for _, want := range []string{`<td class="pending"><span class="v">1.4.2</span> <span class="s">deployed, not verified yet</span>`, `href="/services/billing"`} {
		if !strings.Contains(row, want) {
			t.Errorf("billing's row has no %q:\n%s", want, row)
		}
	}
	// checkout 2.0.0 failed in integ.
	if row := rowOf(page, "checkout"); !strings.Contains(row, `<td class="failed"><span class="v">–</span> <span class="s">failed: 2.0.0</span>`) {
		t.Errorf("checkout's row does not show the failure:\n%s", row)
	}
	if !strings.Contains(page, "2 of 2 services") {
		t.Errorf("no count of the services shown")
	}

	// The filter.
	_, _, page = s.get(t, "/?service=bill")
	if rowOf(page, "billing") == "" || rowOf(page, "checkout") != "" {
		t.Errorf("filtered by bill: want billing only")
	}
	if !strings.Contains(page, `value="bill"`) || !strings.Contains(page, "1 of 2 services matching “bill”") {
		t.Errorf("the filter is not shown with the page")
	}
	// What a filter brings back is escaped, never markup.
	_, _, page = s.get(t, "/?service=%3Cscript%3E")
	if strings.Contains(page, "<script>") {
		t.Errorf("the filter went into the page unescaped")
	}
}

func TestMatrixVerified(t *testing.T) {
	s := newSite(t)
	fl := s.publish(t, "billing", "1.0.0")
	id := fl.Deployments[0].ID
	s.report(t, id, deploydb.DeploymentStarted)
	s.report(t, id, deploydb.DeploymentCompleted)
	if _, err := s.store.ReportPromotion(t.Context(), s.cfg, deploydb.PromotionReport{Deployment: id, Promotion: "smoke", Status: deploydb.PromotionSuccess, Actor: "tests"}); err != nil {
		t.Fatal(err)
	}
	_, _, page := s.get(t, "/")
	row := rowOf(page, "billing")
	if !strings.Contains(row, `<td class="ok"><span class="v">1.0.0</span> <span class="s">verified</span>`) {
		t.Errorf("billing 1.0.0 verified in integ not shown so:\n%s", row)
	}
	// Staging's deployment is under way (activated once integ verified).
	if !strings.Contains(row, `<span class="inflight">→ 1.0.0`) {
		t.Errorf("staging's deployment under way not shown:\n%s", row)
	}
}

func TestPagesNeedReadScope(t *testing.T) {
	s := newSite(t)
	// Without tokens the server serves loopback only: a request to
	// another host name is refused, in HTML.
	status, h, page := s.get(t, "/", "Host", "deploydb.example")
	if status != http.StatusForbidden || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(page, "loopback") {
		t.Errorf("GET / for another host = %d %s:\n%s", status, h.Get("Content-Type"), page)
	}
}

func TestStatic(t *testing.T) {
	s := newSite(t)
	for path, ct := range map[string]string{"/static/style.css": "text/css; charset=utf-8", "/static/live.js": "text/javascript; charset=utf-8"} {
		status, h, body := s.get(t, path)
		if status != 200 || h.Get("Content-Type") != ct || body == "" {
			t.Errorf("GET %s = %d %q, %d bytes", path, status, h.Get("Content-Type"), len(body))
		}
	}
	if status, _, _ := s.get(t, "/static/nothing.css"); status != 404 {
		t.Errorf("GET /static/nothing.css = %d, want 404", status)
	}
}

func TestServiceFlowEnvironment(t *testing.T) {
	s := newSite(t)
	fl := s.publish(t, "billing", "1.0.0")
	integ := fl.Deployments[0].ID
	s.report(t, integ, deploydb.DeploymentStarted)
	s.report(t, integ, deploydb.DeploymentCompleted)
	if _, err := s.store.ReportPromotion(t.Context(), s.cfg, deploydb.PromotionReport{Deployment: integ, Promotion: "smoke", Status: deploydb.PromotionSuccess, InfoURL: "https://ci.example/smoke/1?a=1&b=2", Actor: "tests"}); err != nil {
		t.Fatal(err)
	}
	staging := fl.Deployments[1].ID
	s.report(t, staging, deploydb.DeploymentStarted)
	s.report(t, staging, deploydb.DeploymentFailed)
	if _, err := s.store.LockEnvironment(t.Context(), s.cfg, "prod", deploydb.Action{Actor: "alice", Reason: "INC-42 <outage>"}); err != nil {
		t.Fatal(err)
	}

	// The service's timeline: newest first, the failure marked, the
	// promotion linked to its infoUrl.
	status, _, page := s.get(t, "/services/billing")
	if status != 200 {
		t.Fatalf("GET /services/billing = %d:\n%s", status, page)
	}
	for _, want := range []string{
		"<h1>billing</h1>", "Billing API",
		`<tr class="failed">`, `<span class="status failed">failed</span>`,
		`<a href="https://ci.example/smoke/1?a=1&amp;b=2" rel="noopener noreferrer">smoke</a>: success <span class="note">by tests</span>`,
		`href="/flows/` + strconv.FormatInt(fl.ID, 10) + `"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the service's page has no %q", want)
		}
	}
	if f, s2 := strings.Index(page, `<span class="status failed">failed</span>`), strings.Index(page, `<span class="status ok">success</span>`); f < 0 || s2 < 0 || f > s2 {
		t.Errorf("the timeline is not newest first (staging's failure at %d, integ's success at %d)", f, s2)
	}

	// The flow: each environment's deployment with its results.
	status, _, page = s.get(t, "/flows/"+strconv.FormatInt(fl.ID, 10))
	if status != 200 {
		t.Fatalf("GET /flows/%d = %d:\n%s", fl.ID, status, page)
	}
	for _, want := range []string{"<h1>billing 1.0.0</h1>", "com.example:billing:1.0.0", `href="https://ci.example/billing/1.0.0"`,
		`<li class="stage ok">`, `<li class="stage failed">`, `<a href="/environments/prod">prod</a> <span class="status pending">not_started</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the flow's page has no %q", want)
		}
	}

	// The environment: its lock (escaped), what runs there, its history.
	status, _, page = s.get(t, "/environments/prod")
	if status != 200 {
		t.Fatalf("GET /environments/prod = %d:\n%s", status, page)
	}
	for _, want := range []string{`<span class="badge prod">production</span>`, "Locked by alice", "INC-42 &lt;outage&gt;", `<a href="/services/billing">billing</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("prod's page has no %q", want)
		}
	}
	_, _, page = s.get(t, "/environments/integ")
	if !strings.Contains(page, "Open: deployments are activated") || !strings.Contains(page, `<span class="status ok">success</span>`) {
		t.Errorf("integ's page does not show it open with billing's deployment")
	}
	// The matrix marks prod locked.
	_, _, page = s.get(t, "/")
	if !strings.Contains(page, `<th scope="col" data-env="prod">prod<span class="badge locked" title="locked by alice since`) {
		t.Errorf("the matrix does not show prod locked")
	}
}

func TestNotFoundPages(t *testing.T) {
	s := newSite(t)
	for path, want := range map[string]string{
		"/services/nope":     `no service &#34;nope&#34; in the configuration`,
		"/environments/nope": `no environment &#34;nope&#34; in the configuration`,
		"/flows/42":          "flow 42 not found",
		"/flows/abc":         "a flow&#39;s id is a positive number",
	} {
		status, h, page := s.get(t, path)
		if status != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(page, want) {
			t.Errorf("GET %s = %d %s, want 404 in HTML saying %q:\n%s", path, status, h.Get("Content-Type"), want, page)
		}
	}
}

// TestFrozen: a freeze window in force shows on the environment's page
// and on the matrix's column.
func TestFrozen(t *testing.T) {
	s := newSite(t)
	from, until := deploydb.NewTime(time.Now().Add(-time.Minute)), deploydb.NewTime(time.Now().Add(time.Hour))
	s.cfg.Environments["staging"].Freezes = []deploydb.Freeze{{Reason: "year-end freeze", Start: &from, End: &until}}
	_, _, page := s.get(t, "/environments/staging")
	if !strings.Contains(page, "Frozen: year-end freeze") || strings.Contains(page, "Open: deployments are activated") {
		t.Errorf("staging's page does not say it is frozen:\n%s", page)
	}
	_, _, page = s.get(t, "/")
	if !strings.Contains(page, `data-env="staging">staging<span class="badge frozen" title="year-end freeze`) {
		t.Errorf("the matrix does not mark staging frozen")
	}
}
