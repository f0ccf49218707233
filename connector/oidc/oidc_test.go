package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/connector/connectortest"
	"github.com/authd/authd/connector/oidc"
)

const (
	clientID     = "authd-client"
	clientSecret = "s3cret-client-value"
	redirectURL  = "https://authd.example/connectors/up/callback"
)

// fakeProvider is a minimal OpenID Connect provider: discovery, JWKS (ES256),
// authorize, token (code with PKCE S256, refresh), userinfo.
type fakeProvider struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	codes  map[string]grant  // code -> what the authorize request carried
	tokens map[string]string // access or refresh token -> sub
	claims map[string]any    // extra claims of the id_token for the next issue
	// knobs for the failure cases
	signWith     *ecdsa.PrivateKey // sign id_tokens with another key (bad signature)
	audience     string
	nonce        *string
	expiresIn    time.Duration
	tokenStatus  int
	noEmail      bool
	userinfoSub  string
	refreshClaim map[string]any
}

type grant struct {
	nonce, challenge, redirectURI string
}

func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{t: t, key: key, codes: map[string]grant{}, tokens: map[string]string{}, expiresIn: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /tenant/.well-known/openid-configuration", p.discovery) // names the issuer without /tenant
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProvider) discovery(w http.ResponseWriter, _ *http.Request) {
	u := p.srv.URL
	connectortest.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                u,
		"authorization_endpoint":                u + "/authorize",
		"token_endpoint":                        u + "/token",
		"jwks_uri":                              u + "/jwks",
		"userinfo_endpoint":                     u + "/userinfo",
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
	})
}

func (p *fakeProvider) jwks(w http.ResponseWriter, _ *http.Request) {
	connectortest.WriteJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	}})
}

func (p *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	code := connectortest.RandomString(p.t)
	p.mu.Lock()
	p.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
	p.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != clientID || secret != clientSecret {
		connectortest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokenStatus != 0 {
		connectortest.WriteJSON(w, p.tokenStatus, map[string]string{"error": "server_error"})
		return
	}
	var sub, nonce string
	extra := p.claims
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		g, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || g.redirectURI != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			connectortest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "code " + r.PostFormValue("code") + " rejected"})
			return
		}
		sub, nonce = "user-123", g.nonce
	case "refresh_token":
		s, ok := p.tokens["r:"+r.PostFormValue("refresh_token")]
		if !ok {
			connectortest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		sub, nonce, extra = s, "", p.refreshClaim
	default:
		connectortest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if p.nonce != nil {
		nonce = *p.nonce
	}
	access, refresh := connectortest.RandomString(p.t), connectortest.RandomString(p.t)
	p.tokens["a:"+access], p.tokens["r:"+refresh] = sub, sub
	claims := map[string]any{
		"iss": p.srv.URL, "sub": sub, "aud": clientID, "iat": time.Now().Unix(),
		"exp": time.Now().Add(p.expiresIn).Unix(), "name": "Ada Lovelace", "preferred_username": "ada",
	}
	if p.audience != "" {
		claims["aud"] = p.audience
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if !p.noEmail {
		claims["email"], claims["email_verified"] = "ada@example.com", true
	}
	for k, v := range extra {
		claims[k] = v
	}
	connectortest.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": refresh, "id_token": p.sign(claims),
	})
}

func (p *fakeProvider) userinfo(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sub, ok := p.tokens["a:"+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	if p.userinfoSub != "" {
		sub = p.userinfoSub
	}
	connectortest.WriteJSON(w, http.StatusOK, map[string]any{"sub": sub, "email": "ada@userinfo.example", "email_verified": "true", "name": "Ada (userinfo)"})
}

func (p *fakeProvider) sign(claims map[string]any) string {
	key := p.key
	if p.signWith != nil {
		key = p.signWith
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		p.t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// set changes the provider's behaviour under its lock.
func (p *fakeProvider) set(f func(p *fakeProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func newConnector(t *testing.T, issuer string, scopes ...string) *oidc.Connector {
	t.Helper()
	c, err := oidc.New(connector.Config{
		ID: "up", Type: connector.TypeOIDC, Name: "Upstream", Issuer: issuer,
		ClientID: clientID, ClientSecret: clientSecret, Scopes: scopes, RedirectURL: redirectURL,
	}, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("oidc.New: %v", err)
	}
	return c
}

// assertNoSecret fails when err's text holds the client secret or one of the
// flow's secrets.
func assertNoSecret(t *testing.T, err error, s connector.State, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range append([]string{clientSecret, s.Nonce, s.PKCEVerifier}, extra...) {
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func TestLoginURL(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL, "email", "offline_access")
	s := connectortest.NewState(t)
	raw, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatalf("LoginURL = %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != p.srv.URL+"/authorize" {
		t.Errorf("LoginURL endpoint = %q; want %q", got, p.srv.URL+"/authorize")
	}
	sum := sha256.Sum256([]byte(s.PKCEVerifier))
	q := u.Query()
	want := map[string]string{
		"state": s.State, "nonce": s.Nonce, "client_id": clientID, "redirect_uri": redirectURL,
		"response_type": "code", "code_challenge_method": "S256",
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "scope": "openid email offline_access",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("LoginURL %s = %q; want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") || strings.Contains(raw, clientSecret) || strings.Contains(raw, s.PKCEVerifier) {
		t.Errorf("LoginURL = %q; carries a secret", raw)
	}

	s.RedirectURL = "https://other.example/cb"
	raw, _ = c.LoginURL(t.Context(), s)
	if u, _ := url.Parse(raw); u.Query().Get("redirect_uri") != s.RedirectURL {
		t.Errorf("LoginURL redirect_uri = %q; want State.RedirectURL", u.Query().Get("redirect_uri"))
	}
	if _, err := c.LoginURL(t.Context(), connector.State{State: "x"}); !errors.Is(err, connector.ErrBadState) {
		t.Errorf("LoginURL(no nonce, no verifier) = %v; want ErrBadState", err)
	}
}

func TestSignIn(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL)
	s := connectortest.NewState(t)
	r := connectortest.SignIn(t, c, s)
	id, err := c.HandleCallback(t.Context(), s, r)
	if err != nil {
		t.Fatalf("HandleCallback = %v", err)
	}
	want := connector.Identity{ConnectorID: "up", Subject: "user-123", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace", PreferredUsername: "ada"}
	if id.String() != want.String() {
		t.Errorf("HandleCallback = %v; want %v", id, want)
	}
	if len(id.ConnectorData) == 0 {
		t.Errorf("ConnectorData is empty; want the refresh token kept")
	}

	// The code is single use: the replayed callback fails at the exchange.
	_, err = c.HandleCallback(t.Context(), s, r)
	if !errors.Is(err, connector.ErrUpstream) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("HandleCallback(replayed code) = %v; want ErrUpstream invalid_grant", err)
	}
	assertNoSecret(t, err, s, r.URL.Query().Get("code"))
}

func TestSignInUserinfoFallback(t *testing.T) {
	p := newFakeProvider(t)
	p.set(func(p *fakeProvider) { p.noEmail = true })
	c := newConnector(t, p.srv.URL)
	s := connectortest.NewState(t)
	id, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s))
	if err != nil {
		t.Fatalf("HandleCallback = %v", err)
	}
	if id.Email != "ada@userinfo.example" || !id.EmailVerified || id.Name != "Ada Lovelace" || id.Subject != "user-123" {
		t.Errorf("HandleCallback = %v; want the email from userinfo, the rest from the id_token", id)
	}

	p.set(func(p *fakeProvider) { p.userinfoSub = "someone-else" })
	s = connectortest.NewState(t)
	_, err = c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s))
	if !errors.Is(err, connector.ErrInvalidToken) {
		t.Errorf("HandleCallback(userinfo of another sub) = %v; want ErrInvalidToken", err)
	}
}

func TestCallbackFailures(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongNonce := "not-the-nonce"
	tests := []struct {
		name   string
		knob   func(p *fakeProvider)
		tamper func(s *connector.State, r *http.Request) *http.Request
		want   error
	}{
		{name: "wrong state", tamper: func(s *connector.State, r *http.Request) *http.Request {
			q := r.URL.Query()
			q.Set("state", "forged")
			return httptest.NewRequest(http.MethodGet, redirectURL+"?"+q.Encode(), nil)
		}, want: connector.ErrBadState},
		{name: "no code", tamper: func(s *connector.State, r *http.Request) *http.Request {
			return httptest.NewRequest(http.MethodGet, redirectURL+"?state="+url.QueryEscape(s.State), nil)
		}, want: connector.ErrBadState},
		{name: "error callback", tamper: func(s *connector.State, r *http.Request) *http.Request {
			return httptest.NewRequest(http.MethodGet, redirectURL+"?error=access_denied&error_description=User+declined&state="+url.QueryEscape(s.State), nil)
		}, want: connector.ErrUpstreamDenied},
		{name: "wrong PKCE verifier", tamper: func(s *connector.State, r *http.Request) *http.Request {
			s.PKCEVerifier = strings.Repeat("v", 43)
			return r
		}, want: connector.ErrUpstream},
		{name: "wrong nonce", knob: func(p *fakeProvider) { p.nonce = &wrongNonce }, want: connector.ErrInvalidToken},
		{name: "no nonce", knob: func(p *fakeProvider) { empty := ""; p.nonce = &empty }, want: connector.ErrInvalidToken},
		{name: "wrong audience", knob: func(p *fakeProvider) { p.audience = "another-client" }, want: connector.ErrInvalidToken},
		{name: "expired", knob: func(p *fakeProvider) { p.expiresIn = -time.Minute }, want: connector.ErrInvalidToken},
		{name: "bad signature", knob: func(p *fakeProvider) { p.signWith = other }, want: connector.ErrInvalidToken},
		{name: "other issuer", knob: func(p *fakeProvider) { p.claims = map[string]any{"iss": "https://evil.example"} }, want: connector.ErrInvalidToken},
		{name: "token endpoint 500", knob: func(p *fakeProvider) { p.tokenStatus = http.StatusInternalServerError }, want: connector.ErrUpstream},
		{name: "token endpoint 503", knob: func(p *fakeProvider) { p.tokenStatus = http.StatusServiceUnavailable }, want: connector.ErrUpstream},
	}
	sentinels := []error{connector.ErrBadState, connector.ErrUpstreamDenied, connector.ErrUpstream, connector.ErrInvalidToken}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t)
			if tt.knob != nil {
				p.set(tt.knob)
			}
			c := newConnector(t, p.srv.URL)
			s := connectortest.NewState(t)
			r := connectortest.SignIn(t, c, s)
			code := r.URL.Query().Get("code")
			if tt.tamper != nil {
				r = tt.tamper(&s, r)
			}
			id, err := c.HandleCallback(t.Context(), s, r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("HandleCallback = %v, %v; want %v", id, err, tt.want)
			}
			for _, other := range sentinels {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("HandleCallback = %v; also matches %v", err, other)
				}
			}
			assertNoSecret(t, err, s, code)
		})
	}
}

func TestErrorCallbackCode(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL)
	s := connectortest.NewState(t)
	r := httptest.NewRequest(http.MethodGet, redirectURL+"?error=access_denied&error_description=User+declined&state="+url.QueryEscape(s.State), nil)
	_, err := c.HandleCallback(t.Context(), s, r)
	var de *connector.DeniedError
	if !errors.As(err, &de) || de.Code != "access_denied" || de.Description != "User declined" {
		t.Errorf("HandleCallback(error callback) = %v; want DeniedError{access_denied, User declined}", err)
	}
}

func TestUpstreamDown(t *testing.T) {
	p := newFakeProvider(t)
	issuer := p.srv.URL
	p.srv.Close()
	c := newConnector(t, issuer)
	s := connectortest.NewState(t)
	if _, err := c.LoginURL(t.Context(), s); !errors.Is(err, connector.ErrUpstream) {
		t.Errorf("LoginURL(provider down) = %v; want ErrUpstream", err)
	}
	r := httptest.NewRequest(http.MethodGet, redirectURL+"?code=abc&state="+url.QueryEscape(s.State), nil)
	if _, err := c.HandleCallback(t.Context(), s, r); !errors.Is(err, connector.ErrUpstream) {
		t.Errorf("HandleCallback(provider down) = %v; want ErrUpstream", err)
	} else {
		assertNoSecret(t, err, s, "abc")
	}
}

func TestDiscoveryHangs(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	c := newConnector(t, hang.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Discover(ctx)
	if !errors.Is(err, connector.ErrUpstream) {
		t.Errorf("Discover(hanging provider) = %v; want ErrUpstream", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Discover took %v; want it bounded by the context", d)
	}
}

func TestDiscoveryRecovers(t *testing.T) {
	p := newFakeProvider(t)
	var down sync.Mutex
	failing := true
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down.Lock()
		f := failing
		down.Unlock()
		if f {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		p.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	// The fake names its own URL as issuer, so discovery through front would be an
	// issuer mismatch; point the fake at front instead.
	p.srv.URL = front.URL

	c := newConnector(t, front.URL)
	if err := c.Discover(t.Context()); !errors.Is(err, connector.ErrUpstream) {
		t.Fatalf("Discover(503) = %v; want ErrUpstream", err)
	}
	down.Lock()
	failing = false
	down.Unlock()
	s := connectortest.NewState(t)
	if _, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s)); err != nil {
		t.Fatalf("HandleCallback after the provider came back = %v", err)
	}
}

func TestIssuerMismatch(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL+"/tenant")
	err := c.Discover(t.Context())
	if !errors.Is(err, connector.ErrUpstream) || !strings.Contains(err.Error(), "did not match") {
		t.Errorf("Discover(issuer mismatch) = %v; want ErrUpstream naming the mismatch", err)
	}
}

func TestRefresh(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL, "email", "offline_access")
	s := connectortest.NewState(t)
	id, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s))
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(p *fakeProvider) {
		p.refreshClaim = map[string]any{"name": "Ada King", "email": "ada@king.example"}
	})
	got, err := c.Refresh(t.Context(), id)
	if err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if got.Subject != id.Subject || got.Name != "Ada King" || got.Email != "ada@king.example" || got.ConnectorID != "up" {
		t.Errorf("Refresh = %v; want updated name and email, same subject", got)
	}
	if slices.Equal(got.ConnectorData, id.ConnectorData) || len(got.ConnectorData) == 0 {
		t.Errorf("Refresh kept the old ConnectorData; want the rotated refresh token")
	}

	// The old refresh token still works in the fake; a revoked one is denied.
	revoked := id
	revoked.ConnectorData = []byte(`{"refresh_token":"revoked-token"}`)
	_, err = c.Refresh(t.Context(), revoked)
	var de *connector.DeniedError
	if !errors.As(err, &de) || de.Code != "invalid_grant" || strings.Contains(err.Error(), "revoked-token") {
		t.Errorf("Refresh(revoked) = %v; want DeniedError invalid_grant without the token", err)
	}

	if _, err := c.Refresh(t.Context(), connector.Identity{ConnectorID: "up", Subject: "user-123"}); !errors.Is(err, connector.ErrNoRefresh) {
		t.Errorf("Refresh(no data) = %v; want ErrNoRefresh", err)
	}

	p.set(func(p *fakeProvider) { p.refreshClaim = map[string]any{"sub": "user-999"} })
	p.set(func(p *fakeProvider) { p.tokens["r:other"] = "user-123" })
	other := id
	other.ConnectorData = []byte(`{"refresh_token":"other"}`)
	if _, err := c.Refresh(t.Context(), other); !errors.Is(err, connector.ErrInvalidToken) {
		t.Errorf("Refresh(id_token of another sub) = %v; want ErrInvalidToken", err)
	}
}

func TestConcurrentSignIns(t *testing.T) {
	p := newFakeProvider(t)
	c := newConnector(t, p.srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := connector.NewState("")
			if err != nil {
				errs <- err
				return
			}
			raw, err := c.LoginURL(context.Background(), s)
			if err != nil {
				errs <- err
				return
			}
			browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := browser.Get(raw)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			id, err := c.HandleCallback(context.Background(), s, httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil))
			if err == nil && id.Subject != "user-123" {
				err = fmt.Errorf("subject %q", id.Subject)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent sign-in: %v", err)
		}
	}
}
