package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

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

// pagesServer is a whole server with the browser pages, a lockout after 3
// failures and the given rate limit (0: off), and client "app" allowed
// the password grant.
type pagesServer struct {
	srv    *Server
	store  storage.Store
	secret string
}

func newPagesServer(tb testing.TB, st storage.Store, perMin int) *pagesServer {
	tb.Helper()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	st = clientcache.New(st, 0, nil)
	km, err := keys.NewManager(ctx, st, keys.Options{Secret: []byte(testSecret), TokenTTL: 15 * time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := oauth.NewSecretHasher([]byte(testSecret))
	if err != nil {
		tb.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	ids := identity.NewService(st, rec, identity.Options{
		LockoutThreshold: 3, LockoutDuration: time.Hour,
		Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	p, err := oauth.New(oauth.Options{
		Issuer: testIssuer, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		Secret: []byte(testSecret), Store: st, Denylist: st, ProofReplay: st, Signer: km, Auth: ids, Recorder: rec, Hasher: hasher,
	})
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := clients.NewService(st, rec, clients.Options{Hasher: hasher, GrantTypes: oauth.SupportedGrantTypes()})
	if err != nil {
		tb.Fatal(err)
	}
	set, err := templates.Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	clientIP := ClientIPFunc(nil)
	pages, err := web.New(web.Config{
		Issuer: testIssuer, Secrets: [][]byte{[]byte(testSecret)}, Templates: set, Identity: ids, Users: st,
		Sessions: identity.NewSessions(st, identity.SessionOptions{}), ClientIP: clientIP,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := New(Config{
		Issuer: testIssuer, OAuth: p, Keys: km, Store: st, Identity: ids, Recorder: rec, Clients: cs, Pages: pages,
		RateLimitPerMin: perMin, ClientIP: clientIP,
	})
	if err != nil {
		tb.Fatal(err)
	}
	c, sec, err := clients.Spec{ID: "app", GrantTypes: []string{"password"}, Scopes: []string{"openid"}}.Record(ctx, hasher, oauth.SupportedGrantTypes())
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.CreateClient(ctx, c); err != nil {
		tb.Fatal(err)
	}
	if _, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice", Email: "alice@example.com", Password: testPassword}, identity.Meta{}); err != nil {
		tb.Fatal(err)
	}
	return &pagesServer{srv: srv, store: st, secret: sec}
}

// serve sends r through the whole handler, with the cookies given.
func (ps *pagesServer) serve(r *http.Request, cookies []*http.Cookie) *httptest.ResponseRecorder {
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	ps.srv.ServeHTTP(rec, r)
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// formLogin loads the login page and posts it.
func (ps *pagesServer) formLogin(t *testing.T, username, password string) *httptest.ResponseRecorder {
	t.Helper()
	page := ps.serve(httptest.NewRequest(http.MethodGet, "/login", nil), nil)
	m := csrfField.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		t.Fatalf("GET /login = %d:\n%s", page.Code, page.Body)
	}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"csrf_token": {m[1]}, "username": {username}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ps.serve(req, page.Result().Cookies())
}

func (ps *pagesServer) grant(username, password string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", ps.secret)
	return ps.serve(req, nil)
}

const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// The pages are routed through the server's middleware and keep their own
// security headers; discovery does not advertise an authorization endpoint yet.
func TestBrowserPagesRouted(t *testing.T) {
	ps := newPagesServer(t, openSQLite(t), 0)
	for _, path := range []string{"/login", "/signup", "/login?return_to=%2F%2Fevil.com"} {
		rec := ps.serve(httptest.NewRequest(http.MethodGet, path, nil), nil)
		h := rec.Header()
		if rec.Code != http.StatusOK || h.Get("Content-Security-Policy") != pageCSP || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" || h.Get("X-Request-Id") == "" {
			t.Errorf("GET %s = %d %v", path, rec.Code, h)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name != "__Host-authd_csrf" || !c.Secure {
				t.Errorf("GET %s set cookie %+v; want only the __Host- CSRF cookie (https issuer)", path, c)
			}
		}
	}
	if rec := ps.serve(httptest.NewRequest(http.MethodGet, "/assets/authd.css", nil), nil); rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("GET /assets/authd.css = %d %v", rec.Code, rec.Header())
	}
	if rec := ps.serve(httptest.NewRequest(http.MethodPut, "/login", nil), nil); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT /login = %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var doc map[string]any
		rec := ps.serve(httptest.NewRequest(http.MethodGet, path, nil), nil)
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if _, ok := doc["authorization_endpoint"]; ok {
			t.Errorf("%s advertises an authorization_endpoint before the endpoint exists", path)
		}
	}
	// A successful form sign-in through the server: 303, the __Host- session cookie.
	rec := ps.formLogin(t, "alice", testPassword)
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Set-Cookie"), "__Host-authd_session=") {
		t.Errorf("POST /login = %d, Set-Cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
}

// Failures through the form and through the password grant count toward
// one lockout.
func TestFormAndPasswordGrantShareTheLockout(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ps := newPagesServer(t, b.open(t), 0)
			for range 2 {
				if rec := ps.formLogin(t, "alice", "a wrong password, twice"); rec.Code != http.StatusBadRequest {
					t.Fatalf("form failure = %d", rec.Code)
				}
			}
			if rec := ps.grant("alice", "a wrong password, third"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid_grant") {
				t.Fatalf("grant failure = %d %s", rec.Code, rec.Body)
			}
			locked, err := ps.store.ListAudit(t.Context(), storage.AuditFilter{Type: string(events.UserLocked), Limit: 10})
			if err != nil || len(locked) != 1 {
				t.Fatalf("auth.user_locked = %d, %v; want one lock after 2 form + 1 grant failures (threshold 3)", len(locked), err)
			}
			if rec := ps.grant("alice", testPassword); rec.Code != http.StatusBadRequest {
				t.Errorf("grant with the right password while locked = %d; want 400 invalid_grant", rec.Code)
			}
			if rec := ps.formLogin(t, "alice", testPassword); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Wrong username or password.") {
				t.Errorf("form with the right password while locked = %d", rec.Code)
			}
		})
	}
}

// The forms' POSTs share the token endpoint's per-IP limit; a page says so.
func TestFormsRateLimited(t *testing.T) {
	ps := newPagesServer(t, openSQLite(t), 2)
	for i := range 2 {
		if rec := ps.formLogin(t, "alice", "a wrong password here"); rec.Code != http.StatusBadRequest {
			t.Fatalf("POST /login %d = %d", i, rec.Code)
		}
	}
	rec := ps.formLogin(t, "alice", testPassword)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Security-Policy") != pageCSP ||
		!strings.Contains(rec.Body.String(), "Too many attempts") {
		t.Errorf("third POST /login = %d %v", rec.Code, rec.Header())
	}
	if rec := ps.grant("alice", testPassword); rec.Code != http.StatusTooManyRequests {
		t.Errorf("token request after the forms spent the limit = %d; want 429 (one limit per IP)", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader("username=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := ps.serve(req, nil); rec.Code != http.StatusTooManyRequests {
		t.Errorf("POST /signup after the limit = %d; want 429", rec.Code)
	}
}
