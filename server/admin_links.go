package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// Links lists and removes users' links to upstream identities
// (identity.Federation). Without it the admin API serves no link routes and
// userinfo's email_verified is false.
type Links interface {
	// Links lists the user's links; storage.ErrNotFound for an unknown user.
	Links(ctx context.Context, userID string) ([]storage.Link, error)
	// Unlink removes the user's link to the connector, recording admin;
	// storage.ErrNotFound when there is none.
	Unlink(ctx context.Context, userID, connectorID, admin string, m identity.Meta) error
	// EmailVerified reports whether an identity provider vouched for the
	// user's current email (userinfo's email_verified).
	EmailVerified(ctx context.Context, u storage.User) (bool, error)
}

// linkDocument is a link as the admin API and `authd users links` show it.
type linkDocument struct {
	ConnectorID string    `json:"connector_id"`
	Subject     string    `json:"subject"`
	Email       string    `json:"email,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	LastLoginAt time.Time `json:"last_login_at"`
}

// LinksDocument is the body of GET /api/v1/admin/users/{id}/links for ls;
// the CLI prints the same.
func LinksDocument(ls []storage.Link) map[string]any {
	out := make([]linkDocument, 0, len(ls))
	for _, l := range ls {
		out = append(out, linkDocument{
			ConnectorID: l.ConnectorID, Subject: l.Subject, Email: l.Email,
			CreatedAt: l.CreatedAt.UTC(), LastLoginAt: l.LastLoginAt.UTC(),
		})
	}
	return map[string]any{"links": out}
}

// listLinks serves GET /api/v1/admin/users/{id}/links.
func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) {
	ls, err := s.cfg.Links.Links(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, LinksDocument(ls))
}

// deleteLink serves DELETE /api/v1/admin/users/{id}/links/{connector_id}:
// the user can no longer sign in through that upstream identity (until it
// is linked again); their sessions and tokens stay.
func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request) {
	admin, m := s.adminMeta(r)
	v := mux.Vars(r)
	if err := s.cfg.Links.Unlink(r.Context(), v["id"], v["connector_id"], admin, m); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
