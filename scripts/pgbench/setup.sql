-- The rows the floor scripts work on, in a database migrated by `authd migrate up`:
-- one user, one client, and an active refresh token per pgbench client
-- (h<client>-0; refresh.sql rotates h<client>-<k> to h<client>-<k+1>).
INSERT INTO users (id, username, email, password_hash, roles, created_at, updated_at)
  VALUES ('u1', 'bench', 'bench@example.org', 'x', '{user}', now(), now());
INSERT INTO clients (id, name, grant_types, created_at) VALUES ('c1', 'bench', '{refresh_token}', now());
INSERT INTO refresh_tokens (signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at)
  SELECT 'h' || g || '-0', 'f' || g, 'c1', 'u1', true, convert_to(repeat('x', 600), 'UTF8'), now(), now() + interval '30 days'
  FROM generate_series(0, 255) g;
