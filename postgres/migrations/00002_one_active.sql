-- +goose Up
-- At most one active deployment (CREATED, STARTED, or COMPLETED awaiting
-- verification) per (service, environment), DESIGN.md §3. Writes already
-- run one at a time and the engine checks the rule; the index makes the
-- database itself refuse a second active deployment, whatever the code.
CREATE UNIQUE INDEX deployments_one_active ON deployments (service, environment)
    WHERE status IN ('CREATED', 'STARTED', 'COMPLETED');

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
