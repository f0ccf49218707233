package sqlite

import (
	"context"
	"database/sql"
	"slices"

	"github.com/authd/authd/storage"
)

const refreshColumns = `signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at`

const (
	qInsertRefresh = `INSERT INTO refresh_tokens (` + refreshColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qGetRefresh    = `SELECT ` + refreshColumns + ` FROM refresh_tokens WHERE signature_hash = ?`
	// The conditional write that lets only one of two concurrent refreshes win.
	qRotateRefresh        = `UPDATE refresh_tokens SET active = 0 WHERE signature_hash = ? AND active`
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
		t.Active, notNil(t.Request), nanos(t.RequestedAt), nullNanos(t.ExpiresAt))
	return wrap("create refresh token", err)
}

// GetRefreshToken returns the token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, signatureHash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.q(ctx).QueryRowContext(ctx, qGetRefresh, signatureHash))
	return t, wrap("get refresh token", err)
}

// RotateRefreshToken deactivates the token if it is still active, and
// returns ErrNotFound when it was not (rotated, revoked or unknown).
func (s *Store) RotateRefreshToken(ctx context.Context, signatureHash string) error {
	return wrap("rotate refresh token", affected(s.q(ctx).ExecContext(ctx, qRotateRefresh, signatureHash)))
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
