package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkJWKS is authd's whole handler stack (router, middleware, access
// line at info to a discarding JSON handler) answering GET /.well-known/jwks.json,
// beside a bare handler writing the same bytes: the difference is what the
// stack costs per answer (issue 10's bare baseline, without the network).
func BenchmarkJWKS(b *testing.B) {
	ts := newTestServer(b, openSQLite(b))
	ts.srv.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	rec := httptest.NewRecorder()
	ts.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("jwks: %d", rec.Code)
	}
	body := rec.Body.Bytes()
	b.Run("authd", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ts.srv.ServeHTTP(discard{h: http.Header{}}, req)
		}
	})
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(body)
		})
		for b.Loop() {
			bare.ServeHTTP(discard{h: http.Header{}}, req)
		}
	})
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
