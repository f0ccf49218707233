package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// The records of browser sign-in: browser sessions, authorization codes
// and consents.

const (
	sessionColumns = `id_hash, id, user_id, auth_time, amr, created_at, last_seen_at, expires_at`

	qInsertSession = `INSERT INTO browser_sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qGetSession    = `SELECT ` + sessionColumns + ` FROM browser_sessions WHERE id_hash = ?`
	// NULL auth time and amr keep the stored ones.
	qTouchSession = `UPDATE browser_sessions SET last_seen_at = ?2, auth_time = coalesce(?3, auth_time),
amr = coalesce(?4, amr) WHERE id_hash = ?1`
	qDeleteSession      = `DELETE FROM browser_sessions WHERE id_hash = ?`
	qDeleteUserSessions = `DELETE FROM browser_sessions WHERE user_id = ?`

	codeColumns = `signature_hash, request_id, client_id, subject, session_id, active, request, requested_at, expires_at`

	qInsertCode = `INSERT INTO authorization_codes (` + codeColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qGetCode    = `SELECT ` + codeColumns + ` FROM authorization_codes WHERE signature_hash = ?`
	// The one conditional write that lets only one of concurrent uses win.
	qUseCode = `UPDATE authorization_codes SET active = 0 WHERE signature_hash = ? AND active`

	qGetConsent  = `SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = ? AND client_id = ?`
	qSaveConsent = `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`
	qDeleteConsents = `DELETE FROM consents WHERE user_id = ?`
)

// CreateBrowserSession stores a new session; CreatedAt defaults to now,
// AuthTime and LastSeenAt to CreatedAt.
func (s *Store) CreateBrowserSession(ctx context.Context, bs storage.BrowserSession) error {
	bs, err := sqlstore.NewBrowserSession(bs, s.now)
	if err != nil {
		return wrap("create browser session", err)
	}
	_, err = s.q(ctx).ExecContext(ctx, qInsertSession, bs.IDHash, bs.ID, bs.UserID, nanos(bs.AuthTime), jsonList(bs.AMR),
		nanos(bs.CreatedAt), nanos(bs.LastSeenAt), nanos(bs.ExpiresAt))
	return wrap("create browser session", err)
}

// GetBrowserSession returns the session whose cookie hashes to idHash.
func (s *Store) GetBrowserSession(ctx context.Context, idHash string) (storage.BrowserSession, error) {
	var (
		bs                                   storage.BrowserSession
		amr                                  string
		authTime, created, lastSeen, expires int64
	)
	err := s.q(ctx).QueryRowContext(ctx, qGetSession, idHash).Scan(&bs.IDHash, &bs.ID, &bs.UserID, &authTime, &amr,
		&created, &lastSeen, &expires)
	if err != nil {
		return storage.BrowserSession{}, wrap("get browser session", err)
	}
	if bs.AMR, err = parseList(amr); err != nil {
		return storage.BrowserSession{}, wrap("get browser session", err)
	}
	bs.AuthTime, bs.CreatedAt = fromNanos(authTime), fromNanos(created)
	bs.LastSeenAt, bs.ExpiresAt = fromNanos(lastSeen), fromNanos(expires)
	return bs, nil
}

// TouchBrowserSession sets the session's LastSeenAt (now when zero), and
// AuthTime and AMR unless zero and nil.
func (s *Store) TouchBrowserSession(ctx context.Context, idHash string, lastSeen, authTime time.Time, amr []string) error {
	if lastSeen.IsZero() {
		lastSeen = s.now()
	}
	var amrArg any
	if amr != nil {
		amrArg = jsonList(amr)
	}
	return wrap("touch browser session", affected(s.q(ctx).ExecContext(ctx, qTouchSession, idHash, nanos(lastSeen),
		nullNanos(authTime), amrArg)))
}

// DeleteBrowserSession ends the session; ErrNotFound if there was none.
func (s *Store) DeleteBrowserSession(ctx context.Context, idHash string) error {
	return wrap("delete browser session", affected(s.q(ctx).ExecContext(ctx, qDeleteSession, idHash)))
}

// DeleteUserBrowserSessions ends every session of the user and returns how
// many it ended.
func (s *Store) DeleteUserBrowserSessions(ctx context.Context, userID string) (int64, error) {
	n, err := rowsAffected(s.q(ctx).ExecContext(ctx, qDeleteUserSessions, userID))
	return n, wrap("delete user browser sessions", err)
}

// CreateAuthorizationCode stores a code; RequestedAt defaults to now. A
// hash stored already is ErrConflict.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c storage.AuthorizationCode) error {
	c, err := sqlstore.NewAuthorizationCode(c, s.now)
	if err != nil {
		return wrap("create authorization code", err)
	}
	_, err = s.q(ctx).ExecContext(ctx, qInsertCode, c.SignatureHash, c.RequestID, c.ClientID, c.Subject, c.SessionID,
		c.Active, sqlstore.NotNil(c.Request), nanos(c.RequestedAt), nanos(c.ExpiresAt))
	return wrap("create authorization code", err)
}

// GetAuthorizationCode returns the code whatever its state.
func (s *Store) GetAuthorizationCode(ctx context.Context, signatureHash string) (storage.AuthorizationCode, error) {
	var (
		c                  storage.AuthorizationCode
		requested, expires int64
	)
	err := s.q(ctx).QueryRowContext(ctx, qGetCode, signatureHash).Scan(&c.SignatureHash, &c.RequestID, &c.ClientID,
		&c.Subject, &c.SessionID, &c.Active, &c.Request, &requested, &expires)
	if err != nil {
		return storage.AuthorizationCode{}, wrap("get authorization code", err)
	}
	c.RequestedAt, c.ExpiresAt = fromNanos(requested), fromNanos(expires)
	return c, nil
}

// UseAuthorizationCode marks the active code used in one conditional
// UPDATE; ErrNotFound when it changed nothing (unknown, or used already).
func (s *Store) UseAuthorizationCode(ctx context.Context, signatureHash string) error {
	return wrap("use authorization code", affected(s.q(ctx).ExecContext(ctx, qUseCode, signatureHash)))
}

// GetConsent returns what the user allowed the client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var (
		c       storage.Consent
		scopes  string
		granted int64
	)
	err := s.q(ctx).QueryRowContext(ctx, qGetConsent, userID, clientID).Scan(&c.UserID, &c.ClientID, &scopes, &granted)
	if err != nil {
		return storage.Consent{}, wrap("get consent", err)
	}
	if c.Scopes, err = parseList(scopes); err != nil {
		return storage.Consent{}, wrap("get consent", err)
	}
	c.GrantedAt = fromNanos(granted)
	return c, nil
}

// SaveConsent stores the consent, replacing the user's earlier one for the
// client; GrantedAt defaults to now.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	c = sqlstore.NewConsent(c, s.now)
	_, err := s.q(ctx).ExecContext(ctx, qSaveConsent, c.UserID, c.ClientID, jsonList(c.Scopes), nanos(c.GrantedAt))
	return wrap("save consent", err)
}

// DeleteConsents deletes every consent of the user and returns how many.
func (s *Store) DeleteConsents(ctx context.Context, userID string) (int64, error) {
	n, err := rowsAffected(s.q(ctx).ExecContext(ctx, qDeleteConsents, userID))
	return n, wrap("delete consents", err)
}

// rowsAffected returns how many rows a write changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
