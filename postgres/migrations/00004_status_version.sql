-- +goose Up
-- A number that every commit changing what the status matrix shows
-- (deployments, env_state, locks) moves on, in the same
-- transaction. The API keeps the matrix it last built and rebuilds it only
-- when this number moved: reading one row says whether any process on the
-- database changed the matrix since.
CREATE TABLE status_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO status_version (id, n) VALUES (1, 0);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
