package cli

import (
	"strings"
	"testing"

	"github.com/deploydb/deploydb/webhook"
)

// webhook secret prints a fresh secret the loader and the signer accept.
func TestWebhookSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 3 {
		r := execute(t, Env{Getenv: getenv(nil)}, "webhook", "secret")
		if r.err != nil {
			t.Fatal(r.err)
		}
		s := strings.TrimSuffix(r.stdout, "\n")
		key, err := webhook.ParseSecret(s)
		if err != nil || len(key) != secretBytes {
			t.Fatalf("secret %q: %d byte key, %v", s, len(key), err)
		}
		if seen[s] {
			t.Fatalf("secret %q printed twice", s)
		}
		seen[s] = true
	}
}
