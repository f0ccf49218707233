package oauth_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
)

// Token issuance per grant, introspection and revocation, through the real
// handlers (no HTTP server, no network between client and handler) on the
// embedded SQLite store and on PostgreSQL (AUTHD_TEST_POSTGRES_URL), each
// behind the client cache as cmd/authd wires them. The PostgreSQL denylist
// answers from SQL here: its in-memory copy needs its listener running,
// which only `authd serve` (and authbench against it) exercises.
func BenchmarkToken(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) storage.Store
	}{
		{"sqlite", func(tb testing.TB) storage.Store { return openSQLite(tb) }},
		{"postgres", openPostgres},
	} {
		b.Run(backend.name, func(b *testing.B) {
			h := newHarness(b, clientcache.New(backend.open(b), 0, nil), identity.DefaultParams())
			benchGrants(b, h)
		})
	}
}

func benchGrants(b *testing.B, h *harness) {
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
	b.Run("revoke_access", func(b *testing.B) {
		// One fresh token per revocation, minted with the timer stopped.
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			at := tokenResponse(b, h.call(h.p.Token, "svc", url.Values{"grant_type": {"client_credentials"}}))["access_token"].(string)
			b.StartTimer()
			if rec := h.call(h.p.Revoke, "svc", url.Values{"token": {at}}); rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
