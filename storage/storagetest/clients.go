package storagetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newClient() storage.Client {
	return storage.Client{
		ID:         uid("client"),
		Name:       "Client " + RandomID(2),
		SecretHash: []byte{0, 1, 2, 0xff},
		GrantTypes: []string{"password", "refresh_token"},
		Scopes:     []string{"openid", "orders:read"},
		Audience:   []string{"https://api.example"},
		Introspect: true,
		DPoPBound:  true,
		RedirectURIs: []string{"https://app.example/callback", "http://127.0.0.1/callback",
			"com.example.app:/oauth2redirect"},
		PostLogoutRedirectURIs: []string{"https://app.example/"},
		FirstParty:             true,
		CreatedAt:              now().Add(-time.Minute),
	}
}

func checkClient(t *testing.T, what string, got, want storage.Client) {
	t.Helper()
	ok := got.ID == want.ID && got.Name == want.Name && bytes.Equal(got.SecretHash, want.SecretHash) &&
		got.Public == want.Public && sameStrings(got.GrantTypes, want.GrantTypes) &&
		sameStrings(got.Scopes, want.Scopes) && sameStrings(got.Audience, want.Audience) &&
		got.Introspect == want.Introspect && got.DPoPBound == want.DPoPBound &&
		sameStrings(got.RedirectURIs, want.RedirectURIs) &&
		sameStrings(got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs) && got.FirstParty == want.FirstParty &&
		sameTime(got.CreatedAt, want.CreatedAt) && isUTC(got.CreatedAt)
	if !ok {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func testClients(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, c.ID)
	mustNil(t, "GetClient", err)
	checkClient(t, "GetClient", got, c)

	pub := newClient()
	pub.Public, pub.SecretHash, pub.Audience, pub.Scopes = true, nil, nil, nil
	pub.RedirectURIs, pub.PostLogoutRedirectURIs, pub.FirstParty = nil, nil, false
	mustNil(t, "CreateClient(public)", s.CreateClient(ctx, pub))
	got, err = s.GetClient(ctx, pub.ID)
	mustNil(t, "GetClient(public)", err)
	checkClient(t, "GetClient(public)", got, pub)

	wantErr(t, "CreateClient(same id)", s.CreateClient(ctx, newClientWithID(c.ID)), storage.ErrConflict)
	_, err = s.GetClient(ctx, uid("missing"))
	wantErr(t, "GetClient(missing)", err, storage.ErrNotFound)

	list, err := s.ListClients(ctx)
	mustNil(t, "ListClients", err)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	want := []string{c.ID, pub.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ListClients = %v; want %v", ids, want)
	}

	updated, err := s.UpdateClient(ctx, c.ID, func(v *storage.Client) error {
		checkClient(t, "UpdateClient's fn argument", *v, c)
		v.ID = "ignored"
		v.Name = "Renamed"
		v.Scopes = append(v.Scopes, "orders:write")
		v.SecretHash = []byte("rotated")
		v.Introspect = false
		v.RedirectURIs = []string{"https://app.example/cb2"}
		v.PostLogoutRedirectURIs = nil
		v.FirstParty = false
		return nil
	})
	mustNil(t, "UpdateClient", err)
	wantC := c
	wantC.Name, wantC.Scopes, wantC.SecretHash, wantC.Introspect = "Renamed", append(slices.Clone(c.Scopes), "orders:write"), []byte("rotated"), false
	wantC.RedirectURIs, wantC.PostLogoutRedirectURIs, wantC.FirstParty = []string{"https://app.example/cb2"}, nil, false
	checkClient(t, "UpdateClient", updated, wantC)
	got, err = s.GetClient(ctx, c.ID)
	mustNil(t, "GetClient", err)
	checkClient(t, "GetClient after UpdateClient", got, wantC)

	fnErr := errors.New("fn failed")
	_, err = s.UpdateClient(ctx, c.ID, func(v *storage.Client) error { v.Name = "no"; return fnErr })
	wantErr(t, "UpdateClient(fn fails)", err, fnErr)
	_, err = s.UpdateClient(ctx, uid("missing"), func(*storage.Client) error { return nil })
	wantErr(t, "UpdateClient(missing)", err, storage.ErrNotFound)

	mustNil(t, "DeleteClient", s.DeleteClient(ctx, c.ID))
	_, err = s.GetClient(ctx, c.ID)
	wantErr(t, "GetClient(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteClient(deleted)", s.DeleteClient(ctx, c.ID), storage.ErrNotFound)
}

func newClientWithID(id string) storage.Client {
	c := newClient()
	c.ID = id
	return c
}
