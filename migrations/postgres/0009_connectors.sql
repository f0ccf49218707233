-- +goose Up
-- Sign-in through upstream identity providers (connectors).

-- Links from an upstream identity (a connector's subject) to a local user:
-- one user per upstream identity, at most one link per user and connector.
-- The email is the upstream's when the link was made (NULL if none).
-- Deleting a user deletes its links; the unique (user_id, connector_id)
-- index serves the lookups by user.
CREATE TABLE user_links (
    connector_id  text NOT NULL,
    subject       text NOT NULL,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         text,
    created_at    timestamptz NOT NULL,
    last_login_at timestamptz NOT NULL,
    PRIMARY KEY (connector_id, subject),
    UNIQUE (user_id, connector_id)
);

-- Sign-ins through a connector in progress, by a hash of the value that
-- names them (the state parameter, the link form's token); taken (deleted)
-- once, purged when expired.
CREATE TABLE upstream_logins (
    id_hash      text PRIMARY KEY,
    binding_hash text NOT NULL,
    connector_id text NOT NULL,
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX upstream_logins_expires_idx ON upstream_logins (expires_at);

-- +goose Down
DROP TABLE upstream_logins;
DROP TABLE user_links;
