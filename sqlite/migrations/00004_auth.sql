-- +goose Up
-- Who published each artifact (the token's name): a manual promotion with
-- allowSelfApproval: false refuses that caller's approval. Empty on
-- artifacts published before it was kept.
ALTER TABLE artifacts ADD COLUMN published_by TEXT NOT NULL DEFAULT '';

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
