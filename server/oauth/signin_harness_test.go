package oauth_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/templates"
)

// browserPages adapts server/web's pages to the authorize endpoint (as
// server does).
type browserPages struct{ *web.Pages }

func (b browserPages) Consent(w http.ResponseWriter, r *http.Request, c oauth.ConsentPage) {
	hidden := make([]templates.Hidden, 0, len(c.Params))
	for k, v := range c.Params {
		hidden = append(hidden, templates.Hidden{Name: k, Value: v[0]})
	}
	b.Pages.Consent(w, r, web.ConsentView{
		ClientID: c.ClientID, ClientName: c.ClientName, Username: c.Username, Scopes: c.Scopes,
		Hidden: hidden, RedirectURI: c.RedirectURI,
	})
}

func (b browserPages) LoginURL(returnTo string) string { return web.LoginURL(returnTo) }

func (b browserPages) LogoutConfirm(w http.ResponseWriter, r *http.Request, l oauth.LogoutPage) {
	hidden := make([]templates.Hidden, 0, len(l.Params))
	for k, v := range l.Params {
		hidden = append(hidden, templates.Hidden{Name: k, Value: v[0]})
	}
	b.Pages.LogoutConfirm(w, r, web.LogoutView{Action: l.Action, Hidden: hidden, RedirectURI: l.RedirectURI})
}

// signin is authd's browser sign-in served over HTTP on a real store: the
// login page, the authorize, token and introspection endpoints and the
// JWKS, with one user and three clients.
type signin struct {
	t       testing.TB
	store   storage.Store
	keys    *keys.Manager
	p       *oauth.Provider
	srv     *httptest.Server
	secrets map[string]string
	userID  string
}

const (
	rpRedirect       = "https://rp.example/cb"
	loopbackRedirect = "http://127.0.0.1/cb"
	// Where the clients registered RP-initiated logout to return to.
	rpSignedOut       = "https://rp.example/signed-out?from=authd"
	loopbackSignedOut = "http://127.0.0.1/"
)

func newSignin(t testing.TB, st storage.Store) *signin {
	t.Helper()
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := &signin{t: t, store: st, secrets: map[string]string{}}
	var handler http.Handler
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(s.srv.Close)
	issuer := s.srv.URL

	km, err := keys.NewManager(ctx, st, keys.Options{Secret: []byte(secret), TokenTTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.keys = km
	hasher, err := oauth.NewSecretHasher([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	ids := identity.NewService(st, rec, identity.Options{LockoutThreshold: 1000, LockoutDuration: time.Minute, Params: fastParams})
	sessions := identity.NewSessions(st, identity.SessionOptions{TTL: 24 * time.Hour, IdleTTL: time.Hour})
	set, err := templates.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New(web.Config{
		Issuer: issuer, Secrets: [][]byte{[]byte(secret)}, Templates: set, Identity: ids, Sessions: sessions,
		Users: st, SessionTTL: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.p, err = oauth.New(oauth.Options{
		Issuer: issuer, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		Secret: []byte(secret), Store: st, Denylist: st, ProofReplay: st, Signer: km, Auth: ids, Recorder: rec, Hasher: hasher,
		Pages: browserPages{pages},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", pages.LoginForm)
	mux.HandleFunc("POST /login", pages.Login)
	mux.HandleFunc("GET /oauth2/authorize", s.p.Authorize)
	mux.HandleFunc("POST /oauth2/authorize", s.p.Authorize)
	mux.HandleFunc("GET /oauth2/logout", s.p.EndSession)
	mux.HandleFunc("POST /oauth2/logout", s.p.EndSession)
	mux.HandleFunc("POST /oauth2/token", s.p.Token)
	mux.HandleFunc("POST /oauth2/introspect", s.p.Introspect)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		body, _ := km.JWKS()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	handler = mux

	grants := append(oauth.SupportedGrantTypes(), oauth.GrantAuthorizationCode)
	for _, spec := range []clients.Spec{
		// A third-party web app: confidential, asks for consent.
		{ID: "web", Name: "Web App", GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: []string{"openid", "profile"}, RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{rpSignedOut}},
		// A first-party native app: public, loopback redirect.
		{ID: "cli", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: []string{"openid", "profile"}, RedirectURIs: []string{loopbackRedirect}, PostLogoutRedirectURIs: []string{loopbackSignedOut}},
		// A first-party web app without refresh tokens.
		{ID: "portal", FirstParty: true, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid"}, RedirectURIs: []string{"https://portal.example/cb"}},
		{ID: "rs", GrantTypes: []string{"client_credentials"}, Introspect: true},
	} {
		c, sec, err := spec.Record(ctx, hasher, grants)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		s.secrets[spec.ID] = sec
	}
	u, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice", Email: "alice@example.com", Password: password}, identity.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	s.userID = u.ID
	return s
}

// config is the x/oauth2 configuration of a relying party.
func (s *signin) config(clientID, redirectURI string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if s.secrets[clientID] == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: s.secrets[clientID], RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: s.srv.URL + oauth.AuthorizePath, TokenURL: s.srv.URL + "/oauth2/token", AuthStyle: style},
	}
}

// browser is a person's browser: a cookie jar, following redirects within
// authd and stopping at one that leaves it (to a client's redirect_uri).
type browser struct {
	t testing.TB
	s *signin
	c *http.Client
}

func (s *signin) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	host := strings.TrimPrefix(s.srv.URL, "http://")
	return &browser{t: s.t, s: s, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// page is a response as the browser saw it.
type page struct {
	status   int
	url      *url.URL // where the browser ended up
	location *url.URL // a redirect that leaves authd, nil otherwise
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	pg := page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		if pg.location, err = url.Parse(loc); err != nil {
			b.t.Fatal(err)
		}
	}
	return pg
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

// form reads a page's form: its action and hidden fields.
func (pg page) form(t testing.TB) (string, url.Values) {
	t.Helper()
	m := formRE.FindStringSubmatch(pg.body)
	if m == nil {
		t.Fatalf("no form on the page at %s (status %d):\n%s", pg.url, pg.status, pg.body)
	}
	vals := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(pg.body, -1) {
		vals.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), vals
}

func (pg page) isLogin() bool {
	return pg.url.Path == web.LoginPath && strings.Contains(pg.body, `autocomplete="current-password"`)
}

func (pg page) isConsent() bool {
	return strings.Contains(pg.body, `name="decision" value="allow"`)
}

// login fills in and posts the login form of pg.
func (b *browser) login(pg page, username, pw string) page {
	b.t.Helper()
	if !pg.isLogin() {
		b.t.Fatalf("not the login page: %s (status %d)", pg.url, pg.status)
	}
	action, vals := pg.form(b.t)
	vals.Set("username", username)
	vals.Set("password", pw)
	return b.post(b.s.srv.URL+action, vals)
}

// decide posts the consent page's form with decision.
func (b *browser) decide(pg page, decision string) page {
	b.t.Helper()
	if !pg.isConsent() {
		b.t.Fatalf("not the consent page: %s (status %d):\n%s", pg.url, pg.status, pg.body)
	}
	action, vals := pg.form(b.t)
	vals.Set("decision", decision)
	return b.post(b.s.srv.URL+action, vals)
}

// authorizationResponse checks that pg is a redirect to redirectURI that
// carries state and iss (RFC 9207), and returns its parameters.
func (s *signin) authorizationResponse(pg page, redirectPrefix, state string) url.Values {
	s.t.Helper()
	if pg.location == nil {
		s.t.Fatalf("no redirect to the client: status %d at %s:\n%s", pg.status, pg.url, pg.body)
	}
	if pg.status != http.StatusSeeOther {
		s.t.Errorf("authorization response status = %d; want 303", pg.status)
	}
	loc := pg.location.Scheme + "://" + pg.location.Host + pg.location.Path
	if !strings.HasPrefix(loc, redirectPrefix) {
		s.t.Fatalf("redirected to %s; want %s", pg.location, redirectPrefix)
	}
	q := pg.location.Query()
	if got := q.Get("iss"); got != s.srv.URL {
		s.t.Errorf("iss = %q; want %q (RFC 9207)", got, s.srv.URL)
	}
	if got := q.Get("state"); got != state {
		s.t.Errorf("state = %q; want %q", got, state)
	}
	return q
}
