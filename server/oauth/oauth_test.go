package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

func tokenResponse(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

func TestSecretHasher(t *testing.T) {
	ctx := t.Context()
	old, _ := oauth.NewSecretHasher([]byte("an-old-secret-0123456789abcdef0123"))
	cur, _ := oauth.NewSecretHasher([]byte("the-new-secret-0123456789abcdef012"), []byte("an-old-secret-0123456789abcdef0123"))
	h, _ := old.Hash(ctx, []byte("s3cret"))
	if err := cur.Compare(ctx, h, []byte("s3cret")); err != nil {
		t.Errorf("hash made under the old secret does not verify after rotation: %v", err)
	}
	if err := cur.Compare(ctx, h, []byte("s3cret!")); err == nil {
		t.Errorf("wrong secret accepted")
	}
	if err := cur.Compare(ctx, nil, []byte("")); err == nil {
		t.Errorf("empty hash accepted")
	}
}

func TestSessionClampsRefreshExpiry(t *testing.T) {
	deadline := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &oauth.Session{FamilyDeadline: deadline}
	s.SetExpiresAt(fosite.RefreshToken, deadline.Add(time.Hour))
	s.SetExpiresAt(fosite.AccessToken, deadline.Add(time.Hour))
	if got := s.GetExpiresAt(fosite.RefreshToken); !got.Equal(deadline) {
		t.Errorf("refresh expiry = %v; want clamped to %v", got, deadline)
	}
	if got := s.GetExpiresAt(fosite.AccessToken); !got.Equal(deadline.Add(time.Hour)) {
		t.Errorf("access expiry = %v; want unclamped", got)
	}
	c := s.Clone().(*oauth.Session)
	c.ExpiresAt[fosite.RefreshToken] = time.Time{}
	if s.GetExpiresAt(fosite.RefreshToken).IsZero() {
		t.Errorf("Clone shares the expiry map")
	}
}

// TestAbsoluteFamilyLifetime: however often a family rotates, its refresh
// tokens never outlive the family deadline.
func TestAbsoluteFamilyLifetime(t *testing.T) {
	h := newHarness(t, openSQLite(t), fastParams)
	rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
	if rec.Code != http.StatusOK {
		t.Fatalf("password grant: %d %s", rec.Code, rec.Body)
	}
	rt := tokenResponse(t, rec)["refresh_token"].(string)
	var last time.Time
	for range 3 {
		rec = h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if rec.Code != http.StatusOK {
			t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		rt = tokenResponse(t, rec)["refresh_token"].(string)
		intro := tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {rt}}))
		exp := time.Unix(int64(intro["exp"].(float64)), 0)
		if exp.After(time.Now().Add(48*time.Hour + time.Minute)) {
			t.Fatalf("refresh token expires at %v, past the 48h family lifetime", exp)
		}
		last = exp
	}
	if last.IsZero() {
		t.Fatal("no expiry seen")
	}
}

func TestRefreshFailsForDisabledUser(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *harness{
		"sqlite":   func(t *testing.T) *harness { return newHarness(t, openSQLite(t), fastParams) },
		"postgres": func(t *testing.T) *harness { return newHarness(t, openPostgres(t), fastParams) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := open(t)
			rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
			m := tokenResponse(t, rec)
			rt, at := m["refresh_token"].(string), m["access_token"].(string)
			if _, err := h.store.UpdateUser(t.Context(), h.userID, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
				t.Fatal(err)
			}
			rec = h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if rec.Code != http.StatusBadRequest || tokenResponse(t, rec)["error"] != "invalid_grant" {
				t.Errorf("refresh of a disabled user: %d %s; want 400 invalid_grant", rec.Code, rec.Body)
			}
			if got := tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {at}})); got["active"] != false {
				t.Errorf("access token of a disabled user's revoked family: %v", got)
			}
		})
	}
}
