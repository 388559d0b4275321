package webhook_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb/webhook"
)

// FuzzVerify checks Verify, which parses a Webhook-Signature header as a
// receiver would, on any secret, message and header: it never panics, it
// accepts a header only when it holds the message's signature, and a
// header with that signature among others always verifies.
func FuzzVerify(f *testing.F) {
	f.Add(specSecret, specID, int64(specTimestamp), []byte(specPayload), specSignature)
	f.Add(specSecret, specID, int64(specTimestamp), []byte(specPayload), "v2,x v1, v1,,, v1,"+strings.Repeat("A", 44))
	f.Add("whsec_", "", int64(-1), []byte(nil), "")
	f.Add("whsec_!!", "id", int64(1<<62), []byte("{}"), "v1")
	f.Fuzz(func(t *testing.T, secret, id string, ts int64, body []byte, header string) {
		stamp := strconv.FormatInt(ts, 10)
		err := webhook.Verify(secret, id, stamp, body, header)
		sig, serr := webhook.Sign([]string{secret}, id, time.Unix(ts, 0), body)
		if serr != nil {
			if err == nil {
				t.Fatalf("Verify accepted secret %q that Sign refuses: %v", secret, serr)
			}
			return
		}
		if err == nil && !strings.Contains(header, strings.TrimPrefix(sig, "v1,")) {
			t.Fatalf("Verify accepted header %q without the signature %q", header, sig)
		}
		if err := webhook.Verify(secret, id, stamp, body, header+" "+sig); err != nil {
			t.Fatalf("Verify refused its own signature %q beside %q: %v", sig, header, err)
		}
		if err := webhook.Verify(secret, id, stamp+"0", body, sig); err == nil && ts != 0 {
			t.Fatalf("Verify accepted signature %q for another timestamp", sig)
		}
	})
}
