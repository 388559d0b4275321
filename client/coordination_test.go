package client_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// TestActionRequests pins down the method, path, body and idempotency key
// of the operator actions and the reads that came with them.
func TestActionRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := client.IdempotencyKey("k")
	tests := []struct {
		name   string
		reply  string
		call   func(c *client.Client) error
		method string
		uri    string
		body   string
		key    string
	}{
		{"Status", "{}", func(c *client.Client) error { _, err := c.Status(ctx, ""); return err }, "GET", "/api/status", "", ""},
		{"StatusOfService", "{}", func(c *client.Client) error { _, err := c.Status(ctx, "bill ing"); return err }, "GET", "/api/status?service=bill+ing", "", ""},
		{"EnvironmentViews", "[]", func(c *client.Client) error { _, err := c.EnvironmentViews(ctx); return err }, "GET", "/api/environments", "", ""},
		{"EnvironmentView", "{}", func(c *client.Client) error { _, err := c.EnvironmentView(ctx, "a b"); return err }, "GET", "/api/environments/a%20b", "", ""},
		{"LockEnvironment", "{}", func(c *client.Client) error {
			_, err := c.LockEnvironment(ctx, "prod", "release freeze", key)
			return err
		},
			"POST", "/api/environments/prod/lock", `{"reason":"release freeze"}`, "k"},
		{"UnlockEnvironment", "", func(c *client.Client) error { return c.UnlockEnvironment(ctx, "prod", "over", key) },
			"DELETE", "/api/environments/prod/lock", `{"reason":"over"}`, "k"},
		{"UnlockEnvironmentNoReason", "", func(c *client.Client) error { return c.UnlockEnvironment(ctx, "prod", "") },
			"DELETE", "/api/environments/prod/lock", "", ""},
		{"CancelFlow", "{}", func(c *client.Client) error { _, err := c.CancelFlow(ctx, 3, "withdrawn", key); return err },
			"POST", "/api/flows/3/cancel", `{"reason":"withdrawn"}`, "k"},
		{"RetryDeployment", "{}", func(c *client.Client) error { _, err := c.RetryDeployment(ctx, 7, "flaky", key); return err },
			"POST", "/api/deployments/7/retry", `{"reason":"flaky"}`, "k"},
		{"RollbackDeployment", "{}", func(c *client.Client) error { _, err := c.RollbackDeployment(ctx, 7, "broken"); return err },
			"POST", "/api/deployments/7/rollback", `{"reason":"broken"}`, ""},
		{"Hotfix", "{}", func(c *client.Client) error {
			_, err := c.Hotfix(ctx, deploydb.HotfixRequest{Artifact: 4, Service: "billing", Environment: "prod",
				Action: deploydb.Action{Actor: "not sent", Reason: "CVE"}}, key)
			return err
		}, "POST", "/api/deployments", `{"artifact":4,"service":"billing","environment":"prod","reason":"CVE"}`, "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newRecorder(t, 200, tt.reply)
			if err := tt.call(mustNew(t, s.URL+"/prefix")); err != nil {
				t.Fatal(err)
			}
			req, body := s.request()
			if uri := req.URL.RequestURI(); req.Method != tt.method || uri != "/prefix"+tt.uri || body != tt.body || req.Header.Get("Idempotency-Key") != tt.key {
				t.Errorf("sent %s %s %s (key %q)\nwant %s /prefix%s %s (key %q)", req.Method, uri, body, req.Header.Get("Idempotency-Key"), tt.method, tt.uri, tt.body, tt.key)
			}
		})
	}
}

func TestDecodeStatus(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, `{"environments":[{"name":"integ","lock":null},{"name":"prod","lock":{"environment":"prod","reason":"freeze","actor":"anonymous","createdAt":"2025-11-25T22:41:00.000Z"},"frozen":"weekend"}],`+
		`"services":[{"service":"billing","pipeline":"standard","cells":[`+
		`{"environment":"integ","current":{"id":1,"flow":2,"artifact":`+artifactJSON+`,"status":"SUCCESS","reason":"pipeline","updatedAt":"2025-11-25T22:41:00.000Z"},"currentSince":"2025-11-25T22:41:00.000Z","inFlight":null,"lastAttempt":null,"lastKnownGood":null,"locked":false},`+
		`{"environment":"prod","current":null,"currentSince":null,"inFlight":null,"lastAttempt":null,"lastKnownGood":null,"locked":true}]}]}`)
	got, err := mustNew(t, s.URL).Status(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	a := deploydb.Artifact{ID: 1, Group: "com.example", Name: "billing", Version: "1.0", SourceURL: "https://x/b.jar", CreatedAt: deploydb.UnixMilli(1764110460123)}
	at := deploydb.UnixMilli(1764110460000)
	want := &client.Status{
		Environments: []client.StatusEnvironment{
			{Name: "integ"},
			{Name: "prod", Lock: &deploydb.Lock{Environment: "prod", Reason: "freeze", Actor: "anonymous", CreatedAt: at}, Frozen: "weekend"},
		},
		Services: []client.StatusService{{Service: "billing", Pipeline: "standard", Cells: []client.StatusCell{
			{Environment: "integ", Current: &client.CellDeployment{ID: 1, Flow: 2, Artifact: a.InMatrix(), Status: deploydb.DeploymentSuccess, Reason: deploydb.ReasonPipeline, UpdatedAt: at}, CurrentSince: at},
			{Environment: "prod", Locked: true},
		}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c := got.Services[0].Cell("prod"); c == nil || !c.Locked {
		t.Errorf("Cell(prod) = %+v", c)
	}
	if c := got.Services[0].Cell("moon"); c != nil {
		t.Errorf("Cell(moon) = %+v, want nil", c)
	}
}

func TestDecodeEnvironmentView(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, `{"ident":"prod","description":"Production","production":true,"webhook":{},`+
		`"lock":{"environment":"prod","reason":"freeze","actor":"anonymous","createdAt":"2025-11-25T22:41:00.000Z"},"frozen":"weekend"}`)
	got, err := mustNew(t, s.URL).EnvironmentView(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if got.Ident != "prod" || !got.Production || got.Description != "Production" || got.Lock == nil || got.Lock.Reason != "freeze" || got.Frozen != "weekend" {
		t.Errorf("got %+v, lock %+v", got, got.Lock)
	}
}

// TestActionLocalChecks covers actions the client refuses without a round
// trip.
func TestActionLocalChecks(t *testing.T) {
	t.Parallel()
	s := newRecorder(t, 200, "{}")
	c := mustNew(t, s.URL)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"CancelZero":   func() error { _, err := c.CancelFlow(ctx, 0, "x"); return err },
		"RetryZero":    func() error { _, err := c.RetryDeployment(ctx, -1, "x"); return err },
		"RollbackZero": func() error { _, err := c.RollbackDeployment(ctx, 0, "x"); return err },
		"HotfixZero": func() error {
			_, err := c.Hotfix(ctx, deploydb.HotfixRequest{Service: "s", Environment: "e"})
			return err
		},
		"LockNoName":   func() error { _, err := c.LockEnvironment(ctx, "", "x"); return err },
		"UnlockNoName": func() error { return c.UnlockEnvironment(ctx, "", "") },
		"ViewNoName":   func() error { _, err := c.EnvironmentView(ctx, ""); return err },
	} {
		if err := call(); deploydb.ErrorCode(err) != deploydb.EBADREQUEST {
			t.Errorf("%s: err = %v, want EBADREQUEST", name, err)
		}
	}
	if req, _ := s.request(); req != nil {
		t.Errorf("sent %s %s, want no request", req.Method, req.URL)
	}
}
