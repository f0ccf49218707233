package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const refreshColumns = `signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at`

const (
	qInsertRefresh = `INSERT INTO refresh_tokens (` + refreshColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qGetRefresh    = `SELECT ` + refreshColumns + ` FROM refresh_tokens WHERE signature_hash = $1`
	// The token and its user (NULLs when the user is gone).
	qGetRefreshWithUser = `SELECT r.signature_hash, r.family_id, r.client_id, r.subject, r.active, r.request, r.requested_at,
r.expires_at, u.id, u.username, u.email, u.password_hash, u.roles, u.disabled, u.failed_logins, u.pending_logins,
u.locked_until, u.created_at, u.updated_at
FROM refresh_tokens r LEFT JOIN users u ON u.id = r.subject WHERE r.signature_hash = $1`
	// The conditional write that lets only one of concurrent refreshes
	// rotate, and the successor stored only if it did, in one statement.
	qRotateRefresh = `WITH rotated AS (UPDATE refresh_tokens SET active = false, successor = $1, rotated_at = now()
WHERE signature_hash = $9 AND active RETURNING 1)
INSERT INTO refresh_tokens (` + refreshColumns + `) SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM rotated`
	// Rotated less than $2 microseconds ago (database clock), successor ($3
	// when not empty) still active.
	qRefreshGrace = `SELECT EXISTS (SELECT 1 FROM refresh_tokens o JOIN refresh_tokens s ON s.signature_hash = o.successor
WHERE o.signature_hash = $1 AND NOT o.active AND o.rotated_at > now() - $2 * interval '1 microsecond'
AND s.active AND ($3 = '' OR o.successor = $3))`
	qDeleteRefresh        = `DELETE FROM refresh_tokens WHERE signature_hash = $1`
	qRevokeRefreshFamily  = `UPDATE refresh_tokens SET active = false WHERE family_id = $1 AND active`
	qRevokeSubjectRefresh = `UPDATE refresh_tokens SET active = false WHERE subject = $1 AND active AND family_id <> $2
RETURNING family_id`
)

func scanRefresh(row pgx.Row) (storage.RefreshToken, error) {
	var (
		t       storage.RefreshToken
		expires *time.Time
	)
	if err := row.Scan(&t.SignatureHash, &t.FamilyID, &t.ClientID, &t.Subject, &t.Active, &t.Request,
		&t.RequestedAt, &expires); err != nil {
		return storage.RefreshToken{}, err
	}
	t.RequestedAt = t.RequestedAt.UTC()
	t.ExpiresAt = utc(expires)
	return t, nil
}

// CreateRefreshToken stores a refresh token; RequestedAt defaults to now.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if t.RequestedAt.IsZero() {
		t.RequestedAt = s.now()
	}
	_, err := s.q(ctx).Exec(ctx, qInsertRefresh, t.SignatureHash, t.FamilyID, t.ClientID, t.Subject, t.Active,
		sqlstore.NotNil(t.Request), t.RequestedAt.UTC(), nullTime(t.ExpiresAt))
	return wrap("create refresh token", err)
}

// GetRefreshToken returns the token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, signatureHash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.q(ctx).QueryRow(ctx, qGetRefresh, signatureHash))
	return t, wrap("get refresh token", err)
}

// GetRefreshTokenWithUser returns the token and its user (nil when gone) in
// one query.
func (s *Store) GetRefreshTokenWithUser(ctx context.Context, signatureHash string) (storage.RefreshToken, *storage.User, error) {
	var (
		t                storage.RefreshToken
		expires          *time.Time
		u                storage.User
		userID, email    *string
		username, pwHash *string
		disabled         *bool
		failed, pending  *int
		locked           *time.Time
		created, updated *time.Time
	)
	err := s.q(ctx).QueryRow(ctx, qGetRefreshWithUser, signatureHash).Scan(&t.SignatureHash, &t.FamilyID, &t.ClientID,
		&t.Subject, &t.Active, &t.Request, &t.RequestedAt, &expires,
		&userID, &username, &email, &pwHash, &u.Roles, &disabled, &failed, &pending, &locked, &created, &updated)
	if err != nil {
		return storage.RefreshToken{}, nil, wrap("get refresh token", err)
	}
	t.RequestedAt = t.RequestedAt.UTC()
	t.ExpiresAt = utc(expires)
	if userID == nil {
		return t, nil, nil
	}
	u.ID, u.Username, u.PasswordHash = *userID, *username, *pwHash
	if email != nil {
		u.Email = *email
	}
	u.Disabled, u.FailedLogins, u.PendingLogins = *disabled, *failed, *pending
	u.LockedUntil, u.CreatedAt, u.UpdatedAt = utc(locked), utc(created), utc(updated)
	return t, &u, nil
}

// RotateRefreshToken replaces the active token oldHash by next in one
// statement, or, within grace, answers a rotation to the same next again
// (see storage.RefreshTokens).
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, grace time.Duration) error {
	if next.RequestedAt.IsZero() {
		next.RequestedAt = s.now()
	}
	tag, err := s.q(ctx).Exec(ctx, qRotateRefresh, next.SignatureHash, next.FamilyID, next.ClientID, next.Subject,
		next.Active, sqlstore.NotNil(next.Request), next.RequestedAt.UTC(), nullTime(next.ExpiresAt), oldHash)
	if err != nil || tag.RowsAffected() == 1 {
		return wrap("rotate refresh token", err)
	}
	if grace > 0 {
		ok, err := s.inGrace(ctx, oldHash, next.SignatureHash, grace)
		if err != nil || ok {
			return wrap("rotate refresh token", err)
		}
	}
	return wrap("rotate refresh token", pgx.ErrNoRows)
}

// InRotationGrace reports whether the token was rotated less than grace ago
// (database clock) and its successor is still active.
func (s *Store) InRotationGrace(ctx context.Context, signatureHash string, grace time.Duration) (bool, error) {
	if grace <= 0 {
		return false, nil
	}
	ok, err := s.inGrace(ctx, signatureHash, "", grace)
	return ok, wrap("refresh rotation grace", err)
}

func (s *Store) inGrace(ctx context.Context, hash, successor string, grace time.Duration) (bool, error) {
	var ok bool
	err := s.q(ctx).QueryRow(ctx, qRefreshGrace, hash, grace.Microseconds(), successor).Scan(&ok)
	return ok, err
}

// DeleteRefreshToken deletes the token; ErrNotFound if there was none.
func (s *Store) DeleteRefreshToken(ctx context.Context, signatureHash string) error {
	tag, err := s.q(ctx).Exec(ctx, qDeleteRefresh, signatureHash)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete refresh token", err)
}

// RevokeRefreshFamily deactivates every token of the family.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	return wrap("revoke refresh family", s.deferExec(ctx, qRevokeRefreshFamily, familyID))
}

// RevokeSubjectRefreshTokens deactivates every active token of subject outside
// exceptFamily and returns the families it touched, sorted.
func (s *Store) RevokeSubjectRefreshTokens(ctx context.Context, subject, exceptFamily string) ([]string, error) {
	rows, err := s.q(ctx).Query(ctx, qRevokeSubjectRefresh, subject, exceptFamily)
	if err != nil {
		return nil, wrap("revoke subject refresh tokens", err)
	}
	families, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("revoke subject refresh tokens", err)
	}
	slices.Sort(families)
	return slices.Compact(families), nil
}
