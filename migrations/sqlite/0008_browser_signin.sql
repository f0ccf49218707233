-- +goose Up
-- Browser sign-in (authorization code + PKCE, OpenID Connect): where a
-- client's authorization and logout responses may go (JSON arrays), and
-- whether it skips the consent page.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;

-- Authorization codes, by a hash of their signature, between the authorize
-- response and their exchange (times in unix nanoseconds). A used code stays
-- (active 0) until it expires, so that a second use is seen as reuse.
-- Deleting a client deletes its codes.
CREATE TABLE authorization_codes (
    signature_hash TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    active         INTEGER NOT NULL,
    request        BLOB NOT NULL,
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX authorization_codes_client_idx ON authorization_codes (client_id);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);

-- Signed-in browsers, by a hash of the cookie value; id is the public sid.
-- Deleting a user ends its sessions.
CREATE TABLE browser_sessions (
    id_hash      TEXT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX browser_sessions_user_idx ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_idx ON browser_sessions (expires_at);

-- What a user allowed a client that is not first-party; goes with either.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX consents_client_idx ON consents (client_id);

-- +goose Down
DROP TABLE consents;
DROP TABLE browser_sessions;
DROP TABLE authorization_codes;
ALTER TABLE clients DROP COLUMN first_party;
ALTER TABLE clients DROP COLUMN post_logout_redirect_uris;
ALTER TABLE clients DROP COLUMN redirect_uris;
