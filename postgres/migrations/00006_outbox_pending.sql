-- +goose Up
-- The dispatcher's queries (the due queue heads, the next due time, whether
-- anything is due) walk the pending deliveries in next_attempt_at order
-- and stop at the first they want. The same index as the SQLite store's
-- (its migration 00007): equality on status, range and order on
-- next_attempt_at, so that the plan does not depend on statistics a new
-- or freshly loaded table lacks (without them, an index on status alone
-- means reading every pending delivery and sorting them). It replaces
-- webhook_deliveries_due, which holds the same rows.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, next_attempt_at, id) WHERE status = 'pending';
DROP INDEX webhook_deliveries_due;

-- +goose Down
-- Migrations are forward only (DESIGN.md §6).
