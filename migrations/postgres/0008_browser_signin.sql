-- +goose Up
-- Browser sign-in (authorization code + PKCE, OpenID Connect): where a
-- client's authorization and logout responses may go, and whether it skips
-- the consent page.
ALTER TABLE clients
    ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}',
    ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    ADD COLUMN first_party boolean NOT NULL DEFAULT false;

-- Authorization codes, by a hash of their signature, between the authorize
-- response and their exchange. A used code stays (active false) until it
-- expires, so that a second use is seen as reuse. Deleting a client deletes
-- its codes.
CREATE TABLE authorization_codes (
    signature_hash text PRIMARY KEY,
    request_id     text NOT NULL,
    client_id      text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject        text NOT NULL,
    session_id     text NOT NULL,
    active         boolean NOT NULL,
    request        bytea NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX authorization_codes_client_idx ON authorization_codes (client_id);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);

-- Signed-in browsers, by a hash of the cookie value; id is the public sid.
-- Deleting a user ends its sessions.
CREATE TABLE browser_sessions (
    id_hash      text PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    timestamptz NOT NULL,
    amr          text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX browser_sessions_user_idx ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_idx ON browser_sessions (expires_at);

-- What a user allowed a client that is not first-party; goes with either.
CREATE TABLE consents (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     text[] NOT NULL DEFAULT '{}',
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_idx ON consents (client_id);

-- +goose Down
DROP TABLE consents;
DROP TABLE browser_sessions;
DROP TABLE authorization_codes;
ALTER TABLE clients
    DROP COLUMN first_party,
    DROP COLUMN post_logout_redirect_uris,
    DROP COLUMN redirect_uris;
