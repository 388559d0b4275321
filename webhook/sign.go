package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	secretPrefix    = "whsec_"
)

// ParseSecret decodes a Standard Webhooks secret: "whsec_" followed by the
// base64 of the key. Returns EINVALID, without the secret in the message,
// for anything else.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, deploydb.Errorf(deploydb.EINVALID, "a webhook secret starts with %q followed by base64", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		return nil, deploydb.Errorf(deploydb.EINVALID, "a webhook secret is %q followed by base64: the rest does not decode", secretPrefix)
	}
	return key, nil
}

// Sign returns the Webhook-Signature header value of a message: one
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per secret, separated by
// spaces, so that a receiver keeps verifying while a secret is rotated.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, "v1,"+signature(key, id, ts.Unix(), body))
	}
	return strings.Join(sigs, " "), nil
}

func signature(key []byte, id string, unix int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(unix, 10) + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a signed message as a receiver would: one of the v1
// signatures in header must match secret. It does not check the
// timestamp's age; receivers should.
func Verify(secret, id, timestamp string, body []byte, header string) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: timestamp %q is not Unix seconds", timestamp)
	}
	want := signature(key, id, unix, body)
	for _, sig := range strings.Fields(header) {
		v, got, ok := strings.Cut(sig, ",")
		if ok && v == "v1" && hmac.Equal([]byte(got), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("webhook: no signature matches")
}
