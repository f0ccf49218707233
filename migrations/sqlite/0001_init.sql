-- +goose Up
-- Times are INTEGER unix nanoseconds (UTC), NULL for the zero time. Lists are
-- JSON arrays in TEXT. Booleans are 0/1.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,  -- stored lowercased by the store
    email         TEXT,           -- NULL when the user has none
    email_lower   TEXT,           -- lowercased by the store (SQLite's lower() is ASCII-only)
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email_lower);

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash BLOB,
    public      INTEGER NOT NULL DEFAULT 0,
    grant_types TEXT NOT NULL DEFAULT '[]',
    scopes      TEXT NOT NULL DEFAULT '[]',
    audience    TEXT NOT NULL DEFAULT '[]',
    introspect  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;

-- Deleting a client deletes its refresh tokens.
CREATE TABLE refresh_tokens (
    signature_hash TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject        TEXT NOT NULL,
    active         INTEGER NOT NULL,
    request        BLOB NOT NULL,
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_subject_idx ON refresh_tokens (subject);
CREATE INDEX refresh_tokens_client_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    id           TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    private_key  BLOB NOT NULL,
    public_key   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER,
    expires_at   INTEGER
) STRICT;
-- At most one key signs.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';

CREATE TABLE revocations (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX revocations_expires_idx ON revocations (expires_at);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    type      TEXT NOT NULL,
    user_id   TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    ip        TEXT NOT NULL DEFAULT '',
    data      TEXT CHECK (data IS NULL OR json_valid(data))
) STRICT;
CREATE INDEX audit_time_idx ON audit (time DESC, id DESC);
CREATE INDEX audit_user_idx ON audit (user_id, time DESC, id DESC);
CREATE INDEX audit_type_idx ON audit (type, time DESC, id DESC);

CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    key        TEXT NOT NULL DEFAULT '',
    payload    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
) STRICT;
CREATE INDEX outbox_pending_idx ON outbox (created_at, id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE audit;
DROP TABLE revocations;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE clients;
DROP TABLE users;
