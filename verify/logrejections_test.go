package verify_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authd/authd/verify"
)

// Why a token was refused is logged at Debug, or at Info with LogRejections
// (so that a wrong aud shows while a service is being set up).
func TestLogRejections(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	c := claims(iss)
	c["aud"] = "someone-else"
	tok := key.sign(t, c)
	for _, on := range []bool{false, true} {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow, Logger: log, LogRejections: on}, jwks(t, key.jwk()))
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("token for another audience: %d", rec.Code)
		}
		logged := strings.Contains(buf.String(), "token rejected") && strings.Contains(buf.String(), `"level":"INFO"`)
		if logged != on {
			t.Errorf("LogRejections=%v: Info log %q", on, buf.String())
		}
	}
}
