-- +goose Up
-- Responses to write requests that carried an Idempotency-Key, so that a
-- retry with the same key gets the first response back.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    location     TEXT    NOT NULL DEFAULT '',
    body         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
