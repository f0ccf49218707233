package clients

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authd/authd/storage"
)

// GrantClientCredentials is the one grant a public client may not have: it
// has no secret to authenticate the grant with.
const GrantClientCredentials = "client_credentials"

// Limits on what a client registration may hold. Client authentication
// (server/oauth) never looks up an id or a secret outside them, so a client
// registered here can always authenticate.
const (
	MaxIDLen     = 128 // bytes of printable ASCII without spaces
	MinSecretLen = 32  // bytes; generated secrets are 43
	MaxSecretLen = 512 // bytes of printable text
	maxNameLen   = 200 // bytes of printable text
	maxScopeLen  = 200 // bytes of printable ASCII, per scope or audience
)

// ValidID reports whether id could be a client's id: 1 to MaxIDLen
// printable ASCII characters without spaces.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// plainText reports whether s is at most max bytes of valid UTF-8 holding no
// control character (C0, DEL or C1), NUL included: PostgreSQL refuses NUL,
// and a control character has no place in a name or a secret.
func plainText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// Spec describes a client to register.
type Spec struct {
	ID         string
	Name       string
	Secret     string // generated when empty and not Public
	Public     bool   // token_endpoint_auth_method "none": no secret
	GrantTypes []string
	Scopes     []string
	Audience   []string // audiences its tokens may be minted for
	Introspect bool     // may introspect any token (a resource server)
	DPoPBound  bool     // must bind its tokens with DPoP (RFC 9449)
}

// SpecError lists everything wrong with a client specification at once.
// The problems name no secret.
type SpecError struct {
	Problems []string
}

func (e *SpecError) Error() string {
	return "clients: invalid client: " + strings.Join(e.Problems, "; ")
}

// validate lists every problem of spec; grantTypes are the grants the
// token endpoint supports.
func (spec Spec) validate(grantTypes []string) error {
	var problems []error
	if !ValidID(spec.ID) {
		problems = append(problems, fmt.Errorf("client id must be 1-%d printable ASCII characters without spaces", MaxIDLen))
	}
	if spec.Public && spec.Secret != "" {
		problems = append(problems, errors.New("a public client has no secret"))
	}
	if !spec.Public && spec.Secret != "" && (len(spec.Secret) < MinSecretLen || !plainText(spec.Secret, MaxSecretLen)) {
		problems = append(problems, fmt.Errorf("a client secret must be %d to %d bytes of printable text", MinSecretLen, MaxSecretLen))
	}
	if len(spec.GrantTypes) == 0 {
		problems = append(problems, errors.New("at least one grant type is required"))
	}
	for _, g := range spec.GrantTypes {
		if !slices.Contains(grantTypes, g) {
			problems = append(problems, fmt.Errorf("unsupported grant type %q", g))
		}
	}
	if spec.Public && slices.Contains(spec.GrantTypes, GrantClientCredentials) {
		problems = append(problems, errors.New("a public client cannot use client_credentials"))
	}
	for _, s := range append(slices.Clone(spec.Scopes), spec.Audience...) {
		if s == "" || len(s) > maxScopeLen || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
			problems = append(problems, fmt.Errorf("invalid scope or audience %q", s))
		}
	}
	if !plainText(spec.Name, maxNameLen) {
		problems = append(problems, fmt.Errorf("name must be at most %d bytes of printable text", maxNameLen))
	}
	if len(problems) == 0 {
		return nil
	}
	e := &SpecError{}
	for _, p := range problems {
		e.Problems = append(e.Problems, p.Error())
	}
	return e
}

// Record validates spec against the grants the token endpoint supports (a
// *SpecError lists every problem) and returns the record to store, holding
// only the secret's hash, and the plain secret (generated when a confidential
// client has none; empty for a public client) to show once. Service.Create
// stores it; the dev bootstrap and tests use it directly.
func (spec Spec) Record(ctx context.Context, h Hasher, grantTypes []string) (storage.Client, string, error) {
	if err := spec.validate(grantTypes); err != nil {
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
		hash, err := h.Hash(ctx, []byte(secret))
		if err != nil {
			return storage.Client{}, "", fmt.Errorf("clients: hash the secret: %w", err)
		}
		c.SecretHash = hash
	}
	return c, secret, nil
}

// Document is how the CLI and the admin API show a client; the secret
// appears only in the answer that created it.
type Document struct {
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

// DocumentOf returns c as shown to operators, with secret when just created.
func DocumentOf(c storage.Client, secret string) Document {
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
	return Document{ID: c.ID, Secret: secret, Name: c.Name, Public: c.Public, AuthMethod: m,
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Audience: nz(c.Audience), Introspect: c.Introspect,
		DPoPBound: c.DPoPBound, CreatedAt: c.CreatedAt}
}

// GenerateSecret returns a new client secret with 256 bits of randomness.
func GenerateSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// dedupe returns in without repeats, in order.
func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
