package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/server/web"
)

func TestValidReturnTo(t *testing.T) {
	for _, s := range []string{
		"/oauth2/authorize?client_id=app",
		"/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+email&state=x%2Fy",
		"/oauth2/authorize?",
	} {
		if !web.ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = false; want true", s)
		}
	}
	for _, s := range []string{
		"", "/", "//evil.com", "https://evil.com", `/\evil.com`, "/oauth2/authorizeX", "/oauth2/authorize", "/oauth2/authorize/?x",
		"/oauth2/authorize?x#y", "/oauth2/authorize?x y", "/oauth2/authorize?x\ty", "/oauth2/authorize?é", "/oauth2/authorize?x\\y",
		"//oauth2/authorize?x", "/oauth2//authorize?x", "/oauth2/authoriz%65?x", "/OAUTH2/authorize?x", " /oauth2/authorize?x",
		"/oauth2/authorize?" + strings.Repeat("a", 5000),
	} {
		if web.ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = true; want false", s)
		}
	}
}

// FuzzValidReturnTo: whatever it accepts, a browser resolving it against
// the issuer stays on the issuer, at the authorize endpoint, and the
// login page's link carries it back unchanged.
func FuzzValidReturnTo(f *testing.F) {
	for _, s := range []string{"/oauth2/authorize?a=b", "//evil.com", `/\evil.com`, "/oauth2/authorize?%zz", "/oauth2/authorize?a=%2F%2Fevil",
		"https://evil.com/oauth2/authorize?x", "/oauth2/authorize?\x00", "/oauth2/authorize?a=b#c"} {
		f.Add(s)
	}
	issuer, _ := url.Parse("https://id.example.com/")
	f.Fuzz(func(t *testing.T, s string) {
		if !web.ValidReturnTo(s) {
			if got := web.LoginURL(s); got != web.LoginPath {
				t.Fatalf("LoginURL(%q) = %q; want the bare login path for an invalid return_to", s, got)
			}
			return
		}
		u, err := issuer.Parse(s)
		if err != nil {
			t.Fatalf("ValidReturnTo(%q) but it does not parse: %v", s, err)
		}
		if u.Scheme != "https" || u.Host != "id.example.com" || u.Path != "/oauth2/authorize" || u.User != nil || u.Fragment != "" {
			t.Fatalf("ValidReturnTo(%q) but it resolves to %s", s, u)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("ValidReturnTo(%q) accepts byte %#x", s, c)
			}
		}
		lu, err := url.Parse(web.LoginURL(s))
		if err != nil || lu.Path != web.LoginPath || lu.Query().Get("return_to") != s {
			t.Fatalf("LoginURL(%q) = %q; does not carry it back", s, web.LoginURL(s))
		}
	})
}
