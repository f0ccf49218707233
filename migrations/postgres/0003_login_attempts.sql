-- +goose Up
-- Login attempts are counted before their password is checked: failed_logins
-- includes the attempts in flight, pending_logins counts those (see
-- identity.Authenticate).
ALTER TABLE users ADD COLUMN pending_logins integer NOT NULL DEFAULT 0 CHECK (pending_logins >= 0);

-- +goose Down
ALTER TABLE users DROP COLUMN pending_logins;
