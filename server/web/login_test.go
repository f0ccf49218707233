package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

const returnTo = "/oauth2/authorize?client_id=app&response_type=code&state=s1"

func TestLoginSuccess(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			alice := h.createUser("alice", alicePassword)
			b := h.browser()
			form := b.get("/login?" + url.Values{"return_to": {returnTo}}.Encode())
			if form.status != http.StatusOK || !strings.Contains(form.body, `autocomplete="current-password"`) ||
				!strings.Contains(form.body, `name="return_to" value="/oauth2/authorize?client_id=app&amp;response_type=code&amp;state=s1"`) {
				t.Fatalf("GET /login = %d:\n%s", form.status, form.body)
			}
			checkLeavingPageHeaders(t, "GET /login", form.header)
			res := b.post("/login", url.Values{"csrf_token": {form.token(t)}, "username": {"ALICE"}, "password": {alicePassword}, "return_to": {returnTo}})
			if res.status != http.StatusSeeOther || res.header.Get("Location") != returnTo {
				t.Fatalf("POST /login = %d, Location %q; want 303 to %s\n%s", res.status, res.header.Get("Location"), returnTo, res.body)
			}
			var set *http.Cookie
			for _, c := range (&http.Response{Header: res.header}).Cookies() {
				if c.Name == "authd_session" {
					set = c
				}
			}
			if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || set.Secure || set.MaxAge != 24*3600 || len(set.Value) != 43 {
				t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Lax, Path=/, not Secure over http, Max-Age 1 day, 43 characters", set)
			}
			// Only the cookie's SHA-256 is stored.
			sum := sha256.Sum256([]byte(set.Value))
			bs, err := h.store.GetBrowserSession(t.Context(), hex.EncodeToString(sum[:]))
			if err != nil || bs.UserID != alice.ID || bs.IDHash == set.Value || bs.ID == set.Value {
				t.Fatalf("stored session = %+v, %v; want alice's, keyed by the cookie's hash", bs, err)
			}
			if _, err := h.store.GetBrowserSession(t.Context(), set.Value); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a session is stored under the cookie value itself: %v", err)
			}
			ok := h.audit(events.LoginSuccess)
			var data map[string]any
			if len(ok) != 1 || json.Unmarshal(ok[0].Data, &data) != nil || data["via"] != "form" || data["method"] != "password" || ok[0].UserID != alice.ID {
				t.Errorf("auth.login.success = %+v; want one for alice with via=form", ok)
			}
			// Signed in: the login page without a return_to says so.
			if p := b.get("/login"); p.status != http.StatusOK || !strings.Contains(p.body, "signed in as <strong>alice</strong>") {
				t.Errorf("GET /login signed in = %d:\n%s", p.status, p.body)
			} else {
				checkPageHeaders(t, "signed-in page", p.header)
			}
			// Signing in again replaces the session: the old cookie value is dead.
			old := set.Value
			if !strings.Contains(b.get("/login").body, `href="/login?switch=1"`) {
				t.Error("the signed-in page does not link to the form")
			}
			form = b.get("/login?switch=1")
			if res := b.post("/login", url.Values{"csrf_token": {form.token(t)}, "username": {"alice"}, "password": {alicePassword}}); res.status != http.StatusSeeOther || res.header.Get("Location") != "/login" {
				t.Fatalf("second sign-in = %d %q", res.status, res.header.Get("Location"))
			}
			if b.cookie("authd_session") == old {
				t.Error("a second sign-in kept the session cookie value")
			}
			if _, err := h.store.GetBrowserSession(t.Context(), bs.IDHash); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("the replaced session is still stored: %v", err)
			}
		})
	}
}

// The authorize request's login_hint pre-fills the username; one that could
// not be a login is left out.
func TestLoginHint(t *testing.T) {
	h := newHarness(t, "sqlite")
	b := h.browser()
	for _, c := range []struct{ hint, want string }{
		{"alice@example.com", `value="alice@example.com"`},
		{"bob", `value="bob"`},
		{"a\x00b", ""},
		{strings.Repeat("x", 300), ""},
	} {
		rt := returnTo + "&" + url.Values{"login_hint": {c.hint}}.Encode()
		form := b.get("/login?" + url.Values{"return_to": {rt}}.Encode())
		if form.status != http.StatusOK {
			t.Fatalf("GET /login with login_hint %q = %d", c.hint, form.status)
		}
		username := regexp.MustCompile(`<input[^>]*name="username"[^>]*>`).FindString(form.body)
		switch {
		case username == "":
			t.Fatalf("no username input:\n%s", form.body)
		case c.want != "" && !strings.Contains(username, c.want):
			t.Errorf("login_hint %q: username input %s; want %s", c.hint, username, c.want)
		case c.want == "" && strings.Contains(username, `value="x`):
			t.Errorf("login_hint %q was used: %s", c.hint, username)
		}
	}
}

// Wrong password, unknown user, locked and disabled accounts get the same
// page; the form's failures count toward the lockout.
func TestLoginFailuresLookAlike(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			h.createUser("alice", alicePassword)
			h.createUser("lockme", alicePassword)
			dis := h.createUser("disabled", alicePassword)
			if _, err := h.store.UpdateUser(t.Context(), dis.ID, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
				t.Fatal(err)
			}
			b := h.browser()
			// Three wrong passwords through the form lock "lockme" (threshold 3).
			for range 3 {
				if p := b.login("", "lockme", "not the password at all"); p.status != http.StatusBadRequest {
					t.Fatalf("wrong password = %d", p.status)
				}
			}
			if n := len(h.audit(events.UserLocked)); n != 1 {
				t.Fatalf("auth.user_locked entries = %d; want 1 (form failures count toward the lockout)", n)
			}
			attempts := []struct{ name, username, password string }{
				{"wrong password", "alice", "not the password at all"},
				{"unknown user", "nobody", alicePassword},
				{"locked", "lockme", alicePassword},
				{"disabled", "disabled", alicePassword},
			}
			var first string
			for _, a := range attempts {
				p := b.login("", a.username, a.password)
				if p.status != http.StatusBadRequest {
					t.Errorf("%s: status %d; want 400", a.name, p.status)
				}
				checkPageHeaders(t, a.name, p.header)
				if !strings.Contains(p.body, "Wrong username or password.") || !strings.Contains(p.body, `role="alert"`) ||
					!strings.Contains(p.body, `value="`+a.username+`"`) || strings.Contains(p.body, a.password) {
					t.Errorf("%s: page lacks the message or the kept username, or shows the password:\n%s", a.name, p.body)
				}
				same := strings.ReplaceAll(p.body, `value="`+a.username+`"`, `value="USER"`)
				if first == "" {
					first = same
				} else if same != first {
					t.Errorf("%s: the page differs from the wrong password's:\n%s\n---\n%s", a.name, same, first)
				}
				if c := b.cookie("authd_session"); c != "" {
					t.Errorf("%s: a session cookie was set", a.name)
				}
			}
			failed := h.audit(events.LoginFailed)
			if len(failed) != 3+4 {
				t.Errorf("auth.login.failed entries = %d; want 7", len(failed))
			}
		})
	}
}

// A store outage is a 503 page with Retry-After, not a wrong password.
func TestLoginStoreOutage(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.createUser("alice", alicePassword)
	b := h.browser()
	form := b.get("/login")
	h.store.failLookups(storage.ErrUnavailable)
	p := b.post("/login", url.Values{"csrf_token": {form.token(t)}, "username": {"alice"}, "password": {alicePassword}})
	if p.status != http.StatusServiceUnavailable || p.header.Get("Retry-After") == "" || strings.Contains(p.body, "Wrong username") {
		t.Errorf("POST /login during an outage = %d, Retry-After %q:\n%s", p.status, p.header.Get("Retry-After"), p.body)
	}
	checkPageHeaders(t, "503 page", p.header)
}

// return_to goes nowhere but to the authorize endpoint on authd.
func TestLoginOpenRedirects(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.createUser("alice", alicePassword)
	for _, rt := range []string{
		"//evil.com", "https://evil.com", `/\evil.com`, "/oauth2/authorizeX", "/oauth2/authorizeX?a=b", "/oauth2/authorize",
		"/oauth2/authorize/../../evil", "/oauth2/authorize?x=1#frag", "/oauth2/authorize?x=\n1", "//evil.com/oauth2/authorize?x=1",
		"https://evil.com/oauth2/authorize?x=1", "/%2F%2Fevil.com", "/oauth2/%61uthorize?x=1", "javascript:alert(1)", "/oauth2/authorize?x=\\",
	} {
		b := h.browser()
		form := b.get("/login?" + url.Values{"return_to": {rt}}.Encode())
		if strings.Contains(form.body, `name="return_to"`) {
			t.Errorf("GET /login?return_to=%q keeps it in the form", rt)
		}
		p := b.post("/login", url.Values{"csrf_token": {form.token(t)}, "username": {"alice"}, "password": {alicePassword}, "return_to": {rt}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Errorf("sign-in with return_to %q = %d to %q; want 303 to /login", rt, p.status, p.header.Get("Location"))
		}
	}
}
