package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/events"
	"github.com/authd/authd/server/web"
)

// A POST without the form's token for this browser is 403, and nothing
// is checked.
func TestCSRF(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.createUser("alice", alicePassword)
	b := h.browser()
	login := b.get("/login")
	signup := b.get("/signup")
	other := h.browser()
	otherToken := other.get("/login").token(t)
	creds := url.Values{"username": {"alice"}, "password": {alicePassword}}
	with := func(token string) url.Values {
		v := url.Values{"csrf_token": {token}}
		for k, vs := range creds {
			v[k] = vs
		}
		return v
	}
	cases := []struct {
		name string
		b    *browser
		path string
		form url.Values
	}{
		{"no token", b, "/login", creds},
		{"empty token", b, "/login", with("")},
		{"wrong token", b, "/login", with(strings.Repeat("A", 43))},
		{"mangled token", b, "/login", with(login.token(t)[:42] + "x")},
		{"another form's token", b, "/login", with(signup.token(t))},
		{"another browser's token", b, "/login", with(otherToken)},
		{"no cookie", h.browser(), "/login", with(login.token(t))},
		{"signup without token", b, "/signup", url.Values{"username": {"bob"}, "email": {"bob@example.com"}, "password": {alicePassword}}},
		{"signup with the login token", b, "/signup", url.Values{"csrf_token": {login.token(t)}, "username": {"bob"}, "email": {"bob@example.com"}, "password": {alicePassword}}},
	}
	for _, c := range cases {
		p := c.b.post(c.path, c.form)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "This form has expired") {
			t.Errorf("%s: POST %s = %d; want 403 and the error page\n%s", c.name, c.path, p.status, p.body)
		}
		checkPageHeaders(t, c.name, p.header)
	}
	if n := len(h.audit(events.LoginSuccess)) + len(h.audit(events.LoginFailed)); n != 0 {
		t.Errorf("%d login events; want none (no password checked without a valid token)", n)
	}
	if _, err := h.store.GetUserByLogin(t.Context(), "bob"); err == nil {
		t.Error("a signup without a valid token created the account")
	}
	// The right token works (the same browser, the same form).
	if p := b.post("/login", with(login.token(t))); p.status != http.StatusSeeOther {
		t.Errorf("POST /login with its token = %d; want 303", p.status)
	}
}

// With an https issuer the cookies are Secure and __Host- prefixed.
func TestHTTPSCookies(t *testing.T) {
	h := newHarness(t, "sqlite", func(c *web.Config) { c.Issuer = "https://id.example.com" })
	h.createUser("alice", alicePassword)
	rec := httptest.NewRecorder()
	h.pages.LoginForm(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	var csrf *http.Cookie
	for _, c := range rec.Result().Cookies() {
		csrf = c
	}
	if csrf == nil || csrf.Name != "__Host-authd_csrf" || !csrf.Secure || !csrf.HttpOnly || csrf.Path != "/" {
		t.Fatalf("CSRF cookie = %+v; want __Host-authd_csrf, Secure, HttpOnly, Path=/", csrf)
	}
	token := tokenRE.FindStringSubmatch(rec.Body.String())[1]
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {alicePassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	rec = httptest.NewRecorder()
	h.pages.Login(rec, req)
	var sess *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, "session") {
			sess = c
		}
	}
	if rec.Code != http.StatusSeeOther || sess == nil || sess.Name != "__Host-authd_session" || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Fatalf("POST /login = %d, session cookie %+v; want __Host-authd_session, Secure, HttpOnly, SameSite=Lax", rec.Code, sess)
	}
	if h.pages.SessionCookieName() != "__Host-authd_session" {
		t.Errorf("SessionCookieName() = %q", h.pages.SessionCookieName())
	}
}
