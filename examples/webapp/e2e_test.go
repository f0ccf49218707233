package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/proctest"
	"github.com/authd/authd/storage/storagetest"
)

const (
	clientSecret = "webapp-e2e-secret-0123456789abcdef0123456"
	alicePass    = "purple otter wanders at dawn"
)

// TestSignInThroughAuthd runs authd, the orders example and this app as
// real processes, on SQLite and on PostgreSQL (skipped without
// AUTHD_TEST_POSTGRES_URL, failing in CI), and signs in the way a browser
// does: /login → authd's authorize endpoint → its login page → the form
// with its CSRF token → back to /callback → signed in; the app then calls
// orders with the access token. A second sign-in rides authd's session.
func TestSignInThroughAuthd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries")
	}
	bins := t.TempDir()
	authd, orders, webapp := filepath.Join(bins, "authd"), filepath.Join(bins, "orders"), filepath.Join(bins, "webapp")
	proctest.Build(t, authd, "github.com/authd/authd/cmd/authd")
	proctest.Build(t, orders, "github.com/authd/authd/examples/orders")
	proctest.Build(t, webapp, "github.com/authd/authd/examples/webapp")

	for _, store := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "authd.db") }},
		{"postgres", func(t *testing.T) string { return storagetest.PostgresDSN(t) }},
	} {
		t.Run(store.name, func(t *testing.T) {
			st := startStack(t, store.dsn(t), authd, orders, webapp)
			testSignIn(t, st)
		})
	}
}

// stack is a running authd, orders and webapp.
type stack struct {
	issuer, webapp string
}

func startStack(t *testing.T, dsn, authd, orders, webapp string) stack {
	t.Helper()
	authAddr, webAddr, ordersAddr := proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t)
	issuer, web := "http://"+authAddr, "http://"+webAddr
	env := append(os.Environ(),
		"AUTHD_DEV=true", "AUTHD_ISSUER="+issuer, "AUTHD_HTTP_ADDR="+authAddr,
		"AUTHD_DATABASE_URL="+dsn, "AUTHD_DATA_DIR="+filepath.Join(t.TempDir(), "data"),
		"AUTHD_SECRET=webapp-e2e-secret-0123456789abcdef0123456789", "AUTHD_RATE_LIMIT_TOKEN_PER_MIN=0", "AUTHD_LOG_LEVEL=warn",
	)
	proctest.Run(t, env, "", authd, "migrate", "up")
	proctest.Run(t, env, "", authd, "clients", "create", "--id", "webapp", "--secret", clientSecret, "--name", "Example shop",
		"--grant-types", "authorization_code,refresh_token", "--scopes", "openid profile", "--audience", "orders",
		"--redirect-uris", web+"/callback", "--first-party")
	proctest.Run(t, env, alicePass+"\n", authd, "users", "create", "--username", "alice", "--email", "alice@example.org", "--password-stdin")
	proctest.Start(t, env, issuer+"/readyz", authd, "serve")
	proctest.Start(t, os.Environ(), "http://"+ordersAddr+"/healthz", orders, "-addr", ordersAddr, "-issuer", issuer, "-audience", "orders")
	proctest.Start(t, append(os.Environ(), "WEBAPP_CLIENT_SECRET="+clientSecret), web+"/healthz", webapp,
		"-addr", webAddr, "-issuer", issuer, "-client-id", "webapp", "-redirect-url", web+"/callback",
		"-orders-url", "http://"+ordersAddr, "-audience", "orders")
	return stack{issuer: issuer, webapp: web}
}

func testSignIn(t *testing.T, st stack) {
	b := newBrowser(t)

	// Signed out: the link.
	pg := b.get(st.webapp + "/")
	if !strings.Contains(pg.body, `href="/login"`) || strings.Contains(pg.body, `id="username"`) {
		t.Fatalf("signed-out page:\n%s", pg.body)
	}

	// /login ends on authd's login page, which returns to the authorize request.
	pg = b.get(st.webapp + "/login")
	if !strings.HasPrefix(pg.url.String(), st.issuer+"/login") || !strings.Contains(pg.body, `autocomplete="current-password"`) {
		t.Fatalf("/login ended at %s (%d); want authd's login page", pg.url, pg.status)
	}
	if q := pg.url.Query().Get("return_to"); !strings.Contains(q, "code_challenge_method=S256") || !strings.Contains(q, "audience=orders") || !strings.Contains(q, "nonce=") {
		t.Errorf("the login page returns to %q; want an authorize request with PKCE S256, a nonce and audience=orders", q)
	}
	// A wrong password keeps the browser on authd.
	action, form := pg.form(t)
	form.Set("username", "alice")
	form.Set("password", "not alice's password at all")
	if pg := b.post(st.issuer+action, form); pg.url.Host != hostOf(st.issuer) || !strings.Contains(pg.body, "Wrong username or password.") {
		t.Errorf("a wrong password ended at %s:\n%s", pg.url, pg.body)
	}
	pg = b.get(st.webapp + "/login")
	action, form = pg.form(t)
	form.Set("username", "alice")
	form.Set("password", alicePass)
	pg = b.post(st.issuer+action, form)
	if pg.status != http.StatusOK || pg.url.String() != st.webapp+"/" {
		t.Fatalf("after signing in: %s (%d); want the app's home page:\n%s", pg.url, pg.status, pg.body)
	}
	if !strings.Contains(pg.body, `<span id="username">alice</span>`) {
		t.Fatalf("the app's page does not name alice:\n%s", pg.body)
	}

	// The app calls orders with the access token (audience orders).
	action, form = pg.form(t)
	if action != "/orders" {
		t.Fatalf("first form posts to %q; want /orders", action)
	}
	pg = b.post(st.webapp+action, form)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `<span id="orders-status">200</span>`) || !strings.Contains(pg.body, "&#34;item&#34;: &#34;book&#34;") {
		t.Fatalf("orders call: %d\n%s", pg.status, pg.body)
	}
	// A form without its CSRF token is refused.
	form.Del("csrf_token")
	if pg := b.post(st.webapp+"/orders", form); pg.status != http.StatusForbidden {
		t.Errorf("orders without the CSRF token: %d; want 403", pg.status)
	}

	// Sign out of the app; signing in again rides authd's session: no login page.
	pg = b.get(st.webapp + "/")
	_, form = pg.form(t)
	pg = b.post(st.webapp+"/logout", form)
	if strings.Contains(pg.body, `id="username"`) || !strings.Contains(pg.body, `href="/login"`) {
		t.Fatalf("after signing out:\n%s", pg.body)
	}
	pg = b.get(st.webapp + "/login")
	if pg.url.String() != st.webapp+"/" || !strings.Contains(pg.body, `<span id="username">alice</span>`) {
		t.Fatalf("second sign-in with authd's session ended at %s:\n%s", pg.url, pg.body)
	}

	// A callback whose state is not the login cookie's signs nobody in.
	other := newBrowser(t)
	other.get(st.webapp + "/login") // sets the login cookie
	pg = other.get(st.webapp + "/callback?state=forged&code=whatever")
	if pg.status != http.StatusBadRequest || strings.Contains(pg.body, `id="username"`) {
		t.Errorf("forged callback: %d\n%s", pg.status, pg.body)
	}
}

// browser is an http.Client with a cookie jar that follows redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

type page struct {
	status int
	url    *url.URL
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// form reads the page's first form: its action and the hidden fields that
// follow it up to the next form.
func (pg page) form(t *testing.T) (string, url.Values) {
	t.Helper()
	loc := formRE.FindStringSubmatchIndex(pg.body)
	if loc == nil {
		t.Fatalf("no form on the page at %s (status %d):\n%s", pg.url, pg.status, pg.body)
	}
	rest := pg.body[loc[1]:]
	if end := strings.Index(rest, "</form>"); end >= 0 {
		rest = rest[:end]
	}
	vals := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(rest, -1) {
		vals.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(pg.body[loc[2]:loc[3]]), vals
}

func hostOf(u string) string {
	p, _ := url.Parse(u)
	return p.Host
}
