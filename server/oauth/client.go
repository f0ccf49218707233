package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// Grant types authd offers.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// SupportedGrantTypes lists the grants of the token endpoint, in metadata order.
var supportedGrantTypes = []string{GrantPassword, GrantRefreshToken, GrantClientCredentials}

// SupportedGrantTypes returns the grant types the token endpoint accepts.
func SupportedGrantTypes() []string { return slices.Clone(supportedGrantTypes) }

// Limits, in bytes, on the text a request may carry. Nothing longer, and
// nothing that is not valid UTF-8 or holds a NUL or another control
// character, is ever handed to a store: PostgreSQL refuses such text with an
// error that would otherwise surface as a 5xx.
const (
	maxClientIDLen     = 128  // as ClientSpec.Validate allows
	maxClientSecretLen = 512  // generated secrets are 43 bytes
	maxLoginLen        = 254  // a username or an email (identity.MaxEmailLen)
	maxTokenLen        = 8192 // an access token (JWT) or a refresh token
	maxParamLen        = 2048 // scope, audience, grant_type and any other parameter
	maxParamNameLen    = 128
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

// validClientID reports whether id is a client id authd could have
// registered: 1 to 128 printable ASCII characters without spaces.
func validClientID(id string) bool {
	return id != "" && len(id) <= maxClientIDLen && tokenText(id)
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

func (c client) GetID() string                   { return c.c.ID }
func (c client) GetHashedSecret() []byte         { return c.c.SecretHash }
func (c client) GetRedirectURIs() []string       { return nil }
func (c client) GetGrantTypes() fosite.Arguments { return c.c.GrantTypes }
func (c client) GetResponseTypes() fosite.Arguments {
	return fosite.Arguments{}
}
func (c client) GetScopes() fosite.Arguments   { return c.c.Scopes }
func (c client) IsPublic() bool                { return c.c.Public }
func (c client) GetAudience() fosite.Arguments { return c.c.Audience }

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

// GenerateSecret returns a new client secret with 256 bits of randomness.
func GenerateSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ClientSpec describes a client to register.
type ClientSpec struct {
	ID         string
	Name       string
	Secret     string // generated when empty and not Public
	Public     bool
	GrantTypes []string
	Scopes     []string
	Audience   []string
	Introspect bool
	DPoPBound  bool // must bind its tokens with DPoP
}

// Validate lists every problem of spec at once.
func (spec ClientSpec) Validate() error {
	var problems []error
	if !validClientID(spec.ID) {
		problems = append(problems, fmt.Errorf("client id must be 1-%d printable ASCII characters without spaces", maxClientIDLen))
	}
	if spec.Public && spec.Secret != "" {
		problems = append(problems, errors.New("a public client has no secret"))
	}
	if !spec.Public && spec.Secret != "" && (len(spec.Secret) < 32 || !plainText(spec.Secret, maxClientSecretLen)) {
		problems = append(problems, fmt.Errorf("a client secret must be 32 to %d bytes of printable text", maxClientSecretLen))
	}
	if len(spec.GrantTypes) == 0 {
		problems = append(problems, errors.New("at least one grant type is required"))
	}
	for _, g := range spec.GrantTypes {
		if !slices.Contains(supportedGrantTypes, g) {
			problems = append(problems, fmt.Errorf("unsupported grant type %q", g))
		}
	}
	if spec.Public && slices.Contains(spec.GrantTypes, GrantClientCredentials) {
		problems = append(problems, errors.New("a public client cannot use client_credentials"))
	}
	for _, s := range append(slices.Clone(spec.Scopes), spec.Audience...) {
		if s == "" || len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
			problems = append(problems, fmt.Errorf("invalid scope or audience %q", s))
		}
	}
	if len(spec.Name) > 200 || !plainText(spec.Name, 200) {
		problems = append(problems, errors.New("name must be at most 200 bytes of printable text"))
	}
	if len(problems) > 0 {
		e := &ClientSpecError{}
		for _, p := range problems {
			e.Problems = append(e.Problems, p.Error())
		}
		return e
	}
	return nil
}

// ClientSpecError lists what is wrong with a client specification.
type ClientSpecError struct {
	Problems []string
}

func (e *ClientSpecError) Error() string {
	return "oauth: invalid client: " + strings.Join(e.Problems, "; ")
}

// NewClient validates spec and returns the record to store and the plain
// secret (empty for public clients) to show once.
func (h *SecretHasher) NewClient(ctx context.Context, spec ClientSpec) (storage.Client, string, error) {
	if err := spec.Validate(); err != nil {
		return storage.Client{}, "", err
	}
	c := storage.Client{
		ID: spec.ID, Name: spec.Name, Public: spec.Public,
		GrantTypes: dedupe(spec.GrantTypes), Scopes: dedupe(spec.Scopes), Audience: dedupe(spec.Audience),
		Introspect: spec.Introspect, DPoPBound: spec.DPoPBound,
	}
	secret := spec.Secret
	if !spec.Public {
		if secret == "" {
			secret = GenerateSecret()
		}
		c.SecretHash, _ = h.Hash(ctx, []byte(secret))
	}
	return c, secret, nil
}

// ClientDocument is how the CLI and the admin API show a client; the secret
// appears only in the answer that created it.
type ClientDocument struct {
	ID         string    `json:"client_id"`
	Secret     string    `json:"client_secret,omitempty"`
	Name       string    `json:"name,omitempty"`
	Public     bool      `json:"public"`
	AuthMethod string    `json:"token_endpoint_auth_method"`
	GrantTypes []string  `json:"grant_types"`
	Scopes     []string  `json:"scopes"`
	Audience   []string  `json:"audience"`
	Introspect bool      `json:"introspect"`
	DPoPBound  bool      `json:"dpop_bound"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
}

// Document returns c as shown to operators, with secret when just created.
func Document(c storage.Client, secret string) ClientDocument {
	m := "client_secret_basic"
	if c.Public {
		m = "none"
	}
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return ClientDocument{ID: c.ID, Secret: secret, Name: c.Name, Public: c.Public, AuthMethod: m,
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Audience: nz(c.Audience), Introspect: c.Introspect, DPoPBound: c.DPoPBound, CreatedAt: c.CreatedAt}
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
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
	if validClientID(id) && plainText(secret, maxClientSecretLen) {
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
