package oauth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
	"github.com/authd/authd/storage/storagetest"
)

// openFuzzStore is the store the fuzz targets run against: PostgreSQL when
// AUTHD_TEST_POSTGRES_URL is set (it refuses text SQLite accepts: a NUL,
// invalid UTF-8), else SQLite.
func openFuzzStore(tb testing.TB) storage.Store {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		return openPostgres(tb)
	}
	return openSQLite(tb)
}

// FuzzTokenRequest throws arbitrary bodies, content types and Authorization
// headers at the token endpoint: it must answer a 4xx RFC 6749 error (or a
// token), never a 5xx, never panic, and never echo the client secret.
func FuzzTokenRequest(f *testing.F) {
	h := newHarness(f, clientcache.New(openFuzzStore(f), 0, nil), fastParams)
	seeds := []struct{ body, ctype, auth string }{
		{"grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic c3ZjOng="},
		{"grant_type=password&username=alice&password=x&client_id=app", "application/x-www-form-urlencoded", ""},
		{"grant_type=refresh_token&refresh_token=ory_rt_a.b", "application/x-www-form-urlencoded", "Basic YXBwOng="},
		{"grant_type=refresh_token&refresh_token=authd_rt_a.b", "application/x-www-form-urlencoded", "Basic YXBwOng="},
		{"grant_type=password&username=al%00ice&password=x", "application/x-www-form-urlencoded", "Basic YXBwOng="},
		{"grant_type=password&username=%FF%FE&password=%00", "application/x-www-form-urlencoded", "Basic YXBwOng="},
		{"grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic c3Zj%00Ong="},
		{"grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic JTAwOng="}, // "%00:x"
		{"grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic /zp4"},     // "\xff:x"
		{"grant_type=client_credentials&client_id=%C0%80&client_secret=x", "application/x-www-form-urlencoded", ""},
		{"grant_type=client_credentials&scope=%01&audience=%7F", "application/x-www-form-urlencoded", "Basic c3ZjOng="},
		{`{"grant_type":"password"}`, "application/json", ""},
		{"grant_type=%zz&&&=", "application/x-www-form-urlencoded; charset=utf-8", "Bearer x"},
		{"grant_type=client_credentials&grant_type=password", "application/x-www-form-urlencoded", "Basic"},
		{"grant_type=client_credentials&scope=read%20read&audience=a&audience=b", "application/x-www-form-urlencoded", "Basic c3ZjOg=="},
		{"grant_type=client_credentials&client_id=svc&client_secret=" + h.secrets["svc"], "application/x-www-form-urlencoded", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.ctype, s.auth)
	}
	secret := []byte(h.secrets["svc"])
	f.Fuzz(func(t *testing.T, body []byte, ctype, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.p.Token(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("non-JSON answer %q", rec.Body)
		}
		if rec.Code != http.StatusOK && m["error"] == nil {
			t.Fatalf("error without error field: %d %s", rec.Code, rec.Body)
		}
		if bytes.Contains(rec.Body.Bytes(), secret) {
			t.Fatalf("answer echoes the client secret")
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("no Cache-Control: no-store")
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

// FuzzIntrospectToken feeds arbitrary tokens to introspection: never a 5xx,
// and nothing the server did not issue is active. A token that is not
// printable ASCII of a sane length is malformed (400 invalid_request).
func FuzzIntrospectToken(f *testing.F) {
	h := newHarness(f, clientcache.New(openFuzzStore(f), 0, nil), fastParams)
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.", "ory_rt_x.y", "authd_rt_x.y", "....", "eyJ.eyJ.AAAA", "authd_rt_\x00.\xff", "a\u0085b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		rec := h.call(h.p.Introspect, "rs", map[string][]string{"token": {token}})
		if token == "" {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("empty token: %d", rec.Code)
			}
			return
		}
		if !printableToken(token) {
			if rec.Code != http.StatusBadRequest || !bytes.Contains(rec.Body.Bytes(), []byte(`"invalid_request"`)) {
				t.Fatalf("introspect %q = %d %s; want 400 invalid_request", token, rec.Code, rec.Body)
			}
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["active"] != false {
			t.Fatalf("introspect %q = %s; want inactive", token, rec.Body)
		}
	})
}

// printableToken reports whether s could be a token: at most 8 KiB of
// printable ASCII.
func printableToken(s string) bool {
	if len(s) > 8192 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
