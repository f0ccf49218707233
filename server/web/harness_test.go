package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
	"github.com/authd/authd/templates"
)

var backends = []string{"sqlite", "postgres"}

// faultStore is a real store whose user lookups and upstream sign-in
// takes can be made to fail.
type faultStore struct {
	storage.Store
	mu         sync.Mutex
	lookupFail error
	takeFail   error
}

func (f *faultStore) TakeUpstreamLogin(ctx context.Context, idHash string, now time.Time) (storage.UpstreamLogin, error) {
	f.mu.Lock()
	err := f.takeFail
	f.mu.Unlock()
	if err != nil {
		return storage.UpstreamLogin{}, err
	}
	return f.Store.TakeUpstreamLogin(ctx, idHash, now)
}

func (f *faultStore) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	f.mu.Lock()
	err := f.lookupFail
	f.mu.Unlock()
	if err != nil {
		return storage.User{}, err
	}
	return f.Store.GetUserByLogin(ctx, login)
}

func (f *faultStore) failLookups(err error) {
	f.mu.Lock()
	f.lookupFail = err
	f.mu.Unlock()
}

type harness struct {
	t        *testing.T
	store    *faultStore
	ids      *identity.Service
	sessions *identity.Sessions
	pages    *web.Pages
	srv      *httptest.Server
}

const (
	alicePassword = "purple otter wanders at dawn"
	secret        = "0123456789abcdef0123456789abcdef"
)

// newHarness serves the pages on a migrated store of backend, with a
// lockout after 3 failures; opts may change the pages' config.
func newHarness(t *testing.T, backend string, opts ...func(*web.Config)) *harness {
	t.Helper()
	var st storage.Store
	switch backend {
	case "sqlite":
		lite, err := sqlite.New(t.Context(), filepath.Join(t.TempDir(), "authd.db"))
		if err != nil {
			t.Fatal(err)
		}
		st = lite
	case "postgres":
		pg, err := postgres.New(t.Context(), storagetest.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		st = pg
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: &faultStore{Store: st}}
	h.ids = identity.NewService(h.store, events.NewRecorder(h.store, nil), identity.Options{
		LockoutThreshold: 3, LockoutDuration: time.Hour, Params: identity.Params{Memory: 1024, Time: 1, Threads: 1},
	})
	h.sessions = identity.NewSessions(h.store, identity.SessionOptions{TTL: 24 * time.Hour, IdleTTL: time.Hour})
	set, err := templates.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{
		Issuer: "http://authd.test", Secrets: [][]byte{[]byte(secret)}, Templates: set,
		Identity: h.ids, Sessions: h.sessions, Users: h.store, SessionTTL: 24 * time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if h.pages, err = web.New(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", h.pages.LoginForm)
	mux.HandleFunc("POST /login", h.pages.Login)
	mux.HandleFunc("GET /signup", h.pages.SignupForm)
	mux.HandleFunc("POST /signup", h.pages.Signup)
	mux.HandleFunc("GET /assets/authd.css", h.pages.Stylesheet)
	mux.HandleFunc("GET /connectors/{id}/login", func(w http.ResponseWriter, r *http.Request) {
		h.pages.ConnectorLogin(w, r, r.PathValue("id"))
	})
	mux.HandleFunc("GET /connectors/{id}/callback", func(w http.ResponseWriter, r *http.Request) {
		h.pages.ConnectorCallback(w, r, r.PathValue("id"))
	})
	mux.HandleFunc("POST "+web.LinkPath, h.pages.Link)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) createUser(username, password string) storage.User {
	h.t.Helper()
	u, err := h.ids.CreateUser(h.t.Context(), identity.NewUser{Username: username, Email: username + "@example.com", Password: password}, identity.Meta{})
	if err != nil {
		h.t.Fatalf("CreateUser(%s) = %v", username, err)
	}
	return u
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header, string(body)}
}

func (b *browser) get(path string) page {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var tokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// token is the CSRF token of the page's form.
func (p page) token(t *testing.T) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", p.body)
	}
	return m[1]
}

// login loads the login page (with returnTo, when set) and posts it.
func (b *browser) login(returnTo, username, password string) page {
	b.h.t.Helper()
	path := "/login"
	if returnTo != "" {
		path += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	form := b.get(path)
	return b.post("/login", url.Values{"csrf_token": {form.token(b.h.t)}, "username": {username}, "password": {password}, "return_to": {returnTo}})
}

// cookie returns the value of the browser's cookie name, "" for none.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// audit lists the audit entries of typ.
func (h *harness) audit(typ events.Type) []storage.AuditEntry {
	h.t.Helper()
	es, err := h.store.ListAudit(h.t.Context(), storage.AuditFilter{Type: string(typ), Limit: 100})
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

const (
	leavingCSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
	wantCSP    = leavingCSP + "; form-action 'self'"
)

// checkPageHeaders checks the security headers every page carries.
func checkPageHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	checkHeaders(t, what, h, wantCSP)
}

// checkLeavingPageHeaders checks them for a page whose form ends at a
// client (no form-action).
func checkLeavingPageHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	checkHeaders(t, what, h, leavingCSP)
}

func checkHeaders(t *testing.T, what string, h http.Header, csp string) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": csp,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q; want %q", what, k, got, v)
		}
	}
}
