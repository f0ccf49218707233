package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
)

// fakeConnector is an identity provider whose answers the test sets. Its
// LoginURL remembers the State it was given; its HandleCallback checks the
// callback against the State authd hands back (as a real connector does,
// through connector.CheckCallback) and that it is the one LoginURL saw.
type fakeConnector struct {
	id, name string

	mu          sync.Mutex
	loginErr    error
	callbackErr error
	identity    connector.Identity
	states      map[string]connector.State
}

func newFakeConnector(id, name string) *fakeConnector {
	return &fakeConnector{id: id, name: name, states: map[string]connector.State{}}
}

func (f *fakeConnector) ID() string   { return f.id }
func (f *fakeConnector) Name() string { return f.name }

func (f *fakeConnector) LoginURL(_ context.Context, s connector.State) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loginErr != nil {
		return "", f.loginErr
	}
	if s.State == "" || s.Nonce == "" || s.PKCEVerifier == "" {
		return "", errors.New("fake: incomplete state")
	}
	f.states[s.State] = s
	return "https://idp.test/authorize?" + url.Values{"state": {s.State}}.Encode(), nil
}

func (f *fakeConnector) HandleCallback(_ context.Context, s connector.State, r *http.Request) (connector.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	code, err := connector.CheckCallback(s, r.URL.Query())
	if err != nil {
		return connector.Identity{}, err
	}
	if saw, ok := f.states[s.State]; !ok || saw.Nonce != s.Nonce || saw.PKCEVerifier != s.PKCEVerifier || saw.RedirectURL != s.RedirectURL {
		return connector.Identity{}, fmt.Errorf("fake: authd handed back another state than LoginURL got")
	}
	if code != "good-code" {
		return connector.Identity{}, fmt.Errorf("%w: fake: bad code", connector.ErrUpstream)
	}
	if f.callbackErr != nil {
		return connector.Identity{}, f.callbackErr
	}
	id := f.identity
	id.ConnectorID = f.id
	return id, nil
}

func (f *fakeConnector) set(fn func(f *fakeConnector)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type upstreamHarness struct {
	*harness
	idp, other *fakeConnector
	clock      *clock
}

func newUpstreamHarness(t *testing.T, backend string, pol identity.LinkPolicy) *upstreamHarness {
	u := &upstreamHarness{
		idp: newFakeConnector("example", "Example"), other: newFakeConnector("other", "Other"),
		clock: &clock{now: time.Now()},
	}
	u.harness = newHarness(t, backend, func(c *web.Config) {
		st := c.Users.(*faultStore)
		c.Now = u.clock.Now
		c.Connectors = []web.Connector{{Connector: u.idp, Policy: pol}, {Connector: u.other, Policy: pol}}
		c.UpstreamLogins = st
		c.Federation = c.Identity.(*identity.Service).NewFederation(st)
	})
	return u
}

const upReturnTo = "/oauth2/authorize?client_id=app&response_type=code"

var stateRE = regexp.MustCompile(`[?&]state=([^&]+)`)

// start follows the login page's "Continue with <name>" link of connector
// id and returns the state the browser is sent to the provider with.
func (b *browser) start(id string) string {
	b.h.t.Helper()
	login := b.get("/login?" + url.Values{"return_to": {upReturnTo}}.Encode())
	href := "/connectors/" + id + "/login?" + url.Values{"return_to": {upReturnTo}}.Encode()
	if !strings.Contains(login.body, `href="`+strings.ReplaceAll(href, "&", "&amp;")+`"`) {
		b.h.t.Fatalf("the login page has no link %s:\n%s", href, login.body)
	}
	p := b.get(href)
	if p.status != http.StatusSeeOther {
		b.h.t.Fatalf("GET %s = %d; want 303:\n%s", href, p.status, p.body)
	}
	m := stateRE.FindStringSubmatch(p.header.Get("Location"))
	if m == nil || !strings.HasPrefix(p.header.Get("Location"), "https://idp.test/authorize?") {
		b.h.t.Fatalf("Location = %q; want the provider with a state", p.header.Get("Location"))
	}
	state, _ := url.QueryUnescape(m[1])
	return state
}

// callback is the provider sending the browser back.
func (b *browser) callback(id string, q url.Values) page {
	b.h.t.Helper()
	return b.get("/connectors/" + id + "/callback?" + q.Encode())
}

// session returns the browser's session, failing the test when it has none.
func (u *upstreamHarness) session(b *browser) (storage.BrowserSession, storage.User) {
	u.t.Helper()
	s, usr, err := u.sessions.CheckSession(u.t.Context(), b.cookie("authd_session"), time.Now())
	if err != nil {
		u.t.Fatalf("no live session: %v", err)
	}
	return s, usr
}

func (u *upstreamHarness) links(userID string) []storage.Link {
	u.t.Helper()
	ls, err := u.store.ListUserLinks(u.t.Context(), userID)
	if err != nil {
		u.t.Fatal(err)
	}
	return ls
}

func (u *upstreamHarness) userCount() int {
	u.t.Helper()
	us, _, err := u.store.ListUsers(u.t.Context(), storage.UserQuery{Limit: 100})
	if err != nil {
		u.t.Fatal(err)
	}
	return len(us)
}

func TestConnectorSignInCreatesUser(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			u := newUpstreamHarness(t, backend, identity.LinkPolicy{CreateUsers: true})
			u.idp.set(func(f *fakeConnector) {
				f.identity = connector.Identity{Subject: "up-1", Email: "carol@idp.test", EmailVerified: true,
					PreferredUsername: "Carol", AMR: []string{"pwd", "mfa"}}
			})
			b := u.browser()
			state := b.start("example")
			if b.cookie("authd_upstream") == "" {
				t.Fatal("no browser binding cookie after the start")
			}
			p := b.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
			if p.status != http.StatusSeeOther || p.header.Get("Location") != upReturnTo {
				t.Fatalf("callback = %d Location %q; want 303 to %s:\n%s", p.status, p.header.Get("Location"), upReturnTo, p.body)
			}
			s, usr := u.session(b)
			if usr.Username != "carol" || usr.Email != "carol@idp.test" || !slices.Equal(s.AMR, []string{"pwd", "mfa"}) {
				t.Fatalf("signed in as %q <%s> amr %v; want carol <carol@idp.test> amr [pwd mfa]", usr.Username, usr.Email, s.AMR)
			}
			if ls := u.links(usr.ID); len(ls) != 1 || ls[0].ConnectorID != "example" || ls[0].Subject != "up-1" {
				t.Fatalf("links = %+v; want one to example/up-1", ls)
			}
			ok := u.audit(events.LoginSuccess)
			if len(ok) != 1 || dataOf(t, ok[0])["connector_id"] != "example" || dataOf(t, ok[0])["via"] != "connector" {
				t.Fatalf("auth.login.success = %+v; want one with via connector and connector_id example", ok)
			}

			// The flow is single-use: the same callback again signs no one in.
			b2 := u.browser()
			b2.c.Jar.SetCookies(mustURL(u.srv.URL), []*http.Cookie{{Name: "authd_upstream", Value: b.cookie("authd_upstream")}})
			if p := b2.callback("example", url.Values{"state": {state}, "code": {"good-code"}}); p.status != http.StatusBadRequest ||
				!strings.Contains(p.body, "has expired") || b2.cookie("authd_session") != "" {
				t.Fatalf("replayed callback = %d (session %q); want 400 and no session:\n%s", p.status, b2.cookie("authd_session"), p.body)
			}

			// A second sign-in goes through the link: same user, no new one.
			b3 := u.browser()
			state = b3.start("example")
			if p := b3.callback("example", url.Values{"state": {state}, "code": {"good-code"}}); p.status != http.StatusSeeOther {
				t.Fatalf("second sign-in = %d:\n%s", p.status, p.body)
			}
			if _, again := u.session(b3); again.ID != usr.ID || u.userCount() != 1 {
				t.Fatalf("second sign-in as %s (users %d); want %s and one user", again.ID, u.userCount(), usr.ID)
			}
		})
	}
}

func dataOf(t *testing.T, e storage.AuditEntry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("audit data %q: %v", e.Data, err)
	}
	return m
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestConnectorFlowRefusals: what may not sign anyone in, and signs no one
// in: another browser's flow, another connector's, an expired one, a
// missing state, an unknown connector.
func TestConnectorFlowRefusals(t *testing.T) {
	u := newUpstreamHarness(t, "sqlite", identity.LinkPolicy{CreateUsers: true})
	u.idp.set(func(f *fakeConnector) { f.identity = connector.Identity{Subject: "up-1"} })
	u.other.set(func(f *fakeConnector) { f.identity = connector.Identity{Subject: "up-1"} })

	tests := []struct {
		name string
		run  func(t *testing.T) (page, *browser)
		want int
		text string
	}{
		{"another browser", func(t *testing.T) (page, *browser) {
			state := u.browser().start("example")
			thief := u.browser()
			thief.get("/connectors/example/login") // has a binding cookie of its own
			return thief.callback("example", url.Values{"state": {state}, "code": {"good-code"}}), thief
		}, http.StatusBadRequest, "has expired"},
		{"no binding cookie", func(t *testing.T) (page, *browser) {
			state := u.browser().start("example")
			b := u.browser()
			return b.callback("example", url.Values{"state": {state}, "code": {"good-code"}}), b
		}, http.StatusBadRequest, "has expired"},
		{"another connector's callback", func(t *testing.T) (page, *browser) {
			b := u.browser()
			state := b.start("example")
			return b.callback("other", url.Values{"state": {state}, "code": {"good-code"}}), b
		}, http.StatusBadRequest, "has expired"},
		{"expired", func(t *testing.T) (page, *browser) {
			b := u.browser()
			state := b.start("example")
			u.clock.advance(11 * time.Minute)
			return b.callback("example", url.Values{"state": {state}, "code": {"good-code"}}), b
		}, http.StatusBadRequest, "has expired"},
		{"no state", func(t *testing.T) (page, *browser) {
			b := u.browser()
			b.start("example")
			return b.callback("example", url.Values{"code": {"good-code"}}), b
		}, http.StatusBadRequest, "has expired"},
		{"forged state", func(t *testing.T) (page, *browser) {
			b := u.browser()
			b.start("example")
			return b.callback("example", url.Values{"state": {"forged"}, "code": {"good-code"}}), b
		}, http.StatusBadRequest, "has expired"},
		{"unknown connector", func(t *testing.T) (page, *browser) {
			b := u.browser()
			return b.get("/connectors/nope/login"), b
		}, http.StatusNotFound, "no such sign-in provider"},
		{"unknown connector callback", func(t *testing.T) (page, *browser) {
			b := u.browser()
			return b.callback("nope", url.Values{"state": {"x"}, "code": {"good-code"}}), b
		}, http.StatusNotFound, "no such sign-in provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, b := tt.run(t)
			if p.status != tt.want || !strings.Contains(p.body, tt.text) {
				t.Fatalf("status %d; want %d with %q:\n%s", p.status, tt.want, tt.text, p.body)
			}
			checkPageHeaders(t, tt.name, p.header)
			if b.cookie("authd_session") != "" {
				t.Fatal("a session was started")
			}
		})
	}
	if n := u.userCount(); n != 0 {
		t.Fatalf("%d users exist; want none", n)
	}
}

// TestConnectorUpstreamFailures: each failure of the provider lands on the
// error page with its message, and nothing is created.
func TestConnectorUpstreamFailures(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			u := newUpstreamHarness(t, backend, identity.LinkPolicy{CreateUsers: true})
			u.idp.set(func(f *fakeConnector) {
				f.identity = connector.Identity{Subject: "up-1", Email: "x@idp.test", EmailVerified: true}
			})
			tests := []struct {
				name      string
				err       error
				code      string
				q         url.Values
				want      int
				text      string
				retryable bool
			}{
				{name: "error callback", q: url.Values{"error": {"access_denied"}, "error_description": {"The user said no"}},
					want: http.StatusBadRequest, text: "Example did not sign you in (access_denied)"},
				{name: "provider down", err: fmt.Errorf("%w: dial tcp: connection refused", connector.ErrUpstream),
					want: http.StatusBadGateway, text: "Example could not be reached", retryable: true},
				{name: "bad code", code: "stolen-code", want: http.StatusBadGateway, text: "Example could not be reached", retryable: true},
				{name: "bad id_token", err: fmt.Errorf("%w: signature", connector.ErrInvalidToken),
					want: http.StatusBadGateway, text: "failed verification"},
				{name: "wrong nonce", err: fmt.Errorf("%w: nonce does not match this sign-in", connector.ErrInvalidToken),
					want: http.StatusBadGateway, text: "failed verification"},
				{name: "connector's state check", err: fmt.Errorf("%w: state", connector.ErrBadState),
					want: http.StatusBadRequest, text: "has expired"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					u.idp.set(func(f *fakeConnector) { f.callbackErr = tt.err })
					b := u.browser()
					state := b.start("example")
					q := url.Values{"state": {state}, "code": {"good-code"}}
					if tt.code != "" {
						q.Set("code", tt.code)
					}
					for k, v := range tt.q {
						q[k] = v
					}
					p := b.callback("example", q)
					if p.status != tt.want || !strings.Contains(p.body, tt.text) {
						t.Fatalf("status %d; want %d with %q:\n%s", p.status, tt.want, tt.text, p.body)
					}
					if tt.retryable && p.header.Get("Retry-After") == "" {
						t.Error("no Retry-After")
					}
					if strings.Contains(p.body, "good-code") || strings.Contains(p.body, state) || strings.Contains(p.body, "dial tcp") {
						t.Errorf("the page shows a code, the state or an internal error:\n%s", p.body)
					}
					if b.cookie("authd_session") != "" {
						t.Error("a session was started")
					}
				})
			}
			u.idp.set(func(f *fakeConnector) {
				f.callbackErr = nil
				f.loginErr = fmt.Errorf("%w: discovery", connector.ErrUpstream)
			})
			p := u.browser().get("/connectors/example/login")
			if p.status != http.StatusBadGateway || !strings.Contains(p.body, "Example is not answering") {
				t.Fatalf("start with the provider down = %d:\n%s", p.status, p.body)
			}
			if n := u.userCount(); n != 0 {
				t.Fatalf("%d users exist after the failures; want none", n)
			}
			if es := u.audit(events.LinkCreated); len(es) != 0 {
				t.Fatalf("links recorded: %+v", es)
			}
		})
	}
}

var linkTokenRE = regexp.MustCompile(`name="link_token" value="([^"]*)"`)

// TestConnectorLinkByPassword: an identity whose email a local account has,
// unverified by the provider, is linked only after that account's password.
func TestConnectorLinkByPassword(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			u := newUpstreamHarness(t, backend, identity.LinkPolicy{CreateUsers: true, LinkVerifiedEmail: true})
			alice := u.createUser("alice", alicePassword)
			u.idp.set(func(f *fakeConnector) {
				f.identity = connector.Identity{Subject: "up-alice", Email: "alice@example.com", EmailVerified: false}
			})
			b := u.browser()
			state := b.start("example")
			p := b.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
			if p.status != http.StatusOK || !strings.Contains(p.body, "Link your Example account") || !strings.Contains(p.body, "alice@example.com") {
				t.Fatalf("callback = %d; want the link page naming the email:\n%s", p.status, p.body)
			}
			checkLeavingPageHeaders(t, "link page", p.header)
			if b.cookie("authd_session") != "" || len(u.links(alice.ID)) != 0 {
				t.Fatal("signed in or linked before the password")
			}
			token := linkTokenRE.FindStringSubmatch(p.body)[1]

			// A wrong password: the form again, with a new token; the old one is spent.
			wrong := b.post(web.LinkPath, url.Values{"csrf_token": {p.token(t)}, "link_token": {token}, "username": {"alice"}, "password": {"not her password at all"}})
			if wrong.status != http.StatusBadRequest || !strings.Contains(wrong.body, "Wrong username or password") {
				t.Fatalf("wrong password = %d:\n%s", wrong.status, wrong.body)
			}
			again := b.post(web.LinkPath, url.Values{"csrf_token": {p.token(t)}, "link_token": {token}, "username": {"alice"}, "password": {alicePassword}})
			if again.status != http.StatusBadRequest || !strings.Contains(again.body, "has expired") {
				t.Fatalf("spent token = %d; want 400:\n%s", again.status, again.body)
			}
			// Without the CSRF token: refused.
			token = linkTokenRE.FindStringSubmatch(wrong.body)[1]
			if p := b.post(web.LinkPath, url.Values{"link_token": {token}, "username": {"alice"}, "password": {alicePassword}}); p.status != http.StatusForbidden {
				t.Fatalf("no CSRF token = %d; want 403", p.status)
			}
			// The right password (the CSRF-less post took nothing): linked and
			// signed in; the provider gave no amr, so the session's is pwd.
			ok := b.post(web.LinkPath, url.Values{"csrf_token": {wrong.token(t)}, "link_token": {token}, "username": {"alice"}, "password": {alicePassword}})
			if ok.status != http.StatusSeeOther || ok.header.Get("Location") != upReturnTo {
				t.Fatalf("right password = %d Location %q:\n%s", ok.status, ok.header.Get("Location"), ok.body)
			}
			s, usr := u.session(b)
			if usr.ID != alice.ID || !slices.Equal(s.AMR, []string{"pwd"}) {
				t.Fatalf("signed in as %s amr %v; want alice amr [pwd]", usr.Username, s.AMR)
			}
			if ls := u.links(alice.ID); len(ls) != 1 || ls[0].Subject != "up-alice" {
				t.Fatalf("links = %+v", ls)
			}
			if n := u.userCount(); n != 1 {
				t.Fatalf("%d users; want alice only", n)
			}
			// From now on the provider signs alice in directly.
			b2 := u.browser()
			state = b2.start("example")
			if p := b2.callback("example", url.Values{"state": {state}, "code": {"good-code"}}); p.status != http.StatusSeeOther {
				t.Fatalf("sign-in after linking = %d:\n%s", p.status, p.body)
			}
			if _, usr := u.session(b2); usr.ID != alice.ID {
				t.Fatalf("signed in as %s; want alice", usr.Username)
			}
		})
	}
}

func TestConnectorDisabledUser(t *testing.T) {
	u := newUpstreamHarness(t, "sqlite", identity.LinkPolicy{CreateUsers: true})
	u.idp.set(func(f *fakeConnector) { f.identity = connector.Identity{Subject: "up-1", PreferredUsername: "dave"} })
	b := u.browser()
	state := b.start("example")
	b.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
	_, dave := u.session(b)
	if _, err := u.store.UpdateUser(t.Context(), dave.ID, func(x *storage.User) error { x.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	b2 := u.browser()
	state = b2.start("example")
	p := b2.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "cannot sign in") || b2.cookie("authd_session") != "" {
		t.Fatalf("disabled user = %d:\n%s", p.status, p.body)
	}
}

func TestConnectorStoreOutage(t *testing.T) {
	u := newUpstreamHarness(t, "sqlite", identity.LinkPolicy{CreateUsers: true})
	b := u.browser()
	state := b.start("example")
	u.store.mu.Lock()
	u.store.takeFail = fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
	u.store.mu.Unlock()
	p := b.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
	if p.status != http.StatusServiceUnavailable || p.header.Get("Retry-After") == "" {
		t.Fatalf("store outage = %d (Retry-After %q); want 503 with Retry-After", p.status, p.header.Get("Retry-After"))
	}
}

func TestConnectorCreationOff(t *testing.T) {
	u := newUpstreamHarness(t, "sqlite", identity.LinkPolicy{CreateUsers: false})
	u.createUser("erin", alicePassword)
	u.idp.set(func(f *fakeConnector) {
		f.identity = connector.Identity{Subject: "up-9", Email: "someone@idp.test", EmailVerified: true}
	})
	b := u.browser()
	state := b.start("example")
	p := b.callback("example", url.Values{"state": {state}, "code": {"good-code"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "is not linked to an account here yet") || strings.Contains(p.body, "someone@idp.test") {
		t.Fatalf("creation off = %d; want the link page without the email:\n%s", p.status, p.body)
	}
	if n := u.userCount(); n != 1 {
		t.Fatalf("%d users; want erin only", n)
	}
}
