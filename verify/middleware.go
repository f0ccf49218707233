package verify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// ctxKey is the context key of the verified token.
type ctxKey struct{}

// authInfo is what the middleware leaves in the request context.
type authInfo struct {
	claims *Claims
	realm  string
}

// ClaimsFromContext returns the claims that Middleware or OnlineMiddleware
// verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	info, ok := ctx.Value(ctxKey{}).(*authInfo)
	if !ok || info.claims == nil {
		return nil, false
	}
	return info.claims, true
}

// Middleware verifies the request's Bearer token (RFC 6750 §2.1, the
// Authorization header only) with Verify, and puts its claims in the request
// context for ClaimsFromContext. A request without a token gets 401 with a
// bare Bearer challenge; a bad token 401 with error="invalid_token".
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return v.middleware(next, v.Verify)
}

// OnlineMiddleware is Middleware through Introspect: revoked tokens are
// refused at once. It answers 503 when the introspection endpoint cannot be
// asked.
func (v *Verifier) OnlineMiddleware(next http.Handler) http.Handler {
	return v.middleware(next, v.Introspect)
}

func (v *Verifier) middleware(next http.Handler, check func(context.Context, string) (*Claims, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearerToken(r)
		switch {
		case errors.Is(err, errNoToken):
			writeError(w, http.StatusUnauthorized, challenge(v.realm), "unauthorized", "a bearer access token is required")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, challenge(v.realm, "error", "invalid_request", "error_description", err.Error()),
				"invalid_request", err.Error())
			return
		}
		claims, err := check(r.Context(), token)
		if err != nil {
			// Refused tokens are routine (expiry, typos, probes): Debug.
			// Not being able to ask authd is the operator's concern: Warn.
			level := slog.LevelDebug
			if errors.Is(err, ErrUnavailable) {
				level = slog.LevelWarn
			}
			v.log.LogAttrs(r.Context(), level, "verify: token rejected",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			if errors.Is(err, ErrUnavailable) {
				writeError(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "the authorization server cannot be reached")
				return
			}
			desc := describe(err)
			writeError(w, http.StatusUnauthorized,
				challenge(v.realm, "error", "invalid_token", "error_description", desc), "invalid_token", desc)
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, &authInfo{claims: claims, realm: v.realm})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// describe is the error_description for a refused token: what the client can
// act on, nothing about keys or internals.
func describe(err error) string {
	switch {
	case errors.Is(err, ErrExpired):
		return "the access token expired"
	case errors.Is(err, ErrNotYetValid):
		return "the access token is not valid yet"
	case errors.Is(err, ErrRevoked):
		return "the access token is not active"
	default:
		return "the access token is invalid"
	}
}

// RequireRole lets through requests whose token has any of roles; others get
// 403 with error="insufficient_scope". It goes after Middleware or
// OnlineMiddleware; without one before it, every request gets 500.
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	if len(roles) == 0 {
		panic("verify: RequireRole needs at least one role")
	}
	desc := "requires the role " + strings.Join(roles, " or ")
	return require(func(c *Claims) bool {
		for _, r := range roles {
			if c.HasRole(r) {
				return true
			}
		}
		return false
	}, desc, "")
}

// RequireScope lets through requests whose token has all of scopes; others
// get 403 with error="insufficient_scope" and scope="..." naming them. It
// goes after Middleware or OnlineMiddleware; without one before it, every
// request gets 500.
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		panic("verify: RequireScope needs at least one scope")
	}
	scope := strings.Join(scopes, " ")
	return require(func(c *Claims) bool {
		for _, s := range scopes {
			if !c.HasScope(s) {
				return false
			}
		}
		return true
	}, "requires the scope "+scope, scope)
}

func require(ok func(*Claims) bool, desc, scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, found := r.Context().Value(ctxKey{}).(*authInfo)
			if !found || info.claims == nil {
				writeError(w, http.StatusInternalServerError, "", "server_error", "the request was not authenticated")
				return
			}
			if !ok(info.claims) {
				params := []string{"error", "insufficient_scope", "error_description", desc}
				if scope != "" {
					params = append(params, "scope", scope)
				}
				writeError(w, http.StatusForbidden, challenge(info.realm, params...), "insufficient_scope", desc)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

var errNoToken = errors.New("verify: no bearer token")

// bearerToken reads the token of an "Authorization: Bearer" header. A
// request without one, or with another scheme, has no token (errNoToken); a
// Bearer header that does not follow RFC 6750 §2.1 is a malformed request.
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", errNoToken
	}
	if len(values) > 1 {
		return "", errors.New("more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || !isB64Token(token) {
		return "", errors.New("the Authorization header is not Bearer followed by a token")
	}
	return token, nil
}

// isB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	end := len(strings.TrimRight(s, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// challenge builds a WWW-Authenticate value: Bearer realm="..." followed by
// the name/value pairs in params, each value a quoted-string.
func challenge(realm string, params ...string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if realm != "" {
		b.WriteString(` realm="`)
		writeQuoted(&b, realm)
		b.WriteByte('"')
		sep = ", "
	}
	for i := 0; i+1 < len(params); i += 2 {
		b.WriteString(sep)
		b.WriteString(params[i])
		b.WriteString(`="`)
		writeQuoted(&b, params[i+1])
		b.WriteByte('"')
		sep = ", "
	}
	return b.String()
}

// writeQuoted writes s as the inside of a quoted-string: backslash before
// '"' and '\', control characters dropped. RFC 6750 keeps error_description
// and scope to printable ASCII anyway.
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
		default:
			b.WriteByte(c)
		}
	}
}

// writeError answers with an RFC 6750 challenge (when given) and a JSON body
// {"error","error_description"}.
func writeError(w http.ResponseWriter, status int, wwwAuthenticate, code, desc string) {
	h := w.Header()
	if wwwAuthenticate != "" {
		h.Set("WWW-Authenticate", wwwAuthenticate)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}
