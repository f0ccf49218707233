package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const (
	qRevoke = `INSERT INTO revocations (kind, value, cutoff, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (kind, value) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at),
cutoff = max(coalesce(cutoff, excluded.cutoff), coalesce(excluded.cutoff, cutoff))`
	// ?5 is the token's issue time: a mark revokes what was issued at or before its cutoff.
	qIsRevoked = `SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > ?6
AND ((kind = 'jti' AND value = ?1) OR (kind = 'family' AND value = ?2)
  OR (kind = 'subject' AND value = ?3 AND cutoff >= ?5) OR (kind = 'client' AND value = ?4 AND cutoff >= ?5)))`
	qActiveRevocations = `SELECT kind, value, cutoff, expires_at FROM revocations WHERE expires_at > ? ORDER BY kind, value`

	qAppendAudit = `INSERT INTO audit (time, type, user_id, client_id, ip, data) VALUES (?, ?, ?, ?, ?, ?)`

	qAppendOutbox  = `INSERT INTO outbox (id, type, key, payload, created_at) VALUES (?, ?, ?, ?, ?)`
	qPendingOutbox = `SELECT id, type, key, payload, created_at, sent_at FROM outbox WHERE sent_at IS NULL
ORDER BY created_at, id LIMIT ?`
)

// Revoke adds entries to the denylist; an entry already there keeps the later expiry.
func (s *Store) Revoke(ctx context.Context, entries ...storage.Revocation) error {
	for _, e := range entries {
		if err := e.Valid(); err != nil {
			return wrap("revoke", err)
		}
	}
	err := s.withTx(ctx, func(q querier) error {
		for _, e := range entries {
			if _, err := q.ExecContext(ctx, qRevoke, string(e.Kind), e.Value, nullNanos(e.Cutoff), nanos(e.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("revoke", err)
}

// IsRevoked reports whether an unexpired denylist entry matches the token.
func (s *Store) IsRevoked(ctx context.Context, t storage.TokenRef) (bool, error) {
	if t == (storage.TokenRef{}) {
		return false, nil
	}
	var revoked bool
	err := s.q(ctx).QueryRowContext(ctx, qIsRevoked, t.JTI, t.Family, t.Subject, t.ClientID,
		nanos(t.IssuedAt), nanos(s.now())).Scan(&revoked)
	return revoked, wrap("is revoked", err)
}

// ActiveRevocations lists the denylist entries that expire after now.
func (s *Store) ActiveRevocations(ctx context.Context, now time.Time) ([]storage.Revocation, error) {
	rows, err := s.q(ctx).QueryContext(ctx, qActiveRevocations, nanos(now))
	if err != nil {
		return nil, wrap("active revocations", err)
	}
	revs, err := collect(rows, func(row scanner) (storage.Revocation, error) {
		var (
			r       storage.Revocation
			cutoff  sql.NullInt64
			expires int64
		)
		err := row.Scan(&r.Kind, &r.Value, &cutoff, &expires)
		r.Cutoff, r.ExpiresAt = fromNullNanos(cutoff), fromNanos(expires)
		return r, err
	})
	return revs, wrap("active revocations", err)
}

// AppendAudit appends an entry; Time defaults to now. Data must be a JSON
// object or empty.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	var data any
	if len(e.Data) > 0 {
		data = string(e.Data)
	}
	_, err := s.q(ctx).ExecContext(ctx, qAppendAudit, nanos(e.Time), e.Type, e.UserID, e.ClientID, e.IP, data)
	return wrap("append audit", err)
}

// ListAudit returns the entries matching f, newest first (at most f.Limit,
// default 100).
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEntry, error) {
	query, args := s.dialect.AuditQuery(f)
	rows, err := s.q(ctx).QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	entries, err := collect(rows, func(row scanner) (storage.AuditEntry, error) {
		var (
			e    storage.AuditEntry
			at   int64
			data sql.NullString
		)
		err := row.Scan(&e.ID, &at, &e.Type, &e.UserID, &e.ClientID, &e.IP, &data)
		e.Time = fromNanos(at)
		if data.Valid {
			e.Data = []byte(data.String)
		}
		return e, err
	})
	return entries, wrap("list audit", err)
}

// AppendOutbox stores a pending event; CreatedAt defaults to now.
func (s *Store) AppendOutbox(ctx context.Context, e storage.OutboxEvent) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	_, err := s.q(ctx).ExecContext(ctx, qAppendOutbox, e.ID, e.Type, e.Key, sqlstore.NotNil(e.Payload), nanos(e.CreatedAt))
	return wrap("append outbox", err)
}

// PendingOutbox returns up to limit (default 100) unsent events, oldest first.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]storage.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q(ctx).QueryContext(ctx, qPendingOutbox, limit)
	if err != nil {
		return nil, wrap("pending outbox", err)
	}
	events, err := collect(rows, scanOutbox)
	return events, wrap("pending outbox", err)
}

func scanOutbox(row scanner) (storage.OutboxEvent, error) {
	var (
		e       storage.OutboxEvent
		created int64
		sent    sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.Type, &e.Key, &e.Payload, &created, &sent)
	e.CreatedAt, e.SentAt = fromNanos(created), fromNullNanos(sent)
	return e, err
}

// ClaimOutbox claims up to limit (default 100) unclaimed unsent events for
// lease, oldest first, in one transaction (SQLite has one writer at a time).
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]storage.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	now := s.now()
	var events []storage.OutboxEvent
	err := s.withTx(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT id, type, key, payload, created_at, sent_at FROM outbox
WHERE sent_at IS NULL AND (lease_until IS NULL OR lease_until <= ?) ORDER BY created_at, id LIMIT ?`, nanos(now), limit)
		if err != nil {
			return err
		}
		if events, err = collect(rows, scanOutbox); err != nil || len(events) == 0 {
			return err
		}
		args := []any{nanos(now.Add(lease))}
		for _, e := range events {
			args = append(args, e.ID)
		}
		_, err = q.ExecContext(ctx, `UPDATE outbox SET lease_until = ? WHERE id IN (`+placeholders(len(events))+`)`, args...)
		return err
	})
	if err != nil {
		return nil, wrap("claim outbox", err)
	}
	return events, nil
}

// ReleaseOutbox drops the claims on unsent events.
func (s *Store) ReleaseOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := s.q(ctx).ExecContext(ctx,
		`UPDATE outbox SET lease_until = NULL WHERE sent_at IS NULL AND id IN (`+placeholders(len(ids))+`)`, args...)
	return wrap("release outbox", err)
}

// MarkOutboxSent marks the events as sent at at (default now).
func (s *Store) MarkOutboxSent(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if at.IsZero() {
		at = s.now()
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, nanos(at))
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.q(ctx).ExecContext(ctx,
		`UPDATE outbox SET sent_at = ?, lease_until = NULL WHERE sent_at IS NULL AND id IN (`+placeholders(len(ids))+`)`, args...)
	return wrap("mark outbox sent", err)
}

// RememberProof records a DPoP proof key until expires; fresh is false when
// it is already recorded and unexpired. An expired record is taken over.
func (s *Store) RememberProof(ctx context.Context, key string, expires time.Time) (bool, error) {
	res, err := s.q(ctx).ExecContext(ctx, `INSERT INTO dpop_proofs (key, expires_at) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE dpop_proofs.expires_at <= ?3`, key, nanos(expires), nanos(s.now()))
	if err != nil {
		return false, wrap("remember proof", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("remember proof", err)
}

// Purge deletes what expired before now (refresh tokens, authorization
// codes, browser sessions, denylist entries, DPoP proof ids, retired keys),
// the upstream sign-ins in progress expired at now, and the history r lets
// go, and returns how many rows went.
func (s *Store) Purge(ctx context.Context, now time.Time, r storage.Retention) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(q querier) error {
		var err error
		n, err = s.dialect.Purge(ctx, func(ctx context.Context, query string, args ...any) (int64, error) {
			res, err := q.ExecContext(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}, now, r)
		return err
	})
	if err != nil {
		return 0, wrap("purge", err)
	}
	return n, nil
}
