package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// problem is an RFC 9457 problem details body; Field names the offending
// input member when there is one.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Field    string `json:"field,omitempty"`
}

func writeProblemField(w http.ResponseWriter, r *http.Request, status int, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: r.URL.Path, Field: field,
	})
}

// writeProblem writes an RFC 9457 problem+json body.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	writeProblemField(w, r, status, detail, "")
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON object body into v; it writes the problem itself
// and reports whether decoding succeeded. Unknown members are ignored (a
// "roles" member in a signup is not an error, just not honoured).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, r, http.StatusUnsupportedMediaType, "The body must be application/json.")
		return false
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &tooBig):
			writeTooLarge(w, r)
		case errors.As(err, &typeErr):
			writeProblemField(w, r, http.StatusBadRequest, fmt.Sprintf("%s must be a JSON %s.", typeErr.Field, jsonKind(typeErr)), typeErr.Field)
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			writeProblem(w, r, http.StatusBadRequest, "The body is not valid JSON.")
		default:
			writeProblem(w, r, http.StatusBadRequest, "The body is not a valid JSON object.")
		}
		return false
	}
	if dec.More() {
		writeProblem(w, r, http.StatusBadRequest, "The body holds more than one JSON value.")
		return false
	}
	return true
}

func jsonKind(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	default:
		return "number"
	}
}

// writeIdentityError maps identity and storage errors to problems.
func (s *Server) writeIdentityError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *identity.ValidationError
	switch {
	case errors.As(err, &ve):
		writeProblemField(w, r, http.StatusBadRequest, ve.Field+" "+ve.Reason+".", ve.Field)
	case errors.Is(err, storage.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "No such resource.")
	default:
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
		writeProblem(w, r, http.StatusInternalServerError, "The server could not complete the request.")
	}
}

type claimsKey struct{}

func claimsFrom(ctx context.Context) *oauth.AccessClaims {
	c, _ := ctx.Value(claimsKey{}).(*oauth.AccessClaims)
	return c
}

// userAuth admits requests with a valid, unrevoked access token of a user
// (not a client_credentials token).
func (s *Server) userAuth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			writeBearerError(w, r, false)
			return
		}
		c, err := s.cfg.OAuth.VerifyAccessToken(r.Context(), tok)
		if err != nil {
			if oauth.Rejected(err) {
				writeBearerError(w, r, true)
				return
			}
			s.log.ErrorContext(r.Context(), "verify access token", "error", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "Token verification is unavailable.")
			return
		}
		if c.Username == "" {
			writeBearerError(w, r, true)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// adminAuth admits users whose token carries the admin role and who are,
// now, still enabled admins: a demotion takes effect at once, not at the
// token's expiry.
func (s *Server) adminAuth(next http.HandlerFunc) http.Handler {
	return s.userAuth(func(w http.ResponseWriter, r *http.Request) {
		c := claimsFrom(r.Context())
		forbidden := func() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authd", error="insufficient_scope", error_description="The admin role is required."`)
			writeProblem(w, r, http.StatusForbidden, "The admin role is required.")
		}
		if !slices.Contains(c.Roles, storage.RoleAdmin) {
			forbidden()
			return
		}
		u, ok := s.currentUser(w, r, c.Subject)
		if !ok {
			return
		}
		if !slices.Contains(u.Roles, storage.RoleAdmin) {
			forbidden()
			return
		}
		next(w, r)
	})
}

// currentUser loads the token's user; a deleted or disabled user is answered
// like an invalid token. It writes the error itself.
func (s *Server) currentUser(w http.ResponseWriter, r *http.Request, id string) (storage.User, bool) {
	u, err := s.cfg.Store.GetUser(r.Context(), id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || err == nil && u.Disabled:
		writeBearerError(w, r, true)
		return storage.User{}, false
	case err != nil:
		s.writeIdentityError(w, r, err)
		return storage.User{}, false
	}
	return u, true
}

// userDocument is a user as the APIs show it: never the hash.
type userDocument struct {
	ID           string     `json:"id"`
	Username     string     `json:"username"`
	Email        string     `json:"email"`
	Roles        []string   `json:"roles"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    *time.Time `json:"updated_at,omitempty"`
	Disabled     *bool      `json:"disabled,omitempty"`
	FailedLogins *int       `json:"failed_logins,omitempty"`
	LockedUntil  *time.Time `json:"locked_until,omitempty"`
}

// publicUser is what a user sees of themself.
func publicUser(u storage.User) userDocument {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userDocument{ID: u.ID, Username: u.Username, Email: u.Email, Roles: roles, CreatedAt: u.CreatedAt.UTC()}
}

// adminUser adds the account state admins manage.
func adminUser(u storage.User, now time.Time) userDocument {
	d := publicUser(u)
	up := u.UpdatedAt.UTC()
	d.UpdatedAt, d.Disabled, d.FailedLogins = &up, &u.Disabled, &u.FailedLogins
	if u.LockedUntil.After(now) {
		lu := u.LockedUntil.UTC()
		d.LockedUntil = &lu
	}
	return d
}
