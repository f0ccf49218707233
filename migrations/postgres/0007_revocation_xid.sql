-- +goose Up
-- The transaction that last wrote each denylist entry. Replicas keep their
-- in-memory copy current by reading the entries of transactions at or after
-- the oldest one still running at their previous read (pg_snapshot_xmin), so
-- an entry is never missed whatever order transactions commit in; the NOTIFY
-- that wakes them is sent after the commit, outside the revoking transaction.
ALTER TABLE revocations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX revocations_xid_idx ON revocations (xid);

-- +goose Down
DROP INDEX revocations_xid_idx;
ALTER TABLE revocations DROP COLUMN xid;
