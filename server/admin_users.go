package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

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
	admin, m := s.adminMeta(r)
	if err := s.cfg.Identity.DeleteUser(r.Context(), mux.Vars(r)["id"], admin, m, s.cfg.OAuth); err != nil {
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
