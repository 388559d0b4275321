-- +goose Up
-- Hook objects (issue 4): each delivery names the hook it is for, so that
-- the dispatcher signs it with that hook's current secrets (secrets are
-- never stored) and keeps its calls in order per (hook, deployment).
ALTER TABLE webhook_deliveries ADD COLUMN hook TEXT NOT NULL DEFAULT '';
-- The headers of the call's format (CloudEvents'), a JSON array of
-- [name, value] pairs. A hook's own headers, like its URL and body
-- template, are rendered when the call is sent, from the hook in the
-- configuration then and the event kept in context: no value of
-- ${env:NAME} is stored.
ALTER TABLE webhook_deliveries ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
-- The event as hook templates see it (JSON), for a hook object's call.
ALTER TABLE webhook_deliveries ADD COLUMN context BLOB;
-- 1 when the hook had secrets when the delivery was queued: it is then
-- never sent unsigned.
ALTER TABLE webhook_deliveries ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
-- The URL as it may be shown (API, logs): rendered from the hook's URL as
-- written in the config, ${env:NAME} unexpanded. Empty on rows queued
-- before: they show url without user info, query and fragment.
ALTER TABLE webhook_deliveries ADD COLUMN shown_url TEXT NOT NULL DEFAULT '';
-- Rows queued before this migration have no hook name and keep their
-- order per (url, deployment).
DROP INDEX webhook_deliveries_order;
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (hook, deployment_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook, id);

-- The environments of the configuration last seen, with a digest of each
-- one's definition, so that environment.created, .modified and .deleted
-- are announced once per change, across restarts.
CREATE TABLE config_environments (
    ident  TEXT PRIMARY KEY,
    digest TEXT NOT NULL
) WITHOUT ROWID;

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
