-- A revocation's SQL, as authd sends it: one pipeline, one implicit
-- transaction: the jti and family denylist entries, the family's refresh
-- tokens, the audit row, the outbox event. (The NOTIFY that wakes the
-- replicas goes after the commit, one for many revocations: not counted.)
-- Run with -M prepared.
\set r random(1, 2000000000)
\startpipeline
INSERT INTO revocations (kind, value, cutoff, expires_at) VALUES ('jti', 'j' || :client_id || '-' || :r || '-' || random(), NULL, now() + interval '15 minutes') ON CONFLICT (kind, value) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at), cutoff = GREATEST(revocations.cutoff, EXCLUDED.cutoff), xid = pg_current_xact_id();
INSERT INTO revocations (kind, value, cutoff, expires_at) VALUES ('family', 'f' || :client_id || '-' || :r || '-' || random(), NULL, now() + interval '15 minutes') ON CONFLICT (kind, value) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at), cutoff = GREATEST(revocations.cutoff, EXCLUDED.cutoff), xid = pg_current_xact_id();
UPDATE refresh_tokens SET active = false WHERE family_id = 'f' || :r AND active;
INSERT INTO audit (time, type, user_id, client_id, ip, data) VALUES (now(), 'auth.token.revoked', 'u1', 'c1', '127.0.0.1', '{"family":"x","token_type":"access_token"}');
INSERT INTO outbox (id, type, key, payload, created_at) VALUES (gen_random_uuid()::text, 'auth.token.revoked', 'u1', convert_to(repeat('x', 300), 'UTF8'), now());
\endpipeline
