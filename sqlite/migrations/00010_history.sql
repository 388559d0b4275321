-- +goose Up
-- History and insights (issue 10).
--
-- When a deployment moved: activated (became CREATED, the orchestrator was
-- called), started, completed (reached COMPLETED, or SUCCESS directly),
-- finished (SUCCESS, FAILED, CANCELLED or SUPERSEDED). The DORA figures
-- count deployments by when they finished, and the status matrix at a past
-- instant is found from these without reading the events.
ALTER TABLE deployments ADD COLUMN activated_at INTEGER;
ALTER TABLE deployments ADD COLUMN started_at INTEGER;
ALTER TABLE deployments ADD COLUMN completed_at INTEGER;
ALTER TABLE deployments ADD COLUMN finished_at INTEGER;
-- 1 for a deployment imported from another tool's history (POST
-- /api/import): it has a flow of its own and no events.
ALTER TABLE deployments ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;

-- The times of the deployments recorded before this migration, from their
-- events (one pass over the events, grouped by deployment).
UPDATE deployments SET
    activated_at = x.activated,
    started_at = x.started,
    completed_at = x.completed
FROM (
    SELECT deployment_id,
        min(CASE WHEN type = 'deployment.created' THEN created_at END) AS activated,
        min(CASE WHEN type = 'deployment.started' THEN created_at END) AS started,
        min(CASE WHEN type = 'deployment.completed' THEN created_at END) AS completed
    FROM events WHERE deployment_id IS NOT NULL GROUP BY deployment_id
) AS x
WHERE x.deployment_id = deployments.id;
-- A finished deployment does not change again: it finished when it was
-- last updated.
UPDATE deployments SET finished_at = updated_at,
    completed_at = CASE WHEN status = 'SUCCESS' THEN coalesce(completed_at, updated_at) ELSE completed_at END
WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED', 'SUPERSEDED');

-- The DORA window: deployments to one environment that succeeded or
-- failed, by when they finished.
CREATE INDEX deployments_finished ON deployments (environment, finished_at) WHERE status IN ('SUCCESS', 'FAILED');
-- A service's successes in one environment by when they finished: the
-- next success after a failure (recovery), the last known good at an
-- instant.
CREATE INDEX deployments_succeeded ON deployments (service, environment, finished_at) WHERE status = 'SUCCESS';
-- One cell's deployments by when they were activated: the status matrix at
-- an instant walks back from it.
CREATE INDEX deployments_activated ON deployments (service, environment, activated_at) WHERE activated_at IS NOT NULL;
-- An imported deployment is the same deployment when its artifact, service,
-- environment and end are: importing a file again adds nothing.
CREATE UNIQUE INDEX deployments_import ON deployments (service, environment, artifact_id, finished_at) WHERE imported = 1;

-- The commits an artifact carries (published with it, or imported), in
-- the order given.
CREATE TABLE artifact_commits (
    artifact_id  INTEGER NOT NULL REFERENCES artifacts (id),
    position     INTEGER NOT NULL,
    sha          TEXT    NOT NULL,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, position)
);
-- The oldest of them, for lead times without reading the commits.
ALTER TABLE artifacts ADD COLUMN oldest_commit_at INTEGER;

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
