-- +goose Up
-- The dispatcher's queries (the due queue heads, the next due time, whether
-- anything is due) walk the pending deliveries in next_attempt_at order
-- and stop at the first they want. With webhook_deliveries_due (next_attempt_at,
-- id) and no statistics, SQLite preferred webhook_deliveries_status
-- (status = 'pending'), then read every pending delivery and sorted them
-- by time: with 5,000 pending, 25 ms a query, twice per claim, with the
-- write lock held for one of them. This index serves the equality on
-- status and the range and order on next_attempt_at at once, so the
-- planner takes it; it replaces webhook_deliveries_due, which holds the
-- same rows.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, next_attempt_at, id) WHERE status = 'pending';
DROP INDEX webhook_deliveries_due;

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
