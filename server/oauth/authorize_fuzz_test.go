package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/server/web"
)

// FuzzAuthorizeRequest throws hostile query strings and form bodies at the
// authorize endpoint, with and without a signed-in browser: it never
// answers 5xx or panics, and every redirect goes to the login page or to a
// redirect URI some client registered (never an open redirect).
func FuzzAuthorizeRequest(f *testing.F) {
	s := newSignin(f, openFuzzStore(f))
	b := s.browser()
	b.login(b.get(s.srv.URL+web.LoginPath), "alice", password)
	srvURL, _ := url.Parse(s.srv.URL)
	var session *http.Cookie
	for _, c := range b.c.Jar.Cookies(srvURL) {
		if c.Name == "authd_session" {
			session = c
		}
	}
	if session == nil {
		f.Fatal("no session cookie after the login")
	}
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, q := range []string{
		"",
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&state=0123456789&code_challenge=" + challenge + "&code_challenge_method=S256",
		"response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&scope=openid&state=0123456789&code_challenge=" + challenge + "&code_challenge_method=S256&prompt=none",
		"response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state=0123456789&code_challenge=" + challenge + "&code_challenge_method=S256&prompt=login&max_age=0&authd_login_after=1.x",
		"response_type=code&client_id=portal&redirect_uri=https%3A%2F%2Fportal.example%2Fcb&state=0123456789&code_challenge=" + challenge + "&code_challenge_method=plain&nonce=%00&id_token_hint=a.b.c",
		"response_type=code%20id_token&client_id=web&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_mode=form_post&request=eyJ.x.y",
		"client_id=%FF%FE&redirect_uri=%00&state=%C0%80&scope=openid%20openid",
		"client_id=web&client_id=web&redirect_uri=https%3A%2F%2Frp.example%2Fcb",
		"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Frp.example%2Fcb%23x&decision=allow&csrf_token=x",
		"response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F[::1]%3A80%2Fcb&max_age=99999999999999999999&audience=x&registration=1",
		"%zz=1&&&=&a=%",
	} {
		f.Add(q, false, true)
		f.Add(q, true, true)
		f.Add(q, false, false)
	}
	f.Fuzz(func(t *testing.T, query string, post, signedIn bool) {
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
			req.URL.RawQuery = query
		}
		if signedIn {
			req.AddCookie(session)
		}
		rec := httptest.NewRecorder()
		s.p.Authorize(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d\n%s", req.Method, query, rec.Code, rec.Body)
		}
		loc := rec.Header().Get("Location")
		if loc == "" {
			return
		}
		if strings.HasPrefix(loc, web.LoginPath+"?") || loc == web.LoginPath {
			return
		}
		if u, err := url.Parse(loc); err == nil && u.Path == "/cb" && u.User == nil &&
			(u.Scheme == "https" && (u.Host == "rp.example" || u.Host == "portal.example") ||
				u.Scheme == "http" && u.Hostname() == "127.0.0.1") {
			return
		}
		t.Fatalf("%s %q redirected to %q: neither the login page nor a registered redirect URI", req.Method, query, loc)
	})
}
