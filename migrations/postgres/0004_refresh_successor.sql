-- +goose Up
-- A rotated refresh token remembers its successor and when (database clock)
-- it was rotated: presented again within AUTHD_REFRESH_REUSE_INTERVAL, before
-- the successor is used, it answers the same successor (idempotent rotation).
ALTER TABLE refresh_tokens ADD COLUMN successor text, ADD COLUMN rotated_at timestamptz;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN successor, DROP COLUMN rotated_at;
