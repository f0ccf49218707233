package clients

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
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

// GrantAuthorizationCode is the grant of browser sign-in; a client with it
// needs a redirect URI. (Registration accepts it once the token endpoint
// supports it.)
const GrantAuthorizationCode = "authorization_code"

// Limits on what a client registration may hold. Client authentication
// (server/oauth) never looks up an id or a secret outside them, so a client
// registered here can always authenticate.
const (
	MaxIDLen     = 128 // bytes of printable ASCII without spaces
	MinSecretLen = 32  // bytes; generated secrets are 43
	MaxSecretLen = 512 // bytes of printable text
	maxNameLen   = 200 // bytes of printable text
	maxScopeLen  = 200 // bytes of printable ASCII, per scope or audience
	MaxURILen    = 512 // bytes of printable ASCII, per redirect URI
	MaxURIs      = 20  // redirect URIs of each kind, once repeats are dropped
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
	// RedirectURIs are where authorization responses may go, matched
	// exactly; PostLogoutRedirectURIs where RP-initiated logout may send the
	// browser back. See ValidRedirectURI.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	FirstParty             bool // skips the consent page
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
	problems = append(problems, uriProblems("redirect URI", spec.RedirectURIs)...)
	problems = append(problems, uriProblems("post-logout redirect URI", spec.PostLogoutRedirectURIs)...)
	if slices.Contains(spec.GrantTypes, GrantAuthorizationCode) && len(spec.RedirectURIs) == 0 {
		problems = append(problems, errors.New("a client with the authorization_code grant needs at least one redirect URI"))
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
		RedirectURIs: dedupe(spec.RedirectURIs), PostLogoutRedirectURIs: dedupe(spec.PostLogoutRedirectURIs),
		FirstParty: spec.FirstParty,
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
	ID         string   `json:"client_id"`
	Secret     string   `json:"client_secret,omitempty"`
	Name       string   `json:"name,omitempty"`
	Public     bool     `json:"public"`
	AuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes []string `json:"grant_types"`
	Scopes     []string `json:"scopes"`
	Audience   []string `json:"audience"`
	Introspect bool     `json:"introspect"`
	DPoPBound  bool     `json:"dpop_bound"`
	// RedirectURIs and PostLogoutRedirectURIs are [] when empty.
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	FirstParty             bool      `json:"first_party"`
	CreatedAt              time.Time `json:"created_at,omitzero"`
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
		DPoPBound: c.DPoPBound, RedirectURIs: nz(c.RedirectURIs), PostLogoutRedirectURIs: nz(c.PostLogoutRedirectURIs),
		FirstParty: c.FirstParty, CreatedAt: c.CreatedAt}
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

// loopbackHosts are the hosts a redirect URI may name over plain http: the
// browser and the native app that receives the response are on one machine
// (RFC 8252 §7.3, §8.3).
var loopbackHosts = []string{"127.0.0.1", "::1", "localhost"}

// ValidRedirectURI reports what is wrong with uri as a redirect URI
// (RFC 6749 §3.1.2, RFC 8252, OAuth 2.1 §2.3.1), or nil: at most MaxURILen
// bytes of printable ASCII; absolute; no fragment and no user information;
// and https with a host, http only to a loopback host (127.0.0.1, [::1],
// localhost, any port), or a native app's private-use scheme, which holds a
// dot (com.example.app:/callback; RFC 8252 §7.1).
func ValidRedirectURI(uri string) error {
	if uri == "" || len(uri) > MaxURILen || strings.ContainsFunc(uri, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("must be 1 to %d bytes of printable ASCII without spaces", MaxURILen)
	}
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return errors.New("is not a URI")
	case u.Scheme == "":
		return errors.New("must be absolute")
	case strings.Contains(uri, "#"):
		return errors.New("must not have a fragment")
	case u.User != nil:
		return errors.New("must not hold user information")
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
		if u.Opaque != "" || u.Hostname() == "" || strings.Contains(u.Host, "*") {
			return errors.New("must name a host (no wildcard)")
		}
	case scheme == "http":
		if u.Opaque != "" || !slices.Contains(loopbackHosts, strings.ToLower(u.Hostname())) {
			return errors.New("may use http only with a loopback host (127.0.0.1, [::1], localhost); use https")
		}
	case strings.Contains(scheme, "."):
		if u.Opaque == "" && u.Host == "" && u.Path == "" {
			return errors.New("must have a path after its scheme")
		}
	default:
		return fmt.Errorf("scheme %q: use https, http to a loopback host, or a private-use scheme with a dot (com.example.app:/callback)", u.Scheme)
	}
	return nil
}

// uriProblems lists what is wrong with a list of redirect URIs of kind.
func uriProblems(kind string, uris []string) []error {
	var problems []error
	if n := len(dedupe(uris)); n > MaxURIs {
		problems = append(problems, fmt.Errorf("at most %d %ss (%d given)", MaxURIs, kind, n))
	}
	for _, u := range dedupe(uris) {
		if err := ValidRedirectURI(u); err != nil {
			if len(u) > MaxURILen {
				problems = append(problems, fmt.Errorf("a %s %w", kind, err))
				continue
			}
			problems = append(problems, fmt.Errorf("%s %q %w", kind, u, err))
		}
	}
	return problems
}
