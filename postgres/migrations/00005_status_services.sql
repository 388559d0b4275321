-- +goose Up
-- Which rows of the status matrix a commit changed, so that a kept matrix
-- is brought up to date by reading those services again rather than all
-- of them. A commit that changes what the matrix shows moves
-- status_version.n on and writes the new number beside each service it
-- changed (status_services), or into status_version.whole when the change
-- is not one service's (a lock, an environment): the whole matrix then.
ALTER TABLE status_version ADD COLUMN whole BIGINT NOT NULL DEFAULT 0;
CREATE TABLE status_services (
    service TEXT PRIMARY KEY,
    n       BIGINT NOT NULL
);
CREATE INDEX status_services_n ON status_services (n);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
