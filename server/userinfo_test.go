package server

import (
	"encoding/json"
	"net/http"
	"testing"

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
	if got, ok := get()["email"]; ok {
		t.Fatalf("email = %q for a user without one; want no email claim", got)
	}
}
