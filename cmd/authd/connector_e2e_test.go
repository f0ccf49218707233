package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/internal/proctest"
)

// Sign-in through another identity provider, end to end: authd A (a real
// process, built from this tree) is the upstream OpenID provider of authd B,
// whose YAML config names A as an oidc connector. A sits behind a proxy in
// the test that can spoil its answers (a changed nonce, a broken id_token
// signature, a dropped connection), so that each failure B must survive is a
// real one. People are signed in at B through A by a Go relying party (the
// test, with x/oauth2 and go-oidc, walking the pages as a browser without
// JavaScript does) and by a real browser through examples/webapp.

// upstreamA is authd A behind its proxy.
type upstreamA struct {
	issuer string // the proxy's URL: A's issuer
	vars   map[string]string
	mode   *proxyMode
}

// proxyMode says how the proxy spoils A's answers: "" (not at all),
// "nonce" (the authorize request's nonce is replaced, so A signs another
// one into the id_token), "signature" (the id_token of the token answer
// gets a broken signature) or "down" (the token endpoint's connections are
// dropped: A is gone after the person approved).
type proxyMode struct {
	mu   sync.Mutex
	mode string
}

func (m *proxyMode) set(s string) { m.mu.Lock(); m.mode = s; m.mu.Unlock() }
func (m *proxyMode) get() string  { m.mu.Lock(); defer m.mu.Unlock(); return m.mode }

const (
	aClientSecret  = "authd-b-at-a-secret-0123456789abcdef0123456"
	rpClientSecret = "rp-at-b-secret-0123456789abcdef0123456789ab"
	connectorID    = "authd-a"
	connectorName  = "Authd A"
)

// startUpstreamA builds and runs authd A on SQLite, behind the spoiling
// proxy, with the client B uses (its redirect URI B's callback at bBase) and
// users alice and bob.
func startUpstreamA(t *testing.T, bBase string) *upstreamA {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "authd")
	proctest.Build(t, bin, "github.com/authd/authd/cmd/authd")
	proxyAddr := freeAddr(t)
	a := &upstreamA{issuer: "http://" + proxyAddr, mode: &proxyMode{}}
	a.vars = envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "a.db"), map[string]string{"AUTHD_ISSUER": a.issuer})
	cli(t, a.vars, "", "migrate", "up")
	cli(t, a.vars, "", "clients", "create", "--id", "authd-b", "--name", "Authd B", "--secret", aClientSecret,
		"--grant-types", "authorization_code", "--scopes", "openid profile email",
		"--redirect-uris", bBase+"/connectors/"+connectorID+"/callback")
	for _, u := range []string{"alice", "bob"} {
		cli(t, a.vars, "their password at A is long enough\n", "users", "create", "--username", u, "--email", u+"@a.example", "--password-stdin")
	}
	env := os.Environ()
	for k, v := range a.vars {
		env = append(env, k+"="+v)
	}
	aAddr := a.vars["AUTHD_HTTP_ADDR"]
	proctest.Start(t, env, "http://"+aAddr+"/readyz", bin, "serve")

	target := &url.URL{Scheme: "http", Host: aAddr}
	rp := httputil.NewSingleHostReverseProxy(target)
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if a.mode.get() == "nonce" && r.URL.Path == "/oauth2/authorize" {
			q := r.URL.Query()
			if q.Has("nonce") {
				q.Set("nonce", "a-nonce-the-relying-party-never-sent")
				r.URL.RawQuery = q.Encode()
			}
		}
	}
	rp.ModifyResponse = func(res *http.Response) error {
		if a.mode.get() != "signature" || res.Request.URL.Path != "/oauth2/token" || res.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		var tok map[string]any
		if err := json.Unmarshal(body, &tok); err != nil {
			return err
		}
		idt, _ := tok["id_token"].(string)
		i := strings.LastIndexByte(idt, '.')
		if i < 0 || i+5 > len(idt) {
			return fmt.Errorf("proxy: no id_token to spoil")
		}
		sig := []byte(idt[i+1:])
		sig[3] ^= 0x01 // still base64url, no longer the signature
		tok["id_token"] = idt[:i+1] + string(sig)
		body, _ = json.Marshal(tok)
		res.Body = io.NopCloser(strings.NewReader(string(body)))
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.mode.get() == "down" && r.URL.Path == "/oauth2/token" {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	ln, err := net.Listen("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Listener = ln
	proxy.Start()
	t.Cleanup(proxy.Close)
	return a
}

// startDownstreamB runs authd B (in-process, SQLite) with A as connector
// authd-a (users created, no linking by email) and a second connector whose
// provider is not there; it registers the relying party's client.
func startDownstreamB(t *testing.T, vars map[string]string, aIssuer, rpRedirect string) *instance {
	t.Helper()
	deadIssuer := "http://" + freeAddr(t)
	yaml := fmt.Sprintf(`connectors:
  - id: %s
    type: oidc
    name: %s
    issuer: %s
    client_id: authd-b
    client_secret: %s
    scopes: [openid, profile, email]
  - id: nowhere
    type: oidc
    name: Nowhere
    issuer: %s
    client_id: x
    client_secret: y
`, connectorID, connectorName, aIssuer, aClientSecret, deadIssuer)
	path := filepath.Join(t.TempDir(), "b.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	vars["AUTHD_CONFIG"] = path
	cli(t, vars, "", "migrate", "up")
	cli(t, vars, "", "clients", "create", "--id", "rp", "--name", "Relying party", "--secret", rpClientSecret,
		"--grant-types", "authorization_code", "--scopes", "openid profile", "--redirect-uris", rpRedirect, "--first-party")
	return start(t, vars)
}

// walker is a browser without JavaScript: cookies, forms, redirects
// followed by hand.
type walker struct {
	t        *testing.T
	c        *http.Client
	stopPath string
}

func newWalker(t *testing.T) *walker {
	jar, _ := cookiejar.New(nil)
	return &walker{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type walkPage struct {
	url    *url.URL
	status int
	body   string
}

// follow requests req and follows redirects until an answer that is not
// one, or a redirect to stopHost (the relying party, where nothing listens)
// or to a path ending in stopPath (when set).
func (w *walker) follow(req *http.Request, stopHost string) walkPage {
	w.t.Helper()
	for range 20 {
		res, err := w.c.Do(req)
		if err != nil {
			w.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode >= 400 || loc == "" {
			return walkPage{url: req.URL, status: res.StatusCode, body: string(body)}
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			w.t.Fatalf("Location %q: %v", loc, err)
		}
		if next.Host == stopHost || (w.stopPath != "" && strings.HasSuffix(next.Path, w.stopPath)) {
			return walkPage{url: next, status: res.StatusCode}
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
	}
	w.t.Fatal("more than 20 redirects")
	return walkPage{}
}

func (w *walker) get(u, stopHost string) walkPage {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return w.follow(req, stopHost)
}

// submit posts the first form of page p whose action matches action, with
// its hidden fields and set on top.
func (w *walker) submit(p walkPage, action string, set url.Values, stopHost string) walkPage {
	w.t.Helper()
	form := hiddenFields(p.body)
	for k, v := range set {
		form[k] = v
	}
	target, err := p.url.Parse(action)
	if err != nil {
		w.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.follow(req, stopHost)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func hiddenFields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

var continueRE = regexp.MustCompile(`<a class="button secondary" href="([^"]+)">Continue with ([^<]+)</a>`)

// continueWith is the login page's "Continue with name" link.
func continueWith(t *testing.T, p walkPage, name string) string {
	t.Helper()
	for _, m := range continueRE.FindAllStringSubmatch(p.body, -1) {
		if html.UnescapeString(m[2]) == name {
			u, _ := p.url.Parse(html.UnescapeString(m[1]))
			return u.String()
		}
	}
	t.Fatalf("no 'Continue with %s' on %s (%d):\n%s", name, p.url, p.status, p.body)
	return ""
}

// relyingParty is the Go relying party signing people in at B.
type relyingParty struct {
	cfg      oauth2.Config
	verifier *oidc.IDTokenVerifier
	host     string
}

func newRelyingParty(t *testing.T, bIssuer, redirect string) *relyingParty {
	p, err := oidc.NewProvider(t.Context(), bIssuer)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(redirect)
	return &relyingParty{host: u.Host,
		cfg: oauth2.Config{ClientID: "rp", ClientSecret: rpClientSecret, Endpoint: p.Endpoint(), RedirectURL: redirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier: p.Verifier(&oidc.Config{ClientID: "rp"}),
	}
}

// signInAttempt walks B's sign-in through A for username: B's login page →
// "Continue with Authd A" → A's login form → A's consent (decision) → back
// to B, just before which beforeCallback runs with the callback URL (it may
// change it). It returns B's answer to the callback, or, when B signed the
// person in, the redirect to the relying party (status 303, url with code).
type attempt struct {
	username, decision string
	beforeCallback     func(u *url.URL)
}

func (rp *relyingParty) walk(t *testing.T, a attempt) (walkPage, string, string) {
	t.Helper()
	w := newWalker(t)
	state, nonce, verifier := "rp-state-"+a.username, "rp-nonce-"+a.username, oauth2.GenerateVerifier()
	loginB := w.get(rp.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), rp.host)
	if loginB.status != http.StatusOK || !strings.Contains(loginB.url.Path, "/login") {
		t.Fatalf("B's authorize led to %s %d; want its login page", loginB.url, loginB.status)
	}
	loginA := w.get(continueWith(t, loginB, connectorName), rp.host)
	if loginA.status != http.StatusOK || !strings.Contains(loginA.body, `autocomplete="current-password"`) {
		t.Fatalf("'Continue with' led to %s %d; want A's login page:\n%s", loginA.url, loginA.status, loginA.body)
	}
	// A's login, then its consent page unless the person allowed B before:
	// both end in a redirect to B's callback; stop there.
	w.stopPath = "/connectors/" + connectorID + "/callback"
	defer func() { w.stopPath = "" }()
	cb := w.submit(loginA, "/login", url.Values{"username": {a.username}, "password": {"their password at A is long enough"}}, rp.host)
	if cb.status == http.StatusOK && strings.Contains(cb.body, `name="decision" value="allow"`) {
		cb = w.submit(cb, "/oauth2/authorize", url.Values{"decision": {a.decision}}, rp.host)
	} else if a.decision != "allow" {
		t.Fatalf("A's login led to %s %d; want A's consent page:\n%s", cb.url, cb.status, cb.body)
	}
	if cb.status != http.StatusSeeOther || !strings.HasSuffix(cb.url.Path, w.stopPath) {
		t.Fatalf("A answered %d at %s; want a redirect to B's callback:\n%s", cb.status, cb.url, cb.body)
	}
	w.stopPath = ""
	if a.beforeCallback != nil {
		a.beforeCallback(cb.url)
	}
	return w.get(cb.url.String(), rp.host), nonce, verifier
}

// exchange turns the redirect to the relying party into B's verified
// id_token claims.
func (rp *relyingParty) exchange(t *testing.T, p walkPage, nonce, verifier string) map[string]any {
	t.Helper()
	if p.status != http.StatusSeeOther || p.url.Host != rp.host || p.url.Query().Get("code") == "" {
		t.Fatalf("B answered the callback with %d %s; want a redirect to the relying party with a code:\n%s", p.status, p.url, p.body)
	}
	tok, err := rp.cfg.Exchange(t.Context(), p.url.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange at B: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("B's id_token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("B's id_token nonce %q; want %q", idt.Nonce, nonce)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// usersOf lists the users of the authd with vars, by username, but for
// dev mode's own user.
func usersOf(t *testing.T, vars map[string]string) map[string]string {
	t.Helper()
	var page struct {
		Users []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
			Email    string `json:"email"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(cli(t, vars, "", "users", "list")), &page); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, u := range page.Users {
		if u.Username != "dev" {
			out[u.Username] = u.ID
		}
	}
	return out
}

func TestConnectorAuthdUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds authd and runs two of them")
	}
	bVars := envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "b.db"), nil)
	a := startUpstreamA(t, bVars["AUTHD_ISSUER"])
	rpRedirect := "http://" + freeAddr(t) + "/cb"
	b := startDownstreamB(t, bVars, a.issuer, rpRedirect)
	rp := newRelyingParty(t, b.base, rpRedirect)

	// Every failure first: each lands on B's error page, and B creates no one.
	failures := []struct {
		name   string
		before func()
		att    attempt
		status int
		text   string
	}{
		{name: "A's user denies", att: attempt{username: "alice", decision: "deny"},
			status: http.StatusBadRequest, text: connectorName + " did not sign you in (access_denied)"},
		{name: "bad state", att: attempt{username: "alice", decision: "allow", beforeCallback: func(u *url.URL) {
			q := u.Query()
			q.Set("state", q.Get("state")+"x")
			u.RawQuery = q.Encode()
		}}, status: http.StatusBadRequest, text: "This sign-in has expired"},
		{name: "wrong nonce in A's id_token", before: func() { a.mode.set("nonce") }, att: attempt{username: "alice", decision: "allow"},
			status: http.StatusBadGateway, text: "failed verification"},
		{name: "A's id_token signature broken", before: func() { a.mode.set("signature") }, att: attempt{username: "alice", decision: "allow"},
			status: http.StatusBadGateway, text: "failed verification"},
		{name: "A down at the code exchange", att: attempt{username: "alice", decision: "allow", beforeCallback: func(*url.URL) { a.mode.set("down") }},
			status: http.StatusBadGateway, text: connectorName + " could not be reached"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			a.mode.set("")
			if f.before != nil {
				f.before()
			}
			defer a.mode.set("")
			p, _, _ := rp.walk(t, f.att)
			if p.status != f.status || !strings.Contains(html.UnescapeString(p.body), f.text) {
				t.Fatalf("B answered %d; want %d with %q:\n%s", p.status, f.status, f.text, p.body)
			}
		})
	}
	t.Run("provider not there", func(t *testing.T) {
		w := newWalker(t)
		loginB := w.get(rp.cfg.AuthCodeURL("rp-state-nowhere", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), rp.host)
		p := w.get(continueWith(t, loginB, "Nowhere"), rp.host)
		if p.status != http.StatusBadGateway || !strings.Contains(p.body, "Nowhere is not answering") {
			t.Fatalf("B answered %d; want 502 naming Nowhere:\n%s", p.status, p.body)
		}
	})
	if users := usersOf(t, bVars); len(users) != 0 {
		t.Fatalf("B has users %v after the failures; want none", users)
	}

	// alice signs in at B through A: B creates her (named after A's
	// preferred_username, no email: A does not vouch for it), links her, and
	// its id_token names that user, with A's amr.
	p, nonce, verifier := rp.walk(t, attempt{username: "alice", decision: "allow"})
	claims := rp.exchange(t, p, nonce, verifier)
	users := usersOf(t, bVars)
	aliceB, ok := users["alice"]
	if !ok || len(users) != 1 {
		t.Fatalf("B's users after alice's sign-in: %v; want alice only", users)
	}
	if claims["sub"] != aliceB {
		t.Fatalf("B's id_token sub = %v; want B's alice %s", claims["sub"], aliceB)
	}
	if amr, _ := claims["amr"].([]any); !slices.Equal(amr, []any{"pwd"}) {
		t.Fatalf("B's id_token amr = %v; want A's [pwd]", claims["amr"])
	}
	var links []map[string]any
	if err := json.Unmarshal([]byte(cli(t, bVars, "", "users", "links", "alice")), &struct {
		Links *[]map[string]any `json:"links"`
	}{&links}); err != nil {
		t.Fatal(err)
	}
	aUsers := usersOf(t, a.vars)
	if len(links) != 1 || links[0]["connector_id"] != connectorID || links[0]["subject"] != aUsers["alice"] {
		t.Fatalf("B's links of alice = %v; want one to %s, subject A's alice %s", links, connectorID, aUsers["alice"])
	}

	// A second sign-in (a new browser) goes through the link: the same user.
	p, nonce, verifier = rp.walk(t, attempt{username: "alice", decision: "allow"})
	if claims := rp.exchange(t, p, nonce, verifier); claims["sub"] != aliceB || len(usersOf(t, bVars)) != 1 {
		t.Fatalf("second sign-in: sub %v, users %v; want %s and one user", claims["sub"], usersOf(t, bVars), aliceB)
	}
}

// TestBrowserConnectorThroughWebapp signs in, in a real browser, through
// examples/webapp at authd B with authd A as the provider: bob is new at B
// (created and linked); carol's email at A is an account's at B, which A
// does not vouch for, so B asks for that account's password before linking.
// Screenshots go to docs/screenshots/connector-*.png.
func TestBrowserConnectorThroughWebapp(t *testing.T) {
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds and runs authd, the webapp and a browser")
	}
	bVars := envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "b.db"), nil)
	a := startUpstreamA(t, bVars["AUTHD_ISSUER"])
	cli(t, a.vars, "their password at A is long enough\n", "users", "create", "--username", "carol", "--email", "carol@example.com", "--password-stdin")
	b := startDownstreamB(t, bVars, a.issuer, "http://"+freeAddr(t)+"/cb")
	const carolPassword = "carol keeps a local password here"
	cli(t, bVars, carolPassword+"\n", "users", "create", "--username", "carol-b", "--email", "carol@example.com", "--password-stdin")

	webapp := filepath.Join(t.TempDir(), "webapp")
	proctest.Build(t, webapp, "github.com/authd/authd/examples/webapp")
	shopAddr := freeAddr(t)
	const shopSecret = "shop-at-b-secret-0123456789abcdef0123456789"
	cli(t, bVars, "", "clients", "create", "--id", "shop", "--name", "Example shop", "--secret", shopSecret,
		"--grant-types", "authorization_code", "--scopes", "openid profile", "--redirect-uris", "http://"+shopAddr+"/callback", "--first-party")
	proctest.Start(t, append(os.Environ(), "WEBAPP_CLIENT_SECRET="+shopSecret), "http://"+shopAddr+"/healthz", webapp,
		"-addr", shopAddr, "-issuer", b.base, "-client-id", "shop", "-redirect-url", "http://"+shopAddr+"/callback",
		"-audience", "", "-orders-url", "http://"+freeAddr(t))

	// bob: B's login page → Continue with Authd A → A's login → A's consent → the shop.
	ctx := newBrowser(t, chromium)
	var buttons, upstreamURL, name, subject string
	err := runSteps(ctx,
		chromedp.Navigate("http://"+shopAddr+"/"),
		chromedp.WaitVisible(`#sign-in`, chromedp.ByID),
		chromedp.Click(`#sign-in`, chromedp.ByID),
		chromedp.WaitVisible(`.connectors`, chromedp.ByQuery),
		chromedp.Text(`.connectors`, &buttons, chromedp.ByQuery),
		screenshot("connector-login"),
		chromedp.Click(`//a[normalize-space()="Continue with `+connectorName+`"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#password`, chromedp.ByID),
		chromedp.Location(&upstreamURL),
		chromedp.SendKeys(`#username`, "bob", chromedp.ByID),
		chromedp.SendKeys(`#password`, "their password at A is long enough", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`button[value="allow"]`, chromedp.ByQuery),
		screenshot("connector-upstream-consent"),
		chromedp.Click(`button[value="allow"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#subject`, chromedp.ByID),
		chromedp.Text(`#username`, &name, chromedp.ByID),
		chromedp.Text(`#subject`, &subject, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("bob signing in through A: %v (at %s); B users %v", err, where(ctx), usersOf(t, bVars))
	}
	if !strings.Contains(buttons, "Continue with "+connectorName) || !strings.Contains(buttons, "Continue with Nowhere") {
		t.Errorf("B's login page offers %q; want both connectors", buttons)
	}
	if !strings.HasPrefix(upstreamURL, a.issuer+"/login?") {
		t.Errorf("'Continue with' led to %s; want A's login page", upstreamURL)
	}
	if users := usersOf(t, bVars); name != "bob" || subject != users["bob"] {
		t.Errorf("the shop shows %q (%s); want B's new bob %s", name, subject, users["bob"])
	}

	// carol: B has an account with her email; she proves its password.
	ctx = newBrowser(t, chromium)
	var heading string
	err = runSteps(ctx,
		chromedp.Navigate("http://"+shopAddr+"/"),
		chromedp.WaitVisible(`#sign-in`, chromedp.ByID),
		chromedp.Click(`#sign-in`, chromedp.ByID),
		chromedp.WaitVisible(`.connectors`, chromedp.ByQuery),
		chromedp.Click(`//a[normalize-space()="Continue with `+connectorName+`"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#password`, chromedp.ByID),
		chromedp.SendKeys(`#username`, "carol", chromedp.ByID),
		chromedp.SendKeys(`#password`, "their password at A is long enough", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`button[value="allow"]`, chromedp.ByQuery),
		chromedp.Click(`button[value="allow"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`form[action="/login/link"] button`, chromedp.ByQuery),
		chromedp.Text(`#page-title`, &heading, chromedp.ByID),
		chromedp.SendKeys(`#username`, "carol-b", chromedp.ByID),
		chromedp.SendKeys(`#password`, carolPassword, chromedp.ByID),
		screenshot("connector-link"),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#subject`, chromedp.ByID),
		chromedp.Text(`#username`, &name, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("carol linking her account: %v (at %s)", err, where(ctx))
	}
	if heading != "Link your "+connectorName+" account" || name != "carol-b" {
		t.Errorf("link page %q, then the shop names %q; want Link your %s account, carol-b", heading, name, connectorName)
	}
	if _, ok := usersOf(t, bVars)["carol"]; ok {
		t.Error("B created a user carol; want carol's A account linked to carol-b")
	}
}

// where is the browser's location and page text, for a failure message.
func where(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var loc, text string
	_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Text("body", &text, chromedp.ByQuery))
	return loc + ": " + text
}

// runSteps runs the actions one by one, each within 15 s, and names the
// one that failed.
func runSteps(ctx context.Context, actions ...chromedp.Action) error {
	// The browser belongs to the context of the first Run: start it on ctx.
	if err := chromedp.Run(ctx); err != nil {
		return err
	}
	for i, a := range actions {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := chromedp.Run(sctx, a)
		cancel()
		if err != nil {
			return fmt.Errorf("step %d (%T): %w", i, a, err)
		}
	}
	return nil
}
