package cli

import (
	"strings"
	"testing"
)

// count returns how many requests s received.
func (s *apiServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

const flowJSON = `{"id":3,"artifact":{"id":1,"group":"com.example","name":"billing","version":"1.4.2","sourceUrl":"https://x/b.jar","createdAt":"2025-11-25T22:41:00.000Z"},"service":"billing","pipeline":"standard","reason":"pipeline","status":"CANCELLED","deployments":[],"createdAt":"2025-11-25T22:41:00.000Z","updatedAt":"2025-11-25T22:50:00.000Z"}`

const lockJSON = `{"environment":"prod","reason":"release freeze","actor":"anonymous","createdAt":"2025-11-26T08:00:00.000Z"}`

func TestActionCommandsSend(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, map[string]reply{
		"POST /api/environments/prod/lock":   {201, lockJSON},
		"DELETE /api/environments/prod/lock": {204, ""},
		"POST /api/flows/3/cancel":           {200, flowJSON},
		"POST /api/deployments/7/retry":      {201, deploymentJSON},
		"POST /api/deployments/7/rollback":   {201, deploymentJSON},
		"POST /api/deployments":              {201, deploymentJSON},
	})
	tests := []struct {
		args   []string
		method string
		path   string
		body   string
		key    string
		stdout string // a line the output contains
	}{
		{[]string{"env", "lock", "prod", "--reason", "release freeze", "--idempotency-key", "k1"},
			"POST", "/api/environments/prod/lock", `{"reason":"release freeze"}`, "k1", "prod         release freeze  anonymous  2025-11-26T08:00:00Z"},
		{[]string{"env", "unlock", "prod", "--reason", "freeze over"}, "DELETE", "/api/environments/prod/lock", `{"reason":"freeze over"}`, "", "unlocked prod"},
		// Without a reason, unlock sends no body.
		{[]string{"env", "unlock", "prod", "--idempotency-key", "k2"}, "DELETE", "/api/environments/prod/lock", "", "k2", "unlocked prod"},
		{[]string{"flow", "cancel", "3", "--reason", "withdrawn"}, "POST", "/api/flows/3/cancel", `{"reason":"withdrawn"}`, "", "CANCELLED  pipeline"},
		{[]string{"deployment", "retry", "7", "--reason", "flaky runner", "--idempotency-key", "k3"},
			"POST", "/api/deployments/7/retry", `{"reason":"flaky runner"}`, "k3", "com.example:billing:1.4.2"},
		// The reason is sent trimmed.
		{[]string{"deployment", "rollback", "7", "--reason", "  1.4.2 breaks invoices "},
			"POST", "/api/deployments/7/rollback", `{"reason":"1.4.2 breaks invoices"}`, "", "com.example:billing:1.4.2"},
		{[]string{"deployment", "hotfix", "--artifact", "1", "--service", "billing", "--environment", "prod", "--reason", "CVE", "--idempotency-key", "k4"},
			"POST", "/api/deployments", `{"artifact":1,"service":"billing","environment":"prod","reason":"CVE"}`, "k4", "com.example:billing:1.4.2"},
	}
	for i, tt := range tests {
		r := execute(t, s.env(), tt.args...)
		if r.err != nil {
			t.Fatalf("%q: exit %d: %s", tt.args, r.code, r.stderr)
		}
		req, body := s.request(i)
		if req.Method != tt.method || req.URL.RequestURI() != tt.path || body != tt.body || req.Header.Get("Idempotency-Key") != tt.key {
			t.Errorf("%q sent %s %s %s (key %q); want %s %s %s (key %q)", tt.args, req.Method, req.URL.RequestURI(), body, req.Header.Get("Idempotency-Key"), tt.method, tt.path, tt.body, tt.key)
		}
		if !strings.Contains(r.stdout, tt.stdout) {
			t.Errorf("%q printed\n%s\nwant it to contain %q", tt.args, r.stdout, tt.stdout)
		}
	}

	// The server answers an unlock with no content: -o json prints nothing.
	if r := execute(t, s.env(), "env", "unlock", "prod", "-o", "json"); r.err != nil || r.stdout != "" {
		t.Errorf("env unlock -o json: exit %d, stdout %q, stderr %q; want exit 0 and no output", r.code, r.stdout, r.stderr)
	}
	// -o json prints the lock as the server sent it.
	if r := execute(t, s.env(), "env", "lock", "prod", "--reason", "x", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"reason": "release freeze"`) {
		t.Errorf("env lock -o json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestActionsNeedAReason: an operator action without a reason is a usage
// error, found before the server is asked.
func TestActionsNeedAReason(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"env", "lock", "prod"}, `required flag(s) "reason" not set`},
		{[]string{"env", "lock", "prod", "--reason", "  "}, "--reason is required"},
		{[]string{"flow", "cancel", "3"}, `required flag(s) "reason" not set`},
		{[]string{"flow", "cancel", "3", "--reason", ""}, "--reason is required"},
		{[]string{"deployment", "retry", "7"}, `required flag(s) "reason" not set`},
		{[]string{"deployment", "rollback", "7", "--reason", "\t"}, "--reason is required"},
		{[]string{"deployment", "hotfix", "--artifact", "1", "--service", "billing", "--environment", "prod"}, `required flag(s) "reason" not set`},
		{[]string{"deployment", "hotfix", "--artifact", "1", "--service", "billing", "--reason", "CVE"}, `required flag(s) "environment" not set`},
		{[]string{"deployment", "hotfix", "--artifact", "0", "--service", "billing", "--environment", "prod", "--reason", "CVE"}, "--artifact must be a positive integer"},
		{[]string{"deployment", "retry", "seven", "--reason", "x"}, `deployment ID must be a positive integer, not "seven"`},
		{[]string{"env", "unlock"}, "takes 1 argument(s): NAME"},
		{[]string{"status", "billing"}, `unknown command "billing"`},
	}
	for _, tt := range tests {
		r := execute(t, s.env(), tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.stderr) || r.stdout != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit 2 and stderr containing %q", tt.args, r.code, r.stderr, r.stdout, tt.stderr)
		}
	}
	if n := s.count(); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
}

func TestCoordinationReadsAsk(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil) // every answer is 404: only the requests matter here
	tests := []struct {
		args []string
		uri  string
	}{
		{[]string{"status"}, "/api/status"},
		{[]string{"status", "--service", "bill ing"}, "/api/status?service=bill+ing"},
		{[]string{"env", "list"}, "/api/environments"},
		{[]string{"env", "get", "prod"}, "/api/environments/prod"},
		{[]string{"environment", "get", "a b"}, "/api/environments/a%20b"},
	}
	for i, tt := range tests {
		r := execute(t, s.env(), tt.args...)
		if r.code != ExitNotFound {
			t.Errorf("%q: exit %d, want 4 (stderr %q)", tt.args, r.code, r.stderr)
		}
		req, _ := s.request(i)
		if req.Method != "GET" || req.URL.RequestURI() != tt.uri {
			t.Errorf("%q asked %s %s, want GET %s", tt.args, req.Method, req.URL.RequestURI(), tt.uri)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	status := `{"environments":[{"name":"integ","lock":null},{"name":"prod","lock":` + lockJSON + `}],` +
		`"services":[{"service":"billing","pipeline":"standard","cells":[` +
		`{"environment":"integ","current":{"id":1,"flow":1,"artifact":{"id":1,"group":"com.example","name":"billing","version":"1.4.2"},"status":"SUCCESS","reason":"pipeline","updatedAt":null},"currentSince":"2025-11-25T22:45:00.000Z","inFlight":null,"lastAttempt":null,"lastKnownGood":null,"locked":false},` +
		`{"environment":"prod","current":null,"currentSince":null,"inFlight":null,"lastAttempt":null,"lastKnownGood":null,"locked":true}]}],"futureField":1}`
	s := newAPIServer(t, map[string]reply{"GET /api/status": {200, status}})
	r := execute(t, s.env(), "status")
	if r.err != nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"SERVICE  integ    prod [locked]\n",
		"billing  1.4.2 ✓  -\n",
		"✓ verified (SUCCESS)",
		"prod [locked]: release freeze (by anonymous since 2025-11-26T08:00:00Z)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status printed\n%s\nwant it to contain %q", r.stdout, want)
		}
	}
	if r := execute(t, s.env(), "status", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"futureField": 1`) {
		t.Errorf("status -o json: exit %d, stdout %q; want the server's JSON", r.code, r.stdout)
	}
}
