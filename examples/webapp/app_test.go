package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func testApp(t *testing.T) *app {
	t.Helper()
	const issuer = "https://auth.example.com"
	a, err := newApp(appConfig{
		OAuth: oauth2.Config{
			ClientID: "webapp", RedirectURL: "https://shop.example/callback", Scopes: []string{"openid", "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: issuer + "/oauth2/token"},
		},
		Verifier: oidc.NewVerifier(issuer, &oidc.StaticKeySet{}, &oidc.Config{ClientID: "webapp"}),
		Issuer:   issuer, Audience: "orders", OrdersURL: "https://orders.example",
		HTTP: http.DefaultClient, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// /login sends the browser to authd with PKCE S256, state, nonce and the
// audience, and keeps the secrets in an HttpOnly, SameSite=Lax, short-lived
// cookie whose state is the request's.
func TestLoginStartsTheCodeFlow(t *testing.T) {
	a := testApp(t)
	rec := httptest.NewRecorder()
	a.routes().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("GET /login = %d; want 303", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": "webapp", "redirect_uri": "https://shop.example/callback",
		"code_challenge_method": "S256", "audience": "orders", "scope": "openid profile"} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize %s = %q; want %q", k, got, want)
		}
	}
	if len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Errorf("authorize request %v: want a code_challenge, a nonce and a state", q)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies = %v; want the login cookie", cookies)
	}
	c := cookies[0]
	if c.Name != loginCookie || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 || c.Path != callbackPath {
		t.Errorf("login cookie = %+v; want HttpOnly, Secure, SameSite=Lax, Max-Age 600, Path /callback", c)
	}
	p, ok := decodePendingLogin(c.Value)
	if !ok || p.state != q.Get("state") || p.nonce != q.Get("nonce") || oauth2.S256ChallengeFromVerifier(p.verifier) != q.Get("code_challenge") {
		t.Errorf("the cookie does not hold the request's state, nonce and verifier")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

// A callback is refused, and signs nobody in, unless its state is the login
// cookie's and its iss (when given) is the issuer; the cookie is spent.
func TestCallbackRefusals(t *testing.T) {
	a := testApp(t)
	h := a.routes()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	login := rec.Result().Cookies()[0]
	state, _ := decodePendingLogin(login.Value)
	for name, c := range map[string]struct {
		query  string
		cookie bool
	}{
		"no cookie":     {"state=" + state.state + "&code=x", false},
		"other state":   {"state=forged&code=x", true},
		"no state":      {"code=x", true},
		"another iss":   {"state=" + state.state + "&code=x&iss=https%3A%2F%2Fevil.example", true},
		"no code":       {"state=" + state.state, true},
		"mangled value": {"state=" + state.state + "&code=x", true},
	} {
		req := httptest.NewRequest("GET", "/callback?"+c.query, nil)
		if c.cookie {
			v := login.Value
			if name == "mangled value" {
				v = "only.two"
			}
			req.AddCookie(&http.Cookie{Name: loginCookie, Value: v})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d; want 400", name, rec.Code)
		}
		var spent, session bool
		for _, ck := range rec.Result().Cookies() {
			spent = spent || ck.Name == loginCookie && ck.MaxAge < 0
			session = session || ck.Name == sessionCookie
		}
		if !spent || session {
			t.Errorf("%s: login cookie spent %v, session cookie set %v; want true, false", name, spent, session)
		}
	}
}

// A denied consent comes back as access_denied: a message, no session.
func TestCallbackAccessDenied(t *testing.T) {
	a := testApp(t)
	h := a.routes()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	login := rec.Result().Cookies()[0]
	p, _ := decodePendingLogin(login.Value)
	req := httptest.NewRequest("GET", "/callback?error=access_denied&state="+p.state+"&iss=https%3A%2F%2Fauth.example.com", nil)
	req.AddCookie(login)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "You did not allow this app") || strings.Contains(rec.Header().Get("Set-Cookie"), sessionCookie) {
		t.Errorf("access_denied: %d %s", rec.Code, rec.Body.String())
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"WEBAPP_CLIENT_SECRET": "s3cret", "ORDERS_URL": "http://127.0.0.1:9000"}
	c, err := loadConfig([]string{"-client-id", "shop"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.clientID != "shop" || c.clientSecret != "s3cret" || c.ordersURL != "http://127.0.0.1:9000" || c.audience != "orders" || c.redirectURL != "http://127.0.0.1:8082/callback" {
		t.Errorf("loadConfig = %+v", c)
	}
	for _, args := range [][]string{
		{"-issuer", "ftp://x"},
		{"-redirect-url", "http://localhost:8082/elsewhere"},
		{"-client-id", ""},
		{"extra"},
	} {
		if _, err := loadConfig(args, func(string) string { return "" }); err == nil {
			t.Errorf("loadConfig(%q) succeeded; want an error", args)
		}
	}
}
