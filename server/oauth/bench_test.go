package oauth_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/authd/authd/identity"
)

// Token issuance per grant and introspection, through the real handlers on
// the embedded SQLite store (run with -bench; see docs for PostgreSQL).
func BenchmarkToken(b *testing.B) {
	h := newHarness(b, openSQLite(b), identity.DefaultParams())
	b.Run("client_credentials", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		b.ReportAllocs()
		for b.Loop() {
			if rec := h.call(h.p.Token, "svc", form); rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("password", func(b *testing.B) {
		form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}
		b.ReportAllocs()
		for b.Loop() {
			if rec := h.call(h.p.Token, "app", form); rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("refresh_token", func(b *testing.B) {
		rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
		rt := tokenResponse(b, rec)["refresh_token"].(string)
		b.ReportAllocs()
		for b.Loop() {
			rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			rt = tokenResponse(b, rec)["refresh_token"].(string)
		}
	})
	b.Run("introspect_access", func(b *testing.B) {
		at := tokenResponse(b, h.call(h.p.Token, "svc", url.Values{"grant_type": {"client_credentials"}}))["access_token"].(string)
		form := url.Values{"token": {at}}
		b.ReportAllocs()
		for b.Loop() {
			if rec := h.call(h.p.Introspect, "rs", form); rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
