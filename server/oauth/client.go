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
}

// Validate lists every problem of spec at once.
func (spec ClientSpec) Validate() error {
	var problems []error
	if spec.ID == "" || len(spec.ID) > 128 || strings.ContainsFunc(spec.ID, func(r rune) bool { return r <= ' ' || r > '~' }) {
		problems = append(problems, errors.New("client id must be 1-128 printable ASCII characters without spaces"))
	}
	if spec.Public && spec.Secret != "" {
		problems = append(problems, errors.New("a public client has no secret"))
	}
	if !spec.Public && spec.Secret != "" && len(spec.Secret) < 32 {
		problems = append(problems, errors.New("a client secret must be at least 32 characters"))
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
	if len(spec.Name) > 200 {
		problems = append(problems, errors.New("name must be at most 200 characters"))
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
		Introspect: spec.Introspect,
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
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Audience: nz(c.Audience), Introspect: c.Introspect, CreatedAt: c.CreatedAt}
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
type clientAuthenticator struct {
	clients interface {
		GetClient(ctx context.Context, id string) (storage.Client, error)
	}
	hasher *SecretHasher
}

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
	c, err := a.clients.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// Spend the same time as a real comparison.
		_ = a.hasher.Compare(ctx, make([]byte, sha256.Size), []byte(secret))
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	} else if err != nil {
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The client store is unavailable.")
	}
	if c.Public {
		if hasBasic || postSecret {
			return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
		}
		return client{c}, nil
	}
	if secret == "" || a.hasher.Compare(ctx, c.SecretHash, []byte(secret)) != nil {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return client{c}, nil
}
