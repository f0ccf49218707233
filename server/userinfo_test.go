package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// /userinfo names the email for the email scope, and leaves the claim out
// for a user who has none (created through a provider that vouched for no
// email), rather than answering "email": "".
func TestUserinfoEmail(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	get := func() map[string]any {
		t.Helper()
		rec := ts.json(http.MethodGet, "/userinfo", ts.user, "")
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			t.Fatalf("GET /userinfo = %d %s", rec.Code, rec.Body)
		}
		return body
	}
	if got := get()["email"]; got != "alice@example.com" {
		t.Fatalf("email = %v; want alice@example.com", got)
	}
	if _, err := ts.store.UpdateUser(t.Context(), ts.userID, func(u *storage.User) error { u.Email = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	body := get()
	for _, claim := range []string{"email", "email_verified"} {
		if got, ok := body[claim]; ok {
			t.Fatalf("%s = %v for a user without an email; want no such claim", claim, got)
		}
	}
}

// userinfoFor gets alice a token with scope and answers /userinfo's claims.
func userinfoFor(t *testing.T, ts *testServer, scope string) (int, map[string]any) {
	t.Helper()
	rr := ts.form(http.MethodPost, "/oauth2/token", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {testPassword}, "scope": {scope},
	}, "app", ts.secret)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if rr.Code != http.StatusOK || json.Unmarshal(rr.Body.Bytes(), &tr) != nil {
		t.Fatalf("password grant with scope %q: %d %s", scope, rr.Code, rr.Body)
	}
	rec := ts.json(http.MethodGet, "/userinfo", tr.AccessToken, "")
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

// The claims follow the token's scope (OIDC Core §5.4): profile gives
// preferred_username, email gives email and email_verified; sub and roles
// always.
func TestUserinfoClaimsByScope(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	withLinks(t, ts, nil)
	for _, tc := range []struct {
		scope string
		want  []string
	}{
		{"openid", []string{"roles", "sub"}},
		{"openid profile", []string{"preferred_username", "roles", "sub"}},
		{"openid email", []string{"email", "email_verified", "roles", "sub"}},
		{"openid profile email", []string{"email", "email_verified", "preferred_username", "roles", "sub"}},
	} {
		code, body := userinfoFor(t, ts, tc.scope)
		var got []string
		for k := range body {
			got = append(got, k)
		}
		slices.Sort(got)
		if code != http.StatusOK || !slices.Equal(got, tc.want) || body["sub"] != ts.userID {
			t.Errorf("scope %q: %d %v; want 200 with the claims %v", tc.scope, code, body, tc.want)
		}
		if tc.want[0] == "email" && (body["email"] != "alice@example.com" || body["email_verified"] != false) {
			t.Errorf("scope %q: email %v, email_verified %v; want alice@example.com, false (no provider vouched for it)", tc.scope, body["email"], body["email_verified"])
		}
	}
}

// email_verified is true only while the user's email is one an identity
// provider vouched for (a link made with it as a verified email): authd
// itself sends no confirmation mails.
func TestUserinfoEmailVerified(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	verified := func() any {
		t.Helper()
		code, body := userinfoFor(t, ts, "openid email")
		if code != http.StatusOK {
			t.Fatalf("userinfo: %d %v", code, body)
		}
		return body["email_verified"]
	}
	now := time.Now()
	// A link without an email (the provider did not vouch for one).
	if err := ts.store.CreateLink(t.Context(), storage.Link{ConnectorID: "github", Subject: "gh-1", UserID: ts.userID, CreatedAt: now, LastLoginAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := ts.store.CreateLink(t.Context(), storage.Link{ConnectorID: "google", Subject: "g-1", UserID: ts.userID, Email: "ALICE@example.com", CreatedAt: now, LastLoginAt: now}); err != nil {
		t.Fatal(err)
	}
	if got := verified(); got != false {
		t.Fatalf("email_verified = %v without Links; want false", got)
	}
	withLinks(t, ts, nil)
	if got := verified(); got != true {
		t.Fatalf("email_verified = %v with a link vouching for the address (in another case); want true", got)
	}
	if _, err := ts.store.UpdateUser(t.Context(), ts.userID, func(u *storage.User) error { u.Email = "alice@elsewhere.example"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := verified(); got != false {
		t.Fatalf("email_verified = %v after the email changed to one no provider vouched for; want false", got)
	}
	// The store down: 503 with Retry-After, as everywhere on the JSON API.
	withLinks(t, ts, failingLinks{})
	rr := ts.form(http.MethodPost, "/oauth2/token", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {testPassword}, "scope": {"openid email"},
	}, "app", ts.secret)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(rr.Body.Bytes(), &tr)
	rec := ts.json(http.MethodGet, "/userinfo", tr.AccessToken, "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
		t.Errorf("userinfo with the links unreadable: %d %q %q; want 503 problem+json with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
	}
}
