package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// The example of the Standard Webhooks specification: its secret, message
// id, timestamp and payload sign to this value in every reference library.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSign(t *testing.T) {
	t.Parallel()
	t.Run("SpecExample", func(t *testing.T) {
		got, err := webhook.Sign([]string{specSecret}, specID, time.Unix(specTimestamp, 0), []byte(specPayload))
		if err != nil || got != specSignature {
			t.Fatalf("Sign = %q, %v; want %q", got, err, specSignature)
		}
		if err := webhook.Verify(specSecret, specID, "1614265330", []byte(specPayload), got); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		other := "whsec_" + "c2Vjb25kLXNlY3JldC1vZi1hdC1sZWFzdC0yNC1ieXRlcw=="
		got, err := webhook.Sign([]string{other, specSecret}, specID, time.Unix(specTimestamp, 0), []byte(specPayload))
		if err != nil {
			t.Fatal(err)
		}
		sigs := strings.Fields(got)
		if len(sigs) != 2 || sigs[1] != specSignature {
			t.Fatalf("Sign with two secrets = %q", got)
		}
		for _, s := range []string{other, specSecret} {
			if err := webhook.Verify(s, specID, "1614265330", []byte(specPayload), got); err != nil {
				t.Errorf("a receiver with either secret verifies: %v", err)
			}
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		if err := webhook.Verify(specSecret, specID, "1614265330", []byte(`{"test": 1}`), specSignature); err == nil {
			t.Fatal("a changed body verified")
		}
		if err := webhook.Verify(specSecret, "msg_other", "1614265330", []byte(specPayload), specSignature); err == nil {
			t.Fatal("another message id verified")
		}
	})
	t.Run("ErrBadSecret", func(t *testing.T) {
		for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!not base64"} {
			_, err := webhook.Sign([]string{s}, specID, time.Unix(specTimestamp, 0), nil)
			if deploydb.ErrorCode(err) != deploydb.EINVALID || (s != "" && strings.Contains(err.Error(), strings.TrimPrefix(s, "whsec_")) && len(s) > 6) {
				t.Errorf("Sign with secret %q = %v, want EINVALID that does not show the secret", s, err)
			}
		}
	})
}
