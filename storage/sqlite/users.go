package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const (
	userColumns = sqlstore.UserColumns

	qInsertUser = `INSERT INTO users (id, username, email, email_lower, password_hash, roles, disabled, failed_logins,
pending_logins, locked_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qGetUser = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	// A username match wins over an email match.
	qGetUserByLogin = `SELECT ` + userColumns + ` FROM users WHERE username = ?1 OR email_lower = ?1
ORDER BY username = ?1 DESC LIMIT 1`
	qUpdateUser = `UPDATE users SET username = ?, email = ?, email_lower = ?, password_hash = ?, roles = ?, disabled = ?,
failed_logins = ?, pending_logins = ?, locked_until = ?, updated_at = ? WHERE id = ?`
	qDeleteUser = `DELETE FROM users WHERE id = ?`
)

func scanUser(row scanner) (storage.User, error) {
	var (
		u                    storage.User
		email                sql.NullString
		roles                string
		locked               sql.NullInt64
		createdAt, updatedAt int64
	)
	if err := row.Scan(&u.ID, &u.Username, &email, &u.PasswordHash, &roles, &u.Disabled,
		&u.FailedLogins, &u.PendingLogins, &locked, &createdAt, &updatedAt); err != nil {
		return storage.User{}, err
	}
	var err error
	if u.Roles, err = parseList(roles); err != nil {
		return storage.User{}, err
	}
	u.Email = email.String
	u.LockedUntil = fromNullNanos(locked)
	u.CreatedAt, u.UpdatedAt = fromNanos(createdAt), fromNanos(updatedAt)
	return u, nil
}

// CreateUser stores a new user; the username is lowercased. CreatedAt and
// UpdatedAt default to now.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	u = sqlstore.NewUser(u, s.now)
	_, err := s.q(ctx).ExecContext(ctx, qInsertUser, u.ID, u.Username, sqlstore.NullString(u.Email),
		sqlstore.NullString(strings.ToLower(u.Email)), u.PasswordHash, jsonList(u.Roles), u.Disabled, u.FailedLogins,
		u.PendingLogins, nullNanos(u.LockedUntil), nanos(u.CreatedAt), nanos(u.UpdatedAt))
	return wrap("create user", err)
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.q(ctx).QueryRowContext(ctx, qGetUser, id))
	return u, wrap("get user", err)
}

// GetUserByLogin finds a user by username or email, case-insensitively.
func (s *Store) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	u, err := scanUser(s.q(ctx).QueryRowContext(ctx, qGetUserByLogin, strings.ToLower(login)))
	return u, wrap("get user by login", err)
}

// UpdateUser applies fn and writes the result in one (immediate, hence
// exclusive) transaction; UpdatedAt is set to now. The id cannot change.
// When no user has id, fn is not called but the UPDATE still runs, matching
// no row (id = NULL), so that a miss takes the steps of a hit; the
// transaction stays usable.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	var u storage.User
	err := s.withTx(ctx, func(q querier) error {
		var err error
		if u, err = scanUser(q.QueryRowContext(ctx, qGetUser, id)); errors.Is(err, sql.ErrNoRows) {
			if _, err := q.ExecContext(ctx, qUpdateUser, "", nil, nil, "", "[]", false, 0, 0, nil,
				nanos(s.now()), nil); err != nil {
				return err
			}
			return sql.ErrNoRows
		} else if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u = sqlstore.UpdatedUser(u, id, s.now())
		_, err = q.ExecContext(ctx, qUpdateUser, u.Username, sqlstore.NullString(u.Email), sqlstore.NullString(strings.ToLower(u.Email)),
			u.PasswordHash, jsonList(u.Roles), u.Disabled, u.FailedLogins, u.PendingLogins, nullNanos(u.LockedUntil),
			nanos(u.UpdatedAt), id)
		return err
	})
	if err != nil {
		return storage.User{}, wrap("update user", err)
	}
	return u, nil
}

// UpdateUserAsyncCommit is UpdateUser: in WAL mode with synchronous=NORMAL
// a commit never waits for the disk (a power loss may lose the last ones).
func (s *Store) UpdateUserAsyncCommit(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	return s.UpdateUser(ctx, id, fn)
}

// DeleteUser deletes the user; ErrNotFound if there was none.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return wrap("delete user", affected(s.q(ctx).ExecContext(ctx, qDeleteUser, id)))
}

// ListUsers returns a page of users ordered by id; next is the cursor of the
// following page, empty on the last one.
func (s *Store) ListUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, string, error) {
	page := s.dialect.UserPage(q)
	rows, err := s.q(ctx).QueryContext(ctx, page.Query, page.Args...)
	if err != nil {
		return nil, "", wrap("list users", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, "", wrap("list users", err)
	}
	users, next := page.Cut(users)
	return users, next, nil
}

// affected turns a write that changed no row into sql.ErrNoRows.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}
