-- A refresh's SQL, as authd sends it: the token with its user (one query),
-- then the rotation (one statement). Run with -M prepared -D k=0.
\set k1 :k + 1
SELECT r.signature_hash, r.family_id, r.client_id, r.subject, r.active, r.request, r.requested_at, r.expires_at, u.id, u.username, u.email, u.password_hash, u.roles, u.disabled, u.failed_logins, u.pending_logins, u.locked_until, u.created_at, u.updated_at FROM refresh_tokens r LEFT JOIN users u ON u.id = r.subject WHERE r.signature_hash = 'h' || :client_id || '-' || :k;
WITH rotated AS (UPDATE refresh_tokens SET active = false, successor = 'h' || :client_id || '-' || :k1, rotated_at = now() WHERE signature_hash = 'h' || :client_id || '-' || :k AND active RETURNING 1) INSERT INTO refresh_tokens (signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at) SELECT 'h' || :client_id || '-' || :k1, 'f' || :client_id, 'c1', 'u1', true, convert_to(repeat('x', 600), 'UTF8'), now(), now() + interval '30 days' FROM rotated;
\set k :k1
