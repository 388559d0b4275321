package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/deploydb/deploydb"
)

// Idempotency headers: a write request may carry Idempotency-Key; a retry
// with the same key gets the first (successful) response back, marked with
// Idempotent-Replayed: true.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
	maxIdempotencyKeyLen = 255
)

// idempotent runs handle for a write request, replaying the stored response
// when the request carries an Idempotency-Key that was seen before with the
// same method, path and body. Only 2xx responses are stored: a request that
// failed may be retried and is run again.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, handle func(http.ResponseWriter, *http.Request) error) error {
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		return handle(w, r)
	}
	if len(key) > maxIdempotencyKeyLen {
		return badParam(HeaderIdempotencyKey, fmt.Sprintf("must be at most %d characters", maxIdempotencyKeyLen))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errTooLarge
	} else if err != nil {
		return deploydb.Errorf(deploydb.EBADREQUEST, "reading request body: %v", err)
	}
	sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(body)))
	hash := hex.EncodeToString(sum[:])

	// Keys are the caller's own: another token's key is another key.
	key = actor(r) + "\x00" + key
	prev, err := s.store.FindIdempotent(r.Context(), key)
	switch {
	case err == nil && prev.RequestHash != hash:
		return &deploydb.Error{Code: deploydb.EINVALID, Message: "this Idempotency-Key was already used for a different request; use a new key for a new request",
			Fields: []deploydb.FieldError{{Field: HeaderIdempotencyKey, Message: "already used for a different request"}}}
	case err == nil:
		if prev.Location != "" {
			w.Header().Set("Location", prev.Location)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderReplayed, "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Body)
		return nil
	case deploydb.ErrorCode(err) != deploydb.ENOTFOUND:
		return err
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &recorder{ResponseWriter: w}
	if err := handle(rec, r); err != nil {
		return err
	}
	if rec.status >= 200 && rec.status < 300 {
		// The write is committed and answered; failing to remember the
		// answer only means a retry is judged on the state it finds.
		ctx := context.WithoutCancel(r.Context())
		if err := s.store.SaveIdempotent(ctx, deploydb.IdempotentResponse{Key: key, RequestHash: hash, Status: rec.status, Location: w.Header().Get("Location"), Body: rec.body.Bytes()}); err != nil {
			s.log(r).Warn("storing the response for an Idempotency-Key failed", "err", err)
		}
	}
	return nil
}

// recorder passes a response through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
