// Package oidc is the generic OpenID Connect connector: discovery, the
// authorization code flow with PKCE (S256) and nonce, the id_token verified with
// go-oidc (signature, issuer, audience = client id, expiry, nonce), and userinfo
// when the id_token carries no email. It works with any compliant provider
// (Google, Microsoft, GitLab, Keycloak, another authd).
package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/connector"
)

// DiscoveryTimeout bounds one discovery attempt: an upstream that is down makes
// LoginURL or HandleCallback fail with connector.ErrUpstream, never hang.
const DiscoveryTimeout = 10 * time.Second

// Connector signs people in through one OpenID Connect provider. It is safe for
// concurrent use.
type Connector struct {
	cfg    connector.Config
	client *http.Client
	scopes []string
	now    func() time.Time

	mu       sync.Mutex // guards provider and verifier
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
}

var (
	_ connector.Connector = (*Connector)(nil)
	_ connector.Refresher = (*Connector)(nil)
)

// New returns the connector for cfg (Type oidc). It does not contact the
// provider: discovery happens on first use (see Discover), and is retried on the
// next use when it failed. client makes every upstream request; nil means a
// client with a 30-second timeout.
func New(cfg connector.Config, client *http.Client) (*Connector, error) {
	if cfg.Type != connector.TypeOIDC {
		return nil, fmt.Errorf("oidc: connector %q has type %q", cfg.ID, cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	if !slices.Contains(scopes, gooidc.ScopeOpenID) {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	return &Connector{cfg: cfg, client: client, scopes: slices.Clone(scopes), now: time.Now}, nil
}

// ID returns the connector's id.
func (c *Connector) ID() string { return c.cfg.ID }

// Name returns the connector's display name.
func (c *Connector) Name() string { return c.cfg.Name }

// Discover fetches the provider's discovery document if it has not been fetched
// yet (bounded by DiscoveryTimeout). Callers may use it at start to report a
// misconfigured or unreachable provider early; failing it is not fatal.
func (c *Connector) Discover(ctx context.Context) error {
	_, _, err := c.discover(ctx)
	return err
}

func (c *Connector) discover(ctx context.Context) (*gooidc.Provider, *gooidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, c.verifier, nil
	}
	ctx, cancel := context.WithTimeout(ctx, DiscoveryTimeout)
	defer cancel()
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, c.client), c.cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, nil, fmt.Errorf("%w: discovery of %s: %w", connector.ErrUpstream, c.cfg.Issuer, err)
		}
		// The discovery document is public: a short printable part of the
		// provider's answer (status and body) helps the operator.
		return nil, nil, fmt.Errorf("%w: discovery of %s failed: %s", connector.ErrUpstream, c.cfg.Issuer, connector.Printable(err.Error(), 160))
	}
	c.provider = p
	c.verifier = p.Verifier(&gooidc.Config{ClientID: c.cfg.ClientID, Now: c.now})
	return c.provider, c.verifier, nil
}

func (c *Connector) oauth2Config(p *gooidc.Provider, redirectURL string) *oauth2.Config {
	if redirectURL == "" {
		redirectURL = c.cfg.RedirectURL
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       c.scopes,
	}
}

// LoginURL returns the provider's authorization URL for s: state, nonce,
// code_challenge (S256), client_id, redirect_uri and scopes.
func (c *Connector) LoginURL(ctx context.Context, s connector.State) (string, error) {
	if s.State == "" || s.Nonce == "" || s.PKCEVerifier == "" {
		return "", fmt.Errorf("%w: state, nonce and PKCE verifier are required", connector.ErrBadState)
	}
	p, _, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return c.oauth2Config(p, s.RedirectURL).AuthCodeURL(s.State,
		gooidc.Nonce(s.Nonce), oauth2.S256ChallengeOption(s.PKCEVerifier)), nil
}

// HandleCallback checks the callback against s, exchanges the code (with the
// PKCE verifier), verifies the id_token and returns the identity it vouches for.
func (c *Connector) HandleCallback(ctx context.Context, s connector.State, r *http.Request) (connector.Identity, error) {
	code, err := connector.CheckCallback(s, r.URL.Query())
	if err != nil {
		return connector.Identity{}, err
	}
	if s.Nonce == "" {
		return connector.Identity{}, fmt.Errorf("%w: no nonce saved for this sign-in", connector.ErrBadState)
	}
	p, verifier, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	ctx = gooidc.ClientContext(ctx, c.client)
	tok, err := c.oauth2Config(p, s.RedirectURL).Exchange(ctx, code, oauth2.VerifierOption(s.PKCEVerifier))
	if err != nil {
		return connector.Identity{}, connector.ExchangeError("code exchange", err)
	}
	idt, err := c.verify(ctx, verifier, tok)
	if err != nil {
		return connector.Identity{}, err
	}
	if !equal(idt.Nonce, s.Nonce) {
		return connector.Identity{}, fmt.Errorf("%w: nonce does not match this sign-in", connector.ErrInvalidToken)
	}
	return c.identity(ctx, p, idt, tok, nil)
}

// Refresh asks the provider for fresh claims with the refresh token kept in
// id.ConnectorData. A refresh token the provider no longer accepts gives
// connector.ErrUpstreamDenied; none kept gives connector.ErrNoRefresh.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var data connectorData
	if len(id.ConnectorData) > 0 {
		if err := json.Unmarshal(id.ConnectorData, &data); err != nil {
			return connector.Identity{}, fmt.Errorf("oidc: connector data is not readable")
		}
	}
	if data.RefreshToken == "" {
		return connector.Identity{}, fmt.Errorf("%w: no upstream refresh token (request offline_access?)", connector.ErrNoRefresh)
	}
	p, verifier, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	ctx = gooidc.ClientContext(ctx, c.client)
	tok, err := c.oauth2Config(p, "").TokenSource(ctx, &oauth2.Token{RefreshToken: data.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.ErrorCode != "" {
			return connector.Identity{}, &connector.DeniedError{Code: connector.Printable(re.ErrorCode, 64)}
		}
		return connector.Identity{}, connector.ExchangeError("refresh", err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = data.RefreshToken
	}
	var idt *gooidc.IDToken
	if raw, ok := tok.Extra("id_token").(string); ok && raw != "" {
		if idt, err = c.verify(ctx, verifier, tok); err != nil {
			return connector.Identity{}, err
		}
		if idt.Subject != id.Subject {
			return connector.Identity{}, fmt.Errorf("%w: refreshed id_token names another subject", connector.ErrInvalidToken)
		}
	}
	return c.identity(ctx, p, idt, tok, &id)
}

type connectorData struct {
	RefreshToken string `json:"refresh_token,omitempty"`
}

// verify checks the id_token of tok: signature, issuer, audience, expiry, and
// at_hash when present. The nonce is checked by the caller.
func (c *Connector) verify(ctx context.Context, v *gooidc.IDTokenVerifier, tok *oauth2.Token) (*gooidc.IDToken, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", connector.ErrInvalidToken)
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", connector.ErrInvalidToken, err)
	}
	if idt.Subject == "" {
		return nil, fmt.Errorf("%w: id_token has no sub", connector.ErrInvalidToken)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("%w: at_hash does not match the access token", connector.ErrInvalidToken)
		}
	}
	return idt, nil
}

type claims struct {
	Subject           string   `json:"sub"`
	Email             string   `json:"email"`
	EmailVerified     flexBool `json:"email_verified"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	// AMR is read leniently (a provider's odd amr must not fail a sign-in).
	AMR json.RawMessage `json:"amr"`
}

// amrValues are the id_token's amr values (RFC 8176) that are short tokens
// of letters, digits, '_' and '-' (at most 8); others are dropped.
func amrValues(raw json.RawMessage) []string {
	var vals []string
	if len(raw) == 0 || json.Unmarshal(raw, &vals) != nil {
		return nil
	}
	var out []string
	for _, v := range vals {
		if len(out) == 8 {
			break
		}
		if connector.ValidAMR(v) {
			out = append(out, v)
		}
	}
	return out
}

// identity builds the Identity from the id_token's claims (idt may be nil on a
// refresh without id_token), asking userinfo when there is no email. prev is the
// identity being refreshed, nil at sign-in.
func (c *Connector) identity(ctx context.Context, p *gooidc.Provider, idt *gooidc.IDToken, tok *oauth2.Token, prev *connector.Identity) (connector.Identity, error) {
	var cl claims
	if idt != nil {
		if err := idt.Claims(&cl); err != nil {
			return connector.Identity{}, fmt.Errorf("%w: id_token claims: %w", connector.ErrInvalidToken, err)
		}
	} else {
		cl.Subject = prev.Subject
	}
	if cl.Email == "" && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return connector.Identity{}, fmt.Errorf("%w: userinfo request failed: %s", connector.ErrUpstream, connector.TransportReason(err))
		}
		if ui.Subject != cl.Subject {
			return connector.Identity{}, fmt.Errorf("%w: userinfo names another subject than the id_token", connector.ErrInvalidToken)
		}
		var uc claims
		if err := ui.Claims(&uc); err != nil {
			return connector.Identity{}, fmt.Errorf("%w: userinfo is not readable", connector.ErrUpstream)
		}
		cl.Email, cl.EmailVerified = uc.Email, uc.EmailVerified
		if cl.Name == "" {
			cl.Name = uc.Name
		}
		if cl.PreferredUsername == "" {
			cl.PreferredUsername = uc.PreferredUsername
		}
	}
	id := connector.Identity{
		ConnectorID:       c.cfg.ID,
		Subject:           cl.Subject,
		Email:             cl.Email,
		EmailVerified:     cl.Email != "" && bool(cl.EmailVerified),
		Name:              cl.Name,
		PreferredUsername: cl.PreferredUsername,
		AMR:               amrValues(cl.AMR),
	}
	if tok.RefreshToken != "" {
		data, err := json.Marshal(connectorData{RefreshToken: tok.RefreshToken})
		if err != nil {
			return connector.Identity{}, fmt.Errorf("oidc: encode connector data: %w", err)
		}
		id.ConnectorData = data
	}
	return id, nil
}

// flexBool reads true, false, "true" and "false" (some providers send strings).
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null", `""`:
		*b = false
	default:
		return fmt.Errorf("oidc: email_verified is not a boolean")
	}
	return nil
}

func equal(a, b string) bool {
	x := sha256.Sum256([]byte(a))
	y := sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}
