// Package connector defines how authd signs a person in through another identity
// provider (social login): the Connector interface every upstream implements, the
// State kept between the redirect and the callback, the Identity an upstream
// vouches for, the errors a caller can tell apart, and the per-connector Config.
//
// Each provider lives in its own package (connector/oidc, connector/github), as in
// Dex; connector/connectors builds the right one from a Config.
package connector

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
)

// Connector is one upstream identity provider.
type Connector interface {
	// ID is the connector's configured id (stable; it keys account links).
	ID() string
	// Name is the display name ("Continue with <Name>").
	Name() string
	// LoginURL returns the upstream URL to send the browser to. It carries s.State,
	// s.Nonce (OIDC) and the PKCE challenge derived from s.PKCEVerifier.
	LoginURL(ctx context.Context, s State) (string, error)
	// HandleCallback checks the callback request r against s (the State saved when
	// LoginURL was called), exchanges the code and returns the upstream identity.
	HandleCallback(ctx context.Context, s State, r *http.Request) (Identity, error)
}

// Refresher is implemented by connectors that can refresh an identity's claims
// from the upstream after sign-in, using Identity.ConnectorData.
type Refresher interface {
	// Refresh returns the identity as the upstream sees it now. The result keeps
	// the same ConnectorID and Subject, and carries updated ConnectorData.
	Refresh(ctx context.Context, id Identity) (Identity, error)
}

// State is what authd keeps between the redirect to the upstream and its callback
// (server-side, or in an encrypted cookie). All of it is secret until the flow ends.
type State struct {
	// State is the OAuth 2.0 state parameter (CSRF protection of the callback).
	State string
	// Nonce binds the OIDC id_token to this sign-in.
	Nonce string
	// PKCEVerifier is the PKCE code_verifier; its S256 challenge goes upstream.
	PKCEVerifier string
	// RedirectURL is the callback URL given to the upstream; empty means the
	// connector's configured RedirectURL.
	RedirectURL string
}

// NewState returns a State with a fresh random state, nonce and PKCE verifier
// (32 bytes from crypto/rand each) for the callback URL redirectURL.
func NewState(redirectURL string) (State, error) {
	var vals [3]string
	for i := range vals {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return State{}, fmt.Errorf("connector: random state: %w", err)
		}
		vals[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return State{State: vals[0], Nonce: vals[1], PKCEVerifier: vals[2], RedirectURL: redirectURL}, nil
}

// CheckState reports whether the callback's state parameter matches s.State, in
// constant time. An empty expected state never matches.
func (s State) CheckState(got string) bool {
	if s.State == "" {
		return false
	}
	a := sha256.Sum256([]byte(s.State))
	b := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// String hides the secrets of s from fmt.
func (s State) String() string { return "connector.State{redacted}" }

// LogValue hides the secrets of s from slog.
func (s State) LogValue() slog.Value {
	return slog.GroupValue(slog.String("redirect_url", s.RedirectURL))
}

// Identity is a person as an upstream vouches for them.
type Identity struct {
	// ConnectorID is the id of the connector that produced the identity.
	ConnectorID string
	// Subject is the upstream's stable id for the person (OIDC sub, GitHub user id).
	Subject string
	// Email is the upstream's email for the person; EmailVerified says whether
	// the upstream has verified it. authd must not link by an unverified email.
	Email         string
	EmailVerified bool
	// Name is the display name, PreferredUsername the login/handle, if given.
	Name              string
	PreferredUsername string
	// AMR is how the upstream says the person authenticated (RFC 8176
	// values from the id_token's amr claim, each ValidAMR); nil when it
	// does not say.
	AMR []string
	// ConnectorData is opaque to callers and SECRET (it holds upstream tokens for
	// Refresher): store it encrypted, never log it. Empty when nothing to keep.
	ConnectorData []byte
}

// String prints the identity without ConnectorData.
func (id Identity) String() string {
	return fmt.Sprintf("connector.Identity{ConnectorID:%q Subject:%q Email:%q EmailVerified:%t Name:%q PreferredUsername:%q}",
		id.ConnectorID, id.Subject, id.Email, id.EmailVerified, id.Name, id.PreferredUsername)
}

// LogValue logs the identity without ConnectorData.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("connector_id", id.ConnectorID),
		slog.String("subject", id.Subject),
		slog.Bool("email_verified", id.EmailVerified),
	)
}

// ValidAMR reports whether v can be an amr value authd passes on: 1 to 32
// of a-z, A-Z, 0-9, '_' and '-'.
func ValidAMR(v string) bool {
	if len(v) == 0 || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
