package postgres

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const (
	// xid records the writing transaction: replicas read the entries of
	// transactions they may not have seen yet by it (see denylist.go).
	qRevoke = `INSERT INTO revocations (kind, value, cutoff, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (kind, value) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at),
cutoff = GREATEST(revocations.cutoff, EXCLUDED.cutoff), xid = pg_current_xact_id()`
	// $5 is the token's issue time: a mark revokes what was issued at or before its cutoff.
	qIsRevoked = `SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $6
AND ((kind = 'jti' AND value = $1) OR (kind = 'family' AND value = $2)
  OR (kind = 'subject' AND value = $3 AND cutoff >= $5) OR (kind = 'client' AND value = $4 AND cutoff >= $5)))`
	qActiveRevocations = `SELECT kind, value, cutoff, expires_at FROM revocations WHERE expires_at > $1 ORDER BY kind, value`
	// The entries of the transactions at or after $2 (an xid8 as text, "0"
	// for all), with the oldest transaction still running now: every entry
	// this read cannot see was written by it or a later one. One row of
	// NULLs when no entry matches.
	qRevocationsSince = `SELECT x.xmin::text, r.kind, r.value, r.cutoff, r.expires_at
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) x
LEFT JOIN revocations r ON r.xid >= $2::xid8 AND r.expires_at > $1`

	qAppendAudit = `INSERT INTO audit (time, type, user_id, client_id, ip, data) VALUES ($1, $2, $3, $4, $5, $6)`

	qAppendOutbox  = `INSERT INTO outbox (id, type, key, payload, created_at) VALUES ($1, $2, $3, $4, $5)`
	qPendingOutbox = `SELECT id, type, key, payload, created_at, sent_at FROM outbox WHERE sent_at IS NULL
ORDER BY created_at, id LIMIT $1`
	qMarkOutboxSent = `UPDATE outbox SET sent_at = $2, lease_until = NULL WHERE id = ANY($1) AND sent_at IS NULL`
	// SKIP LOCKED: a relay claiming at the same moment takes the next rows.
	qClaimOutbox = `UPDATE outbox SET lease_until = now() + $2 * interval '1 microsecond'
WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND (lease_until IS NULL OR lease_until <= now())
  ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, type, key, payload, created_at, sent_at`
	qReleaseOutbox = `UPDATE outbox SET lease_until = NULL WHERE id = ANY($1) AND sent_at IS NULL`
)

// Revoke adds entries to the denylist; an entry already there keeps the
// later expiry. Once the transaction commits, the replicas' in-memory
// denylists are woken to read it (announce).
func (s *Store) Revoke(ctx context.Context, entries ...storage.Revocation) error {
	for _, e := range entries {
		if err := e.Valid(); err != nil {
			return wrap("revoke", err)
		}
	}
	err := s.withTx(ctx, func(q *pipeTx) error {
		for _, e := range entries {
			q.deferExec(qRevoke, string(e.Kind), e.Value, nullTime(e.Cutoff), e.ExpiresAt.UTC())
		}
		q.onCommit(s.ann.announce)
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
	err := s.q(ctx).QueryRow(ctx, qIsRevoked, t.JTI, t.Family, t.Subject, t.ClientID,
		t.IssuedAt.UTC(), s.now().UTC()).Scan(&revoked)
	return revoked, wrap("is revoked", err)
}

// ActiveRevocations lists the denylist entries that expire after now.
func (s *Store) ActiveRevocations(ctx context.Context, now time.Time) ([]storage.Revocation, error) {
	rows, err := s.q(ctx).Query(ctx, qActiveRevocations, now.UTC())
	if err != nil {
		return nil, wrap("active revocations", err)
	}
	revs, err := collect(rows, func(row pgx.Row) (storage.Revocation, error) {
		var (
			r      storage.Revocation
			cutoff *time.Time
		)
		err := row.Scan(&r.Kind, &r.Value, &cutoff, &r.ExpiresAt)
		r.Cutoff, r.ExpiresAt = utc(cutoff), r.ExpiresAt.UTC()
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
	return wrap("append audit", s.deferExec(ctx, qAppendAudit, e.Time.UTC(), e.Type, e.UserID, e.ClientID, e.IP, data))
}

// ListAudit returns the entries matching f, newest first (at most f.Limit,
// default 100).
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEntry, error) {
	query, args := s.dialect.AuditQuery(f)
	rows, err := s.q(ctx).Query(ctx, query, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	entries, err := collect(rows, func(row pgx.Row) (storage.AuditEntry, error) {
		var (
			e    storage.AuditEntry
			data *string
		)
		err := row.Scan(&e.ID, &e.Time, &e.Type, &e.UserID, &e.ClientID, &e.IP, &data)
		e.Time = e.Time.UTC()
		if data != nil {
			e.Data = []byte(*data)
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
	return wrap("append outbox", s.deferExec(ctx, qAppendOutbox, e.ID, e.Type, e.Key, sqlstore.NotNil(e.Payload), e.CreatedAt.UTC()))
}

// PendingOutbox returns up to limit (default 100) unsent events, oldest first.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]storage.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q(ctx).Query(ctx, qPendingOutbox, limit)
	if err != nil {
		return nil, wrap("pending outbox", err)
	}
	events, err := collect(rows, scanOutbox)
	return events, wrap("pending outbox", err)
}

func scanOutbox(row pgx.Row) (storage.OutboxEvent, error) {
	var (
		e    storage.OutboxEvent
		sent *time.Time
	)
	err := row.Scan(&e.ID, &e.Type, &e.Key, &e.Payload, &e.CreatedAt, &sent)
	e.CreatedAt, e.SentAt = e.CreatedAt.UTC(), utc(sent)
	return e, err
}

// ClaimOutbox claims up to limit (default 100) unclaimed unsent events for
// lease, oldest first.
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]storage.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q(ctx).Query(ctx, qClaimOutbox, limit, lease.Microseconds())
	if err != nil {
		return nil, wrap("claim outbox", err)
	}
	events, err := collect(rows, scanOutbox)
	slices.SortFunc(events, func(a, b storage.OutboxEvent) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return events, wrap("claim outbox", err)
}

// ReleaseOutbox drops the claims on unsent events.
func (s *Store) ReleaseOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.q(ctx).Exec(ctx, qReleaseOutbox, ids)
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
	_, err := s.q(ctx).Exec(ctx, qMarkOutboxSent, ids, at.UTC())
	return wrap("mark outbox sent", err)
}

// RememberProof records a DPoP proof key until expires; fresh is false when
// it is already recorded and unexpired. An expired record is taken over.
func (s *Store) RememberProof(ctx context.Context, key string, expires time.Time) (bool, error) {
	tag, err := s.q(ctx).Exec(ctx, `INSERT INTO dpop_proofs (key, expires_at) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= now()`, key, expires.UTC())
	if err != nil {
		return false, wrap("remember proof", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Purge deletes what expired before now (refresh tokens, authorization
// codes, browser sessions, denylist entries, DPoP proof ids, retired keys),
// the upstream sign-ins in progress expired at now, and the history r lets
// go, and returns how many rows went.
func (s *Store) Purge(ctx context.Context, now time.Time, r storage.Retention) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(q *pipeTx) error {
		var err error
		n, err = s.dialect.Purge(ctx, func(ctx context.Context, query string, args ...any) (int64, error) {
			tag, err := q.Exec(ctx, query, args...)
			return tag.RowsAffected(), err
		}, now, r)
		return err
	})
	if err != nil {
		return 0, wrap("purge", err)
	}
	return n, nil
}
