package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// The records of sign-in through connectors: links from upstream
// identities to users, and sign-ins in progress.

const (
	linkColumns = `connector_id, subject, user_id, email, created_at, last_login_at`

	qInsertLink    = `INSERT INTO user_links (` + linkColumns + `) VALUES ($1, $2, $3, $4, $5, $6)`
	qGetLink       = `SELECT ` + linkColumns + ` FROM user_links WHERE connector_id = $1 AND subject = $2`
	qListUserLinks = `SELECT ` + linkColumns + ` FROM user_links WHERE user_id = $1 ORDER BY connector_id`
	qTouchLink     = `UPDATE user_links SET last_login_at = $3 WHERE connector_id = $1 AND subject = $2`
	qDeleteLink    = `DELETE FROM user_links WHERE user_id = $1 AND connector_id = $2`

	upstreamLoginColumns = `id_hash, binding_hash, connector_id, data, created_at, expires_at`

	qInsertUpstreamLogin = `INSERT INTO upstream_logins (` + upstreamLoginColumns + `) VALUES ($1, $2, $3, $4, $5, $6)`
	// The one statement that lets only one of concurrent takes have it:
	// the others wait for its row lock and then find no row.
	qTakeUpstreamLogin = `DELETE FROM upstream_logins WHERE id_hash = $1 RETURNING ` + upstreamLoginColumns
)

func scanLink(row pgx.Row) (storage.Link, error) {
	var (
		l     storage.Link
		email *string
	)
	if err := row.Scan(&l.ConnectorID, &l.Subject, &l.UserID, &email, &l.CreatedAt, &l.LastLoginAt); err != nil {
		return storage.Link{}, err
	}
	if email != nil {
		l.Email = *email
	}
	l.CreatedAt, l.LastLoginAt = l.CreatedAt.UTC(), l.LastLoginAt.UTC()
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
	_, err = s.q(ctx).Exec(ctx, qInsertLink, l.ConnectorID, l.Subject, l.UserID, sqlstore.NullString(l.Email),
		l.CreatedAt.UTC(), l.LastLoginAt.UTC())
	if isForeignKeyViolation(err) { // the only reference is to the user
		return fmt.Errorf("postgres: create link: unknown user: %w: %w", storage.ErrNotFound, err)
	}
	return wrap("create link", err)
}

// GetLink returns the link of the connector's subject.
func (s *Store) GetLink(ctx context.Context, connectorID, subject string) (storage.Link, error) {
	l, err := scanLink(s.q(ctx).QueryRow(ctx, qGetLink, connectorID, subject))
	return l, wrap("get link", err)
}

// ListUserLinks lists the user's links ordered by connector id; empty for
// a user without any, or an unknown user.
func (s *Store) ListUserLinks(ctx context.Context, userID string) ([]storage.Link, error) {
	rows, err := s.q(ctx).Query(ctx, qListUserLinks, userID)
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
	tag, err := s.q(ctx).Exec(ctx, qTouchLink, connectorID, subject, at.UTC())
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("touch link", err)
}

// DeleteLink removes the user's link to the connector; ErrNotFound when
// there was none.
func (s *Store) DeleteLink(ctx context.Context, userID, connectorID string) error {
	tag, err := s.q(ctx).Exec(ctx, qDeleteLink, userID, connectorID)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete link", err)
}

// CreateUpstreamLogin stores a sign-in in progress; CreatedAt defaults to
// now. A hash stored already is ErrConflict.
func (s *Store) CreateUpstreamLogin(ctx context.Context, l storage.UpstreamLogin) error {
	l, err := sqlstore.NewUpstreamLogin(l, s.now)
	if err != nil {
		return wrap("create upstream login", err)
	}
	_, err = s.q(ctx).Exec(ctx, qInsertUpstreamLogin, l.IDHash, l.BindingHash, l.ConnectorID, l.Data,
		l.CreatedAt.UTC(), l.ExpiresAt.UTC())
	return wrap("create upstream login", err)
}

// TakeUpstreamLogin deletes the sign-in and returns it, in one DELETE ...
// RETURNING: of concurrent takes exactly one gets the row. ErrNotFound for
// an unknown sign-in, one taken already, or one expired at now (which is
// deleted all the same).
func (s *Store) TakeUpstreamLogin(ctx context.Context, idHash string, now time.Time) (storage.UpstreamLogin, error) {
	var l storage.UpstreamLogin
	err := s.q(ctx).QueryRow(ctx, qTakeUpstreamLogin, idHash).Scan(&l.IDHash, &l.BindingHash, &l.ConnectorID, &l.Data,
		&l.CreatedAt, &l.ExpiresAt)
	if err != nil {
		return storage.UpstreamLogin{}, wrap("take upstream login", err)
	}
	l.CreatedAt, l.ExpiresAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC()
	l, err = sqlstore.Taken(l, now)
	if err != nil {
		return storage.UpstreamLogin{}, fmt.Errorf("postgres: take upstream login: expired: %w", err)
	}
	return l, nil
}

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
