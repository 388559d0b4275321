-- +goose Up
-- The schema of the SQLite store after its migrations 00001 to 00004, in
-- one. Times are milliseconds since the Unix epoch (UTC), as SQLite keeps
-- them. Ids are identities: they only ever increase and are never reused.
CREATE TABLE artifacts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grp          TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    version      TEXT   NOT NULL,
    source_url   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Who published it (the token's name): a manual promotion with
    -- allowSelfApproval: false refuses that caller's approval.
    published_by TEXT   NOT NULL DEFAULT '',
    UNIQUE (grp, name, version)
);

CREATE TABLE flows (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    artifact_id     BIGINT NOT NULL REFERENCES artifacts (id),
    service         TEXT   NOT NULL,
    pipeline        TEXT   NOT NULL,
    -- pipeline for a published artifact; rollback or hotfix for the
    -- one-deployment flows those create.
    reason          TEXT   NOT NULL DEFAULT 'pipeline',
    status          TEXT   NOT NULL,
    config_checksum TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX flows_service ON flows (service, id);
CREATE INDEX flows_in_progress ON flows (service, id) WHERE status = 'CREATED';
CREATE INDEX flows_artifact ON flows (artifact_id, id);

CREATE TABLE deployments (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id          BIGINT  NOT NULL REFERENCES flows (id),
    artifact_id      BIGINT  NOT NULL REFERENCES artifacts (id),
    service          TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    failure_strategy TEXT    NOT NULL,
    -- When the deployment became due (its turn in the flow came); while it
    -- is NOT_STARTED and due, waiting says why it waits (busy, locked,
    -- frozen).
    due_at           BIGINT,
    waiting          TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
-- A retry adds a deployment at the same position of its flow.
CREATE INDEX deployments_flow ON deployments (flow_id, position, id);
CREATE INDEX deployments_due ON deployments (environment, service) WHERE status = 'NOT_STARTED' AND due_at IS NOT NULL;
CREATE INDEX deployments_artifact ON deployments (artifact_id, id);
CREATE INDEX deployments_service ON deployments (service, id);
CREATE INDEX deployments_environment ON deployments (environment, id);
CREATE INDEX deployments_status ON deployments (status, id);

CREATE TABLE promotion_results (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id),
    promotion     TEXT   NOT NULL,
    -- The promotion's type and soak time, fixed when the flow is created.
    type          TEXT   NOT NULL DEFAULT 'basic',
    soak_ms       BIGINT NOT NULL DEFAULT 0,
    -- A soak result succeeds by itself at due_at.
    due_at        BIGINT,
    status        TEXT   NOT NULL,
    info_url      TEXT   NOT NULL DEFAULT '',
    reported_by   TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (deployment_id, promotion)
);
CREATE INDEX promotion_results_soak ON promotion_results (due_at) WHERE status = 'STARTED' AND due_at IS NOT NULL;

-- Event ids are assigned in commit order (every write transaction holds
-- the store's write lock), which the event cursor (id > after) relies on.
CREATE TABLE events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type          TEXT   NOT NULL,
    service       TEXT   NOT NULL DEFAULT '',
    environment   TEXT   NOT NULL DEFAULT '',
    artifact_id   BIGINT,
    flow_id       BIGINT,
    deployment_id BIGINT,
    status        TEXT   NOT NULL DEFAULT '',
    detail        TEXT   NOT NULL DEFAULT '',
    actor         TEXT   NOT NULL,
    -- Why, in the operator's words (locks and operator actions).
    reason        TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX events_deployment ON events (deployment_id, id);
CREATE INDEX events_service ON events (service, id);
CREATE INDEX events_environment ON events (environment, id);
CREATE INDEX events_type ON events (type, id);

-- Environment locks hold activation (DESIGN.md §3).
CREATE TABLE env_locks (
    environment TEXT   PRIMARY KEY,
    reason      TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The status matrix, maintained in the same transaction as every change of
-- a deployment, so that reading it never scans history.
CREATE TABLE env_state (
    service         TEXT   NOT NULL,
    environment     TEXT   NOT NULL,
    -- the latest deployment there that reached COMPLETED, and since when
    current_id      BIGINT REFERENCES deployments (id),
    current_since   BIGINT,
    -- the active deployment (CREATED, STARTED or COMPLETED), if any
    in_flight_id    BIGINT REFERENCES deployments (id),
    -- the latest deployment there that FAILED before it completed: what
    -- runs there is then uncertain
    last_attempt_id BIGINT REFERENCES deployments (id),
    -- the most recent SUCCESS deployment there
    last_good_id    BIGINT REFERENCES deployments (id),
    PRIMARY KEY (service, environment)
);

CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        BIGINT  NOT NULL REFERENCES events (id),
    event_type      TEXT    NOT NULL,
    deployment_id   BIGINT,
    -- The name of the hook the call is for, so that the dispatcher signs
    -- it with that hook's current secrets (secrets are never stored) and
    -- keeps its calls in order per (hook, deployment).
    hook            TEXT    NOT NULL DEFAULT '',
    url             TEXT    NOT NULL,
    -- The URL as it may be shown (API, logs): rendered from the hook's URL
    -- as written in the config, ${env:NAME} unexpanded.
    shown_url       TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    -- The headers of the call's format (CloudEvents'), a JSON array of
    -- [name, value] pairs. A hook's own headers, like its URL and body
    -- template, are rendered when the call is sent: no value of
    -- ${env:NAME} is stored.
    headers         TEXT    NOT NULL DEFAULT '[]',
    -- The event as hook templates see it (JSON), for a hook object's call.
    context         BYTEA,
    body            BYTEA   NOT NULL,
    -- Set when the hook had secrets when the delivery was queued: it is
    -- then never sent unsigned.
    signed          BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (hook, deployment_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
CREATE INDEX webhook_deliveries_deployment ON webhook_deliveries (deployment_id, id);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook, id);

CREATE TABLE webhook_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT  NOT NULL REFERENCES webhook_deliveries (id),
    status_code INTEGER NOT NULL DEFAULT 0,
    latency_ns  BIGINT  NOT NULL,
    response    TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- Responses to write requests that carried an Idempotency-Key, so that a
-- retry with the same key gets the first response back.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    location     TEXT    NOT NULL DEFAULT '',
    body         BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The environments of the configuration last seen, with a digest of each
-- one's definition, so that environment.created, .modified and .deleted
-- are announced once per change, across restarts.
CREATE TABLE config_environments (
    ident  TEXT PRIMARY KEY,
    digest TEXT NOT NULL
);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
