// Package clients holds the rules for OAuth clients: what a registration may
// hold, the secret (generated when none is given, stored only as a keyed
// hash), and the changes an admin makes. The admin API (server) and the
// operator CLI (authd clients ...) both go through its Service, so a change
// made either way has the same checks and records the same event, in the
// transaction of the change.
package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// ErrIDTaken is returned by Create when a client with the id exists already.
// The error returned wraps storage.ErrConflict too.
var ErrIDTaken = errors.New("clients: client id already taken")

// Store is what the service needs from storage.
type Store interface {
	storage.Clients
	storage.Transactor
}

// Recorder records security events in the caller's transaction
// (events.Recorder).
type Recorder interface {
	Record(ctx context.Context, e events.Event) error
}

// Hasher hashes a client secret as client authentication compares it
// (server/oauth's SecretHasher, keyed by AUTHD_SECRET).
type Hasher interface {
	Hash(ctx context.Context, secret []byte) ([]byte, error)
}

// Revoker revokes, in the transaction of ctx, every access token issued to
// a client until now. server/oauth's Provider is one: it knows how long
// tokens live, and so how long the revocation must be kept.
type Revoker interface {
	RevokeClient(ctx context.Context, id string) error
}

// Meta describes where an admin's request came from, for the events.
type Meta struct {
	ClientID string
	IP       string
}

// Options configure a Service.
type Options struct {
	Hasher Hasher // required
	// GrantTypes are the grants the token endpoint supports
	// (oauth.SupportedGrantTypes); a client may have only these. Required.
	GrantTypes []string
}

// Service registers, changes and deletes OAuth clients.
type Service struct {
	store  Store
	rec    Recorder
	hasher Hasher
	grants []string
}

// NewService returns a service on store that records events with rec.
func NewService(store Store, rec Recorder, opts Options) (*Service, error) {
	if store == nil || rec == nil || opts.Hasher == nil || len(opts.GrantTypes) == 0 {
		return nil, errors.New("clients: a store, a recorder, a hasher and the supported grant types are required")
	}
	return &Service{store: store, rec: rec, hasher: opts.Hasher, grants: slices.Clone(opts.GrantTypes)}, nil
}

// Create validates spec (a *SpecError lists every problem), generates a
// secret when a confidential client has none, and in one transaction stores
// the client (only the secret's hash) and records auth.client_created
// naming admin. It returns the stored client and the plain secret (empty for
// a public client), to be shown once. An id in use is ErrIDTaken.
func (s *Service) Create(ctx context.Context, spec Spec, admin string, m Meta) (storage.Client, string, error) {
	c, secret, err := spec.Record(ctx, s.hasher, s.grants)
	if err != nil {
		return storage.Client{}, "", err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateClient(ctx, c); errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("%w: %w", ErrIDTaken, err)
		} else if err != nil {
			return err
		}
		var err error
		if c, err = s.store.GetClient(ctx, c.ID); err != nil {
			return err
		}
		return s.record(ctx, events.ClientCreated, c.ID, admin, m)
	})
	if err != nil {
		return storage.Client{}, "", fmt.Errorf("clients: create client: %w", err)
	}
	return c, secret, nil
}

// Get returns the client with id (storage.ErrNotFound when there is none).
func (s *Service) Get(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, fmt.Errorf("clients: get client: %w", err)
	}
	return c, nil
}

// List returns every client, ordered by id.
func (s *Service) List(ctx context.Context) ([]storage.Client, error) {
	cs, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("clients: list clients: %w", err)
	}
	return cs, nil
}

// Change is an admin's change to a client; nil fields stay as they are. The
// id, the secret and whether the client is public never change.
type Change struct {
	Name       *string
	GrantTypes *[]string
	Scopes     *[]string
	Audience   *[]string
	Introspect *bool
	DPoPBound  *bool
	// RedirectURIs and PostLogoutRedirectURIs replace the lists (repeats
	// dropped); an empty list clears one.
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	FirstParty             *bool
}

// Update applies ch to the client in one transaction that also records
// auth.client_updated naming admin. The changed client must still be valid
// (a *SpecError otherwise, and nothing is written); an unknown id is
// storage.ErrNotFound.
func (s *Service) Update(ctx context.Context, id string, ch Change, admin string, m Meta) (storage.Client, error) {
	var c storage.Client
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		c, err = s.store.UpdateClient(ctx, id, func(x *storage.Client) error {
			if ch.Name != nil {
				x.Name = *ch.Name
			}
			if ch.GrantTypes != nil {
				x.GrantTypes = *ch.GrantTypes
			}
			if ch.Scopes != nil {
				x.Scopes = *ch.Scopes
			}
			if ch.Audience != nil {
				x.Audience = *ch.Audience
			}
			if ch.Introspect != nil {
				x.Introspect = *ch.Introspect
			}
			if ch.DPoPBound != nil {
				x.DPoPBound = *ch.DPoPBound
			}
			if ch.RedirectURIs != nil {
				x.RedirectURIs = dedupe(*ch.RedirectURIs)
			}
			if ch.PostLogoutRedirectURIs != nil {
				x.PostLogoutRedirectURIs = dedupe(*ch.PostLogoutRedirectURIs)
			}
			if ch.FirstParty != nil {
				x.FirstParty = *ch.FirstParty
			}
			return Spec{ID: x.ID, Name: x.Name, Public: x.Public, GrantTypes: x.GrantTypes,
				Scopes: x.Scopes, Audience: x.Audience, RedirectURIs: x.RedirectURIs,
				PostLogoutRedirectURIs: x.PostLogoutRedirectURIs}.validate(s.grants)
		})
		if err != nil {
			return err
		}
		return s.record(ctx, events.ClientUpdated, id, admin, m)
	})
	if err != nil {
		return storage.Client{}, fmt.Errorf("clients: update client: %w", err)
	}
	return c, nil
}

// Delete deletes the client in one transaction that also revokes, through
// rv (required), every access token issued to it until now, and records
// auth.client_deleted naming admin. An unknown id is storage.ErrNotFound.
func (s *Service) Delete(ctx context.Context, id, admin string, m Meta, rv Revoker) error {
	if rv == nil {
		return errors.New("clients: delete client: needs a Revoker")
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		// Its refresh tokens go with its row; its access tokens are denied.
		if err := s.store.DeleteClient(ctx, id); err != nil {
			return err
		}
		if err := rv.RevokeClient(ctx, id); err != nil {
			return err
		}
		return s.record(ctx, events.ClientDeleted, id, admin, m)
	})
	if err != nil {
		return fmt.Errorf("clients: delete client: %w", err)
	}
	return nil
}

// record writes an admin's change to client id as an event of type t.
func (s *Service) record(ctx context.Context, t events.Type, id, admin string, m Meta) error {
	return s.rec.Record(ctx, events.Event{
		Type: t, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"client": id, "admin": admin},
	})
}
