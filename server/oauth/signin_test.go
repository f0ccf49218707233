package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/events"
	"github.com/authd/authd/internal/dpop/dpoptest"
	"github.com/authd/authd/storage"
)

// forEachStore runs fn on SQLite and on PostgreSQL (skipped without
// AUTHD_TEST_POSTGRES_URL, failing in CI).
func forEachStore(t *testing.T, fn func(t *testing.T, st storage.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

// rp is a relying party: x/oauth2 for the flow, go-oidc checking the
// id_token against authd's JWKS.
type rp struct {
	s        *signin
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (s *signin) rp(clientID, redirectURI string, scopes ...string) *rp {
	ks := oidc.NewRemoteKeySet(context.Background(), s.srv.URL+"/jwks")
	return &rp{s: s, conf: s.config(clientID, redirectURI, scopes...), verifier: oidc.NewVerifier(s.srv.URL, ks, &oidc.Config{
		ClientID: clientID, SupportedSigningAlgs: []string{s.keys.Alg()},
	})}
}

// request is one authorization request's secrets, kept by the client.
type request struct {
	state, nonce, verifier string
}

func newRequest() request {
	return request{state: oauth2.GenerateVerifier()[:20], nonce: oauth2.GenerateVerifier()[:20], verifier: oauth2.GenerateVerifier()}
}

// authURL is the authorization request, with PKCE S256 and a nonce.
func (c *rp) authURL(req request, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(req.verifier), oidc.Nonce(req.nonce)}, extra...)
	return c.conf.AuthCodeURL(req.state, opts...)
}

// exchange trades code for tokens and checks the id_token: signature by the
// served JWKS, iss, aud, exp, nonce, at_hash, and the claims authd adds.
func (c *rp) exchange(t *testing.T, code string, req request) (*oauth2.Token, *oidc.IDToken, idExtra) {
	t.Helper()
	tok, err := c.conf.Exchange(t.Context(), code, oauth2.VerifierOption(req.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the token response has no id_token")
	}
	idt, err := c.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc Verify(id_token): %v", err)
	}
	if idt.Nonce != req.nonce {
		t.Errorf("nonce = %q; want %q", idt.Nonce, req.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var x idExtra
	if err := idt.Claims(&x); err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(raw, ".")
	if h := decodeSegment(t, hdr); h["typ"] != "JWT" || h["kid"] == "" {
		t.Errorf("id_token header = %v; want typ JWT and a kid", h)
	}
	if idt.Subject != c.s.userID || x.AuthTime == 0 || x.SID == "" || !slices.Equal(x.AMR, []string{"pwd"}) {
		t.Errorf("id_token sub %q auth_time %d sid %q amr %v; want %q, set, set, [pwd]", idt.Subject, x.AuthTime, x.SID, x.AMR, c.s.userID)
	}
	return tok, idt, x
}

type idExtra struct {
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
	AMR      []string `json:"amr"`
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// signIn runs a whole first sign-in in browser b for client c: the login
// form, the consent page when the client asks for one, and returns the code.
func (s *signin) signIn(t *testing.T, b *browser, c *rp, req request) string {
	t.Helper()
	pg := b.get(c.authURL(req))
	pg = b.login(pg, "alice", password)
	if pg.isConsent() {
		pg = b.decide(pg, "allow")
	}
	return s.authorizationResponse(pg, c.conf.RedirectURL, req.state).Get("code")
}

func TestBrowserSignIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid", "profile")
		b := s.browser()
		req := newRequest()

		// No session: the login page, then consent (a third-party client).
		pg := b.get(web.authURL(req))
		if !pg.isLogin() {
			t.Fatalf("GET authorize without a session ended at %s (%d); want the login page", pg.url, pg.status)
		}
		pg = b.login(pg, "alice", password)
		if !pg.isConsent() || !strings.Contains(pg.body, "Web App") {
			t.Fatalf("after the login: %s (%d); want the consent page naming the client:\n%s", pg.url, pg.status, pg.body)
		}
		code := s.authorizationResponse(b.decide(pg, "allow"), rpRedirect, req.state).Get("code")
		tok, idt, x := web.exchange(t, code, req)
		if tok.RefreshToken == "" || !slices.Equal(idt.Audience, []string{"web"}) {
			t.Errorf("refresh token %q, aud %v; want one, [web]", tok.RefreshToken, idt.Audience)
		}
		if sc := tok.Extra("scope"); sc != "openid profile" {
			t.Errorf("scope = %v; want openid profile", sc)
		}
		// The access token is authd's usual one, and its refresh token rotates.
		claims, err := s.p.VerifyAccessToken(t.Context(), tok.AccessToken)
		if err != nil || claims.Subject != s.userID || claims.Username != "alice" || !slices.Equal(claims.Roles, []string{"user"}) {
			t.Errorf("VerifyAccessToken = %+v, %v; want alice's token", claims, err)
		}
		if _, err := web.conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh: %v", err)
		}

		// The consent is remembered: the same client again goes straight back.
		req2 := newRequest()
		code2 := s.authorizationResponse(b.get(web.authURL(req2)), rpRedirect, req2.state).Get("code")
		_, _, x2 := web.exchange(t, code2, req2)
		if x2.SID != x.SID || x2.AuthTime != x.AuthTime {
			t.Errorf("second sign-in sid %q auth_time %d; want the session's %q %d", x2.SID, x2.AuthTime, x.SID, x.AuthTime)
		}

		// Single sign-on: another (first-party, public, loopback) client signs
		// in without any form, on any port of its loopback redirect.
		cli := s.rp("cli", "http://127.0.0.1:49152/cb", "openid")
		req3 := newRequest()
		code3 := s.authorizationResponse(b.get(cli.authURL(req3)), "http://127.0.0.1:49152/cb", req3.state).Get("code")
		tok3, _, x3 := cli.exchange(t, code3, req3)
		if x3.SID != x.SID || tok3.RefreshToken == "" {
			t.Errorf("SSO sid %q refresh %q; want %q and a refresh token", x3.SID, tok3.RefreshToken, x.SID)
		}

		// A client without the refresh_token grant gets no refresh token;
		// without openid there is no id_token.
		portal := s.rp("portal", "https://portal.example/cb")
		req4 := newRequest()
		code4 := s.authorizationResponse(b.get(portal.authURL(req4)), "https://portal.example/cb", req4.state).Get("code")
		tok4, err := portal.conf.Exchange(t.Context(), code4, oauth2.VerifierOption(req4.verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok4.RefreshToken != "" || tok4.Extra("id_token") != nil {
			t.Errorf("portal without openid: refresh %q id_token %v; want neither", tok4.RefreshToken, tok4.Extra("id_token"))
		}
	})
}

func TestPromptAndMaxAge(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		cli := s.rp("cli", loopbackRedirect, "openid")
		none := oauth2.SetAuthURLParam("prompt", "none")

		// prompt=none without a session: login_required, back to the client.
		b := s.browser()
		req := newRequest()
		q := s.authorizationResponse(b.get(cli.authURL(req, none)), loopbackRedirect, req.state)
		if q.Get("error") != "login_required" || q.Get("code") != "" {
			t.Errorf("prompt=none without a session: %v; want error=login_required", q)
		}

		// Signed in: prompt=none answers a code.
		code := s.signIn(t, b, cli, req)
		_, _, first := cli.exchange(t, code, req)
		req = newRequest()
		code = s.authorizationResponse(b.get(cli.authURL(req, none)), loopbackRedirect, req.state).Get("code")
		cli.exchange(t, code, req)

		// prompt=login: the login page again despite the session, and the
		// code then tells of the new sign-in.
		time.Sleep(1100 * time.Millisecond) // auth_time has seconds
		req = newRequest()
		pg := b.get(cli.authURL(req, oauth2.SetAuthURLParam("prompt", "login")))
		if !pg.isLogin() {
			t.Fatalf("prompt=login with a session ended at %s (%d); want the login page", pg.url, pg.status)
		}
		code = s.authorizationResponse(b.login(pg, "alice", password), loopbackRedirect, req.state).Get("code")
		_, _, relogin := cli.exchange(t, code, req)
		if relogin.AuthTime <= first.AuthTime {
			t.Errorf("auth_time after prompt=login = %d; want later than %d", relogin.AuthTime, first.AuthTime)
		}

		// max_age: a sign-in older than it shows the login page; within it, not.
		time.Sleep(1100 * time.Millisecond)
		req = newRequest()
		pg = b.get(cli.authURL(req, oauth2.SetAuthURLParam("max_age", "1")))
		if !pg.isLogin() {
			t.Fatalf("max_age=1 after a second ended at %s (%d); want the login page", pg.url, pg.status)
		}
		code = s.authorizationResponse(b.login(pg, "alice", password), loopbackRedirect, req.state).Get("code")
		cli.exchange(t, code, req)
		req = newRequest()
		code = s.authorizationResponse(b.get(cli.authURL(req, oauth2.SetAuthURLParam("max_age", "3600"))), loopbackRedirect, req.state).Get("code")
		cli.exchange(t, code, req)
		// max_age exceeded with prompt=none: login_required.
		time.Sleep(1100 * time.Millisecond)
		req = newRequest()
		q = s.authorizationResponse(b.get(cli.authURL(req, none, oauth2.SetAuthURLParam("max_age", "1"))), loopbackRedirect, req.state)
		if q.Get("error") != "login_required" {
			t.Errorf("prompt=none with max_age exceeded: %v; want login_required", q)
		}
		// A forged login marker does not count as a fresh sign-in.
		req = newRequest()
		forged := oauth2.SetAuthURLParam("authd_login_after", "9999999999.AAAAAAAAAAAAAAAAAAAAAA")
		if pg := b.get(cli.authURL(req, oauth2.SetAuthURLParam("prompt", "login"), forged)); !pg.isLogin() {
			t.Errorf("prompt=login with a forged marker ended at %s (%d); want the login page", pg.url, pg.status)
		}
	})
}

func TestConsent(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()

		req := newRequest()
		pg := b.login(b.get(web.authURL(req)), "alice", password)
		q := s.authorizationResponse(b.decide(pg, "deny"), rpRedirect, req.state)
		if q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Errorf("deny: %v; want error=access_denied and no code", q)
		}
		// Denied: asked again; prompt=none says consent_required.
		req = newRequest()
		q = s.authorizationResponse(b.get(web.authURL(req, oauth2.SetAuthURLParam("prompt", "none"))), rpRedirect, req.state)
		if q.Get("error") != "consent_required" {
			t.Errorf("prompt=none before consent: %v; want consent_required", q)
		}
		req = newRequest()
		pg = b.get(web.authURL(req))
		code := s.authorizationResponse(b.decide(pg, "allow"), rpRedirect, req.state).Get("code")
		web.exchange(t, code, req)

		// A scope not allowed yet asks again, for the union.
		web2 := s.rp("web", rpRedirect, "openid", "profile")
		req = newRequest()
		if pg = b.get(web2.authURL(req)); !pg.isConsent() {
			t.Fatalf("a new scope ended at %s (%d); want the consent page", pg.url, pg.status)
		}
		code = s.authorizationResponse(b.decide(pg, "allow"), rpRedirect, req.state).Get("code")
		web2.exchange(t, code, req)
		c, err := st.GetConsent(t.Context(), s.userID, "web")
		if err != nil || !slices.Contains(c.Scopes, "openid") || !slices.Contains(c.Scopes, "profile") {
			t.Errorf("stored consent = %+v, %v; want openid and profile", c, err)
		}

		// A decision without the page's CSRF token is refused (403), no redirect.
		req = newRequest()
		form := url.Values{}
		for k, v := range mustParseQuery(t, web2.authURL(req)) {
			form.Set(k, v[0])
		}
		form.Set("prompt", "consent")
		form.Set("decision", "allow")
		if pg := b.post(s.srv.URL+"/oauth2/authorize", form); pg.status != http.StatusForbidden || pg.location != nil {
			t.Errorf("decision without CSRF: %d, location %v; want 403 and no redirect", pg.status, pg.location)
		}
	})
}

func mustParseQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestCodeExchangeErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()

		// Reuse: the second exchange fails and revokes what the first issued.
		req := newRequest()
		code := s.signIn(t, b, web, req)
		tok, _, _ := web.exchange(t, code, req)
		_, err := web.conf.Exchange(t.Context(), code, oauth2.VerifierOption(req.verifier))
		if !isOAuthError(err, "invalid_grant") {
			t.Errorf("second exchange: %v; want invalid_grant", err)
		}
		if _, err := web.conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Errorf("refresh after code reuse: %v; want invalid_grant (revoked)", err)
		}
		if active := s.introspect(t, tok.AccessToken); active {
			t.Error("the first exchange's access token is still active after the code's reuse")
		}
		if _, err := s.p.VerifyAccessToken(t.Context(), tok.AccessToken); err == nil {
			t.Error("VerifyAccessToken accepts the first exchange's access token after the code's reuse")
		}
		entries, err := st.ListAudit(t.Context(), storage.AuditFilter{Type: string(events.TokenRevoked), UserID: s.userID})
		var data struct {
			Reason string `json:"reason"`
		}
		if len(entries) > 0 {
			_ = json.Unmarshal(entries[0].Data, &data)
		}
		if err != nil || len(entries) == 0 || data.Reason != "code_reuse" || entries[0].ClientID != "web" {
			t.Errorf("audit after code reuse = %+v, %v; want auth.token.revoked for web with reason code_reuse", entries, err)
		}

		// A wrong verifier, no verifier, another client's code, another redirect_uri.
		req = newRequest()
		code = s.authorizationResponse(b.get(web.authURL(req)), rpRedirect, req.state).Get("code")
		if _, err := web.conf.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
			t.Errorf("wrong code_verifier: %v; want invalid_grant", err)
		}
		req = newRequest()
		code = s.authorizationResponse(b.get(web.authURL(req)), rpRedirect, req.state).Get("code")
		if _, err := web.conf.Exchange(t.Context(), code); !isOAuthError(err, "invalid_grant") && !isOAuthError(err, "invalid_request") {
			t.Errorf("no code_verifier: %v; want invalid_grant or invalid_request", err)
		}
		req = newRequest()
		code = s.authorizationResponse(b.get(web.authURL(req)), rpRedirect, req.state).Get("code")
		other := *web.conf
		other.RedirectURL = rpRedirect + "/other"
		if _, err := other.Exchange(t.Context(), code, oauth2.VerifierOption(req.verifier)); !isOAuthError(err, "invalid_grant") {
			t.Errorf("another redirect_uri at the exchange: %v; want invalid_grant", err)
		}
		req = newRequest()
		code = s.authorizationResponse(b.get(web.authURL(req)), rpRedirect, req.state).Get("code")
		portal := s.config("portal", rpRedirect)
		if _, err := portal.Exchange(t.Context(), code, oauth2.VerifierOption(req.verifier)); !isOAuthError(err, "invalid_grant") {
			t.Errorf("another client's code: %v; want invalid_grant", err)
		}
		if _, err := web.conf.Exchange(t.Context(), "not-a-code", oauth2.VerifierOption(req.verifier)); !isOAuthError(err, "invalid_grant") {
			t.Errorf("an unknown code: %v; want invalid_grant", err)
		}
	})
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

// introspect asks the introspection endpoint as the resource server.
func (s *signin) introspect(t *testing.T, token string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", s.secrets["rs"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Active
}

func TestAuthorizeRequestErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()
		req := newRequest()
		s.signIn(t, b, web, req)

		base := func() url.Values {
			return url.Values{
				"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {rpRedirect}, "scope": {"openid"},
				"state": {req.state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(req.verifier)},
				"code_challenge_method": {"S256"},
			}
		}
		authorize := func(q url.Values) page { return b.get(s.srv.URL + "/oauth2/authorize?" + q.Encode()) }

		// Errors about the client or the redirect_uri: the error page, never a redirect.
		for name, change := range map[string]func(url.Values){
			"unknown client":         func(q url.Values) { q.Set("client_id", "nobody") },
			"no client":              func(q url.Values) { q.Del("client_id") },
			"no redirect_uri":        func(q url.Values) { q.Del("redirect_uri") },
			"other host":             func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
			"other path":             func(q url.Values) { q.Set("redirect_uri", "https://rp.example/cb2") },
			"other scheme":           func(q url.Values) { q.Set("redirect_uri", "http://rp.example/cb") },
			"extra query":            func(q url.Values) { q.Set("redirect_uri", rpRedirect+"?x=1") },
			"port on a non-loopback": func(q url.Values) { q.Set("redirect_uri", "https://rp.example:8443/cb") },
			"fragment":               func(q url.Values) { q.Set("redirect_uri", rpRedirect+"#x") },
			"another client's uri":   func(q url.Values) { q.Set("redirect_uri", "https://portal.example/cb") },
		} {
			q := base()
			change(q)
			pg := authorize(q)
			if pg.location != nil || pg.status != http.StatusBadRequest || !strings.HasPrefix(pg.header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: status %d, location %v, %s; want the error page (400), no redirect", name, pg.status, pg.location, pg.header.Get("Content-Type"))
			}
		}
		// The loopback rule: another port of the registered loopback URI
		// only; not another path, host, scheme or query.
		cliBase := func(uri string) url.Values {
			q := base()
			q.Set("client_id", "cli")
			q.Set("redirect_uri", uri)
			return q
		}
		for _, uri := range []string{"http://127.0.0.1:1/other", "http://[::1]:8080/cb", "https://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb?x=1", "http://localhost:8080/cb"} {
			if pg := authorize(cliBase(uri)); pg.location != nil || pg.status != http.StatusBadRequest {
				t.Errorf("cli redirect_uri %s: status %d, location %v; want the error page", uri, pg.status, pg.location)
			}
		}
		if pg := authorize(cliBase("http://127.0.0.1:8080/cb")); pg.location == nil || pg.location.Query().Get("code") == "" {
			t.Errorf("cli redirect_uri on another loopback port: status %d, location %v; want a code", pg.status, pg.location)
		}

		// Other errors go back to the client with error, state and iss.
		for name, tc := range map[string]struct {
			change func(url.Values)
			want   string
		}{
			"no PKCE":              {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
			"plain PKCE":           {func(q url.Values) { q.Set("code_challenge", req.verifier); q.Set("code_challenge_method", "plain") }, "invalid_request"},
			"challenge no method":  {func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
			"token response type":  {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
			"no response type":     {func(q url.Values) { q.Del("response_type") }, "unsupported_response_type"},
			"scope not allowed":    {func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope"},
			"fragment mode":        {func(q url.Values) { q.Set("response_mode", "fragment") }, "unsupported_response_mode"},
			"unknown prompt":       {func(q url.Values) { q.Set("prompt", "select_account") }, "invalid_request"},
			"prompt none and more": {func(q url.Values) { q.Set("prompt", "none login") }, "invalid_request"},
			"bad max_age":          {func(q url.Values) { q.Set("max_age", "-1") }, "invalid_request"},
		} {
			q := base()
			tc.change(q)
			pg := authorize(q)
			got := s.authorizationResponse(pg, rpRedirect, req.state)
			if got.Get("error") != tc.want || got.Get("code") != "" {
				t.Errorf("%s: %v; want error=%s", name, got, tc.want)
			}
		}
	})
}

// Of many concurrent exchanges of one code exactly one gets tokens; the
// others are reuse, which revokes what the winner got.
func TestConcurrentCodeExchange(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		req := newRequest()
		code := s.signIn(t, s.browser(), web, req)
		const n = 12
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			wins   []*oauth2.Token
			others []error
		)
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tok, err := web.conf.Exchange(context.Background(), code, oauth2.VerifierOption(req.verifier))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins = append(wins, tok)
				} else {
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d of %d concurrent exchanges got tokens; want exactly 1 (errors: %v)", len(wins), n, others)
		}
		for _, err := range others {
			if !isOAuthError(err, "invalid_grant") {
				t.Errorf("a losing exchange: %v; want invalid_grant", err)
			}
		}
		if _, err := web.conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: wins[0].RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Errorf("the winner's refresh token after the reuse: %v; want invalid_grant (revoked)", err)
		}
	})
}

// The code exchange binds its tokens to the key of a DPoP proof, as the
// other grants do: the access token's cnf.jkt, and the public client's
// refresh token, which then refreshes only with a proof of that key.
func TestCodeExchangeWithDPoP(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		cli := s.rp("cli", loopbackRedirect, "openid")
		req := newRequest()
		code := s.signIn(t, s.browser(), cli, req)
		key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
		tokenURL := s.srv.URL + "/oauth2/token"
		post := func(form url.Values, proof string) (int, map[string]any) {
			r, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if proof != "" {
				r.Header.Set("DPoP", proof)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, m
		}
		status, m := post(url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {req.verifier},
			"redirect_uri": {loopbackRedirect}, "client_id": {"cli"},
		}, key.Proof(http.MethodPost, tokenURL, "", nil))
		if status != http.StatusOK || m["token_type"] != "DPoP" || m["id_token"] == nil {
			t.Fatalf("code exchange with a proof: %d %v; want DPoP tokens and an id_token", status, m)
		}
		claims, err := s.p.VerifyAccessToken(t.Context(), m["access_token"].(string))
		if err != nil || claims.Confirmation == nil || claims.Confirmation.JKT != key.JKT {
			t.Fatalf("access token cnf = %+v, %v; want jkt %s", claims, err, key.JKT)
		}
		rt := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}, "client_id": {"cli"}}
		if status, m := post(rt, other.Proof(http.MethodPost, tokenURL, "", nil)); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("refresh with another key's proof: %d %v; want 400 invalid_grant", status, m)
		}
		if status, m := post(rt, key.Proof(http.MethodPost, tokenURL, "", nil)); status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("refresh with the key's proof: %d %v; want 200 DPoP", status, m)
		}
	})
}
