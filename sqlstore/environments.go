package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/webhook"
)

// ActorConfig is the actor of the events a configuration change causes.
const ActorConfig = "config"

// environmentDigest identifies what an environment is, as the config
// defines it: its hooks are how DeployDB talks about it, not part of it.
func environmentDigest(e *deploydb.Environment) (string, error) {
	b, err := json.Marshal(struct {
		Description string            `json:"description"`
		Production  bool              `json:"production"`
		Freezes     []deploydb.Freeze `json:"freezes"`
	}{e.Description, e.Production, e.Freezes})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// SyncEnvironments implements deploydb.Store.
func (s *Store) SyncEnvironments(ctx context.Context, cfg *deploydb.Config) (_ []*deploydb.Event, err error) {
	defer s.classify(&err)
	want := make(map[string]string, len(cfg.Environments))
	for ident, e := range cfg.Environments {
		d, err := environmentDigest(e)
		if err != nil {
			return nil, fmt.Errorf("store: sync environments: %w", err)
		}
		want[ident] = d
	}
	var out []*deploydb.Event
	err = s.writeUnder(ctx, cfg, func(tx *wtx) error {
		out = nil
		have, err := knownEnvironments(ctx, tx)
		if err != nil {
			return err
		}
		if len(have) == 0 {
			// A store that has a history but never synced (made before
			// environments were kept) has had these environments all
			// along: they are noted, not announced as new.
			var old bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events)`).Scan(&old); err != nil {
				return fmt.Errorf("store: sync environments: %w", err)
			}
			if old {
				for ident, digest := range want {
					if _, err := tx.ExecContext(ctx, `INSERT INTO config_environments (ident, digest) VALUES (?, ?)`, ident, digest); err != nil {
						return fmt.Errorf("store: sync environments: %w", err)
					}
				}
				return nil
			}
		}
		now := s.now()
		announce := func(t deploydb.EventType, ident, detail string) error {
			ev := &deploydb.Event{Type: t, Environment: ident, Detail: detail, Actor: ActorConfig, CreatedAt: now}
			if _, err := s.insertEvent(ctx, tx, ev); err != nil {
				return err
			}
			out = append(out, ev)
			return s.enqueue(ctx, tx, cfg, webhook.Change{Event: ev}, nil)
		}
		for _, ident := range slices.Sorted(maps.Keys(want)) {
			old, ok := have[ident]
			switch {
			case !ok:
				if err := announce(deploydb.EventEnvironmentCreated, ident, "environment "+ident+" added to the configuration"); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO config_environments (ident, digest) VALUES (?, ?)`, ident, want[ident]); err != nil {
					return fmt.Errorf("store: sync environments: %w", err)
				}
			case old != want[ident]:
				if err := announce(deploydb.EventEnvironmentModified, ident, "environment "+ident+" changed in the configuration"); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE config_environments SET digest = ? WHERE ident = ?`, want[ident], ident); err != nil {
					return fmt.Errorf("store: sync environments: %w", err)
				}
			}
		}
		for _, ident := range slices.Sorted(maps.Keys(have)) {
			if _, ok := want[ident]; ok {
				continue
			}
			if err := announce(deploydb.EventEnvironmentDeleted, ident, "environment "+ident+" removed from the configuration"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM config_environments WHERE ident = ?`, ident); err != nil {
				return fmt.Errorf("store: sync environments: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// knownEnvironments returns the environments last synced, with their
// digests.
func knownEnvironments(ctx context.Context, tx *wtx) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT ident, digest FROM config_environments`)
	if err != nil {
		return nil, fmt.Errorf("store: sync environments: %w", err)
	}
	defer rows.Close()
	have := map[string]string{}
	for rows.Next() {
		var ident, digest string
		if err := rows.Scan(&ident, &digest); err != nil {
			return nil, fmt.Errorf("store: sync environments: %w", err)
		}
		have[ident] = digest
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sync environments: %w", err)
	}
	return have, nil
}
