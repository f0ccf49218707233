package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// clientInput is the body of POST and PATCH on clients.
type clientInput struct {
	ID         string    `json:"client_id"`
	Name       *string   `json:"name"`
	Secret     string    `json:"client_secret"`
	Public     bool      `json:"public"`
	GrantTypes *[]string `json:"grant_types"`
	Scopes     *[]string `json:"scopes"`
	Audience   *[]string `json:"audience"`
	Introspect *bool     `json:"introspect"`
	DPoPBound  *bool     `json:"dpop_bound"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Store.ListClients(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]oauth.ClientDocument, 0, len(cs))
	for _, c := range cs {
		out = append(out, oauth.Document(c, ""))
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"clients": out})
}

// createClient answers the generated (or given) secret once.
func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var in clientInput
	if !decodeJSON(w, r, &in) {
		return
	}
	c, secret, err := s.cfg.ClientHasher.NewClient(r.Context(), oauth.ClientSpec{
		ID: in.ID, Name: deref(in.Name), Secret: in.Secret, Public: in.Public, GrantTypes: deref(in.GrantTypes),
		Scopes: deref(in.Scopes), Audience: deref(in.Audience), Introspect: deref(in.Introspect),
		DPoPBound: deref(in.DPoPBound),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.cfg.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := s.cfg.Store.CreateClient(ctx, c); errors.Is(err, storage.ErrConflict) {
			return taken("client_id", err)
		} else if err != nil {
			return err
		}
		if c, err = s.cfg.Store.GetClient(ctx, c.ID); err != nil {
			return err
		}
		return s.record(ctx, r, eventClientCreated, "", map[string]any{"client": c.ID})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/admin/clients/"+url.PathEscape(c.ID))
	writeJSONStatus(w, http.StatusCreated, oauth.Document(c, secret))
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.GetClient(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, oauth.Document(c, ""))
}

// patchClient changes name, grant_types, scopes, audience, introspect or
// dpop_bound; the
// id, the secret and whether the client is public stay.
func (s *Server) patchClient(w http.ResponseWriter, r *http.Request) {
	var in clientInput
	if !decodeJSON(w, r, &in) {
		return
	}
	id := mux.Vars(r)["id"]
	var c storage.Client
	err := s.cfg.Store.InTx(r.Context(), func(ctx context.Context) error {
		var err error
		c, err = s.cfg.Store.UpdateClient(ctx, id, func(x *storage.Client) error {
			if in.Name != nil {
				x.Name = *in.Name
			}
			if in.GrantTypes != nil {
				x.GrantTypes = *in.GrantTypes
			}
			if in.Scopes != nil {
				x.Scopes = *in.Scopes
			}
			if in.Audience != nil {
				x.Audience = *in.Audience
			}
			if in.Introspect != nil {
				x.Introspect = *in.Introspect
			}
			if in.DPoPBound != nil {
				x.DPoPBound = *in.DPoPBound
			}
			return oauth.ClientSpec{ID: x.ID, Name: x.Name, Public: x.Public, GrantTypes: x.GrantTypes,
				Scopes: x.Scopes, Audience: x.Audience}.Validate()
		})
		if err != nil {
			return err
		}
		return s.record(ctx, r, eventClientUpdated, "", map[string]any{"client": id})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, oauth.Document(c, ""))
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	err := s.cfg.OAuth.DeleteClient(r.Context(), id, func(ctx context.Context) error {
		return s.record(ctx, r, eventClientDeleted, "", map[string]any{"client": id})
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
