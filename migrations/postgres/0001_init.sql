-- +goose Up
CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL,  -- stored lowercased by the store
    email         text,           -- NULL when the user has none
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    disabled      boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE clients (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    secret_hash bytea,
    public      boolean NOT NULL DEFAULT false,
    grant_types text[] NOT NULL DEFAULT '{}',
    scopes      text[] NOT NULL DEFAULT '{}',
    audience    text[] NOT NULL DEFAULT '{}',
    introspect  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL
);

-- Deleting a client deletes its refresh tokens.
CREATE TABLE refresh_tokens (
    signature_hash text PRIMARY KEY,
    family_id      text NOT NULL,
    client_id      text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject        text NOT NULL,
    active         boolean NOT NULL,
    request        bytea NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_subject_idx ON refresh_tokens (subject);
CREATE INDEX refresh_tokens_client_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    id           text PRIMARY KEY,
    alg          text NOT NULL,
    state        text NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    private_key  bytea NOT NULL,
    public_key   bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz,
    expires_at   timestamptz
);
-- At most one key signs.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';

CREATE TABLE revocations (
    kind       text NOT NULL,
    value      text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX revocations_expires_idx ON revocations (expires_at);

CREATE TABLE audit (
    id        bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    time      timestamptz NOT NULL,
    type      text NOT NULL,
    user_id   text NOT NULL DEFAULT '',
    client_id text NOT NULL DEFAULT '',
    ip        text NOT NULL DEFAULT '',
    data      jsonb
);
CREATE INDEX audit_time_idx ON audit (time DESC, id DESC);
CREATE INDEX audit_user_idx ON audit (user_id, time DESC, id DESC);
CREATE INDEX audit_type_idx ON audit (type, time DESC, id DESC);

CREATE TABLE outbox (
    id         text PRIMARY KEY,
    type       text NOT NULL,
    key        text NOT NULL DEFAULT '',
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    sent_at    timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (created_at, id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE audit;
DROP TABLE revocations;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE clients;
DROP TABLE users;
