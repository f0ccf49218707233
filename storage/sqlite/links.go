package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// The records of sign-in through connectors: links from upstream
// identities to users, and sign-ins in progress.

const (
	linkColumns = `connector_id, subject, user_id, email, created_at, last_login_at`

	qInsertLink    = `INSERT INTO user_links (` + linkColumns + `) VALUES (?, ?, ?, ?, ?, ?)`
	qGetLink       = `SELECT ` + linkColumns + ` FROM user_links WHERE connector_id = ? AND subject = ?`
	qListUserLinks = `SELECT ` + linkColumns + ` FROM user_links WHERE user_id = ? ORDER BY connector_id`
	qTouchLink     = `UPDATE user_links SET last_login_at = ? WHERE connector_id = ? AND subject = ?`
	qDeleteLink    = `DELETE FROM user_links WHERE user_id = ? AND connector_id = ?`

	upstreamLoginColumns = `id_hash, binding_hash, connector_id, data, created_at, expires_at`

	qInsertUpstreamLogin = `INSERT INTO upstream_logins (` + upstreamLoginColumns + `) VALUES (?, ?, ?, ?, ?, ?)`
	// One statement, under the one write lock: of concurrent takes only the
	// first finds the row.
	qTakeUpstreamLogin = `DELETE FROM upstream_logins WHERE id_hash = ? RETURNING ` + upstreamLoginColumns
)

func scanLink(row scanner) (storage.Link, error) {
	var (
		l                  storage.Link
		email              sql.NullString
		created, lastLogin int64
	)
	if err := row.Scan(&l.ConnectorID, &l.Subject, &l.UserID, &email, &created, &lastLogin); err != nil {
		return storage.Link{}, err
	}
	l.Email = email.String
	l.CreatedAt, l.LastLoginAt = fromNanos(created), fromNanos(lastLogin)
	return l, nil
}

// CreateLink stores l; CreatedAt defaults to now, LastLoginAt to
// CreatedAt. ErrConflict when the upstream identity is linked already or
// the user has a link to the connector; ErrNotFound when the user does not
// exist.
func (s *Store) CreateLink(ctx context.Context, l storage.Link) error {
	l, err := sqlstore.NewLink(l, s.now)
	if err != nil {
		return wrap("create link", err)
	}
	_, err = s.q(ctx).ExecContext(ctx, qInsertLink, l.ConnectorID, l.Subject, l.UserID, sqlstore.NullString(l.Email),
		nanos(l.CreatedAt), nanos(l.LastLoginAt))
	if isForeignKeyViolation(err) { // the only reference is to the user
		return fmt.Errorf("sqlite: create link: unknown user: %w: %w", storage.ErrNotFound, err)
	}
	return wrap("create link", err)
}

// GetLink returns the link of the connector's subject.
func (s *Store) GetLink(ctx context.Context, connectorID, subject string) (storage.Link, error) {
	l, err := scanLink(s.q(ctx).QueryRowContext(ctx, qGetLink, connectorID, subject))
	return l, wrap("get link", err)
}

// ListUserLinks lists the user's links ordered by connector id; empty for
// a user without any, or an unknown user.
func (s *Store) ListUserLinks(ctx context.Context, userID string) ([]storage.Link, error) {
	rows, err := s.q(ctx).QueryContext(ctx, qListUserLinks, userID)
	if err != nil {
		return nil, wrap("list user links", err)
	}
	links, err := collect(rows, scanLink)
	if err != nil {
		return nil, wrap("list user links", err)
	}
	if links == nil {
		links = []storage.Link{}
	}
	return links, nil
}

// TouchLink sets the link's LastLoginAt (now when at is zero); ErrNotFound
// when it is gone.
func (s *Store) TouchLink(ctx context.Context, connectorID, subject string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	return wrap("touch link", affected(s.q(ctx).ExecContext(ctx, qTouchLink, nanos(at), connectorID, subject)))
}

// DeleteLink removes the user's link to the connector; ErrNotFound when
// there was none.
func (s *Store) DeleteLink(ctx context.Context, userID, connectorID string) error {
	return wrap("delete link", affected(s.q(ctx).ExecContext(ctx, qDeleteLink, userID, connectorID)))
}

// CreateUpstreamLogin stores a sign-in in progress; CreatedAt defaults to
// now. A hash stored already is ErrConflict.
func (s *Store) CreateUpstreamLogin(ctx context.Context, l storage.UpstreamLogin) error {
	l, err := sqlstore.NewUpstreamLogin(l, s.now)
	if err != nil {
		return wrap("create upstream login", err)
	}
	_, err = s.q(ctx).ExecContext(ctx, qInsertUpstreamLogin, l.IDHash, l.BindingHash, l.ConnectorID, l.Data,
		nanos(l.CreatedAt), nanos(l.ExpiresAt))
	return wrap("create upstream login", err)
}

// TakeUpstreamLogin deletes the sign-in and returns it, in one DELETE ...
// RETURNING: of concurrent takes exactly one gets the row. ErrNotFound for
// an unknown sign-in, one taken already, or one expired at now (which is
// deleted all the same).
func (s *Store) TakeUpstreamLogin(ctx context.Context, idHash string, now time.Time) (storage.UpstreamLogin, error) {
	var (
		l                storage.UpstreamLogin
		created, expires int64
	)
	err := s.q(ctx).QueryRowContext(ctx, qTakeUpstreamLogin, idHash).Scan(&l.IDHash, &l.BindingHash, &l.ConnectorID,
		&l.Data, &created, &expires)
	if err != nil {
		return storage.UpstreamLogin{}, wrap("take upstream login", err)
	}
	l.CreatedAt, l.ExpiresAt = fromNanos(created), fromNanos(expires)
	l, err = sqlstore.Taken(l, now)
	if err != nil {
		return storage.UpstreamLogin{}, fmt.Errorf("sqlite: take upstream login: expired: %w", err)
	}
	return l, nil
}

// isForeignKeyViolation reports whether err is SQLite's foreign key
// constraint failure.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
