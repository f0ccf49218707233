package server

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/authd/authd/clients"
)

// The client handlers decode, call clients.Service (as `authd clients` does)
// and write: the rules, the transaction and the event are the service's.

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
	// Browser sign-in: where responses may go, and no consent page.
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	FirstParty             *bool     `json:"first_party"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// clientMeta names the acting admin and where the request came from.
func (s *Server) clientMeta(r *http.Request) (string, clients.Meta) {
	admin, m := s.adminMeta(r)
	return admin, clients.Meta{ClientID: m.ClientID, IP: m.IP}
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Clients.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]clients.Document, 0, len(cs))
	for _, c := range cs {
		out = append(out, clients.DocumentOf(c, ""))
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"clients": out})
}

// createClient answers the generated (or given) secret once.
func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var in clientInput
	if !decodeJSON(w, r, &in) {
		return
	}
	admin, m := s.clientMeta(r)
	c, secret, err := s.cfg.Clients.Create(r.Context(), clients.Spec{
		ID: in.ID, Name: deref(in.Name), Secret: in.Secret, Public: in.Public, GrantTypes: deref(in.GrantTypes),
		Scopes: deref(in.Scopes), Audience: deref(in.Audience), Introspect: deref(in.Introspect),
		DPoPBound: deref(in.DPoPBound), RedirectURIs: deref(in.RedirectURIs),
		PostLogoutRedirectURIs: deref(in.PostLogoutRedirectURIs), FirstParty: deref(in.FirstParty),
	}, admin, m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/admin/clients/"+url.PathEscape(c.ID))
	writeJSONStatus(w, http.StatusCreated, clients.DocumentOf(c, secret))
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Clients.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, clients.DocumentOf(c, ""))
}

// patchClient changes name, grant_types, scopes, audience, introspect,
// dpop_bound, redirect_uris, post_logout_redirect_uris or first_party; the
// id, the secret and whether the client is public stay.
func (s *Server) patchClient(w http.ResponseWriter, r *http.Request) {
	var in clientInput
	if !decodeJSON(w, r, &in) {
		return
	}
	admin, m := s.clientMeta(r)
	c, err := s.cfg.Clients.Update(r.Context(), mux.Vars(r)["id"], clients.Change{
		Name: in.Name, GrantTypes: in.GrantTypes, Scopes: in.Scopes, Audience: in.Audience,
		Introspect: in.Introspect, DPoPBound: in.DPoPBound, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, FirstParty: in.FirstParty,
	}, admin, m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, clients.DocumentOf(c, ""))
}

// deleteClient serves DELETE /api/v1/admin/clients/{id}; every access token
// issued to the client is revoked with it.
func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	admin, m := s.clientMeta(r)
	if err := s.cfg.Clients.Delete(r.Context(), mux.Vars(r)["id"], admin, m, s.cfg.OAuth); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
