package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// signup serves POST /api/v1/signup. Everyone signs up with the role user;
// a roles member in the body is ignored.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	u, err := s.cfg.Identity.CreateUser(r.Context(), identity.NewUser{Username: in.Username, Email: in.Email, Password: in.Password},
		identity.Meta{IP: s.clientIP(r)})
	if errors.Is(err, storage.ErrConflict) {
		field := "email"
		if _, gerr := s.cfg.Store.GetUserByLogin(r.Context(), identity.NormalizeUsername(in.Username)); gerr == nil {
			field = "username"
		}
		err = taken(field, err)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/me")
	writeJSONStatus(w, http.StatusCreated, publicUser(u))
}

// me serves GET /api/v1/me.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	u, ok := s.currentUser(w, r, claimsFrom(r.Context()).Subject)
	if !ok {
		return
	}
	writeJSONStatus(w, http.StatusOK, publicUser(u))
}

// changePassword serves POST /api/v1/me/password: every other refresh family
// of the user is revoked with the change; the caller's own keeps working.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Current == "" {
		writeProblemField(w, r, http.StatusBadRequest, "current_password is required.", "current_password")
		return
	}
	c := claimsFrom(r.Context())
	err := s.cfg.Identity.ChangePassword(r.Context(), c.Subject, in.Current, in.New, identity.Meta{ClientID: c.ClientID, IP: s.clientIP(r)},
		func(ctx context.Context) error { return s.cfg.OAuth.RevokeSubject(ctx, c.Subject, c.Family) })
	if ve := (*identity.ValidationError)(nil); errors.As(err, &ve) && ve.Field == identity.FieldPassword {
		err = &identity.ValidationError{Field: "new_password", Reason: ve.Reason} // this body names it so
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logout serves POST /api/v1/logout: every refresh token of the caller and
// the presented access token are revoked.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	c := claimsFrom(r.Context())
	if err := s.cfg.OAuth.Logout(r.Context(), c, s.clientIP(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
