-- +goose Up
-- A relay claims pending events for a while (a lease, unix nanoseconds)
-- before it publishes them, so that relays publish each event once.
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;

-- +goose Down
ALTER TABLE outbox DROP COLUMN lease_until;
