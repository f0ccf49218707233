package server

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
	"github.com/authd/authd/templates"
)

// signinServer is the whole server with the authorize endpoint, wired as
// cmd/authd wires it, listening on loopback (the issuer is its URL, as a
// relying party's discovery requires). Client "rp" is first-party.
func signinServer(t *testing.T, st storage.Store) (*httptest.Server, string) {
	t.Helper()
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st = clientcache.New(st, 0, nil)
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	issuer := ts.URL
	km, err := keys.NewManager(ctx, st, keys.Options{Secret: []byte(testSecret), TokenTTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := oauth.NewSecretHasher([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	ids := identity.NewService(st, rec, identity.Options{
		LockoutThreshold: 5, LockoutDuration: time.Hour,
		Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	set, err := templates.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	var p *oauth.Provider
	pages, err := web.New(web.Config{
		Issuer: issuer, Secrets: [][]byte{[]byte(testSecret)}, Templates: set, Identity: ids, Users: st,
		Sessions: identity.NewSessions(st, identity.SessionOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err = oauth.New(oauth.Options{
		Issuer: issuer, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		Secret: []byte(testSecret), Store: st, Denylist: st, ProofReplay: st, Signer: km, Auth: ids, Recorder: rec, Hasher: hasher,
		Pages: AuthorizePages(pages),
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := clients.NewService(st, rec, clients.Options{Hasher: hasher, GrantTypes: oauth.SupportedGrantTypes()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Issuer: issuer, OAuth: p, Keys: km, Store: st, Identity: ids, Recorder: rec, Clients: cs, Pages: pages})
	if err != nil {
		t.Fatal(err)
	}
	handler = srv
	c, sec, err := clients.Spec{
		ID: "rp", FirstParty: true, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"openid", "profile"}, RedirectURIs: []string{"https://rp.example/cb"},
		PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
	}.Record(ctx, hasher, oauth.SupportedGrantTypes())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice", Email: "alice@example.com", Password: testPassword}, identity.Meta{}); err != nil {
		t.Fatal(err)
	}
	return ts, sec
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenFormRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// A relying party discovers authd (OpenID Connect Discovery), signs a
// person in through the login page, exchanges the code with PKCE and checks
// the id_token against the JWKS discovery names.
func TestSignInThroughDiscovery(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ts, secret := signinServer(t, b.open(t))
			ctx := t.Context()
			provider, err := oidc.NewProvider(ctx, ts.URL)
			if err != nil {
				t.Fatalf("oidc.NewProvider: %v", err)
			}
			var doc map[string]any
			if err := provider.Claims(&doc); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]any{
				"authorization_endpoint":   ts.URL + "/oauth2/authorize",
				"end_session_endpoint":     ts.URL + "/oauth2/logout",
				"response_types_supported": []any{"code"}, "response_modes_supported": []any{"query"},
				"code_challenge_methods_supported":               []any{"S256"},
				"authorization_response_iss_parameter_supported": true,
				"id_token_signing_alg_values_supported":          []any{"ES256"},
			} {
				if got, _ := json.Marshal(doc[k]); string(got) != mustJSON(t, want) {
					t.Errorf("discovery %s = %s; want %s", k, got, mustJSON(t, want))
				}
			}
			if gts, _ := doc["grant_types_supported"].([]any); !slices.Contains(gts, any("authorization_code")) {
				t.Errorf("grant_types_supported = %v; want authorization_code in it", gts)
			}
			var rfc8414 map[string]any
			resp, err := http.Get(ts.URL + "/.well-known/oauth-authorization-server")
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewDecoder(resp.Body).Decode(&rfc8414)
			resp.Body.Close()
			if rfc8414["authorization_endpoint"] != ts.URL+"/oauth2/authorize" || rfc8414["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("RFC 8414 document lacks the authorize endpoint's fields: %v", rfc8414)
			}

			conf := &oauth2.Config{ClientID: "rp", ClientSecret: secret, Endpoint: provider.Endpoint(),
				RedirectURL: "https://rp.example/cb", Scopes: []string{oidc.ScopeOpenID, "profile"}}
			verifier, state, nonce := oauth2.GenerateVerifier(), "state-0123456789", "nonce-0123456789"
			authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

			jar, _ := cookiejar.New(nil)
			host := strings.TrimPrefix(ts.URL, "http://")
			browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if req.URL.Host != host {
					return http.ErrUseLastResponse
				}
				return nil
			}}
			resp, err = browser.Get(authURL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Request.URL.Path != "/login" || !strings.Contains(string(body), `autocomplete="current-password"`) {
				t.Fatalf("GET authorize ended at %s (%d); want the login page", resp.Request.URL, resp.StatusCode)
			}
			m := formActionRE.FindStringSubmatch(string(body))
			if m == nil {
				t.Fatal("no form on the login page")
			}
			form := url.Values{"username": {"alice"}, "password": {testPassword}}
			for _, h := range hiddenFormRE.FindAllStringSubmatch(string(body), -1) {
				form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
			}
			resp, err = browser.PostForm(ts.URL+html.UnescapeString(m[1]), form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusSeeOther || loc.Host != "rp.example" {
				t.Fatalf("after the login: %d, Location %q; want 303 to the client", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("iss") != ts.URL || q.Get("state") != state || q.Get("code") == "" {
				t.Fatalf("authorization response %v; want code, state and iss", q)
			}
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(ctx, raw)
			if err != nil {
				t.Fatalf("Verify(id_token) with the discovered JWKS: %v", err)
			}
			if idt.Nonce != nonce || idt.VerifyAccessToken(tok.AccessToken) != nil || tok.RefreshToken == "" {
				t.Errorf("id_token nonce %q, at_hash %v, refresh token %q; want %q, valid, one", idt.Nonce, idt.VerifyAccessToken(tok.AccessToken), tok.RefreshToken, nonce)
			}
			// The access token works on authd's own API (aud is the client).
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /api/v1/me with the code's access token = %d; want 200", resp.StatusCode)
			}
			// An unregistered redirect_uri is the error page, never a redirect.
			bad := strings.Replace(authURL, url.QueryEscape("https://rp.example/cb"), url.QueryEscape("https://evil.example/cb"), 1)
			resp, err = browser.Get(bad)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("unregistered redirect_uri: %d, Location %q; want the error page", resp.StatusCode, resp.Header.Get("Location"))
			}

			// RP-initiated logout at the discovered end_session_endpoint:
			// the confirmation, then back to the client with state.
			endSession, _ := doc["end_session_endpoint"].(string)
			resp, err = browser.Get(endSession + "?" + url.Values{
				"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"bye-1"},
			}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if m = formActionRE.FindStringSubmatch(string(body)); resp.StatusCode != http.StatusOK || m == nil {
				t.Fatalf("GET end_session_endpoint: %d; want the confirmation:\n%s", resp.StatusCode, body)
			}
			form = url.Values{"decision": {"logout"}}
			for _, h := range hiddenFormRE.FindAllStringSubmatch(string(body), -1) {
				form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
			}
			resp, err = browser.PostForm(ts.URL+html.UnescapeString(m[1]), form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "https://rp.example/bye?state=bye-1" {
				t.Errorf("confirmed logout: %d, Location %q; want 303 to https://rp.example/bye?state=bye-1", resp.StatusCode, loc)
			}
			// An id_token_hint longer than other query values (an RS256
			// id_token) reaches the endpoint: its error page, not the
			// middleware's JSON.
			resp, err = browser.Get(endSession + "?id_token_hint=" + strings.Repeat("a", 3000))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("a long id_token_hint: %d %s; want the endpoint's 400 page", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
