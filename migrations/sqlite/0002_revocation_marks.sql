-- +goose Up
-- Subject and client marks revoke every access token of a user or a client
-- issued at or before the cutoff (unix nanoseconds); jti and family entries have none.
ALTER TABLE revocations ADD COLUMN cutoff INTEGER;

-- +goose Down
DELETE FROM revocations WHERE kind NOT IN ('jti', 'family');
ALTER TABLE revocations DROP COLUMN cutoff;
