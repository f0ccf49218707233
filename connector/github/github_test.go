package github_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/connector/connectortest"
	"github.com/authd/authd/connector/github"
)

const (
	clientID     = "gh-client"
	clientSecret = "gh-s3cret-value"
	redirectURL  = "https://authd.example/connectors/github/callback"
)

type ghEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// fakeGitHub is GitHub's OAuth endpoints and the two API calls the connector
// makes, served as GitHub Enterprise Server does (API under /api/v3).
type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	codes       map[string]string // code -> code_challenge
	tokens      map[string]bool   // valid access tokens
	name        string
	emails      []ghEmail
	userStatus  int
	emailStatus int
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	g := &fakeGitHub{t: t, codes: map[string]string{}, tokens: map[string]bool{}, name: "The Octocat",
		emails: []ghEmail{{"octo@old.example", false, true}, {"octocat@github.example", true, true}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/v3/user", g.user)
	mux.HandleFunc("GET /api/v3/user/emails", g.userEmails)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != clientID || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := connectortest.RandomString(g.t)
	g.mu.Lock()
	g.codes[code] = q.Get("code_challenge")
	g.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (g *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.PostFormValue("client_id") != clientID || r.PostFormValue("client_secret") != clientSecret {
		connectortest.WriteJSON(w, http.StatusOK, map[string]string{"error": "incorrect_client_credentials"})
		return
	}
	code := r.PostFormValue("code")
	challenge, ok := g.codes[code]
	delete(g.codes, code)
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if !ok || challenge != base64.RawURLEncoding.EncodeToString(sum[:]) {
		// GitHub answers a bad code with 200 and an error body.
		connectortest.WriteJSON(w, http.StatusOK, map[string]string{"error": "bad_verification_code", "error_description": "The code " + code + " is incorrect"})
		return
	}
	access := "gho_" + connectortest.RandomString(g.t)
	g.tokens[access] = true
	connectortest.WriteJSON(w, http.StatusOK, map[string]string{"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"})
}

func (g *fakeGitHub) authorized(w http.ResponseWriter, r *http.Request) bool {
	if !g.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
		connectortest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return false
	}
	return true
}

func (g *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.authorized(w, r) {
		return
	}
	if g.userStatus != 0 {
		connectortest.WriteJSON(w, g.userStatus, map[string]string{"message": "Server Error"})
		return
	}
	connectortest.WriteJSON(w, http.StatusOK, map[string]any{"id": 583231, "login": "octocat", "name": g.name, "email": "octo@public.example"})
}

func (g *fakeGitHub) userEmails(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.authorized(w, r) {
		return
	}
	if g.emailStatus != 0 {
		connectortest.WriteJSON(w, g.emailStatus, map[string]string{"message": "Server Error"})
		return
	}
	connectortest.WriteJSON(w, http.StatusOK, g.emails)
}

func (g *fakeGitHub) set(f func(g *fakeGitHub)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func config(issuer string) connector.Config {
	return connector.Config{
		ID: "github", Type: connector.TypeGitHub, Name: "GitHub", Issuer: issuer,
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
	}
}

func newConnector(t *testing.T, cfg connector.Config) *github.Connector {
	t.Helper()
	c, err := github.New(cfg, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("github.New: %v", err)
	}
	return c
}

func TestLoginURL(t *testing.T) {
	c := newConnector(t, config(""))
	s := connectortest.NewState(t)
	raw, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://github.com/login/oauth/authorize" {
		t.Errorf("LoginURL endpoint = %q; want github.com's", got)
	}
	sum := sha256.Sum256([]byte(s.PKCEVerifier))
	want := map[string]string{
		"state": s.State, "client_id": clientID, "redirect_uri": redirectURL, "response_type": "code",
		"code_challenge_method": "S256", "code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]),
		"scope": "read:user user:email",
	}
	for k, v := range want {
		if got := u.Query().Get(k); got != v {
			t.Errorf("LoginURL %s = %q; want %q", k, got, v)
		}
	}
	if strings.Contains(raw, clientSecret) || strings.Contains(raw, s.PKCEVerifier) {
		t.Errorf("LoginURL = %q; carries a secret", raw)
	}
	if _, err := c.LoginURL(t.Context(), connector.State{State: "x"}); !errors.Is(err, connector.ErrBadState) {
		t.Errorf("LoginURL(no verifier) = %v; want ErrBadState", err)
	}

	cfg := config("https://ghe.example.com/")
	raw, _ = newConnector(t, cfg).LoginURL(t.Context(), s)
	if !strings.HasPrefix(raw, "https://ghe.example.com/login/oauth/authorize?") {
		t.Errorf("GitHub Enterprise LoginURL = %q", raw)
	}
}

func TestSignIn(t *testing.T) {
	tests := []struct {
		name         string
		emails       []ghEmail
		email        string
		wantVerified bool
	}{
		{"verified primary", nil, "octocat@github.example", true},
		{"unverified primary", []ghEmail{{"v@x.example", false, true}, {"p@x.example", true, false}}, "p@x.example", false},
		{"no primary", []ghEmail{{"v@x.example", false, true}}, "octo@public.example", false},
		{"no emails", []ghEmail{}, "octo@public.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGitHub(t)
			if tt.emails != nil {
				g.set(func(g *fakeGitHub) { g.emails = tt.emails })
			}
			c := newConnector(t, config(g.srv.URL))
			s := connectortest.NewState(t)
			id, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s))
			if err != nil {
				t.Fatalf("HandleCallback = %v", err)
			}
			want := connector.Identity{ConnectorID: "github", Subject: "583231", Email: tt.email, EmailVerified: tt.wantVerified, Name: "The Octocat", PreferredUsername: "octocat"}
			if id.String() != want.String() {
				t.Errorf("HandleCallback = %v; want %v", id, want)
			}
		})
	}
}

func TestAPIURL(t *testing.T) {
	g := newFakeGitHub(t)
	api := httptest.NewServer(http.StripPrefix("/gh", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/api/v3" + r.URL.Path
		g.srv.Config.Handler.ServeHTTP(w, r)
	})))
	t.Cleanup(api.Close)
	cfg := config(g.srv.URL)
	cfg.APIURL = api.URL + "/gh/"
	c := newConnector(t, cfg)
	s := connectortest.NewState(t)
	if id, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s)); err != nil || id.Subject != "583231" {
		t.Errorf("HandleCallback(api_url) = %v, %v; want subject 583231", id, err)
	}
}

func TestCallbackFailures(t *testing.T) {
	tests := []struct {
		name   string
		knob   func(g *fakeGitHub)
		tamper func(s *connector.State, r *http.Request) *http.Request
		want   error
	}{
		{name: "wrong state", tamper: func(s *connector.State, r *http.Request) *http.Request {
			q := r.URL.Query()
			q.Set("state", "forged")
			return httptest.NewRequest(http.MethodGet, redirectURL+"?"+q.Encode(), nil)
		}, want: connector.ErrBadState},
		{name: "error callback", tamper: func(s *connector.State, r *http.Request) *http.Request {
			return httptest.NewRequest(http.MethodGet, redirectURL+"?error=access_denied&state="+url.QueryEscape(s.State), nil)
		}, want: connector.ErrUpstreamDenied},
		{name: "wrong PKCE verifier", tamper: func(s *connector.State, r *http.Request) *http.Request {
			s.PKCEVerifier = strings.Repeat("v", 43)
			return r
		}, want: connector.ErrUpstream},
		{name: "user 500", knob: func(g *fakeGitHub) { g.userStatus = http.StatusInternalServerError }, want: connector.ErrUpstream},
		{name: "emails 502", knob: func(g *fakeGitHub) { g.emailStatus = http.StatusBadGateway }, want: connector.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGitHub(t)
			if tt.knob != nil {
				g.set(tt.knob)
			}
			c := newConnector(t, config(g.srv.URL))
			s := connectortest.NewState(t)
			r := connectortest.SignIn(t, c, s)
			code := r.URL.Query().Get("code")
			if tt.tamper != nil {
				r = tt.tamper(&s, r)
			}
			_, err := c.HandleCallback(t.Context(), s, r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("HandleCallback = %v; want %v", err, tt.want)
			}
			for _, secret := range []string{clientSecret, s.PKCEVerifier, code, "gho_"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("HandleCallback error %q contains a secret", err)
				}
			}
		})
	}
}

func TestGitHubDown(t *testing.T) {
	g := newFakeGitHub(t)
	c := newConnector(t, config(g.srv.URL))
	s := connectortest.NewState(t)
	r := connectortest.SignIn(t, c, s)
	g.srv.Close()
	_, err := c.HandleCallback(t.Context(), s, r)
	if !errors.Is(err, connector.ErrUpstream) {
		t.Fatalf("HandleCallback(GitHub down) = %v; want ErrUpstream", err)
	}
	if strings.Contains(err.Error(), r.URL.Query().Get("code")) || strings.Contains(err.Error(), clientSecret) {
		t.Errorf("HandleCallback error %q contains a secret", err)
	}
}

func TestRefresh(t *testing.T) {
	g := newFakeGitHub(t)
	c := newConnector(t, config(g.srv.URL))
	s := connectortest.NewState(t)
	id, err := c.HandleCallback(t.Context(), s, connectortest.SignIn(t, c, s))
	if err != nil {
		t.Fatal(err)
	}
	if len(id.ConnectorData) == 0 {
		t.Fatal("ConnectorData is empty; want the GitHub token kept")
	}
	g.set(func(g *fakeGitHub) {
		g.name = "Mona Lisa Octocat"
		g.emails = []ghEmail{{"mona@github.example", true, false}}
	})
	got, err := c.Refresh(t.Context(), id)
	if err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if got.Subject != "583231" || got.Name != "Mona Lisa Octocat" || got.Email != "mona@github.example" || got.EmailVerified {
		t.Errorf("Refresh = %v; want the new name and the unverified new email", got)
	}

	g.set(func(g *fakeGitHub) { clear(g.tokens) })
	_, err = c.Refresh(t.Context(), id)
	var de *connector.DeniedError
	if !errors.As(err, &de) || strings.Contains(err.Error(), "gho_") {
		t.Errorf("Refresh(revoked token) = %v; want a DeniedError without the token", err)
	}
	if _, err := c.Refresh(t.Context(), connector.Identity{Subject: "583231"}); !errors.Is(err, connector.ErrNoRefresh) {
		t.Errorf("Refresh(no data) = %v; want ErrNoRefresh", err)
	}
}
