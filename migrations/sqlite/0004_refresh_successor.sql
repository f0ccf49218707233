-- +goose Up
-- A rotated refresh token remembers its successor and when (unix nanoseconds)
-- it was rotated: presented again within AUTHD_REFRESH_REUSE_INTERVAL, before
-- the successor is used, it answers the same successor (idempotent rotation).
ALTER TABLE refresh_tokens ADD COLUMN successor TEXT;
ALTER TABLE refresh_tokens ADD COLUMN rotated_at INTEGER;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN rotated_at;
ALTER TABLE refresh_tokens DROP COLUMN successor;
