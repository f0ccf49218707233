package sqlite

import (
	"context"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const clientColumns = `id, name, secret_hash, public, grant_types, scopes, audience, introspect, created_at, dpop_bound,
redirect_uris, post_logout_redirect_uris, first_party`

const (
	qInsertClient = `INSERT INTO clients (` + clientColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qGetClient    = `SELECT ` + clientColumns + ` FROM clients WHERE id = ?`
	qListClients  = `SELECT ` + clientColumns + ` FROM clients ORDER BY id`
	qUpdateClient = `UPDATE clients SET name = ?, secret_hash = ?, public = ?, grant_types = ?, scopes = ?,
audience = ?, introspect = ?, dpop_bound = ?, redirect_uris = ?, post_logout_redirect_uris = ?, first_party = ?
WHERE id = ?`
	qDeleteClient = `DELETE FROM clients WHERE id = ?`
)

func scanClient(row scanner) (storage.Client, error) {
	var (
		c                       storage.Client
		grantTypes, scopes, aud string
		redirects, postLogout   string
		createdAt               int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &grantTypes, &scopes, &aud,
		&c.Introspect, &createdAt, &c.DPoPBound, &redirects, &postLogout, &c.FirstParty); err != nil {
		return storage.Client{}, err
	}
	for _, l := range []struct {
		to   *[]string
		from string
	}{
		{&c.GrantTypes, grantTypes}, {&c.Scopes, scopes}, {&c.Audience, aud},
		{&c.RedirectURIs, redirects}, {&c.PostLogoutRedirectURIs, postLogout},
	} {
		var err error
		if *l.to, err = parseList(l.from); err != nil {
			return storage.Client{}, err
		}
	}
	c.CreatedAt = fromNanos(createdAt)
	return c, nil
}

// CreateClient stores a new client; CreatedAt defaults to now.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	_, err := s.q(ctx).ExecContext(ctx, qInsertClient, c.ID, c.Name, sqlstore.NullBytes(c.SecretHash), c.Public,
		jsonList(c.GrantTypes), jsonList(c.Scopes), jsonList(c.Audience), c.Introspect, nanos(c.CreatedAt), c.DPoPBound,
		jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), c.FirstParty)
	return wrap("create client", err)
}

// GetClient returns the client with id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.q(ctx).QueryRowContext(ctx, qGetClient, id))
	return c, wrap("get client", err)
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.q(ctx).QueryContext(ctx, qListClients)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	cs, err := collect(rows, scanClient)
	return cs, wrap("list clients", err)
}

// UpdateClient applies fn and writes the result in one transaction. The id
// and creation time cannot change.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	var c storage.Client
	err := s.withTx(ctx, func(q querier) error {
		var err error
		if c, err = scanClient(q.QueryRowContext(ctx, qGetClient, id)); err != nil {
			return err
		}
		created := c.CreatedAt
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.CreatedAt = id, created
		_, err = q.ExecContext(ctx, qUpdateClient, c.Name, sqlstore.NullBytes(c.SecretHash), c.Public,
			jsonList(c.GrantTypes), jsonList(c.Scopes), jsonList(c.Audience), c.Introspect, c.DPoPBound,
			jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), c.FirstParty, id)
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
	return wrap("delete client", affected(s.q(ctx).ExecContext(ctx, qDeleteClient, id)))
}
