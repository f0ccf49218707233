// Package github is the GitHub connector (plain OAuth 2.0, no OIDC): the
// authorization code flow with PKCE (S256), then GitHub's REST API — GET /user
// for the stable numeric id, login and name, and GET /user/emails for the
// primary email and whether GitHub has verified it. GitHub Enterprise Server is
// reached by configuring its base URLs.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authd/authd/connector"
)

// Default base URLs of github.com.
const (
	DefaultBaseURL = "https://github.com"
	DefaultAPIURL  = "https://api.github.com"
)

// maxBody bounds what is read from one API answer.
const maxBody = 1 << 20

// Connector signs people in through GitHub. It is safe for concurrent use.
type Connector struct {
	cfg    connector.Config
	client *http.Client
	oauth  oauth2.Config
	apiURL string
}

var (
	_ connector.Connector = (*Connector)(nil)
	_ connector.Refresher = (*Connector)(nil)
)

// New returns the connector for cfg (Type github). cfg.Issuer is the web base
// URL (empty: github.com) and cfg.APIURL the REST API base (empty:
// api.github.com, or <Issuer>/api/v3 for GitHub Enterprise Server). client makes
// every upstream request; nil means a client with a 30-second timeout.
func New(cfg connector.Config, client *http.Client) (*Connector, error) {
	if cfg.Type != connector.TypeGitHub {
		return nil, fmt.Errorf("github: connector %q has type %q", cfg.ID, cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimSuffix(cfg.Issuer, "/")
	api := strings.TrimSuffix(cfg.APIURL, "/")
	switch {
	case base == "" || base == DefaultBaseURL:
		base = DefaultBaseURL
		if api == "" {
			api = DefaultAPIURL
		}
	case api == "":
		api = base + "/api/v3"
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"read:user", "user:email"}
	}
	return &Connector{
		cfg:    cfg,
		client: client,
		apiURL: api,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:   base + "/login/oauth/authorize",
				TokenURL:  base + "/login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: cfg.RedirectURL,
			Scopes:      slices.Clone(scopes),
		},
	}, nil
}

// ID returns the connector's id.
func (c *Connector) ID() string { return c.cfg.ID }

// Name returns the connector's display name.
func (c *Connector) Name() string { return c.cfg.Name }

func (c *Connector) oauthConfig(redirectURL string) *oauth2.Config {
	cfg := c.oauth
	if redirectURL != "" {
		cfg.RedirectURL = redirectURL
	}
	return &cfg
}

// LoginURL returns GitHub's authorization URL for s: state, code_challenge
// (S256), client_id, redirect_uri and scopes. GitHub has no nonce.
func (c *Connector) LoginURL(_ context.Context, s connector.State) (string, error) {
	if s.State == "" || s.PKCEVerifier == "" {
		return "", fmt.Errorf("%w: state and PKCE verifier are required", connector.ErrBadState)
	}
	return c.oauthConfig(s.RedirectURL).AuthCodeURL(s.State, oauth2.S256ChallengeOption(s.PKCEVerifier)), nil
}

// HandleCallback checks the callback against s, exchanges the code (with the
// PKCE verifier) and reads the person from GitHub's API.
func (c *Connector) HandleCallback(ctx context.Context, s connector.State, r *http.Request) (connector.Identity, error) {
	code, err := connector.CheckCallback(s, r.URL.Query())
	if err != nil {
		return connector.Identity{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.oauthConfig(s.RedirectURL).Exchange(ctx, code, oauth2.VerifierOption(s.PKCEVerifier))
	if err != nil {
		return connector.Identity{}, connector.ExchangeError("code exchange", err)
	}
	return c.identity(ctx, tok)
}

// Refresh reads the person from GitHub's API again with the token kept in
// id.ConnectorData (refreshing it first when GitHub issued an expiring one). A
// token GitHub no longer accepts gives connector.ErrUpstreamDenied.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var data connectorData
	if len(id.ConnectorData) > 0 {
		if err := json.Unmarshal(id.ConnectorData, &data); err != nil {
			return connector.Identity{}, errors.New("github: connector data is not readable")
		}
	}
	if data.AccessToken == "" {
		return connector.Identity{}, fmt.Errorf("%w: no GitHub token kept", connector.ErrNoRefresh)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.oauthConfig("").TokenSource(ctx, &oauth2.Token{
		AccessToken: data.AccessToken, RefreshToken: data.RefreshToken, Expiry: data.Expiry, TokenType: "bearer",
	}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return connector.Identity{}, &connector.DeniedError{Code: connector.Printable(re.ErrorCode, 64)}
		}
		return connector.Identity{}, connector.ExchangeError("refresh", err)
	}
	got, err := c.identity(ctx, tok)
	if err != nil {
		return connector.Identity{}, err
	}
	if got.Subject != id.Subject {
		return connector.Identity{}, fmt.Errorf("%w: GitHub answered for another user id", connector.ErrUpstream)
	}
	return got, nil
}

type connectorData struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

type user struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

func (c *Connector) identity(ctx context.Context, tok *oauth2.Token) (connector.Identity, error) {
	var u user
	if err := c.get(ctx, tok, "/user", &u); err != nil {
		return connector.Identity{}, err
	}
	if u.ID <= 0 {
		return connector.Identity{}, fmt.Errorf("%w: GitHub /user has no id", connector.ErrUpstream)
	}
	var emails []email
	if err := c.get(ctx, tok, "/user/emails", &emails); err != nil {
		return connector.Identity{}, err
	}
	id := connector.Identity{
		ConnectorID:       c.cfg.ID,
		Subject:           strconv.FormatInt(u.ID, 10),
		Email:             u.Email,
		Name:              u.Name,
		PreferredUsername: u.Login,
	}
	for _, e := range emails {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Verified && e.Email != ""
			break
		}
	}
	data, err := json.Marshal(connectorData{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	if err != nil {
		return connector.Identity{}, fmt.Errorf("github: encode connector data: %w", err)
	}
	id.ConnectorData = data
	return id, nil
}

// get calls GitHub's API at path with tok and decodes the JSON answer into v.
func (c *Connector) get(ctx context.Context, tok *oauth2.Token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL+path, nil)
	if err != nil {
		return fmt.Errorf("github: request %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	tok.SetAuthHeader(req)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GitHub %s: %s", connector.ErrUpstream, path, connector.TransportReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: GitHub %s: reading the answer: %s", connector.ErrUpstream, path, connector.TransportReason(err))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return &connector.DeniedError{Code: "invalid_token", Description: "GitHub no longer accepts the token"}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: GitHub %s answered %d", connector.ErrUpstream, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: GitHub %s: unreadable answer", connector.ErrUpstream, path)
	}
	return nil
}
