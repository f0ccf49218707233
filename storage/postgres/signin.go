package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// The records of browser sign-in: browser sessions, authorization codes
// and consents.

const (
	sessionColumns = `id_hash, id, user_id, auth_time, amr, created_at, last_seen_at, expires_at`

	qInsertSession = `INSERT INTO browser_sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qGetSession    = `SELECT ` + sessionColumns + ` FROM browser_sessions WHERE id_hash = $1`
	// NULL auth time and amr keep the stored ones.
	qTouchSession = `UPDATE browser_sessions SET last_seen_at = $2, auth_time = COALESCE($3, auth_time),
amr = COALESCE($4::text[], amr) WHERE id_hash = $1`
	qDeleteSession      = `DELETE FROM browser_sessions WHERE id_hash = $1`
	qDeleteUserSessions = `DELETE FROM browser_sessions WHERE user_id = $1`

	codeColumns = `signature_hash, request_id, client_id, subject, session_id, active, request, requested_at, expires_at`

	qInsertCode = `INSERT INTO authorization_codes (` + codeColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	qGetCode    = `SELECT ` + codeColumns + ` FROM authorization_codes WHERE signature_hash = $1`
	// The one conditional write that lets only one of concurrent uses win.
	qUseCode = `UPDATE authorization_codes SET active = false WHERE signature_hash = $1 AND active`

	qGetConsent  = `SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = $1 AND client_id = $2`
	qSaveConsent = `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = EXCLUDED.scopes, granted_at = EXCLUDED.granted_at`
	qDeleteConsents = `DELETE FROM consents WHERE user_id = $1`
)

func scanSession(row pgx.Row) (storage.BrowserSession, error) {
	var s storage.BrowserSession
	if err := row.Scan(&s.IDHash, &s.ID, &s.UserID, &s.AuthTime, &s.AMR, &s.CreatedAt, &s.LastSeenAt,
		&s.ExpiresAt); err != nil {
		return storage.BrowserSession{}, err
	}
	s.AuthTime, s.CreatedAt = s.AuthTime.UTC(), s.CreatedAt.UTC()
	s.LastSeenAt, s.ExpiresAt = s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	return s, nil
}

// CreateBrowserSession stores a new session; CreatedAt defaults to now,
// AuthTime and LastSeenAt to CreatedAt.
func (s *Store) CreateBrowserSession(ctx context.Context, bs storage.BrowserSession) error {
	bs, err := sqlstore.NewBrowserSession(bs, s.now)
	if err != nil {
		return wrap("create browser session", err)
	}
	_, err = s.q(ctx).Exec(ctx, qInsertSession, bs.IDHash, bs.ID, bs.UserID, bs.AuthTime.UTC(), orEmpty(bs.AMR),
		bs.CreatedAt.UTC(), bs.LastSeenAt.UTC(), bs.ExpiresAt.UTC())
	return wrap("create browser session", err)
}

// GetBrowserSession returns the session whose cookie hashes to idHash.
func (s *Store) GetBrowserSession(ctx context.Context, idHash string) (storage.BrowserSession, error) {
	bs, err := scanSession(s.q(ctx).QueryRow(ctx, qGetSession, idHash))
	return bs, wrap("get browser session", err)
}

// TouchBrowserSession sets the session's LastSeenAt (now when zero), and
// AuthTime and AMR unless zero and nil.
func (s *Store) TouchBrowserSession(ctx context.Context, idHash string, lastSeen, authTime time.Time, amr []string) error {
	if lastSeen.IsZero() {
		lastSeen = s.now()
	}
	var amrArg any
	if amr != nil {
		amrArg = amr
	}
	tag, err := s.q(ctx).Exec(ctx, qTouchSession, idHash, lastSeen.UTC(), nullTime(authTime), amrArg)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("touch browser session", err)
}

// DeleteBrowserSession ends the session; ErrNotFound if there was none.
func (s *Store) DeleteBrowserSession(ctx context.Context, idHash string) error {
	tag, err := s.q(ctx).Exec(ctx, qDeleteSession, idHash)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete browser session", err)
}

// DeleteUserBrowserSessions ends every session of the user and returns how
// many it ended.
func (s *Store) DeleteUserBrowserSessions(ctx context.Context, userID string) (int64, error) {
	tag, err := s.q(ctx).Exec(ctx, qDeleteUserSessions, userID)
	if err != nil {
		return 0, wrap("delete user browser sessions", err)
	}
	return tag.RowsAffected(), nil
}

// CreateAuthorizationCode stores a code; RequestedAt defaults to now. A
// hash stored already is ErrConflict.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c storage.AuthorizationCode) error {
	c, err := sqlstore.NewAuthorizationCode(c, s.now)
	if err != nil {
		return wrap("create authorization code", err)
	}
	_, err = s.q(ctx).Exec(ctx, qInsertCode, c.SignatureHash, c.RequestID, c.ClientID, c.Subject, c.SessionID, c.Active,
		sqlstore.NotNil(c.Request), c.RequestedAt.UTC(), c.ExpiresAt.UTC())
	return wrap("create authorization code", err)
}

// GetAuthorizationCode returns the code whatever its state.
func (s *Store) GetAuthorizationCode(ctx context.Context, signatureHash string) (storage.AuthorizationCode, error) {
	var c storage.AuthorizationCode
	err := s.q(ctx).QueryRow(ctx, qGetCode, signatureHash).Scan(&c.SignatureHash, &c.RequestID, &c.ClientID,
		&c.Subject, &c.SessionID, &c.Active, &c.Request, &c.RequestedAt, &c.ExpiresAt)
	if err != nil {
		return storage.AuthorizationCode{}, wrap("get authorization code", err)
	}
	c.RequestedAt, c.ExpiresAt = c.RequestedAt.UTC(), c.ExpiresAt.UTC()
	return c, nil
}

// UseAuthorizationCode marks the active code used in one conditional
// UPDATE; ErrNotFound when it changed nothing (unknown, or used already).
func (s *Store) UseAuthorizationCode(ctx context.Context, signatureHash string) error {
	tag, err := s.q(ctx).Exec(ctx, qUseCode, signatureHash)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("use authorization code", err)
}

// GetConsent returns what the user allowed the client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var c storage.Consent
	err := s.q(ctx).QueryRow(ctx, qGetConsent, userID, clientID).Scan(&c.UserID, &c.ClientID, &c.Scopes, &c.GrantedAt)
	if err != nil {
		return storage.Consent{}, wrap("get consent", err)
	}
	c.GrantedAt = c.GrantedAt.UTC()
	return c, nil
}

// SaveConsent stores the consent, replacing the user's earlier one for the
// client; GrantedAt defaults to now.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	c = sqlstore.NewConsent(c, s.now)
	_, err := s.q(ctx).Exec(ctx, qSaveConsent, c.UserID, c.ClientID, orEmpty(c.Scopes), c.GrantedAt.UTC())
	return wrap("save consent", err)
}

// DeleteConsents deletes every consent of the user and returns how many.
func (s *Store) DeleteConsents(ctx context.Context, userID string) (int64, error) {
	tag, err := s.q(ctx).Exec(ctx, qDeleteConsents, userID)
	if err != nil {
		return 0, wrap("delete consents", err)
	}
	return tag.RowsAffected(), nil
}
