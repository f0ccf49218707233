package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

const refreshColumns = `signature_hash, family_id, client_id, subject, active, request, requested_at, expires_at`

const (
	qInsertRefresh = `INSERT INTO refresh_tokens (` + refreshColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qGetRefresh    = `SELECT ` + refreshColumns + ` FROM refresh_tokens WHERE signature_hash = $1`
	// The conditional write that lets only one of two concurrent refreshes win.
	qRotateRefresh = `UPDATE refresh_tokens SET active = false WHERE signature_hash = $1 AND active`
	// The same conditional write, and the successor stored only if it won,
	// in one statement: no transaction round trips.
	qRotateRefreshTo = `WITH rotated AS (UPDATE refresh_tokens SET active = false WHERE signature_hash = $9 AND active RETURNING 1)
INSERT INTO refresh_tokens (` + refreshColumns + `) SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM rotated`
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
		notNil(t.Request), t.RequestedAt.UTC(), nullTime(t.ExpiresAt))
	return wrap("create refresh token", err)
}

// GetRefreshToken returns the token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, signatureHash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.q(ctx).QueryRow(ctx, qGetRefresh, signatureHash))
	return t, wrap("get refresh token", err)
}

// RotateRefreshToken deactivates the token if it is still active, and
// returns ErrNotFound when it was not (rotated, revoked or unknown).
func (s *Store) RotateRefreshToken(ctx context.Context, signatureHash string) error {
	tag, err := s.q(ctx).Exec(ctx, qRotateRefresh, signatureHash)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("rotate refresh token", err)
}

// RotateRefreshTokenTo deactivates the token if it is still active and, in
// the same statement, stores next; when the token was not active (rotated,
// revoked or unknown) it stores nothing and returns ErrNotFound. Of
// concurrent calls for one token, one wins.
func (s *Store) RotateRefreshTokenTo(ctx context.Context, oldSignatureHash string, next storage.RefreshToken) error {
	if next.RequestedAt.IsZero() {
		next.RequestedAt = s.now()
	}
	tag, err := s.q(ctx).Exec(ctx, qRotateRefreshTo, next.SignatureHash, next.FamilyID, next.ClientID, next.Subject,
		next.Active, notNil(next.Request), next.RequestedAt.UTC(), nullTime(next.ExpiresAt), oldSignatureHash)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("rotate refresh token", err)
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
	_, err := s.q(ctx).Exec(ctx, qRevokeRefreshFamily, familyID)
	return wrap("revoke refresh family", err)
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
