package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
	"github.com/deploydb/deploydb/webhook"
)

// Two Standard Webhooks secrets, as an operator rotating one lists them.
const (
	secretNew = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretOld = "whsec_c2Vjb25kLXNlY3JldC1rZXktMTIzNDU2Nzg="
)

// loadHooks loads a configuration of service faas (integ, then prod) whose
// global hooks are webhookYAML, with getenv answering from env.
func loadHooks(t *testing.T, webhookYAML string, env map[string]string) *deploydb.Config {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"services/faas.yml":      "artifacts: [" + group + ":" + name + "]\npipelines: [main]\n",
		"environments/integ.yml": "description: integ\n",
		"environments/prod.yml":  "description: prod\n",
		"pipelines/main.yml":     "environments:\n  integ: {promotions: [smoke]}\n  prod: {}\n",
		"promotions/smoke.yml":   "type: basic\n",
		"webhook/hooks.yml":      webhookYAML,
	}
	for f, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.LoadWith(dir, config.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// holder is the configuration in force, swapped by tests as a reload would.
type holder struct {
	p atomic.Pointer[deploydb.Config]
}

func (h *holder) hook(name string) (*deploydb.Hook, bool) { return h.p.Load().Hook(name) }

// A hook object shapes the call: method, URL and header templates, its own
// body; and the call is signed with every secret of the hook, which the
// Standard Webhooks reference library verifies with either.
func TestHookObject(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	recv := mustReceiver(t, rec, "jenkins", nil)
	cfg := loadHooks(t, `
hooks:
  - name: jenkins-deploy
    method: PUT
    url: `+recv.URL+`/job/deploy-{{.Service}}/buildWithParameters?token=${env:JENKINS_TOKEN}&VERSION={{urlquery .Artifact.Version}}&ENV={{.Environment}}
    headers:
      Authorization: Bearer ${env:JENKINS_TOKEN}
      X-Deployment: "{{.Deployment.ID}}"
    body: '{"service": {{json .Service}}, "version": {{json .Artifact.Version}}, "flow": {{.Flow.ID}}}'
    contentType: application/json; charset=utf-8
    secret: ["${env:SECRET_NEW}", "${env:SECRET_OLD}"]
    events: [deployment.created]
`, map[string]string{"JENKINS_TOKEN": "t0k3n", "SECRET_NEW": secretNew, "SECRET_OLD": secretOld})
	var h holder
	h.p.Store(cfg)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = h.hook })

	if _, _, err := publish(s, cfg, "1.0.1+build 7"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the jenkins call", func() bool { return rec.count() == 1 })
	r := rec.requests()[0]
	if r.Method != http.MethodPut {
		t.Errorf("method = %s, want PUT", r.Method)
	}
	if want := "/job/deploy-faas/buildWithParameters?token=t0k3n&VERSION=1.0.1%2Bbuild+7&ENV=integ"; r.Path != want {
		t.Errorf("path = %s, want %s", r.Path, want)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer t0k3n" {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("X-Deployment"); got != "1" {
		t.Errorf("X-Deployment = %q, want the deployment id", got)
	}
	if r.ContentType != "application/json; charset=utf-8" {
		t.Errorf("content type = %q", r.ContentType)
	}
	if want := `{"service": "faas", "version": "1.0.1+build 7", "flow": 1}`; string(r.Body) != want {
		t.Errorf("body = %s, want %s", r.Body, want)
	}
	sigs := strings.Fields(r.Header.Get("Webhook-Signature"))
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature = %q, want one v1 signature per secret", r.Header.Get("Webhook-Signature"))
	}
	for _, secret := range []string{secretNew, secretOld} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("reference library does not verify the call with one of the secrets: %v", err)
		}
		// And our own receiver-side check agrees.
		if err := webhook.Verify(secret, r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp"), r.Body, r.Header.Get("Webhook-Signature")); err != nil {
			t.Error(err)
		}
	}
	wrong, _ := standardwebhooks.NewWebhook("whsec_" + "d3Jvbmcgc2VjcmV0")
	if err := wrong.Verify(r.Body, r.Header); err == nil {
		t.Error("a wrong secret verifies the call")
	}

	// The delivery log names the hook and never shows the token.
	ds := mustDeliveries(t, s, deploydb.DeliveryFilter{Hook: "jenkins-deploy"})
	if len(ds) != 1 || !ds[0].Signed || ds[0].Hook != "jenkins-deploy" {
		t.Fatalf("deliveries of jenkins-deploy = %+v", ds)
	}
	if shown, want := webhook.ShownURL(ds[0]), recv.URL+"/job/deploy-faas/buildWithParameters"; shown != want {
		t.Errorf("shown URL %s, want %s: rendered, without the query", shown, want)
	}
}

// A signature is made when the call is sent, with the secrets in force
// then: a rotated secret signs the next attempt; a hook that lost its
// secret, or left the configuration, never gets an unsigned call.
func TestHookSecretAtDelivery(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	var fail atomic.Bool
	fail.Store(true)
	recv := mustReceiver(t, rec, "r", func(w http.ResponseWriter, r *http.Request, n int) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	hookYAML := func(secret string) string {
		y := "deployment:\n  created:\n    - name: signed\n      url: " + recv.URL + "/hook\n"
		if secret != "" {
			y += "      secret: " + secret + "\n"
		}
		return y
	}
	oldCfg := loadHooks(t, hookYAML(secretOld), nil)
	var h holder
	h.p.Store(oldCfg)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = h.hook })
	if _, _, err := publish(s, oldCfg, "1.0.1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a first, failed attempt", func() bool { return rec.count() >= 1 })
	first := rec.requests()[0]
	old, _ := standardwebhooks.NewWebhook(secretOld)
	if err := old.Verify(first.Body, first.Header); err != nil {
		t.Fatalf("first attempt not signed with the old secret: %v", err)
	}

	// The hook leaves the configuration: attempts fail without a call.
	h.p.Store(loadHooks(t, "deployment:\n  created: []\n", nil))
	n := rec.count()
	d := waitDelivery(t, s, 1, "an attempt without the hook", func(d *deploydb.Delivery) bool {
		return strings.Contains(d.LastError, `hook "signed" is no longer in the configuration`)
	})
	if d.Status != deploydb.DeliveryPending {
		t.Fatalf("delivery = %+v, want pending: the configuration may come back", d)
	}
	// It comes back without a secret: still not sent unsigned.
	h.p.Store(loadHooks(t, hookYAML(""), nil))
	waitDelivery(t, s, 1, "an attempt with the hook unsigned", func(d *deploydb.Delivery) bool {
		return strings.Contains(d.LastError, "not sent unsigned")
	})
	if rec.count() > n+1 {
		// At most the call that was in flight when the hook left.
		t.Fatalf("%d calls made while the hook had no secret", rec.count()-n)
	}

	// The secret is rotated: the next attempt is signed with the new one.
	fail.Store(false)
	h.p.Store(loadHooks(t, hookYAML(secretNew), nil))
	waitStatus(t, s, 1, deploydb.DeliveryDelivered)
	reqs := rec.requests()
	last := reqs[len(reqs)-1]
	nw, _ := standardwebhooks.NewWebhook(secretNew)
	if err := nw.Verify(last.Body, last.Header); err != nil {
		t.Fatalf("attempt after rotation not signed with the new secret: %v", err)
	}
	if last.Header.Get("Webhook-Id") != first.Header.Get("Webhook-Id") {
		t.Errorf("webhook-id changed across retries: %s then %s", first.Header.Get("Webhook-Id"), last.Header.Get("Webhook-Id"))
	}
	if err := old.Verify(last.Body, last.Header); err == nil {
		t.Error("the retired secret still verifies")
	}
}

// A GET hook sends no body and no content type; an unsigned hook sends no
// signature but still a webhook-id and timestamp.
func TestHookGet(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	recv := mustReceiver(t, rec, "r", nil)
	cfg := loadHooks(t, "hooks:\n  - url: "+recv.URL+"/ping?v={{urlquery .Artifact.Version}}\n    method: GET\n    events: [deployment.created]\n", nil)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = cfg.Hook })
	if _, _, err := publish(s, cfg, "2.0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the GET", func() bool { return rec.count() == 1 })
	r := rec.requests()[0]
	if r.Method != http.MethodGet || r.Path != "/ping?v=2.0" || len(r.Body) != 0 || r.ContentType != "" {
		t.Errorf("request = %s %s %q content type %q", r.Method, r.Path, r.Body, r.ContentType)
	}
	if r.Header.Get("Webhook-Signature") != "" || r.Header.Get("Webhook-Id") == "" || r.Header.Get("Webhook-Timestamp") == "" {
		t.Errorf("headers = %v", r.Header)
	}
	// Unnamed, the hook is its URL as written; shown, and found, without
	// the query.
	name := recv.URL + "/ping?v={{urlquery .Artifact.Version}}"
	for _, filter := range []string{name, recv.URL + "/ping"} {
		ds := mustDeliveries(t, s, deploydb.DeliveryFilter{Hook: filter})
		if len(ds) != 1 || ds[0].Hook != name || webhook.ShownHookName(ds[0].Hook) != recv.URL+"/ping" {
			t.Errorf("deliveries of hook %q = %+v", filter, ds)
		}
	}
}

// A hook without a body template sends the 0.3 payload, whatever else it
// changes; the hook context carries the promotion on promotion events.
func TestHookDefaultBodyAndPromotion(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	recv := mustReceiver(t, rec, "r", nil)
	cfg := loadHooks(t, `
hooks:
  - name: plain
    url: `+recv.URL+`/plain
    headers: {X-Event: "{{.Event}}"}
    events: [deployment.created]
  - name: promo
    url: `+recv.URL+`/promo
    body: '{"promotion": {{json .Promotion.Name}}, "status": {{json .Promotion.Status}}, "info": {{json .Promotion.InfoURL}}, "deployment": {{json .Deployment.Status}}}'
    events: [promotion.completed]
`, nil)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = cfg.Hook })
	if _, _, err := publish(s, cfg, "1.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, st := range []deploydb.DeploymentStatus{deploydb.DeploymentStarted, deploydb.DeploymentCompleted} {
		if err := report(s, cfg, 1, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := promote(s, cfg, 1, deploydb.PromotionSuccess, "http://ci/smoke/1"); err != nil {
		t.Fatal(err)
	}
	// deployment.created in integ, promotion.completed there, and
	// deployment.created in prod, which the promotion activated.
	waitFor(t, "three calls", func() bool { return rec.count() == 3 })
	reqs := rec.requests()
	slices.SortStableFunc(reqs, func(a, b request) int { return strings.Compare(a.Path, b.Path) }) // plain, plain, promo
	var payload webhook.Payload
	if err := json.Unmarshal(reqs[0].Body, &payload); err != nil || payload.ID != 1 || payload.Status != deploydb.DeploymentCreated {
		t.Errorf("plain body = %s (%v), want the 0.3 payload", reqs[0].Body, err)
	}
	if reqs[0].ContentType != ctCreated || reqs[0].Header.Get("X-Event") != "deployment.created" {
		t.Errorf("plain call content type %q, X-Event %q", reqs[0].ContentType, reqs[0].Header.Get("X-Event"))
	}
	if want := `{"promotion": "smoke", "status": "SUCCESS", "info": "http://ci/smoke/1", "deployment": "SUCCESS"}`; string(reqs[2].Body) != want {
		t.Errorf("promo body = %s, want %s", reqs[2].Body, want)
	}
	if reqs[2].ContentType != "application/json" {
		t.Errorf("promo content type %q, want application/json for a body template", reqs[2].ContentType)
	}
}

func TestShownURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"${env:SLACK_WEBHOOK_URL}", "${env:SLACK_WEBHOOK_URL}"},
		{"${env:JENKINS_URL}/job/deploy-billing/buildWithParameters?token=${env:T}&V=1", "${env:JENKINS_URL}/job/deploy-billing/buildWithParameters"},
		{"https://user:xxxxx@ci.example.com/hook#frag", "https://ci.example.com/hook"},
		{"https://ci.example.com", "https://ci.example.com"},
		{"https://ci.example.com/", "https://ci.example.com/"},
		{"https://ci.example.com?x=1", "https://ci.example.com"},
	} {
		if got := webhook.ShownURL(&deploydb.Delivery{ShownURL: webhook.RedactShown(tt.in)}); got != tt.want {
			t.Errorf("shown %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A hook object's call is rendered when it is sent, with the hook in force
// then: a template that passed the checks at load but fails on this
// event's data fails the attempt, with why, and no call is made; fixed by
// a reload, the next attempt renders it and sends the token in force. No
// value of ${env:NAME} is stored with the delivery.
func TestHookRenderedAtSend(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filepath.Join(t.TempDir(), "deploydb.db"))
	rec := &recorder{}
	recv := mustReceiver(t, rec, "r", nil)
	hookYAML := func(path string) string {
		return "hooks:\n  - name: short\n    url: " + recv.URL + "/" + path + "?token=${env:TOKEN}\n    headers: {X-Token: \"${env:TOKEN}\"}\n    events: [deployment.created]\n"
	}
	cfg := loadHooks(t, hookYAML("{{slice .Artifact.Version 0 5}}"), map[string]string{"TOKEN": "old-t0k3n"})
	var h holder
	h.p.Store(cfg)
	startDispatcher(t, s, func(d *webhook.Dispatcher) { d.Hook = h.hook })
	if _, _, err := publish(s, cfg, "1.0"); err != nil {
		t.Fatalf("publish: %v; a hook's template must not stop the change", err)
	}
	d := waitDelivery(t, s, 1, "a failed render", func(d *deploydb.Delivery) bool {
		return strings.HasPrefix(d.LastError, webhook.RenderFailed)
	})
	if d.Status != deploydb.DeliveryPending || rec.count() != 0 {
		t.Fatalf("delivery %+v, %d calls: want pending, no call made", d, rec.count())
	}
	for _, kept := range [][]byte{[]byte(d.URL), d.Body, d.Context, []byte(fmt.Sprint(d.Headers))} {
		if strings.Contains(string(kept), "t0k3n") {
			t.Errorf("the delivery keeps a value of ${env:TOKEN}: %s", kept)
		}
	}

	// Fixed, and the token rotated, by a reload.
	h.p.Store(loadHooks(t, hookYAML("v/{{pathescape .Artifact.Version}}"), map[string]string{"TOKEN": "new-t0k3n"}))
	waitStatus(t, s, 1, deploydb.DeliveryDelivered)
	r := rec.requests()[0]
	if r.Path != "/v/1.0?token=new-t0k3n" || r.Header.Get("X-Token") != "new-t0k3n" {
		t.Errorf("call to %s with X-Token %q, want the fixed template and the new token", r.Path, r.Header.Get("X-Token"))
	}
}
