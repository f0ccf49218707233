package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const (
	userColumns = sqlstore.UserColumns

	qInsertUser = `INSERT INTO users (` + userColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	qGetUser    = `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	// A username match wins over an email match.
	qGetUserByLogin = `SELECT ` + userColumns + ` FROM users WHERE username = $1 OR lower(email) = lower($2)
ORDER BY username = $1 DESC LIMIT 1`
	qLockUser   = qGetUser + ` FOR UPDATE`
	qUpdateUser = `UPDATE users SET username = $2, email = $3, password_hash = $4, roles = $5, disabled = $6,
failed_logins = $7, pending_logins = $8, locked_until = $9, updated_at = $10 WHERE id = $1`
	qDeleteUser = `DELETE FROM users WHERE id = $1`
)

func scanUser(row pgx.Row) (storage.User, error) {
	var (
		u           storage.User
		email       *string
		lockedUntil *time.Time
	)
	if err := row.Scan(&u.ID, &u.Username, &email, &u.PasswordHash, &u.Roles, &u.Disabled,
		&u.FailedLogins, &u.PendingLogins, &lockedUntil, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return storage.User{}, err
	}
	if email != nil {
		u.Email = *email
	}
	u.LockedUntil = utc(lockedUntil)
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

// CreateUser stores a new user; the username is lowercased. CreatedAt and
// UpdatedAt default to now.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	u = sqlstore.NewUser(u, s.now)
	_, err := s.q(ctx).Exec(ctx, qInsertUser, u.ID, u.Username, sqlstore.NullString(u.Email), u.PasswordHash,
		orEmpty(u.Roles), u.Disabled, u.FailedLogins, u.PendingLogins, nullTime(u.LockedUntil), u.CreatedAt.UTC(),
		u.UpdatedAt.UTC())
	return wrap("create user", err)
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.q(ctx).QueryRow(ctx, qGetUser, id))
	return u, wrap("get user", err)
}

// GetUserByLogin finds a user by username or email, case-insensitively.
func (s *Store) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	u, err := scanUser(s.q(ctx).QueryRow(ctx, qGetUserByLogin, strings.ToLower(login), login))
	return u, wrap("get user by login", err)
}

// UpdateUser locks the row, applies fn and writes the result; UpdatedAt is
// set to now. The id cannot change. When no user has id, fn is not called
// but the UPDATE still runs, matching no row (id = NULL), so that a miss
// takes the round trips of a hit; the transaction stays usable.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	var u storage.User
	err := s.withTx(ctx, func(q *pipeTx) error {
		var err error
		if u, err = scanUser(q.QueryRow(ctx, qLockUser, id)); errors.Is(err, pgx.ErrNoRows) {
			if _, err := q.Exec(ctx, qUpdateUser, nil, "", nil, "", orEmpty(nil), false, 0, 0, nil, s.now().UTC()); err != nil {
				return err
			}
			return pgx.ErrNoRows
		} else if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u = sqlstore.UpdatedUser(u, id, s.now())
		_, err = q.Exec(ctx, qUpdateUser, id, u.Username, sqlstore.NullString(u.Email), u.PasswordHash, orEmpty(u.Roles),
			u.Disabled, u.FailedLogins, u.PendingLogins, nullTime(u.LockedUntil), u.UpdatedAt)
		return err
	})
	if err != nil {
		return storage.User{}, wrap("update user", err)
	}
	return u, nil
}

// UpdateUserAsyncCommit is UpdateUser in a transaction of its own with
// synchronous_commit off: the commit returns before the WAL is flushed, so
// a crash may lose it, but the next synchronous commit flushes it too (the
// WAL is flushed in order). Inside a transaction it is UpdateUser.
func (s *Store) UpdateUserAsyncCommit(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	if s.tx(ctx) != nil {
		return s.UpdateUser(ctx, id, fn)
	}
	// BEGIN and SET LOCAL go out with the transaction's first statement.
	tx := newPipeTx(s.pool, "BEGIN", "SET LOCAL synchronous_commit TO off")
	defer tx.Rollback(ctx) // no-op after Commit
	u, err := s.UpdateUser(s.withTxState(ctx, tx), id, fn)
	if err != nil {
		return storage.User{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return storage.User{}, wrap("update user: commit", err)
	}
	return u, nil
}

// DeleteUser deletes the user; ErrNotFound if there was none.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, qDeleteUser, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete user", err)
}

// ListUsers returns a page of users ordered by id; next is the cursor of the
// following page, empty on the last one.
func (s *Store) ListUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, string, error) {
	page := s.dialect.UserPage(q)
	rows, err := s.q(ctx).Query(ctx, page.Query, page.Args...)
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

// collect scans every row with scan and closes rows.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	return sqlstore.Collect(rows, func(row sqlstore.Scanner) (T, error) { return scan(row) })
}
