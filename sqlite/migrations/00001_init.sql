-- +goose Up
-- Times are milliseconds since the Unix epoch (UTC). Ids are AUTOINCREMENT so
-- that they only ever increase and are never reused.
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    grp         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    source_url  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (grp, name, version)
);

CREATE TABLE flows (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    artifact_id     INTEGER NOT NULL REFERENCES artifacts (id),
    service         TEXT    NOT NULL,
    pipeline        TEXT    NOT NULL,
    -- pipeline for a published artifact; rollback or hotfix for the
    -- one-deployment flows those create.
    reason          TEXT    NOT NULL DEFAULT 'pipeline',
    status          TEXT    NOT NULL,
    config_checksum TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX flows_service ON flows (service, id);
CREATE INDEX flows_in_progress ON flows (service, id) WHERE status = 'CREATED';
CREATE INDEX flows_artifact ON flows (artifact_id, id);

CREATE TABLE deployments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id          INTEGER NOT NULL REFERENCES flows (id),
    artifact_id      INTEGER NOT NULL REFERENCES artifacts (id),
    service          TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    failure_strategy TEXT    NOT NULL,
    -- When the deployment became due (its turn in the flow came); while it
    -- is NOT_STARTED and due, waiting says why it waits (busy, locked,
    -- frozen).
    due_at           INTEGER,
    waiting          TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- A retry adds a deployment at the same position of its flow.
CREATE INDEX deployments_flow ON deployments (flow_id, position, id);
CREATE INDEX deployments_due ON deployments (environment, service) WHERE status = 'NOT_STARTED' AND due_at IS NOT NULL;
CREATE INDEX deployments_artifact ON deployments (artifact_id, id);
CREATE INDEX deployments_service ON deployments (service, id);
CREATE INDEX deployments_environment ON deployments (environment, id);
CREATE INDEX deployments_status ON deployments (status, id);

CREATE TABLE promotion_results (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    promotion     TEXT    NOT NULL,
    -- The promotion's type and soak time, fixed when the flow is created.
    type          TEXT    NOT NULL DEFAULT 'basic',
    soak_ms       INTEGER NOT NULL DEFAULT 0,
    -- A soak result succeeds by itself at due_at.
    due_at        INTEGER,
    status        TEXT    NOT NULL,
    info_url      TEXT    NOT NULL DEFAULT '',
    reported_by   TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (deployment_id, promotion)
);
CREATE INDEX promotion_results_soak ON promotion_results (due_at) WHERE status = 'STARTED' AND due_at IS NOT NULL;

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    type          TEXT    NOT NULL,
    service       TEXT    NOT NULL DEFAULT '',
    environment   TEXT    NOT NULL DEFAULT '',
    artifact_id   INTEGER,
    flow_id       INTEGER,
    deployment_id INTEGER,
    status        TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT '',
    actor         TEXT    NOT NULL,
    -- Why, in the operator's words (locks and operator actions).
    reason        TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_deployment ON events (deployment_id, id);
CREATE INDEX events_service ON events (service, id);
CREATE INDEX events_environment ON events (environment, id);
CREATE INDEX events_type ON events (type, id);

-- Environment locks hold activation (DESIGN.md §3).
CREATE TABLE env_locks (
    environment TEXT    PRIMARY KEY,
    reason      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The status matrix, maintained in the same transaction as every change of
-- a deployment, so that reading it never scans history.
CREATE TABLE env_state (
    service         TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    -- the latest deployment there that reached COMPLETED, and since when
    current_id      INTEGER REFERENCES deployments (id),
    current_since   INTEGER,
    -- the active deployment (CREATED, STARTED or COMPLETED), if any
    in_flight_id    INTEGER REFERENCES deployments (id),
    -- the latest deployment there that FAILED before it completed: what
    -- runs there is then uncertain
    last_attempt_id INTEGER REFERENCES deployments (id),
    -- the most recent SUCCESS deployment there
    last_good_id    INTEGER REFERENCES deployments (id),
    PRIMARY KEY (service, environment)
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    event_type      TEXT    NOT NULL,
    deployment_id   INTEGER,
    url             TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (url, deployment_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
CREATE INDEX webhook_deliveries_deployment ON webhook_deliveries (deployment_id, id);

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    status_code INTEGER NOT NULL DEFAULT 0,
    latency_ns  INTEGER NOT NULL,
    response    TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
