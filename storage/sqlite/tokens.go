package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const refreshColumns = `signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at`

const (
	qInsertRefresh = `INSERT INTO refresh_tokens (` + refreshColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qGetRefresh    = `SELECT ` + refreshColumns + ` FROM refresh_tokens WHERE signature_hash = ?`
	// The token and its user (NULLs when the user is gone).
	qGetRefreshWithUser = `SELECT r.signature_hash, r.family_id, r.client_id, r.subject, r.active, r.request, r.requested_at,
r.expires_at, u.id, u.username, u.email, u.password_hash, u.roles, u.disabled, u.failed_logins, u.pending_logins,
u.locked_until, u.created_at, u.updated_at
FROM refresh_tokens r LEFT JOIN users u ON u.id = r.subject WHERE r.signature_hash = ?`
	// The conditional write that lets only one of concurrent refreshes rotate.
	qRotateRefresh = `UPDATE refresh_tokens SET active = 0, successor = ?, rotated_at = ? WHERE signature_hash = ? AND active`
	// Rotated after ?2 (now less the grace), successor (?3 when not empty) still active.
	qRefreshGrace = `SELECT EXISTS (SELECT 1 FROM refresh_tokens o JOIN refresh_tokens s ON s.signature_hash = o.successor
WHERE o.signature_hash = ?1 AND NOT o.active AND o.rotated_at > ?2 AND s.active AND (?3 = '' OR o.successor = ?3))`
	qDeleteRefresh        = `DELETE FROM refresh_tokens WHERE signature_hash = ?`
	qRevokeRefreshFamily  = `UPDATE refresh_tokens SET active = 0 WHERE family_id = ? AND active`
	qRevokeSubjectRefresh = `UPDATE refresh_tokens SET active = 0 WHERE subject = ? AND active AND family_id <> ?
RETURNING family_id`
)

func scanRefresh(row scanner) (storage.RefreshToken, error) {
	var (
		t         storage.RefreshToken
		requested int64
		expires   sql.NullInt64
	)
	if err := row.Scan(&t.SignatureHash, &t.FamilyID, &t.ClientID, &t.Subject, &t.Active, &t.Request,
		&requested, &expires); err != nil {
		return storage.RefreshToken{}, err
	}
	t.RequestedAt, t.ExpiresAt = fromNanos(requested), fromNullNanos(expires)
	return t, nil
}

// CreateRefreshToken stores a refresh token; RequestedAt defaults to now.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if t.RequestedAt.IsZero() {
		t.RequestedAt = s.now()
	}
	_, err := s.q(ctx).ExecContext(ctx, qInsertRefresh, t.SignatureHash, t.FamilyID, t.ClientID, t.Subject,
		t.Active, sqlstore.NotNil(t.Request), nanos(t.RequestedAt), nullNanos(t.ExpiresAt))
	return wrap("create refresh token", err)
}

// GetRefreshToken returns the token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, signatureHash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.q(ctx).QueryRowContext(ctx, qGetRefresh, signatureHash))
	return t, wrap("get refresh token", err)
}

// GetRefreshTokenWithUser returns the token and its user (nil when gone) in
// one query.
func (s *Store) GetRefreshTokenWithUser(ctx context.Context, signatureHash string) (storage.RefreshToken, *storage.User, error) {
	var (
		t                    storage.RefreshToken
		requested            int64
		expires              sql.NullInt64
		userID, username     sql.NullString
		email, pwHash, roles sql.NullString
		disabled             sql.NullBool
		failed, pending      sql.NullInt64
		locked               sql.NullInt64
		created, updated     sql.NullInt64
	)
	err := s.q(ctx).QueryRowContext(ctx, qGetRefreshWithUser, signatureHash).Scan(&t.SignatureHash, &t.FamilyID,
		&t.ClientID, &t.Subject, &t.Active, &t.Request, &requested, &expires,
		&userID, &username, &email, &pwHash, &roles, &disabled, &failed, &pending, &locked, &created, &updated)
	if err != nil {
		return storage.RefreshToken{}, nil, wrap("get refresh token", err)
	}
	t.RequestedAt, t.ExpiresAt = fromNanos(requested), fromNullNanos(expires)
	if !userID.Valid {
		return t, nil, nil
	}
	u := storage.User{ID: userID.String, Username: username.String, Email: email.String, PasswordHash: pwHash.String,
		Disabled: disabled.Bool, FailedLogins: int(failed.Int64), PendingLogins: int(pending.Int64),
		LockedUntil: fromNullNanos(locked), CreatedAt: fromNanos(created.Int64), UpdatedAt: fromNanos(updated.Int64)}
	if u.Roles, err = parseList(roles.String); err != nil {
		return storage.RefreshToken{}, nil, wrap("get refresh token", err)
	}
	return t, &u, nil
}

// RotateRefreshToken replaces the active token oldHash by next in one
// transaction, or, within grace, answers a rotation to the same next again
// (see storage.RefreshTokens). SQLite is one process: its clock is the
// database's.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, grace time.Duration) error {
	now := s.now()
	if next.RequestedAt.IsZero() {
		next.RequestedAt = now
	}
	err := s.withTx(ctx, func(q querier) error {
		err := affected(q.ExecContext(ctx, qRotateRefresh, next.SignatureHash, nanos(now), oldHash))
		switch {
		case err == nil:
			return affected(q.ExecContext(ctx, qInsertRefresh, next.SignatureHash, next.FamilyID, next.ClientID, next.Subject,
				next.Active, sqlstore.NotNil(next.Request), nanos(next.RequestedAt), nullNanos(next.ExpiresAt)))
		case !errors.Is(err, sql.ErrNoRows) || grace <= 0:
			return err
		}
		var ok bool
		if err := q.QueryRowContext(ctx, qRefreshGrace, oldHash, nanos(now.Add(-grace)), next.SignatureHash).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return sql.ErrNoRows
		}
		return nil
	})
	return wrap("rotate refresh token", err)
}

// InRotationGrace reports whether the token was rotated less than grace ago
// and its successor is still active.
func (s *Store) InRotationGrace(ctx context.Context, signatureHash string, grace time.Duration) (bool, error) {
	if grace <= 0 {
		return false, nil
	}
	var ok bool
	err := s.q(ctx).QueryRowContext(ctx, qRefreshGrace, signatureHash, nanos(s.now().Add(-grace)), "").Scan(&ok)
	return ok, wrap("refresh rotation grace", err)
}

// DeleteRefreshToken deletes the token; ErrNotFound if there was none.
func (s *Store) DeleteRefreshToken(ctx context.Context, signatureHash string) error {
	return wrap("delete refresh token", affected(s.q(ctx).ExecContext(ctx, qDeleteRefresh, signatureHash)))
}

// RevokeRefreshFamily deactivates every token of the family.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	_, err := s.q(ctx).ExecContext(ctx, qRevokeRefreshFamily, familyID)
	return wrap("revoke refresh family", err)
}

// RevokeSubjectRefreshTokens deactivates every active token of subject outside
// exceptFamily and returns the families it touched, sorted.
func (s *Store) RevokeSubjectRefreshTokens(ctx context.Context, subject, exceptFamily string) ([]string, error) {
	rows, err := s.q(ctx).QueryContext(ctx, qRevokeSubjectRefresh, subject, exceptFamily)
	if err != nil {
		return nil, wrap("revoke subject refresh tokens", err)
	}
	families, err := collect(rows, func(row scanner) (string, error) {
		var f string
		return f, row.Scan(&f)
	})
	if err != nil {
		return nil, wrap("revoke subject refresh tokens", err)
	}
	slices.Sort(families)
	return slices.Compact(families), nil
}
