package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	scheme string // the scheme the token came with, for later challenges
	algs   string // the algs parameter of DPoP challenges
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

// Middleware verifies the request's access token and puts its claims in the
// request context for ClaimsFromContext. By default it takes a Bearer token
// (RFC 6750 §2.1, the Authorization header only) and checks it with Verify.
// With Config.DPoP it also takes, or only takes, a DPoP-bound token as
// "Authorization: DPoP <token>" with its proof in the DPoP header, checked
// as VerifyDPoP does (the htu is the request's URL, see Config.PublicURL).
//
// A request without a token gets 401 with a bare challenge; a bad token 401
// with error="invalid_token"; a bad or missing proof 401 with
// error="invalid_dpop_proof" (RFC 9449 §7.1). Challenges name the scheme the
// client used; with DPoPAccept, a second WWW-Authenticate header offers the
// other scheme.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return v.middleware(next, false)
}

// OnlineMiddleware is Middleware through Introspect: revoked tokens are
// refused at once. It answers 503 when the introspection endpoint cannot be
// asked. DPoP-bound tokens are asked about after their proof is checked.
func (v *Verifier) OnlineMiddleware(next http.Handler) http.Handler {
	return v.middleware(next, true)
}

func (v *Verifier) middleware(next http.Handler, online bool) http.Handler {
	mode := v.dpop.mode
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, err := authorization(r, mode != DPoPOff)
		switch {
		case errors.Is(err, errNoToken):
			desc := "a bearer access token is required"
			switch mode {
			case DPoPAccept:
				desc = "an access token is required: Bearer, or DPoP with a DPoP proof"
			case DPoPRequire:
				desc = "a DPoP-bound access token and a DPoP proof are required"
			}
			v.writeChallenge(w, http.StatusUnauthorized, "", "unauthorized", desc)
			return
		case err != nil:
			v.writeChallenge(w, http.StatusBadRequest, scheme, "invalid_request", err.Error())
			return
		}
		ctx := r.Context()
		var claims *Claims
		switch {
		case scheme == schemeBearer && mode == DPoPRequire:
			err = fmt.Errorf("%w: the Bearer scheme is not accepted here", ErrDPoPBinding)
		case scheme == schemeBearer:
			claims, err = v.Verify(ctx, token)
		default: // DPoP
			var proof string
			if proof, err = proofHeader(r); err == nil {
				if claims, err = v.verifyToken(ctx, token); err == nil {
					err = v.checkProof(ctx, claims, token, proof, r.Method, v.requestURL(r))
				}
			}
		}
		if err == nil && online {
			err = v.active(ctx, token)
		}
		if err != nil {
			// Refused tokens are routine (expiry, typos, probes): Debug,
			// or Info with Config.LogRejections. Not being able to ask
			// authd is the operator's concern: Warn.
			level := v.rejectAt
			if errors.Is(err, ErrUnavailable) {
				level = slog.LevelWarn
			}
			v.log.LogAttrs(ctx, level, "verify: token rejected",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("scheme", scheme), slog.String("error", err.Error()))
			switch {
			case errors.Is(err, ErrUnavailable):
				writeError(w, http.StatusServiceUnavailable, nil, "temporarily_unavailable", "the authorization server cannot be reached")
			case errors.Is(err, ErrDPoPProof):
				v.writeChallenge(w, http.StatusUnauthorized, scheme, "invalid_dpop_proof", describeProof(err))
			default:
				v.writeChallenge(w, http.StatusUnauthorized, scheme, "invalid_token", describe(err))
			}
			return
		}
		info := &authInfo{claims: claims, realm: v.realm, scheme: scheme, algs: v.dpop.algs}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, info)))
	})
}

// writeChallenge answers status with the challenges of the Verifier's mode:
// the one of scheme (Bearer or DPoP) carries code and desc (none when code
// is "unauthorized": no credentials), and with DPoPAccept the other scheme
// follows, bare. Without a scheme, the mode's first: DPoP for DPoPRequire,
// Bearer otherwise.
func (v *Verifier) writeChallenge(w http.ResponseWriter, status int, scheme, code, desc string) {
	mode := v.dpop.mode
	if scheme == "" {
		scheme = schemeBearer
		if mode == DPoPRequire {
			scheme = schemeDPoP
		}
	}
	var params []string
	if code != "unauthorized" {
		params = []string{"error", code, "error_description", desc}
	}
	var challenges []string
	switch {
	case mode == DPoPOff:
		challenges = []string{challengeFor(schemeBearer, v.realm, params...)}
	case mode == DPoPRequire:
		challenges = []string{challengeFor(schemeDPoP, v.realm, append(params, "algs", v.dpop.algs)...)}
	case scheme == schemeDPoP:
		challenges = []string{challengeFor(schemeDPoP, v.realm, append(params, "algs", v.dpop.algs)...), challenge(v.realm)}
	default:
		challenges = []string{challenge(v.realm, params...), challengeFor(schemeDPoP, v.realm, "algs", v.dpop.algs)}
	}
	writeError(w, status, challenges, code, desc)
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
	case errors.Is(err, ErrDPoPBinding):
		msg := err.Error()
		switch {
		case strings.Contains(msg, "not accepted here"):
			return "a DPoP-bound access token presented with the DPoP scheme and a proof is required"
		case strings.Contains(msg, "not bound"):
			return "the access token is not bound to a DPoP key"
		default:
			return "the access token is bound to a key: present it with the DPoP scheme and a proof"
		}
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
				writeError(w, http.StatusInternalServerError, nil, "server_error", "the request was not authenticated")
				return
			}
			if !ok(info.claims) {
				params := []string{"error", "insufficient_scope", "error_description", desc}
				if scope != "" {
					params = append(params, "scope", scope)
				}
				c := challenge(info.realm, params...)
				if info.scheme == schemeDPoP {
					c = challengeFor(schemeDPoP, info.realm, append(params, "algs", info.algs)...)
				}
				writeError(w, http.StatusForbidden, []string{c}, "insufficient_scope", desc)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

var errNoToken = errors.New("verify: no bearer token")

// Authorization schemes of access tokens.
const (
	schemeBearer = "Bearer" // RFC 6750
	schemeDPoP   = "DPoP"   // RFC 9449 §7.1
)

// authorization reads the scheme and token of an "Authorization: Bearer"
// header, or "Authorization: DPoP" when dpopOn. A request without one, or
// with another scheme, has no token (errNoToken); a header of these schemes
// that does not follow RFC 6750 §2.1 (RFC 9449 §7.1: the same token68) is a
// malformed request.
func authorization(r *http.Request, dpopOn bool) (string, string, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", "", errNoToken
	}
	if len(values) > 1 {
		return "", "", errors.New("more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	switch {
	case strings.EqualFold(scheme, schemeBearer):
		scheme = schemeBearer
	case dpopOn && strings.EqualFold(scheme, schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", errNoToken
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || !isB64Token(token) {
		return scheme, "", fmt.Errorf("the Authorization header is not %s followed by a token", scheme)
	}
	return scheme, token, nil
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
	return challengeFor(schemeBearer, realm, params...)
}

// challengeFor is challenge for another scheme.
func challengeFor(scheme, realm string, params ...string) string {
	var b strings.Builder
	b.WriteString(scheme)
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

// writeError answers with RFC 6750 challenges (when given), one
// WWW-Authenticate header each, and a JSON body {"error","error_description"}.
func writeError(w http.ResponseWriter, status int, wwwAuthenticate []string, code, desc string) {
	h := w.Header()
	for _, c := range wwwAuthenticate {
		h.Add("WWW-Authenticate", c)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}
