-- +goose Up
-- PostgreSQL only: denylist entries remember the transaction that wrote them,
-- so replicas can read what they have not seen. SQLite serves one process,
-- which sees its own writes; nothing changes here.
SELECT 1;

-- +goose Down
SELECT 1;
