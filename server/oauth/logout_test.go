package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authd/authd/events"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// logoutURL is an RP-initiated logout request (RP-Initiated Logout 1.0 §2).
func (s *signin) logoutURL(params url.Values) string {
	return s.srv.URL + oauth.LogoutPath + "?" + params.Encode()
}

// idToken signs in through client c in browser b and returns the
// id_token of the code exchange.
func (s *signin) idToken(t *testing.T, b *browser, c *rp) string {
	t.Helper()
	req := newRequest()
	tok, _, _ := c.exchange(t, s.signIn(t, b, c, req), req)
	raw, _ := tok.Extra("id_token").(string)
	return raw
}

// signedIn reports whether browser b has a live session, as client c sees
// it: prompt=none answers a code, or login_required.
func (s *signin) signedIn(t *testing.T, b *browser, c *rp) bool {
	t.Helper()
	req := newRequest()
	q := s.authorizationResponse(b.get(c.authURL(req, oauth2.SetAuthURLParam("prompt", "none"))), c.conf.RedirectURL, req.state)
	switch {
	case q.Get("code") != "":
		return true
	case q.Get("error") == "login_required":
		return false
	}
	t.Fatalf("prompt=none answered %v; want a code or login_required", q)
	return false
}

func (pg page) isLogoutConfirm() bool {
	return pg.status == http.StatusOK && strings.Contains(pg.body, `name="decision" value="logout"`)
}

func (pg page) isLoggedOut() bool {
	return pg.status == http.StatusOK && strings.Contains(pg.body, "You are signed out")
}

// logouts are the auth.logout entries of the user's audit trail.
func (s *signin) logouts(t *testing.T) []storage.AuditEntry {
	t.Helper()
	entries, err := s.store.ListAudit(t.Context(), storage.AuditFilter{Type: string(events.Logout), UserID: s.userID})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()
		hint := s.idToken(t, b, web)

		// The confirmation: a form posting back here, whose page may send
		// the browser on to the client's origin.
		pg := b.get(s.logoutURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpSignedOut}, "state": {"st-1"}}))
		if !pg.isLogoutConfirm() || !strings.Contains(pg.body, "alice") {
			t.Fatalf("GET logout with a session: %d at %s; want the confirmation naming alice:\n%s", pg.status, pg.url, pg.body)
		}
		if csp := pg.header.Get("Content-Security-Policy"); csp == "" || strings.Contains(csp, "form-action") {
			t.Errorf("confirmation CSP = %q; want one without form-action (the form ends at the client)", csp)
		}
		if s.signedIn(t, b, web) != true {
			t.Fatal("showing the confirmation ended the session")
		}
		action, vals := pg.form(t)
		if action != oauth.LogoutPath || vals.Get("csrf_token") == "" || vals.Get("state") != "st-1" {
			t.Fatalf("confirmation form posts to %q with %v; want %s with a CSRF token and the request", action, vals, oauth.LogoutPath)
		}
		vals.Set("decision", "logout")
		pg = b.post(s.srv.URL+action, vals)
		if pg.status != http.StatusSeeOther || pg.location == nil {
			t.Fatalf("confirmed logout: %d, location %v; want 303 to the client", pg.status, pg.location)
		}
		want := "https://rp.example/signed-out?from=authd&state=st-1"
		if got := pg.location.String(); got != want {
			t.Errorf("confirmed logout redirects to %s; want %s", got, want)
		}
		if s.signedIn(t, b, web) {
			t.Error("after the logout prompt=none still answers a code; want login_required")
		}
		entries := s.logouts(t)
		if len(entries) != 1 {
			t.Fatalf("%d auth.logout entries; want 1", len(entries))
		}
		var data map[string]any
		if err := json.Unmarshal(entries[0].Data, &data); err != nil {
			t.Fatal(err)
		}
		if entries[0].ClientID != "web" || data["via"] != "browser" || data["sid"] == "" || data["sid"] == nil {
			t.Errorf("auth.logout entry client %q data %v; want web, via browser, a sid", entries[0].ClientID, data)
		}

		// No session: nothing to confirm. Without a redirect, the "signed
		// out" page; with one, straight back to the client, with state.
		if pg := b.get(s.logoutURL(url.Values{})); !pg.isLoggedOut() {
			t.Errorf("GET logout without a session: %d:\n%s; want the signed-out page", pg.status, pg.body)
		}
		pg = b.get(s.logoutURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpSignedOut}, "state": {"st-2"}}))
		if pg.status != http.StatusSeeOther || pg.location == nil || pg.location.Query().Get("state") != "st-2" {
			t.Errorf("GET logout without a session, with a redirect: %d, location %v; want 303 with state st-2", pg.status, pg.location)
		}
		if n := len(s.logouts(t)); n != 1 {
			t.Errorf("%d auth.logout entries after logouts without a session; want still 1", n)
		}

		// A public loopback client names itself by client_id; its
		// registered loopback address takes any port. An RP may POST the
		// request (no CSRF token: it is not the confirmation).
		cli := s.rp("cli", loopbackRedirect, "openid")
		s.idToken(t, b, cli)
		pg = b.post(s.srv.URL+oauth.LogoutPath, url.Values{"client_id": {"cli"}, "post_logout_redirect_uri": {"http://127.0.0.1:53123/"}})
		if !pg.isLogoutConfirm() {
			t.Fatalf("POST of a logout request: %d:\n%s; want the confirmation", pg.status, pg.body)
		}
		action, vals = pg.form(t)
		vals.Set("decision", "logout")
		pg = b.post(s.srv.URL+action, vals)
		if pg.location == nil || pg.location.String() != "http://127.0.0.1:53123/" {
			t.Errorf("confirmed loopback logout: %d, location %v; want http://127.0.0.1:53123/", pg.status, pg.location)
		}
		// Confirmed without a redirect: the signed-out page.
		s.idToken(t, b, cli)
		pg = b.get(s.logoutURL(url.Values{}))
		action, vals = pg.form(t)
		vals.Set("decision", "logout")
		if pg = b.post(s.srv.URL+action, vals); !pg.isLoggedOut() || s.signedIn(t, b, cli) {
			t.Errorf("confirmed logout without a redirect: %d:\n%s; want the signed-out page, no session", pg.status, pg.body)
		}
		if n := len(s.logouts(t)); n != 3 {
			t.Errorf("%d auth.logout entries; want 3", n)
		}
	})
}

func TestLogoutRequestErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()
		hint := s.idToken(t, b, web)

		sign := func(km *keys.Manager, claims map[string]any) string {
			t.Helper()
			body, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := km.SignIDToken(t.Context(), body)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		now := time.Now()
		claims := func(iss, aud string) map[string]any {
			return map[string]any{"iss": iss, "sub": s.userID, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		}
		other := openSQLite(t)
		if err := other.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		otherKeys, err := keys.NewManager(t.Context(), other, keys.Options{Secret: []byte(secret), TokenTTL: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		access, err := s.keys.Sign(t.Context(), mustJSON(t, claims(s.srv.URL, "web")))
		if err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name   string
			params url.Values
		}{
			{"unregistered post_logout_redirect_uri", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}},
			{"another client's post_logout_redirect_uri", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {loopbackSignedOut}}},
			{"a registered URI's prefix", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://rp.example/signed-out"}}},
			{"post_logout_redirect_uri without a client", url.Values{"post_logout_redirect_uri": {rpSignedOut}}},
			{"unknown client_id", url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {rpSignedOut}}},
			{"client_id other than the hint's aud", url.Values{"id_token_hint": {hint}, "client_id": {"cli"}, "post_logout_redirect_uri": {loopbackSignedOut}}},
			{"hint signed by other keys", url.Values{"id_token_hint": {sign(otherKeys, claims(s.srv.URL, "web"))}, "post_logout_redirect_uri": {rpSignedOut}}},
			{"hint of another issuer", url.Values{"id_token_hint": {sign(s.keys, claims("https://other.example", "web"))}, "post_logout_redirect_uri": {rpSignedOut}}},
			{"hint with an altered signature", url.Values{"id_token_hint": {hint[:len(hint)-4] + "AAAA"}, "post_logout_redirect_uri": {rpSignedOut}}},
			{"an access token as hint", url.Values{"id_token_hint": {access}, "post_logout_redirect_uri": {rpSignedOut}}},
			{"not a token", url.Values{"id_token_hint": {"not.a.token"}}},
		} {
			pg := b.get(s.logoutURL(tc.params))
			if pg.status != http.StatusBadRequest || pg.location != nil || pg.isLogoutConfirm() {
				t.Errorf("%s: %d, location %v; want the 400 error page, no redirect", tc.name, pg.status, pg.location)
			}
		}
		if !s.signedIn(t, b, web) {
			t.Fatal("a refused logout request ended the session")
		}

		// An expired id_token is still a hint.
		expired := claims(s.srv.URL, "web")
		expired["exp"] = now.Add(-time.Hour).Unix()
		if pg := b.get(s.logoutURL(url.Values{"id_token_hint": {sign(s.keys, expired)}, "post_logout_redirect_uri": {rpSignedOut}})); !pg.isLogoutConfirm() {
			t.Errorf("an expired id_token_hint: %d:\n%s; want the confirmation", pg.status, pg.body)
		}

		// The confirmation without its CSRF token, or with another form's,
		// is refused (403, no redirect) and the session lives on.
		pg := b.get(s.logoutURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpSignedOut}, "state": {"x"}}))
		_, vals := pg.form(t)
		vals.Set("decision", "logout")
		token := vals.Get("csrf_token")
		vals.Del("csrf_token")
		if pg := b.post(s.srv.URL+oauth.LogoutPath, vals); pg.status != http.StatusForbidden || pg.location != nil {
			t.Errorf("confirmation without CSRF: %d, location %v; want 403 and no redirect", pg.status, pg.location)
		}
		vals.Set("csrf_token", token[:len(token)-2]+"AA")
		if pg := b.post(s.srv.URL+oauth.LogoutPath, vals); pg.status != http.StatusForbidden || pg.location != nil {
			t.Errorf("confirmation with a wrong CSRF token: %d, location %v; want 403 and no redirect", pg.status, pg.location)
		}
		if !s.signedIn(t, b, web) {
			t.Error("a refused confirmation ended the session")
		}
		if n := len(s.logouts(t)); n != 0 {
			t.Errorf("%d auth.logout entries; want none", n)
		}
	})
}

// Confirmations posted at once (a double click, a replayed form) end the
// session once: every one answers the redirect, exactly one auth.logout.
func TestConcurrentLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, st storage.Store) {
		s := newSignin(t, st)
		web := s.rp("web", rpRedirect, "openid")
		b := s.browser()
		hint := s.idToken(t, b, web)
		pg := b.get(s.logoutURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpSignedOut}}))
		action, vals := pg.form(t)
		vals.Set("decision", "logout")
		const n = 8
		var wg sync.WaitGroup
		pages := make([]page, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pages[i] = b.post(s.srv.URL+action, vals)
			}()
		}
		close(start)
		wg.Wait()
		for i, pg := range pages {
			if pg.status != http.StatusSeeOther || pg.location == nil || pg.location.Host != "rp.example" {
				t.Errorf("confirmation %d: %d, location %v; want 303 to rp.example", i, pg.status, pg.location)
			}
		}
		if got := len(s.logouts(t)); got != 1 {
			t.Errorf("%d auth.logout entries after %d concurrent confirmations; want exactly 1", got, n)
		}
		if s.signedIn(t, b, web) {
			t.Error("the session lives on")
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
