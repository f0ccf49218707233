-- +goose Up
-- A client registered with --dpop-bound must prove possession of a key (RFC 9449).
ALTER TABLE clients ADD COLUMN dpop_bound INTEGER NOT NULL DEFAULT 0;

-- DPoP proof ids seen, kept for the proof window (unix nanoseconds).
CREATE TABLE dpop_proofs (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX dpop_proofs_expires_idx ON dpop_proofs (expires_at);

-- +goose Down
DROP TABLE dpop_proofs;
ALTER TABLE clients DROP COLUMN dpop_bound;
