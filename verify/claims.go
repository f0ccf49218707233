package verify

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Claims are the claims of a verified access token (RFC 9068).
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub: the user's id, or the client id for client_credentials
	Audience  []string  // aud
	ExpiresAt time.Time // exp
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf; zero when absent
	ID        string    // jti
	ClientID  string    // client_id
	Username  string    // preferred_username; empty for client_credentials tokens
	Scopes    []string  // scope, split on spaces
	Roles     []string  // roles
	// Confirmation is the key the token is bound to (cnf, RFC 7800): set
	// for DPoP-bound tokens, which only VerifyDPoP and the middleware in a
	// DPoP mode accept.
	Confirmation Confirmation

	bound bool   // the token has a cnf claim, whatever it holds
	raw   []byte // the JSON claims set, for Decode
}

// Confirmation is a token's cnf claim.
type Confirmation struct {
	// JKT is the base64url RFC 7638 SHA-256 thumbprint of the DPoP key the
	// token is bound to (RFC 9449 §6.1); empty for an unbound token.
	JKT string
}

// HasRole reports whether the token's roles include role.
func (c *Claims) HasRole(role string) bool {
	return slices.Contains(c.Roles, role)
}

// HasScope reports whether the token's scopes include scope.
func (c *Claims) HasScope(scope string) bool {
	return slices.Contains(c.Scopes, scope)
}

// Decode unmarshals the token's whole claims set into v, for claims that
// Claims does not name.
func (c *Claims) Decode(v any) error {
	if c.raw == nil {
		return fmt.Errorf("verify: claims carry no JSON")
	}
	if err := json.Unmarshal(c.raw, v); err != nil {
		return fmt.Errorf("verify: decode claims: %w", err)
	}
	return nil
}
