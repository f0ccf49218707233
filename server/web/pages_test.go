package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/server/web"
	"github.com/authd/authd/templates"
)

// The renderers the authorize and logout endpoints call.
func TestConsentPage(t *testing.T) {
	h := newHarness(t, "sqlite")
	rec := httptest.NewRecorder()
	h.pages.Consent(rec, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?client_id=app", nil), web.ConsentView{
		ClientID: "app", ClientName: "Photo <Printer>", Username: "alice", Scopes: []string{"openid", "email", "orders:read"},
		Hidden:      []templates.Hidden{{Name: "client_id", Value: "app"}, {Name: "state", Value: `"><b>`}},
		RedirectURI: "https://app.example:8443/cb?x=1",
	})
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("Consent = %d", rec.Code)
	}
	if got := rec.Header().Get("Content-Security-Policy"); got != leavingCSP {
		t.Errorf("consent CSP = %q; want %q (no form-action: the decision ends at the client)", got, leavingCSP)
	}
	for _, want := range []string{
		"Photo &lt;Printer&gt;", "See your email address", "Confirm who you are", "Use the permission “orders:read”",
		`name="decision" value="allow"`, `name="decision" value="deny"`, `action="/oauth2/authorize"`,
		`name="state" value="&#34;&gt;&lt;b&gt;"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q:\n%s", want, body)
		}
	}
	var csrf *http.Cookie
	for _, c := range rec.Result().Cookies() {
		csrf = c
	}
	token := tokenRE.FindStringSubmatch(body)[1]
	decide := func(form url.Values, cookie *http.Cookie) (bool, bool, int) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		allow, ok := h.pages.ConsentDecision(rec, req)
		return allow, ok, rec.Code
	}
	if allow, ok, _ := decide(url.Values{"csrf_token": {token}, "decision": {"allow"}}, csrf); !allow || !ok {
		t.Errorf("decision=allow = %v, %v", allow, ok)
	}
	if allow, ok, _ := decide(url.Values{"csrf_token": {token}, "decision": {"deny"}}, csrf); allow || !ok {
		t.Errorf("decision=deny = %v, %v", allow, ok)
	}
	if _, ok, code := decide(url.Values{"csrf_token": {token}, "decision": {"maybe"}}, csrf); ok || code != http.StatusBadRequest {
		t.Errorf("decision=maybe = %v, %d; want 400", ok, code)
	}
	if _, ok, code := decide(url.Values{"decision": {"allow"}}, csrf); ok || code != http.StatusForbidden {
		t.Errorf("no token = %v, %d; want 403", ok, code)
	}
	if _, ok, code := decide(url.Values{"csrf_token": {token}, "decision": {"allow"}}, nil); ok || code != http.StatusForbidden {
		t.Errorf("no cookie = %v, %d; want 403", ok, code)
	}
}

func TestLogoutAndErrorPages(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.createUser("alice", alicePassword)
	b := h.browser()
	b.login("", "alice", alicePassword)
	u, _ := url.Parse(h.srv.URL)
	req := httptest.NewRequest(http.MethodGet, "/oauth2/logout", nil)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.pages.LogoutConfirm(rec, req, web.LogoutView{Action: "/oauth2/logout", Hidden: []templates.Hidden{{Name: "state", Value: "s"}}})
	checkPageHeaders(t, "logout confirmation", rec.Header())
	if body := rec.Body.String(); !strings.Contains(body, "<strong>alice</strong>") || !strings.Contains(body, `name="state" value="s"`) {
		t.Errorf("logout confirmation:\n%s", body)
	}
	token := tokenRE.FindStringSubmatch(rec.Body.String())[1]
	post := httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range req.Cookies() {
		post.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	if !h.pages.LogoutForm(rec, post) {
		t.Fatalf("LogoutForm with its token = false: %d", rec.Code)
	}
	if ended, err := h.pages.EndSession(rec, post); !ended || err != nil {
		t.Errorf("EndSession = %v, %v; want true", ended, err)
	}
	if _, _, err := h.pages.Session(post); err == nil {
		t.Error("the session lives on after EndSession")
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Value != "" {
		t.Errorf("EndSession cookies = %+v; want the session cookie cleared", c)
	}
	rec = httptest.NewRecorder()
	h.pages.LoggedOut(rec, httptest.NewRequest(http.MethodPost, "/oauth2/logout", nil))
	checkPageHeaders(t, "logged out", rec.Header())
	if !strings.Contains(rec.Body.String(), "You are signed out") {
		t.Errorf("LoggedOut page:\n%s", rec.Body.String())
	}
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable} {
		rec = httptest.NewRecorder()
		h.pages.Error(rec, httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil), status, "The client <x> is unknown.")
		checkPageHeaders(t, "error page", rec.Header())
		if rec.Code != status || !strings.Contains(rec.Body.String(), "The client &lt;x&gt; is unknown.") || !strings.Contains(rec.Body.String(), `role="alert"`) {
			t.Errorf("Error(%d) = %d:\n%s", status, rec.Code, rec.Body.String())
		}
		if retry := rec.Header().Get("Retry-After"); (status == http.StatusServiceUnavailable) != (retry != "") {
			t.Errorf("Error(%d) Retry-After = %q", status, retry)
		}
	}
}

// A form whose submission ends at a client (a sign-in returning to an
// authorize request) has no form-action: browsers apply it to every
// redirect after the submission, and the chain goes on past the client's
// redirect URI. Every other page keeps form-action 'self'.
func TestFormLeavingForAClientHasNoFormAction(t *testing.T) {
	h := newHarness(t, "sqlite")
	b := h.browser()
	for _, path := range []string{
		"/login?" + url.Values{"return_to": {returnTo}}.Encode(),
		"/signup?" + url.Values{"return_to": {returnTo}}.Encode(),
	} {
		p := b.get(path)
		if got := p.header.Get("Content-Security-Policy"); got != leavingCSP {
			t.Errorf("GET %s: CSP = %q; want %q", path, got, leavingCSP)
		}
	}
	for _, path := range []string{"/login", "/signup", "/login?return_to=https://evil.example/"} {
		checkPageHeaders(t, path, b.get(path).header)
	}
}

func TestStylesheet(t *testing.T) {
	h := newHarness(t, "sqlite")
	b := h.browser()
	page := b.get("/login")
	i := strings.Index(page.body, `href="/assets/authd.css?v=`)
	if i < 0 {
		t.Fatalf("the page does not link the stylesheet with its hash:\n%s", page.body)
	}
	href := page.body[i+len(`href="`):]
	href = href[:strings.IndexByte(href, '"')]
	css := b.get(href)
	if css.status != http.StatusOK || css.header.Get("Content-Type") != "text/css; charset=utf-8" ||
		css.header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(css.body, "font-family: system-ui") {
		t.Fatalf("GET %s = %d %v", href, css.status, css.header)
	}
	if plain := b.get("/assets/authd.css"); plain.header.Get("Cache-Control") != "public, max-age=300" || plain.body != css.body {
		t.Errorf("GET /assets/authd.css without the hash: Cache-Control %q", plain.header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+href, nil)
	req.Header.Set("If-None-Match", css.header.Get("ETag"))
	if p := b.do(req); p.status != http.StatusNotModified || p.body != "" {
		t.Errorf("conditional GET = %d; want 304", p.status)
	}
}
