package storagetest

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func checkConsent(t *testing.T, what string, got, want storage.Consent) {
	t.Helper()
	if got.UserID != want.UserID || got.ClientID != want.ClientID || !sameStrings(got.Scopes, want.Scopes) ||
		!sameTime(got.GrantedAt, want.GrantedAt) || !isUTC(got.GrantedAt) {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func getConsent(t *testing.T, s storage.Store, userID, clientID string) storage.Consent {
	t.Helper()
	got, err := s.GetConsent(t.Context(), userID, clientID)
	mustNil(t, "GetConsent", err)
	return got
}

func testConsents(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := newUser("consenter"), newUser("other")
	a, b := newClient(), newClient()
	for _, x := range []storage.User{u, other} {
		mustNil(t, "CreateUser", s.CreateUser(ctx, x))
	}
	for _, x := range []storage.Client{a, b} {
		mustNil(t, "CreateClient", s.CreateClient(ctx, x))
	}

	_, err := s.GetConsent(ctx, u.ID, a.ID)
	wantErr(t, "GetConsent(none)", err, storage.ErrNotFound)

	first := storage.Consent{UserID: u.ID, ClientID: a.ID, Scopes: []string{"openid", "profile"}, GrantedAt: now().Add(-time.Hour)}
	mustNil(t, "SaveConsent", s.SaveConsent(ctx, first))
	checkConsent(t, "GetConsent", getConsent(t, s, u.ID, a.ID), first)

	// Saving again replaces it.
	wider := storage.Consent{UserID: u.ID, ClientID: a.ID, Scopes: []string{"openid", "profile", "email"}, GrantedAt: now()}
	mustNil(t, "SaveConsent(again)", s.SaveConsent(ctx, wider))
	checkConsent(t, "GetConsent after a second SaveConsent", getConsent(t, s, u.ID, a.ID), wider)

	// GrantedAt defaults to now; no scopes read back empty.
	before := time.Now()
	mustNil(t, "SaveConsent(defaults)", s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: b.ID}))
	got := getConsent(t, s, u.ID, b.ID)
	if got.GrantedAt.Before(before.Add(-time.Second)) || got.GrantedAt.After(time.Now().Add(time.Second)) || len(got.Scopes) != 0 {
		t.Errorf("SaveConsent(defaults) stored %+v; want granted now, no scopes", got)
	}
	for name, c := range map[string]storage.Consent{
		"unknown user":   {UserID: uid("nobody"), ClientID: a.ID, Scopes: []string{"openid"}},
		"unknown client": {UserID: u.ID, ClientID: uid("nobody"), Scopes: []string{"openid"}},
	} {
		if err := s.SaveConsent(ctx, c); err == nil {
			t.Errorf("SaveConsent(%s) = nil; want an error", name)
		}
	}

	keep := storage.Consent{UserID: other.ID, ClientID: a.ID, Scopes: []string{"openid"}, GrantedAt: now()}
	mustNil(t, "SaveConsent(other)", s.SaveConsent(ctx, keep))
	n, err := s.DeleteConsents(ctx, u.ID)
	if err != nil || n != 2 {
		t.Fatalf("DeleteConsents = %d, %v; want 2", n, err)
	}
	for _, c := range []string{a.ID, b.ID} {
		_, err := s.GetConsent(ctx, u.ID, c)
		wantErr(t, "GetConsent(deleted)", err, storage.ErrNotFound)
	}
	checkConsent(t, "another user's consent", getConsent(t, s, other.ID, a.ID), keep)
	if n, err := s.DeleteConsents(ctx, u.ID); err != nil || n != 0 {
		t.Errorf("DeleteConsents(again) = %d, %v; want 0", n, err)
	}

	// A consent goes with its client and with its user.
	mustNil(t, "SaveConsent", s.SaveConsent(ctx, storage.Consent{UserID: other.ID, ClientID: b.ID, Scopes: []string{"openid"}}))
	mustNil(t, "DeleteClient", s.DeleteClient(ctx, a.ID))
	_, err = s.GetConsent(ctx, other.ID, a.ID)
	wantErr(t, "GetConsent(client deleted)", err, storage.ErrNotFound)
	getConsent(t, s, other.ID, b.ID)
	mustNil(t, "DeleteUser", s.DeleteUser(ctx, other.ID))
	_, err = s.GetConsent(ctx, other.ID, b.ID)
	wantErr(t, "GetConsent(user deleted)", err, storage.ErrNotFound)
}
