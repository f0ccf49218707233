// Package connectortest holds what the connectors' tests share: a fresh
// State, the browser's trip from LoginURL to the callback against a fake
// upstream, and the fakes' JSON answers.
package connectortest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authd/authd/connector"
)

// NewState returns a fresh State without a callback URL.
func NewState(t testing.TB) connector.State {
	t.Helper()
	s, err := connector.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// SignIn follows c's LoginURL to the fake upstream's authorize endpoint,
// which must answer 302, and returns the callback request it redirects to.
func SignIn(t testing.TB, c connector.Connector, s connector.State) *http.Request {
	t.Helper()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(loginURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET authorize = %d; want 302", resp.StatusCode)
	}
	return httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil)
}

// RandomString is 128 random bits, base64url: a code, a token, a subject.
func RandomString(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
