package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// authd's own API is a resource server (RFC 9068 §4, RFC 8725 §3.9): it
// accepts an access token only when the token was minted for authd itself
// (its aud holds the issuer URL) or for the very client presenting it (its
// aud holds its own client_id, the default audience of a token requested
// without one). A token minted for another service (aud: orders) is refused
// even though authd signed it: that service, or anyone reading its logs,
// could otherwise replay it against authd's API.
func (s *Server) forAuthd(c *oauth.AccessClaims) bool {
	return slices.Contains(c.Audience, s.cfg.Issuer) || slices.Contains(c.Audience, c.ClientID)
}

type claimsKey struct{}

func claimsFrom(ctx context.Context) *oauth.AccessClaims {
	c, _ := ctx.Value(claimsKey{}).(*oauth.AccessClaims)
	return c
}

// userAuth admits requests to authd's API with a valid, unrevoked access
// token of a user, minted for authd (forAuthd); a client_credentials token
// is 403 insufficient_scope.
func (s *Server) userAuth(next http.HandlerFunc) http.Handler {
	return s.bearerAuth(true, next)
}

// userinfoAuth admits a user's valid, unrevoked access token whatever its
// audience: OIDC Core §5.3 serves the claims the token's scope grants to the
// client that holds it (as Hydra and Keycloak do).
func (s *Server) userinfoAuth(next http.HandlerFunc) http.Handler {
	return s.bearerAuth(false, next)
}

func (s *Server) bearerAuth(forAPI bool, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := accessToken(r)
		if !ok {
			writeBearerError(w, r, false)
			return
		}
		c, err := s.cfg.OAuth.VerifyAccessToken(r.Context(), tok)
		if err != nil {
			if oauth.Rejected(err) {
				writeTokenError(w, r, scheme, "invalid_token")
				return
			}
			s.log.ErrorContext(r.Context(), "verify access token", "error", err)
			writeUnavailable(w, r, "Token verification is unavailable.")
			return
		}
		// RFC 9449 §7: a DPoP-bound token only with its proof, never as Bearer.
		switch {
		case scheme == schemeBearer && c.Confirmation != nil:
			writeTokenError(w, r, scheme, "invalid_token")
			return
		case scheme == schemeDPoP:
			if err := s.cfg.OAuth.ResourceProof(r, tok, c); errors.Is(err, oauth.ErrDPoPProof) {
				writeTokenError(w, r, scheme, "invalid_dpop_proof")
				return
			} else if err != nil {
				s.log.ErrorContext(r.Context(), "check DPoP proof", "error", err)
				writeUnavailable(w, r, "DPoP proof checking is unavailable.")
				return
			}
		}
		if forAPI && !s.forAuthd(c) {
			writeTokenError(w, r, scheme, "invalid_token")
			return
		}
		if c.Username == "" {
			writeInsufficientScope(w, r, "A user's access token is required; this one was issued to a client for itself.")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// Authorization schemes of access tokens.
const (
	schemeBearer = "Bearer" // RFC 6750
	schemeDPoP   = "DPoP"   // RFC 9449 §7.1
)

// accessToken returns the scheme (Bearer or DPoP) and the token of the
// request's one Authorization header.
func accessToken(r *http.Request) (scheme, token string, ok bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	switch {
	case !ok || tok == "":
		return "", "", false
	case strings.EqualFold(scheme, schemeBearer):
		return schemeBearer, tok, true
	case strings.EqualFold(scheme, schemeDPoP):
		return schemeDPoP, tok, true
	}
	return "", "", false
}

// writeTokenError answers 401 with a challenge of the scheme the client
// used (RFC 6750 §3, RFC 9449 §7.1), naming the error.
func writeTokenError(w http.ResponseWriter, r *http.Request, scheme, code string) {
	if scheme != schemeDPoP {
		writeBearerError(w, r, true)
		return
	}
	desc := "The access token is invalid, expired or revoked."
	if code == "invalid_dpop_proof" {
		desc = "The DPoP proof is missing, invalid, replayed or signed by another key than the token's."
	}
	w.Header().Set("WWW-Authenticate", `DPoP algs="`+strings.Join(oauth.DPoPAlgs(), " ")+`", error="`+code+`", error_description="`+desc+`"`)
	writeProblem(w, r, http.StatusUnauthorized, desc)
}

// adminAuth admits users whose token carries the admin role and who are,
// now, still enabled admins: a demotion takes effect at once, not at the
// token's expiry.
func (s *Server) adminAuth(next http.HandlerFunc) http.Handler {
	return s.userAuth(func(w http.ResponseWriter, r *http.Request) {
		c := claimsFrom(r.Context())
		if !slices.Contains(c.Roles, storage.RoleAdmin) {
			writeInsufficientScope(w, r, "The admin role is required.")
			return
		}
		u, ok := s.currentUser(w, r, c.Subject)
		if !ok {
			return
		}
		if !slices.Contains(u.Roles, storage.RoleAdmin) {
			writeInsufficientScope(w, r, "The admin role is required.")
			return
		}
		next(w, r)
	})
}

// writeInsufficientScope answers 403 per RFC 6750 §3.1.
func writeInsufficientScope(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="authd", error="insufficient_scope", error_description="`+detail+`"`)
	writeProblem(w, r, http.StatusForbidden, detail)
}

// writeUnavailable answers 503 with Retry-After: a dependency is down, the
// request may be repeated.
func writeUnavailable(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, http.StatusServiceUnavailable, detail)
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
		s.writeError(w, r, err)
		return storage.User{}, false
	}
	return u, true
}
