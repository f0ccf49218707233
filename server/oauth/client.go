package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ory/fosite"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/storage"
)

// Grant types authd offers.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// SupportedGrantTypes lists the grants of the token endpoint, in metadata
// order. authorization_code is served with the authorize endpoint only
// (Options.Pages).
var supportedGrantTypes = []string{GrantAuthorizationCode, GrantPassword, GrantRefreshToken, GrantClientCredentials}

// SupportedGrantTypes returns the grant types the token endpoint accepts.
func SupportedGrantTypes() []string { return slices.Clone(supportedGrantTypes) }

// Limits, in bytes, on the text a request may carry. Nothing longer, and
// nothing that is not valid UTF-8 or holds a NUL or another control
// character, is ever handed to a store: PostgreSQL refuses such text with an
// error that would otherwise surface as a 5xx.
const (
	maxLoginLen     = 254  // a username or an email (identity.MaxEmailLen)
	maxTokenLen     = 8192 // an access token (JWT) or a refresh token
	maxParamLen     = 2048 // scope, audience, grant_type and any other parameter
	maxParamNameLen = 128
)

// plainText reports whether s is at most max bytes of valid UTF-8 holding no
// control character (C0, DEL or C1), NUL included.
func plainText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// tokenText reports whether s could be a token authd issued: at most
// maxTokenLen bytes of printable ASCII (base64url, dots and the prefix).
func tokenText(s string) bool {
	if len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// passwordText reports whether a password grant's password could be
// anyone's password: valid UTF-8 without NUL. Its length is left to the
// identity service, which spends the time of a real check on it.
func passwordText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// client adapts storage.Client to fosite.Client.
type client struct{ c storage.Client }

var _ fosite.Client = client{}

var _ fosite.ResponseModeClient = client{}

func (c client) GetID() string                   { return c.c.ID }
func (c client) GetHashedSecret() []byte         { return c.c.SecretHash }
func (c client) GetRedirectURIs() []string       { return c.c.RedirectURIs }
func (c client) GetGrantTypes() fosite.Arguments { return c.c.GrantTypes }
func (c client) GetScopes() fosite.Arguments     { return c.c.Scopes }
func (c client) IsPublic() bool                  { return c.c.Public }
func (c client) GetAudience() fosite.Arguments   { return c.c.Audience }

// GetResponseTypes is "code" for a client with the authorization_code grant,
// nothing otherwise: authd has no implicit or hybrid flow.
func (c client) GetResponseTypes() fosite.Arguments {
	if slices.Contains(c.c.GrantTypes, GrantAuthorizationCode) {
		return fosite.Arguments{"code"}
	}
	return fosite.Arguments{}
}

// GetResponseModes is query only: a code never travels in a fragment or a
// self-posting form.
func (c client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery}
}

// matchRedirectURI reports whether requested is one of registered: the same
// string, or, for a loopback redirect (http to 127.0.0.1 or [::1]), the same
// URI on any port (RFC 8252 §7.3). fosite's MatchRedirectURIWithClientRedirectURIs
// is looser (its loopback rule ignores the registered scheme and takes any
// loopback address, and a missing redirect_uri stands for a lone registered
// one); the authorize endpoint checks this first.
func matchRedirectURI(requested string, registered []string) bool {
	if requested == "" || len(requested) > clients.MaxURILen || strings.Contains(requested, "#") {
		return false
	}
	if slices.Contains(registered, requested) {
		return true
	}
	req, err := url.Parse(requested)
	if err != nil || !loopbackRedirect(req) {
		return false
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		if err == nil && loopbackRedirect(reg) && reg.Hostname() == req.Hostname() &&
			reg.EscapedPath() == req.EscapedPath() && reg.RawQuery == req.RawQuery && reg.ForceQuery == req.ForceQuery {
			return true
		}
	}
	return false
}

// loopbackRedirect reports whether u is http to a loopback IP literal, with
// nothing that an exact match would have to judge: no user information, no
// fragment, a port of digits or none.
func loopbackRedirect(u *url.URL) bool {
	if u.Scheme != "http" || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return false
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
		return false
	}
	for _, r := range u.Port() {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// SecretHasher hashes client secrets with a key derived from AUTHD_SECRET.
// Generated secrets carry 256 bits of randomness, so a keyed SHA-256 is as
// strong as a slow hash here and costs microseconds per client authentication.
type SecretHasher struct {
	keys [][]byte // current first, then keys derived from old secrets
}

// NewSecretHasher derives the hashing keys from the server secret and the old ones.
func NewSecretHasher(secret []byte, old ...[]byte) (*SecretHasher, error) {
	h := &SecretHasher{}
	for _, s := range append([][]byte{secret}, old...) {
		k, err := hkdf.Key(sha256.New, s, nil, "authd client secret v1", 32)
		if err != nil {
			return nil, fmt.Errorf("oauth: derive client secret key: %w", err)
		}
		h.keys = append(h.keys, k)
	}
	return h, nil
}

func (h *SecretHasher) mac(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return h.mac(h.keys[0], data), nil
}

// Compare implements fosite.Hasher in constant time; hashes made with an old
// secret still match during a secret rotation.
func (h *SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	ok := false
	for _, k := range h.keys { // every key, so the time does not tell which matched
		if hmac.Equal(hash, h.mac(k, data)) {
			ok = true
		}
	}
	if !ok || len(hash) == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// clientAuthenticator implements client_secret_basic, client_secret_post and
// none (public clients). A request that uses more than one method, or an
// assertion, is invalid_request (RFC 6749 §2.3).
//
// Every failure costs the same: the client is looked up (unless its id or
// secret is text no client can have), and one secret comparison runs, against
// a dummy hash when the client is unknown or public. With the client cache (storage/clientcache)
// remembering unknown ids as it remembers known ones, the answer's timing
// does not tell whether an id exists.
type clientAuthenticator struct {
	clients interface {
		GetClient(ctx context.Context, id string) (storage.Client, error)
	}
	hasher *SecretHasher
}

// dummySecretHash stands in for the hash of an unknown or public client.
var dummySecretHash = func() []byte {
	h := sha256.Sum256([]byte("authd: no such client"))
	return h[:]
}()

func (a *clientAuthenticator) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("Client assertions are not supported; use client_secret_basic or client_secret_post.")
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, fosite.ErrInvalidRequest.WithHint("More than one Authorization header.")
	}
	basicID, basicSecret, hasBasic := r.BasicAuth()
	_, postSecret := form["client_secret"]
	if hasBasic && postSecret {
		return nil, fosite.ErrInvalidRequest.WithHint("The request uses more than one client authentication method.")
	}
	var id, secret string
	switch {
	case hasBasic:
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, fosite.ErrInvalidRequest.WithHint("The client credentials in the Authorization header are not form-encoded.")
		}
		if formID := form.Get("client_id"); formID != "" && formID != id {
			return nil, fosite.ErrInvalidRequest.WithHint("client_id in the body does not match the Authorization header.")
		}
	default:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication is required.")
	}
	var c storage.Client
	known := false
	// Text no registered client can have is never looked up: it is an
	// unknown client, answered after the same comparison.
	if clients.ValidID(id) && plainText(secret, clients.MaxSecretLen) {
		var err error
		c, err = a.clients.GetClient(ctx, id)
		switch {
		case err == nil:
			known = true
		case !errors.Is(err, storage.ErrNotFound):
			return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The client store is unavailable.")
		}
	}
	hash := dummySecretHash
	if known && !c.Public {
		hash = c.SecretHash
	}
	secretOK := a.hasher.Compare(ctx, hash, []byte(secret)) == nil
	switch {
	case !known:
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	case c.Public:
		if hasBasic || postSecret {
			return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
		}
	case secret == "" || !secretOK:
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return client{c}, nil
}
