-- +goose Up
-- Whether a service ran a version in an environment before a deployment
-- (a CDEvents hook sends service.upgraded rather than service.deployed)
-- is asked of the events on every deployment.completed such a hook hears.
-- Without this index the question walked every deployment.completed event
-- of every service (events_type): a cost that grew with the history.
CREATE INDEX events_service_environment ON events (service, environment, type, deployment_id);

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
