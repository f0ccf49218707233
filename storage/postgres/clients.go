package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const clientColumns = `id, name, secret_hash, public, grant_types, scopes, audience, introspect, created_at, dpop_bound,
redirect_uris, post_logout_redirect_uris, first_party`

const (
	qInsertClient = `INSERT INTO clients (` + clientColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	qGetClient    = `SELECT ` + clientColumns + ` FROM clients WHERE id = $1`
	qListClients  = `SELECT ` + clientColumns + ` FROM clients ORDER BY id`
	qLockClient   = qGetClient + ` FOR UPDATE`
	qUpdateClient = `UPDATE clients SET name = $2, secret_hash = $3, public = $4, grant_types = $5, scopes = $6,
audience = $7, introspect = $8, dpop_bound = $9, redirect_uris = $10, post_logout_redirect_uris = $11, first_party = $12
WHERE id = $1`
	qDeleteClient = `DELETE FROM clients WHERE id = $1`
)

func scanClient(row pgx.Row) (storage.Client, error) {
	var c storage.Client
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.GrantTypes, &c.Scopes, &c.Audience,
		&c.Introspect, &c.CreatedAt, &c.DPoPBound, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.FirstParty); err != nil {
		return storage.Client{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// CreateClient stores a new client; CreatedAt defaults to now.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	_, err := s.q(ctx).Exec(ctx, qInsertClient, c.ID, c.Name, sqlstore.NullBytes(c.SecretHash), c.Public,
		orEmpty(c.GrantTypes), orEmpty(c.Scopes), orEmpty(c.Audience), c.Introspect, c.CreatedAt.UTC(), c.DPoPBound,
		orEmpty(c.RedirectURIs), orEmpty(c.PostLogoutRedirectURIs), c.FirstParty)
	return wrap("create client", err)
}

// GetClient returns the client with id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.q(ctx).QueryRow(ctx, qGetClient, id))
	return c, wrap("get client", err)
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.q(ctx).Query(ctx, qListClients)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	cs, err := collect(rows, scanClient)
	return cs, wrap("list clients", err)
}

// UpdateClient locks the row, applies fn and writes the result. The id and
// creation time cannot change.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	var c storage.Client
	err := s.withTx(ctx, func(q *pipeTx) error {
		var err error
		if c, err = scanClient(q.QueryRow(ctx, qLockClient, id)); err != nil {
			return err
		}
		created := c.CreatedAt
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.CreatedAt = id, created
		_, err = q.Exec(ctx, qUpdateClient, id, c.Name, sqlstore.NullBytes(c.SecretHash), c.Public,
			orEmpty(c.GrantTypes), orEmpty(c.Scopes), orEmpty(c.Audience), c.Introspect, c.DPoPBound,
			orEmpty(c.RedirectURIs), orEmpty(c.PostLogoutRedirectURIs), c.FirstParty)
		return err
	})
	if err != nil {
		return storage.Client{}, wrap("update client", err)
	}
	return c, nil
}

// DeleteClient deletes the client, its refresh tokens, authorization codes
// and consents; ErrNotFound if there was none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, qDeleteClient, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete client", err)
}
