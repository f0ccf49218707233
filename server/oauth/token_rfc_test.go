package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// RFC 6749 §5.2: a request missing a required parameter is invalid_request.
// fosite would look the empty refresh token up and answer invalid_grant.
func TestRefreshGrantWithoutRefreshToken(t *testing.T) {
	h := newHarness(t, openSQLite(t), fastParams)
	for _, form := range []url.Values{
		{"grant_type": {"refresh_token"}},
		{"grant_type": {"refresh_token"}, "refresh_token": {""}},
	} {
		rec := h.call(h.p.Token, "app", form)
		wantOAuthError(t, "refresh grant "+form.Encode(), rec, http.StatusBadRequest, "invalid_request")
		if !strings.Contains(rec.Body.String(), "refresh_token") {
			t.Errorf("refresh grant without refresh_token: %s does not name the parameter", rec.Body)
		}
	}
}

// Token, introspection and error answers are JSON that names its charset.
func TestTokenEndpointContentType(t *testing.T) {
	h := newHarness(t, openSQLite(t), fastParams)
	for _, c := range []struct {
		what    string
		handler http.HandlerFunc
		client  string
		form    url.Values
		status  int
	}{
		{"token", h.p.Token, "svc", url.Values{"grant_type": {"client_credentials"}}, 200},
		{"token error", h.p.Token, "svc", url.Values{"grant_type": {"password"}}, 400},
		{"introspection", h.p.Introspect, "rs", url.Values{"token": {"x"}}, 200},
		{"unauthenticated", h.p.Introspect, "", url.Values{"token": {"x"}}, 401},
	} {
		rec := h.call(c.handler, c.client, c.form)
		if rec.Code != c.status {
			t.Errorf("%s: %d %s; want %d", c.what, rec.Code, rec.Body, c.status)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q; want application/json; charset=utf-8", c.what, ct)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Pragma") != "no-cache" {
			t.Errorf("%s: Cache-Control %q, Pragma %q", c.what, rec.Header().Get("Cache-Control"), rec.Header().Get("Pragma"))
		}
	}
}

// Refresh tokens start with authd_rt_, so that secret scanners can tell them
// from other Ory-based servers' ory_rt_. Tokens issued before the change,
// with fosite's ory_rt_, keep working: the prefix is outside the HMAC (only
// the part before the dot is signed) and outside what is stored (a hash of
// the part after it), so swapping the prefix gives exactly the token fosite's
// HMACSHAStrategy issued for the same row. A token with any other prefix, or
// none, is refused.
func TestRefreshTokenPrefix(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			h := newHarness(t, be.open(t), fastParams)
			login := func() string {
				t.Helper()
				rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
				rt, _ := tokenResponse(t, rec)["refresh_token"].(string)
				if !strings.HasPrefix(rt, "authd_rt_") || strings.Count(rt, ".") != 1 {
					t.Fatalf("refresh token %q; want authd_rt_<key>.<signature>", rt)
				}
				return rt
			}
			legacy := func(rt string) string { return "ory_rt_" + strings.TrimPrefix(rt, "authd_rt_") }
			introspect := func(tok string) bool {
				t.Helper()
				rec := h.call(h.p.Introspect, "rs", url.Values{"token": {tok}})
				var m map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
					t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
				}
				return m["active"] == true
			}

			// Other prefixes, or none, are not authd's tokens.
			rt := login()
			bare := strings.TrimPrefix(rt, "authd_rt_")
			for _, forged := range []string{bare, "xyz_rt_" + bare, "authd_at_" + bare, "ory_at_" + bare, "authd_rt_authd_rt_" + bare} {
				rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {forged}})
				wantOAuthError(t, "refresh with "+forged[:12], rec, http.StatusBadRequest, "invalid_grant")
				if introspect(forged) {
					t.Errorf("introspect %q... = active", forged[:12])
				}
			}

			// A token issued with the old prefix refreshes, and its successor has the new one.
			old := legacy(rt)
			if !introspect(old) {
				t.Fatalf("introspect ory_rt_ token = inactive")
			}
			rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}})
			next, _ := tokenResponse(t, rec)["refresh_token"].(string)
			if !strings.HasPrefix(next, "authd_rt_") {
				t.Fatalf("successor of an ory_rt_ token: %q", next)
			}
			// It is rotated like any other: presenting it again is reuse.
			if introspect(old) || introspect(rt) {
				t.Errorf("the rotated token is still active")
			}

			// And an old token can be revoked.
			old2 := legacy(login())
			if rec := h.call(h.p.Revoke, "app", url.Values{"token": {old2}}); rec.Code != http.StatusOK {
				t.Fatalf("revoke ory_rt_ token: %d %s", rec.Code, rec.Body)
			}
			if introspect(old2) {
				t.Errorf("revoked ory_rt_ token still active")
			}
		})
	}
}
