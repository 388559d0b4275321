package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deploydb/deploydb"
)

// FindIdempotent returns the response stored for key.
func (s *Store) FindIdempotent(ctx context.Context, key string) (_ *deploydb.IdempotentResponse, err error) {
	defer s.classify(&err)
	r := deploydb.IdempotentResponse{Key: key}
	var created int64
	err = s.r.QueryRowContext(ctx, `SELECT request_hash, status, location, body, created_at FROM idempotency_keys WHERE key = ? AND created_at >= ?`,
		key, s.Now().Add(-deploydb.IdempotencyTTL).UnixMilli()).Scan(&r.RequestHash, &r.Status, &r.Location, &r.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "no response stored for this Idempotency-Key")
	} else if err != nil {
		return nil, fmt.Errorf("store: find idempotency key: %w", err)
	}
	r.CreatedAt = deploydb.UnixMilli(created)
	return &r, nil
}

// SaveIdempotent stores a response for its key unless one is stored, and
// forgets expired ones.
func (s *Store) SaveIdempotent(ctx context.Context, r deploydb.IdempotentResponse) (err error) {
	defer s.classify(&err)
	now := s.now()
	return s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, now.Add(-deploydb.IdempotencyTTL).UnixMilli()); err != nil {
			return fmt.Errorf("store: expire idempotency keys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (key, request_hash, status, location, body, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			r.Key, r.RequestHash, r.Status, r.Location, r.Body, ms(now)); err != nil {
			return fmt.Errorf("store: save idempotency key: %w", err)
		}
		return nil
	})
}
