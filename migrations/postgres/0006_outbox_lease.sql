-- +goose Up
-- A relay claims pending events for a while (a lease) before it publishes
-- them, so that several replicas' relays publish each event once.
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;

-- +goose Down
ALTER TABLE outbox DROP COLUMN lease_until;
