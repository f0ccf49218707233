-- +goose Up
-- A client registered with --dpop-bound must prove possession of a key (RFC 9449).
ALTER TABLE clients ADD COLUMN dpop_bound boolean NOT NULL DEFAULT false;

-- DPoP proof ids seen, kept for the proof window (replay protection shared by
-- every replica when no Redis is configured).
CREATE TABLE dpop_proofs (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX dpop_proofs_expires_idx ON dpop_proofs (expires_at);

-- +goose Down
DROP TABLE dpop_proofs;
ALTER TABLE clients DROP COLUMN dpop_bound;
