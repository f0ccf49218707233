package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// Admin event types (audit trail and outbox), beside those of API.md.
const (
	eventUserUpdated   = events.UserUpdated
	eventUserDeleted   = events.UserDeleted
	eventClientCreated = events.ClientCreated
	eventClientUpdated = events.ClientUpdated
	eventClientDeleted = events.ClientDeleted
)

func (s *Server) adminMeta(r *http.Request) (string, identity.Meta) {
	c := claimsFrom(r.Context())
	return c.Subject, identity.Meta{ClientID: c.ClientID, IP: s.clientIP(r)}
}

// record writes an admin action's event; data names the acting admin.
func (s *Server) record(ctx context.Context, r *http.Request, t events.Type, subject string, data map[string]any) error {
	admin, m := s.adminMeta(r)
	if data == nil {
		data = map[string]any{}
	}
	data["admin"] = admin
	return s.cfg.Recorder.Record(ctx, events.Event{Type: t, Subject: subject, ClientID: m.ClientID, IP: m.IP, Data: data})
}

func queryInt(r *http.Request, name string, def, max int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, false
	}
	return n, true
}

// listUsers serves GET /api/v1/admin/users?limit=&cursor=&q=.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(r, "limit", 50, 500)
	if !ok {
		writeProblemField(w, r, http.StatusBadRequest, "limit must be an integer from 1 to 500.", "limit")
		return
	}
	q := r.URL.Query()
	if len(q.Get("q")) > 256 || len(q.Get("cursor")) > 256 {
		writeProblem(w, r, http.StatusBadRequest, "q and cursor must be at most 256 characters.")
		return
	}
	users, next, err := s.cfg.Store.ListUsers(r.Context(), storage.UserQuery{Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.cfg.Now()
	out := make([]userDocument, 0, len(users))
	for _, u := range users {
		out = append(out, adminUser(u, now))
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"users": out, "next_cursor": next})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.cfg.Store.GetUser(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, adminUser(u, s.cfg.Now()))
}

// patchUser serves PATCH /api/v1/admin/users/{id} with roles and/or disabled
// through identity.Service.UpdateUser (as `authd users` does): disabling
// revokes the user's tokens in the same transaction.
func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Roles    *[]string `json:"roles"`
		Disabled *bool     `json:"disabled"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Roles == nil && in.Disabled == nil {
		writeProblem(w, r, http.StatusBadRequest, "Give roles and/or disabled.")
		return
	}
	admin, m := s.adminMeta(r)
	u, err := s.cfg.Identity.UpdateUser(r.Context(), mux.Vars(r)["id"],
		identity.UserChange{Roles: in.Roles, Disabled: in.Disabled}, admin, m, s.cfg.OAuth)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, adminUser(u, s.cfg.Now()))
}

// deleteUser serves DELETE /api/v1/admin/users/{id}; the user's tokens die with it.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if admin, _ := s.adminMeta(r); admin == id {
		writeProblem(w, r, http.StatusConflict, "An admin cannot delete their own account.")
		return
	}
	err := s.cfg.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := s.cfg.OAuth.RevokeSubject(ctx, id, ""); err != nil {
			return err
		}
		if err := s.cfg.Store.DeleteUser(ctx, id); err != nil {
			return err
		}
		return s.record(ctx, r, eventUserDeleted, id, nil)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	_, m := s.adminMeta(r)
	u, err := s.cfg.Identity.Unlock(r.Context(), mux.Vars(r)["id"], m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, adminUser(u, s.cfg.Now()))
}

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

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := s.cfg.Keys.Keys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"keys": ks})
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	k, err := s.cfg.Keys.Rotate(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r.Context(), r, events.KeyRotated, "", map[string]any{"kid": k.ID, "alg": k.Alg}); err != nil {
		s.log.ErrorContext(r.Context(), "record key rotation", "error", err)
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"kid": k.ID, "alg": k.Alg, "state": k.State})
}

// audit serves GET /api/v1/admin/audit?user_id=&type=&since=&limit=, newest first.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryInt(r, "limit", 100, 1000)
	if !ok {
		writeProblemField(w, r, http.StatusBadRequest, "limit must be an integer from 1 to 1000.", "limit")
		return
	}
	f := storage.AuditFilter{UserID: q.Get("user_id"), Type: q.Get("type"), Limit: limit}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeProblemField(w, r, http.StatusBadRequest, "since must be an RFC 3339 time.", "since")
			return
		}
		f.Since = t
	}
	entries, err := s.cfg.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type entry struct {
		ID       int64     `json:"id"`
		Time     time.Time `json:"time"`
		Type     string    `json:"type"`
		UserID   string    `json:"user_id,omitempty"`
		ClientID string    `json:"client_id,omitempty"`
		IP       string    `json:"ip,omitempty"`
		Data     rawJSON   `json:"data"`
	}
	out := make([]entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, entry{e.ID, e.Time.UTC(), e.Type, e.UserID, e.ClientID, e.IP, rawJSON(e.Data)})
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"entries": out})
}

// rawJSON embeds stored JSON as is ({} when empty).
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("{}"), nil
	}
	return slices.Clone(j), nil
}
