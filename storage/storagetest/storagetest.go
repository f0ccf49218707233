// Package storagetest is the one conformance suite every authd SQL store and
// every denylist passes, plus helpers that hand tests a PostgreSQL schema or
// a Redis key prefix of their own.
package storagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// Run runs the conformance suite. newStore must return a new, migrated and
// empty store, and close it when the test ends; it is called once per group
// of subtests, from parallel tests.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	groups := []struct {
		name string
		fn   func(*testing.T, storage.Store)
	}{
		{"Migrations", testMigrations},
		{"Users", testUsers},
		{"Lockout", testLockout},
		{"Clients", testClients},
		{"RefreshTokens", testRefreshTokens},
		{"Transactions", testTransactions},
		{"Keys", testKeys},
		{"Denylist", testStoreDenylist},
		{"Audit", testAudit},
		{"Outbox", testOutbox},
		{"OutboxBacklog", testOutboxBacklog},
		{"Purge", testPurge},
		{"ProofReplay", testProofReplay},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, newStore(t))
		})
	}
	t.Run("DenylistConformance", func(t *testing.T) {
		t.Parallel()
		RunDenylist(t, func(t *testing.T) storage.Denylist { return newStore(t) })
	})
}

// now is the suite's reference time: UTC, whole microseconds (PostgreSQL's
// precision), no monotonic reading.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func uid(prefix string) string { return prefix + "-" + RandomID(6) }

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", what, err, want)
	}
}

func sameTime(a, b time.Time) bool { return a.Equal(b) && a.IsZero() == b.IsZero() }

// isUTC reports whether t is the zero time or in UTC.
func isUTC(t time.Time) bool { return t.IsZero() || t.Location() == time.UTC }

func sameStrings(a, b []string) bool { return slices.Equal(a, b) } // nil equals empty

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// parallel runs fn n times at once and returns each call's error.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testMigrations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustNil(t, "Ping", s.Ping(ctx))
	st, err := s.MigrationStatus(ctx)
	mustNil(t, "MigrationStatus", err)
	if len(st) == 0 {
		t.Fatal("MigrationStatus returned no migration")
	}
	check := func(st []storage.MigrationState) {
		t.Helper()
		for i, m := range st {
			if !m.Applied || m.AppliedAt.IsZero() {
				t.Errorf("migration %d %q: applied %v at %v; want applied with a time", m.Version, m.Name, m.Applied, m.AppliedAt)
			}
			if !strings.HasSuffix(m.Name, ".sql") || m.Version <= 0 {
				t.Errorf("migration %+v: want a positive version and a .sql name", m)
			}
			if i > 0 && st[i-1].Version >= m.Version {
				t.Errorf("migrations not in ascending order: %d then %d", st[i-1].Version, m.Version)
			}
		}
	}
	check(st)
	// Migrating again is a no-op.
	mustNil(t, "Migrate again", s.Migrate(ctx))
	st2, err := s.MigrationStatus(ctx)
	mustNil(t, "MigrationStatus", err)
	check(st2)
	if len(st2) != len(st) {
		t.Errorf("MigrationStatus after a second Migrate: %d migrations; want %d", len(st2), len(st))
	}
}

// --- users ---

func newUser(prefix string) storage.User {
	t := now().Add(-time.Hour)
	id := uid(prefix)
	return storage.User{
		ID:           id,
		Username:     id,
		Email:        id + "@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Roles:        []string{storage.RoleUser},
		CreatedAt:    t,
		UpdatedAt:    t,
	}
}

func checkUser(t *testing.T, what string, got, want storage.User) {
	t.Helper()
	ok := got.ID == want.ID && got.Username == want.Username && got.Email == want.Email &&
		got.PasswordHash == want.PasswordHash && sameStrings(got.Roles, want.Roles) &&
		got.Disabled == want.Disabled && got.FailedLogins == want.FailedLogins &&
		sameTime(got.LockedUntil, want.LockedUntil) && sameTime(got.CreatedAt, want.CreatedAt) &&
		isUTC(got.LockedUntil) && isUTC(got.CreatedAt) && isUTC(got.UpdatedAt)
	if !ok {
		t.Fatalf("%s = %+v; want %+v (times in UTC)", what, got, want)
	}
}

func testUsers(t *testing.T, s storage.Store) {
	ctx := t.Context()

	t.Run("CreateGet", func(t *testing.T) {
		u := newUser("Mixed")
		u.Username = strings.ToUpper(u.Username)
		u.Email = "Some.One+" + RandomID(4) + "@Example.COM"
		u.Roles = []string{storage.RoleUser, storage.RoleAdmin}
		u.LockedUntil = now().Add(time.Minute)
		u.FailedLogins = 3
		u.Disabled = true
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		want := u
		want.Username = strings.ToLower(u.Username) // stored lowercased; email as given
		checkUser(t, "GetUser", got, want)
		if !sameTime(got.UpdatedAt, u.UpdatedAt) {
			t.Errorf("GetUser UpdatedAt = %v; want %v", got.UpdatedAt, u.UpdatedAt)
		}
		_, err = s.GetUser(ctx, uid("missing"))
		wantErr(t, "GetUser(missing)", err, storage.ErrNotFound)
	})

	t.Run("Defaults", func(t *testing.T) {
		u := newUser("defaults")
		u.CreatedAt, u.UpdatedAt, u.Email, u.Roles = time.Time{}, time.Time{}, "", nil
		before := time.Now().Add(-time.Second)
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		// A second user without an email does not conflict with the first.
		u2 := newUser("defaults")
		u2.Email = ""
		mustNil(t, "CreateUser(second without email)", s.CreateUser(ctx, u2))
		got, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		if got.CreatedAt.Before(before) || got.UpdatedAt.Before(before) || got.Email != "" || len(got.Roles) != 0 {
			t.Errorf("GetUser = %+v; want CreatedAt and UpdatedAt set to now, no email, no roles", got)
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		u := newUser("conflict")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		tests := []struct {
			name string
			edit func(*storage.User)
		}{
			{"same id", func(v *storage.User) { v.ID = u.ID }},
			{"username in other case", func(v *storage.User) { v.Username = strings.ToUpper(u.Username) }},
			{"email in other case", func(v *storage.User) { v.Email = strings.ToUpper(u.Email) }},
		}
		for _, tc := range tests {
			v := newUser("conflict")
			tc.edit(&v)
			wantErr(t, "CreateUser("+tc.name+")", s.CreateUser(ctx, v), storage.ErrConflict)
		}
	})

	t.Run("GetUserByLogin", func(t *testing.T) {
		u := newUser("login")
		u.Email = "Login." + RandomID(4) + "@Example.org"
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		for _, login := range []string{u.Username, strings.ToUpper(u.Username), u.Email,
			strings.ToLower(u.Email), strings.ToUpper(u.Email)} {
			got, err := s.GetUserByLogin(ctx, login)
			if err != nil || got.ID != u.ID {
				t.Errorf("GetUserByLogin(%q) = %q, %v; want %q", login, got.ID, err, u.ID)
			}
		}
		_, err := s.GetUserByLogin(ctx, uid("nobody"))
		wantErr(t, "GetUserByLogin(unknown)", err, storage.ErrNotFound)
		_, err = s.GetUserByLogin(ctx, "")
		wantErr(t, `GetUserByLogin("")`, err, storage.ErrNotFound)
	})

	t.Run("Update", func(t *testing.T) {
		u := newUser("update")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		locked := now().Add(time.Hour)
		got, err := s.UpdateUser(ctx, u.ID, func(v *storage.User) error {
			checkUser(t, "UpdateUser's fn argument", *v, u)
			v.ID = "ignored"
			v.Username = "Renamed-" + u.ID
			v.Email = "new-" + u.Email
			v.Roles = []string{storage.RoleAdmin}
			v.FailedLogins = 5
			v.LockedUntil = locked
			return nil
		})
		mustNil(t, "UpdateUser", err)
		want := u
		want.Username, want.Email = "renamed-"+u.ID, "new-"+u.Email
		want.Roles, want.FailedLogins, want.LockedUntil = []string{storage.RoleAdmin}, 5, locked
		checkUser(t, "UpdateUser", got, want)
		if !got.UpdatedAt.After(u.UpdatedAt) {
			t.Errorf("UpdateUser UpdatedAt = %v; want after %v", got.UpdatedAt, u.UpdatedAt)
		}
		stored, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		checkUser(t, "GetUser after UpdateUser", stored, want)

		// Unlock: the zero time goes back to NULL.
		got, err = s.UpdateUser(ctx, u.ID, func(v *storage.User) error { v.LockedUntil = time.Time{}; return nil })
		mustNil(t, "UpdateUser(unlock)", err)
		if stored, _ := s.GetUser(ctx, u.ID); !stored.LockedUntil.IsZero() || !got.LockedUntil.IsZero() {
			t.Errorf("LockedUntil after unlock = %v; want zero", stored.LockedUntil)
		}

		fnErr := errors.New("fn failed")
		_, err = s.UpdateUser(ctx, u.ID, func(v *storage.User) error { v.FailedLogins = 99; return fnErr })
		wantErr(t, "UpdateUser(fn fails)", err, fnErr)
		if stored, _ := s.GetUser(ctx, u.ID); stored.FailedLogins != 5 {
			t.Errorf("FailedLogins after a failed update = %d; want 5", stored.FailedLogins)
		}

		_, err = s.UpdateUser(ctx, uid("missing"), func(*storage.User) error { return nil })
		wantErr(t, "UpdateUser(missing)", err, storage.ErrNotFound)

		other := newUser("update")
		mustNil(t, "CreateUser", s.CreateUser(ctx, other))
		_, err = s.UpdateUser(ctx, other.ID, func(v *storage.User) error { v.Email = strings.ToUpper(want.Email); return nil })
		wantErr(t, "UpdateUser(taken email)", err, storage.ErrConflict)
	})

	t.Run("UpdateConcurrent", func(t *testing.T) {
		u := newUser("concurrent")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		errs := parallel(20, func(int) error {
			_, err := s.UpdateUser(ctx, u.ID, func(v *storage.User) error { v.FailedLogins++; return nil })
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("UpdateUser #%d: %v", i, err)
			}
		}
		got, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		if got.FailedLogins != 20 {
			t.Errorf("FailedLogins after 20 concurrent increments = %d; want 20", got.FailedLogins)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		u := newUser("delete")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		mustNil(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
		_, err := s.GetUser(ctx, u.ID)
		wantErr(t, "GetUser(deleted)", err, storage.ErrNotFound)
		wantErr(t, "DeleteUser(deleted)", s.DeleteUser(ctx, u.ID), storage.ErrNotFound)
		// The name and email are free again.
		mustNil(t, "CreateUser(same name)", s.CreateUser(ctx, u))
	})

	t.Run("List", func(t *testing.T) {
		tag := "list" + RandomID(4)
		var ids []string
		for i := range 7 {
			u := newUser(tag)
			u.Username = fmt.Sprintf("%s-%d-%s", tag, i, RandomID(2))
			u.Email = fmt.Sprintf("member%d.%s@Example.NET", i, RandomID(2))
			if i == 6 {
				u.Username = "unrelated-" + RandomID(4)
				u.Email = strings.ToUpper(tag) + "@mail.example" // matched by email, other case
			}
			mustNil(t, "CreateUser", s.CreateUser(ctx, u))
			ids = append(ids, u.ID)
		}
		slices.Sort(ids)
		// Pages of 3 over the 7 matches.
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			users, next, err := s.ListUsers(ctx, storage.UserQuery{Query: strings.ToUpper(tag), Cursor: cursor, Limit: 3})
			mustNil(t, "ListUsers", err)
			if len(users) > 3 || page > 3 {
				t.Fatalf("ListUsers page %d: %d users (limit 3)", page, len(users))
			}
			for _, u := range users {
				got = append(got, u.ID)
			}
			if next == "" {
				break
			}
			if len(users) == 0 || next != users[len(users)-1].ID {
				t.Fatalf("ListUsers next = %q; want the last id of the page", next)
			}
			cursor = next
		}
		if !slices.Equal(got, ids) {
			t.Errorf("ListUsers(%q) over pages = %v; want %v", tag, got, ids)
		}

		// Without a query, every user shows, in id order.
		all, next, err := s.ListUsers(ctx, storage.UserQuery{Limit: 1000})
		mustNil(t, "ListUsers(all)", err)
		if next != "" || !slices.IsSortedFunc(all, func(a, b storage.User) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("ListUsers(all): next %q, sorted %v; want no next page, sorted by id", next,
				slices.IsSortedFunc(all, func(a, b storage.User) int { return strings.Compare(a.ID, b.ID) }))
		}
		for _, id := range ids {
			if !slices.ContainsFunc(all, func(u storage.User) bool { return u.ID == id }) {
				t.Errorf("ListUsers(all) misses %s", id)
			}
		}

		// LIKE wildcards in the query match themselves only.
		literal := "lit" + RandomID(3)
		a, b := newUser("wild"), newUser("wild")
		a.Username, b.Username = literal+"_a%", literal+"xa"
		mustNil(t, "CreateUser", s.CreateUser(ctx, a))
		mustNil(t, "CreateUser", s.CreateUser(ctx, b))
		for q, want := range map[string]string{literal + "_": a.ID, literal + "_a%": a.ID, "a%": a.ID} {
			users, _, err := s.ListUsers(ctx, storage.UserQuery{Query: q})
			mustNil(t, "ListUsers", err)
			if len(users) != 1 || users[0].ID != want {
				t.Errorf("ListUsers(%q) = %d users; want only %s", q, len(users), want)
			}
		}
	})
}

// --- clients ---

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
		CreatedAt:  now().Add(-time.Minute),
	}
}

func checkClient(t *testing.T, what string, got, want storage.Client) {
	t.Helper()
	ok := got.ID == want.ID && got.Name == want.Name && bytes.Equal(got.SecretHash, want.SecretHash) &&
		got.Public == want.Public && sameStrings(got.GrantTypes, want.GrantTypes) &&
		sameStrings(got.Scopes, want.Scopes) && sameStrings(got.Audience, want.Audience) &&
		got.Introspect == want.Introspect && got.DPoPBound == want.DPoPBound &&
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
		return nil
	})
	mustNil(t, "UpdateClient", err)
	wantC := c
	wantC.Name, wantC.Scopes, wantC.SecretHash, wantC.Introspect = "Renamed", append(slices.Clone(c.Scopes), "orders:write"), []byte("rotated"), false
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

// --- refresh tokens ---

func newToken(clientID, family, subject string) storage.RefreshToken {
	return storage.RefreshToken{
		SignatureHash: uid("sig"),
		FamilyID:      family,
		ClientID:      clientID,
		Subject:       subject,
		Active:        true,
		Request:       []byte(`{"id":"` + family + `"}`),
		RequestedAt:   now(),
		ExpiresAt:     now().Add(24 * time.Hour),
	}
}

func tokenActive(t *testing.T, s storage.Store, sig string) bool {
	t.Helper()
	got, err := s.GetRefreshToken(t.Context(), sig)
	mustNil(t, "GetRefreshToken", err)
	return got.Active
}

func testRefreshTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))

	t.Run("CreateGetRotate", func(t *testing.T) {
		tok := newToken(c.ID, uid("fam"), uid("sub"))
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		got, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshToken", err)
		if got.SignatureHash != tok.SignatureHash || got.FamilyID != tok.FamilyID || got.ClientID != tok.ClientID ||
			got.Subject != tok.Subject || !got.Active || !bytes.Equal(got.Request, tok.Request) ||
			!sameTime(got.RequestedAt, tok.RequestedAt) || !sameTime(got.ExpiresAt, tok.ExpiresAt) ||
			!isUTC(got.RequestedAt) || !isUTC(got.ExpiresAt) {
			t.Fatalf("GetRefreshToken = %+v; want %+v", got, tok)
		}
		wantErr(t, "CreateRefreshToken(same signature)", s.CreateRefreshToken(ctx, tok), storage.ErrConflict)

		next := newToken(c.ID, tok.FamilyID, tok.Subject)
		mustNil(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0))
		if tokenActive(t, s, tok.SignatureHash) {
			t.Error("token still active after RotateRefreshToken")
		}
		if !tokenActive(t, s, next.SignatureHash) {
			t.Error("successor not active after RotateRefreshToken")
		}
		wantErr(t, "RotateRefreshToken(twice, strict)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0), storage.ErrNotFound)
		wantErr(t, "RotateRefreshToken(missing)", s.RotateRefreshToken(ctx, uid("sig"), newToken(c.ID, uid("fam"), uid("sub")), time.Minute), storage.ErrNotFound)
		_, err = s.GetRefreshToken(ctx, uid("sig"))
		wantErr(t, "GetRefreshToken(missing)", err, storage.ErrNotFound)

		mustNil(t, "DeleteRefreshToken", s.DeleteRefreshToken(ctx, tok.SignatureHash))
		_, err = s.GetRefreshToken(ctx, tok.SignatureHash)
		wantErr(t, "GetRefreshToken(deleted)", err, storage.ErrNotFound)
		wantErr(t, "DeleteRefreshToken(deleted)", s.DeleteRefreshToken(ctx, tok.SignatureHash), storage.ErrNotFound)
	})

	t.Run("WithUser", func(t *testing.T) {
		u := newUser("owner")
		u.Roles = []string{storage.RoleUser, storage.RoleAdmin}
		u.LockedUntil = now().Add(time.Minute)
		u.FailedLogins = 2
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		tok := newToken(c.ID, uid("fam"), u.ID)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		got, owner, err := s.GetRefreshTokenWithUser(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshTokenWithUser", err)
		want, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshToken", err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetRefreshTokenWithUser token = %+v; want %+v", got, want)
		}
		if owner == nil {
			t.Fatal("GetRefreshTokenWithUser: no user; want the token's")
		}
		checkUser(t, "GetRefreshTokenWithUser user", *owner, u)

		mustNil(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
		got, owner, err = s.GetRefreshTokenWithUser(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshTokenWithUser(user deleted)", err)
		if owner != nil || got.SignatureHash != tok.SignatureHash {
			t.Errorf("GetRefreshTokenWithUser(user deleted) = %+v, %+v; want the token and no user", got, owner)
		}
		_, _, err = s.GetRefreshTokenWithUser(ctx, uid("sig"))
		wantErr(t, "GetRefreshTokenWithUser(missing)", err, storage.ErrNotFound)
	})

	t.Run("RevokeFamily", func(t *testing.T) {
		fam, other := uid("fam"), uid("fam")
		sub := uid("sub")
		var sigs []string
		for range 3 {
			tok := newToken(c.ID, fam, sub)
			mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
			sigs = append(sigs, tok.SignatureHash)
		}
		keep := newToken(c.ID, other, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, keep))
		mustNil(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, fam))
		for _, sig := range sigs {
			if tokenActive(t, s, sig) {
				t.Errorf("token %s of the revoked family is active", sig)
			}
		}
		if !tokenActive(t, s, keep.SignatureHash) {
			t.Error("token of another family was revoked")
		}
		mustNil(t, "RevokeRefreshFamily(again)", s.RevokeRefreshFamily(ctx, fam))
	})

	t.Run("RevokeSubject", func(t *testing.T) {
		sub, otherSub := uid("sub"), uid("sub")
		f1, f2, f3 := uid("fam"), uid("fam"), uid("fam")
		toks := map[string][]string{}
		for _, f := range []string{f1, f1, f2, f3} {
			tok := newToken(c.ID, f, sub)
			mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
			toks[f] = append(toks[f], tok.SignatureHash)
		}
		// Already inactive tokens do not count as touched.
		f4 := uid("fam")
		old := newToken(c.ID, f4, sub)
		old.Active = false
		mustNil(t, "CreateRefreshToken(inactive)", s.CreateRefreshToken(ctx, old))
		foreign := newToken(c.ID, uid("fam"), otherSub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, foreign))

		got, err := s.RevokeSubjectRefreshTokens(ctx, sub, f2)
		mustNil(t, "RevokeSubjectRefreshTokens", err)
		want := []string{f1, f3}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("RevokeSubjectRefreshTokens = %v; want %v", got, want)
		}
		for f, sigs := range toks {
			for _, sig := range sigs {
				if active := tokenActive(t, s, sig); active != (f == f2) {
					t.Errorf("token of family %s active = %v; want %v", f, active, f == f2)
				}
			}
		}
		if !tokenActive(t, s, foreign.SignatureHash) {
			t.Error("another subject's token was revoked")
		}
		got, err = s.RevokeSubjectRefreshTokens(ctx, sub, "")
		mustNil(t, "RevokeSubjectRefreshTokens(all)", err)
		if !slices.Equal(got, []string{f2}) {
			t.Errorf("RevokeSubjectRefreshTokens(all) = %v; want [%s]", got, f2)
		}
	})

	t.Run("ConcurrentRotation", func(t *testing.T) {
		// 20 refreshes of one token, each in its own transaction that rotates
		// the token and stores a successor, as fosite does: one wins.
		fam, sub := uid("fam"), uid("sub")
		tok := newToken(c.ID, fam, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		successors := make([]storage.RefreshToken, 20)
		for i := range successors {
			successors[i] = newToken(c.ID, fam, sub)
		}
		errs := parallel(20, func(i int) error {
			return s.RotateRefreshToken(ctx, tok.SignatureHash, successors[i], 0)
		})
		wins := 0
		for i, err := range errs {
			_, gerr := s.GetRefreshToken(ctx, successors[i].SignatureHash)
			switch {
			case err == nil:
				wins++
				if gerr != nil {
					t.Errorf("the winner's successor: %v", gerr)
				}
			case errors.Is(err, storage.ErrNotFound):
				if !errors.Is(gerr, storage.ErrNotFound) {
					t.Errorf("loser #%d stored a successor (%v)", i, gerr)
				}
			default:
				t.Errorf("rotation #%d: %v; want nil or ErrNotFound", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("%d of 20 concurrent rotations won; want exactly 1", wins)
		}
	})

	t.Run("IdempotentRotation", func(t *testing.T) {
		// 20 concurrent rotations of one token to one successor, with a
		// grace: every one succeeds, exactly one successor row exists.
		fam, sub := uid("fam"), uid("sub")
		tok := newToken(c.ID, fam, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		next := newToken(c.ID, fam, sub)
		for i, err := range parallel(20, func(int) error {
			return s.RotateRefreshToken(ctx, tok.SignatureHash, next, time.Minute)
		}) {
			if err != nil {
				t.Errorf("idempotent rotation #%d: %v", i, err)
			}
		}
		if tokenActive(t, s, tok.SignatureHash) || !tokenActive(t, s, next.SignatureHash) {
			t.Fatal("after the rotations the old token is active or the successor is not")
		}
		grace, err := s.InRotationGrace(ctx, tok.SignatureHash, time.Minute)
		if err != nil || !grace {
			t.Errorf("InRotationGrace(just rotated) = %v, %v; want true", grace, err)
		}
		// Another successor is not the one the rotation chose.
		wantErr(t, "RotateRefreshToken(other successor)", s.RotateRefreshToken(ctx, tok.SignatureHash, newToken(c.ID, fam, sub), time.Minute), storage.ErrNotFound)
		// Outside the grace (a zero grace, or a grace already elapsed) it is reuse.
		wantErr(t, "RotateRefreshToken(no grace)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0), storage.ErrNotFound)
		time.Sleep(20 * time.Millisecond)
		wantErr(t, "RotateRefreshToken(grace elapsed)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 10*time.Millisecond), storage.ErrNotFound)
		if grace, err := s.InRotationGrace(ctx, tok.SignatureHash, 10*time.Millisecond); err != nil || grace {
			t.Errorf("InRotationGrace(elapsed) = %v, %v; want false", grace, err)
		}
		// Once the successor is used (rotated itself), the old token is reuse.
		third := newToken(c.ID, fam, sub)
		mustNil(t, "RotateRefreshToken(successor)", s.RotateRefreshToken(ctx, next.SignatureHash, third, time.Minute))
		wantErr(t, "RotateRefreshToken(successor used)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, time.Minute), storage.ErrNotFound)
		if grace, err := s.InRotationGrace(ctx, tok.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(successor used) = %v, %v; want false", grace, err)
		}
		// A revoked family has no grace.
		mustNil(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, fam))
		if grace, err := s.InRotationGrace(ctx, next.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(revoked family) = %v, %v; want false", grace, err)
		}
		wantErr(t, "RotateRefreshToken(revoked family)", s.RotateRefreshToken(ctx, next.SignatureHash, third, time.Minute), storage.ErrNotFound)
		// A token never rotated has no grace.
		fresh := newToken(c.ID, uid("fam"), sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, fresh))
		if grace, err := s.InRotationGrace(ctx, fresh.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(never rotated) = %v, %v; want false", grace, err)
		}
	})

	t.Run("DeleteClientCascades", func(t *testing.T) {
		c2 := newClient()
		mustNil(t, "CreateClient", s.CreateClient(ctx, c2))
		tok := newToken(c2.ID, uid("fam"), uid("sub"))
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		mustNil(t, "DeleteClient", s.DeleteClient(ctx, c2.ID))
		_, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		wantErr(t, "GetRefreshToken(of a deleted client)", err, storage.ErrNotFound)
	})
}

// --- transactions ---

func testTransactions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	exists := func(t *testing.T, id string) bool {
		t.Helper()
		_, err := s.GetUser(ctx, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetUser: %v", err)
		}
		return err == nil
	}

	t.Run("CommitKeeps", func(t *testing.T) {
		u := newUser("commit")
		txCtx, err := s.BeginTx(ctx)
		mustNil(t, "BeginTx", err)
		mustNil(t, "CreateUser", s.CreateUser(txCtx, u))
		if _, err := s.GetUser(txCtx, u.ID); err != nil {
			t.Errorf("GetUser in the transaction: %v", err)
		}
		if exists(t, u.ID) {
			t.Error("uncommitted user visible outside the transaction")
		}
		mustNil(t, "Commit", s.Commit(txCtx))
		if !exists(t, u.ID) {
			t.Error("committed user not found")
		}
		mustNil(t, "Rollback after Commit", s.Rollback(txCtx))
		if err := s.Commit(txCtx); err == nil {
			t.Error("second Commit = nil; want an error")
		}
	})

	t.Run("RollbackDiscards", func(t *testing.T) {
		u := newUser("rollback")
		txCtx, err := s.BeginTx(ctx)
		mustNil(t, "BeginTx", err)
		mustNil(t, "CreateUser", s.CreateUser(txCtx, u))
		mustNil(t, "Rollback", s.Rollback(txCtx))
		if exists(t, u.ID) {
			t.Error("rolled back user found")
		}
		mustNil(t, "Rollback(twice)", s.Rollback(txCtx))
		// The connection went back to the pool: a new transaction starts.
		txCtx, err = s.BeginTx(ctx)
		mustNil(t, "BeginTx after Rollback", err)
		mustNil(t, "Rollback", s.Rollback(txCtx))
	})

	t.Run("BeginTwice", func(t *testing.T) {
		txCtx, err := s.BeginTx(ctx)
		mustNil(t, "BeginTx", err)
		defer s.Rollback(txCtx) //nolint:errcheck
		if _, err := s.BeginTx(txCtx); err == nil {
			t.Error("BeginTx inside a transaction = nil error; want an error")
		}
		if err := s.Commit(ctx); err == nil {
			t.Error("Commit without a transaction = nil error; want an error")
		}
	})

	t.Run("InTx", func(t *testing.T) {
		a, b := newUser("intx"), newUser("intx")
		mustNil(t, "InTx", s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, a); err != nil {
				return err
			}
			// Nested: runs in the same transaction and sees a.
			return s.InTx(ctx, func(ctx context.Context) error {
				if _, err := s.GetUser(ctx, a.ID); err != nil {
					return fmt.Errorf("nested InTx does not see the outer write: %w", err)
				}
				return s.CreateUser(ctx, b)
			})
		}))
		if !exists(t, a.ID) || !exists(t, b.ID) {
			t.Error("InTx did not commit")
		}
	})

	t.Run("InTxFailureRollsBack", func(t *testing.T) {
		a, b := newUser("intxfail"), newUser("intxfail")
		fnErr := errors.New("fn failed")
		err := s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, a); err != nil {
				return err
			}
			if _, err := s.UpdateUser(ctx, a.ID, func(u *storage.User) error { u.FailedLogins = 1; return nil }); err != nil {
				return err
			}
			if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, b) }); err != nil {
				return err
			}
			return fnErr
		})
		wantErr(t, "InTx", err, fnErr)
		if exists(t, a.ID) || exists(t, b.ID) {
			t.Error("writes of a failed InTx were kept")
		}
		// A failing statement inside (a conflict) fails the whole transaction.
		c := newUser("intxfail")
		mustNil(t, "CreateUser", s.CreateUser(ctx, c))
		d := newUser("intxfail")
		err = s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, d); err != nil {
				return err
			}
			return s.CreateUser(ctx, c)
		})
		wantErr(t, "InTx(conflict)", err, storage.ErrConflict)
		if exists(t, d.ID) {
			t.Error("write before a conflict was kept")
		}
	})
}

// --- keys ---

func newKey(state storage.KeyState) storage.SigningKey {
	k := storage.SigningKey{
		ID:         uid("kid"),
		Alg:        "ES256",
		State:      state,
		PrivateKey: []byte("encrypted-" + RandomID(8)),
		PublicKey:  []byte(`{"kty":"EC"}`),
		CreatedAt:  now(),
	}
	switch state {
	case storage.KeyCurrent:
		k.ActivatedAt = now()
	case storage.KeyRetired:
		k.ActivatedAt, k.RetiredAt, k.ExpiresAt = now().Add(-time.Hour), now(), now().Add(time.Hour)
	}
	return k
}

func checkKeys(t *testing.T, what string, got, want []storage.SigningKey) {
	t.Helper()
	same := func(g, w storage.SigningKey) bool {
		return g.ID == w.ID && g.Alg == w.Alg && g.State == w.State && bytes.Equal(g.PrivateKey, w.PrivateKey) &&
			bytes.Equal(g.PublicKey, w.PublicKey) && sameTime(g.CreatedAt, w.CreatedAt) &&
			sameTime(g.ActivatedAt, w.ActivatedAt) && sameTime(g.RetiredAt, w.RetiredAt) &&
			sameTime(g.ExpiresAt, w.ExpiresAt) && isUTC(g.CreatedAt) && isUTC(g.ExpiresAt)
	}
	gotByID := map[string]storage.SigningKey{}
	for _, k := range got {
		gotByID[k.ID] = k
	}
	var problems []string
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("%d keys, want %d", len(got), len(want)))
	}
	for _, w := range want {
		g, ok := gotByID[w.ID]
		switch {
		case !ok:
			problems = append(problems, "missing "+w.ID)
		case !same(g, w):
			problems = append(problems, fmt.Sprintf("%s = %+v, want %+v", w.ID, g, w))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%s: %s", what, strings.Join(problems, "; "))
	}
}

func testKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	list := func() []storage.SigningKey {
		t.Helper()
		keys, err := s.ListKeys(ctx)
		mustNil(t, "ListKeys", err)
		return keys
	}
	if keys := list(); len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %d keys", len(keys))
	}

	k1, k2 := newKey(storage.KeyCurrent), newKey(storage.KeyNext)
	mustNil(t, "UpdateKeys(create)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		if len(old) != 0 {
			return nil, fmt.Errorf("old = %d keys; want none", len(old))
		}
		return []storage.SigningKey{k1, k2}, nil
	}))
	checkKeys(t, "ListKeys", list(), []storage.SigningKey{k1, k2})

	// Rotate: k2 becomes current, k1 retires, k3 is next.
	k3 := newKey(storage.KeyNext)
	r1, r2 := k1, k2
	r1.State, r1.RetiredAt, r1.ExpiresAt = storage.KeyRetired, now(), now().Add(time.Hour)
	r2.State, r2.ActivatedAt = storage.KeyCurrent, now()
	mustNil(t, "UpdateKeys(rotate)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		checkKeys(t, "UpdateKeys' old", old, []storage.SigningKey{k1, k2})
		return []storage.SigningKey{r2, r1, k3}, nil // current first: the store must cope with the order
	}))
	checkKeys(t, "ListKeys after rotation", list(), []storage.SigningKey{r1, r2, k3})

	// Keys missing from the result are deleted.
	mustNil(t, "UpdateKeys(drop)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, k3}, nil
	}))
	checkKeys(t, "ListKeys after dropping", list(), []storage.SigningKey{r2, k3})

	fnErr := errors.New("fn failed")
	err := s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) { return nil, fnErr })
	wantErr(t, "UpdateKeys(fn fails)", err, fnErr)
	dup := k3
	dup.Alg = "RS256"
	err = s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, k3, dup}, nil
	})
	wantErr(t, "UpdateKeys(duplicate id)", err, storage.ErrConflict)
	err = s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, newKey(storage.KeyCurrent)}, nil
	})
	wantErr(t, "UpdateKeys(two current keys)", err, storage.ErrConflict)
	checkKeys(t, "ListKeys after failed updates", list(), []storage.SigningKey{r2, k3})

	// Concurrent updates (replicas rotating at once) never lose one.
	added := make([]storage.SigningKey, 10)
	errs := parallel(10, func(i int) error {
		added[i] = newKey(storage.KeyRetired)
		return s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
			return append(old, added[i]), nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent UpdateKeys #%d: %v", i, err)
		}
	}
	checkKeys(t, "ListKeys after 10 concurrent appends", list(), append([]storage.SigningKey{r2, k3}, added...))
}

// --- denylist (store-specific part; RunDenylist covers the interface) ---

func testStoreDenylist(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	live := []storage.Revocation{
		{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(time.Hour)},
		{Kind: storage.RevokedFamily, Value: uid("fam"), ExpiresAt: at.Add(2 * time.Hour)},
		{Kind: storage.RevokedSubject, Value: uid("user"), Cutoff: at.Add(-time.Second), ExpiresAt: at.Add(30 * time.Minute)},
	}
	dead := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(-time.Minute)}
	mustNil(t, "Revoke", s.Revoke(ctx, append(slices.Clone(live), dead)...))
	got, err := s.ActiveRevocations(ctx, at)
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations", got, live)
	got, err = s.ActiveRevocations(ctx, at.Add(90*time.Minute))
	mustNil(t, "ActiveRevocations(later)", err)
	checkRevocations(t, "ActiveRevocations(later)", got, live[1:2])

	// Revoking again keeps the later expiry.
	shorter := live[0]
	shorter.ExpiresAt = at.Add(time.Minute)
	mustNil(t, "Revoke(shorter)", s.Revoke(ctx, shorter))
	longer := live[1]
	longer.ExpiresAt = at.Add(3 * time.Hour)
	mustNil(t, "Revoke(longer)", s.Revoke(ctx, longer))
	// A mark keeps the later cutoff and the later expiry.
	mark := live[2]
	mark.Cutoff, mark.ExpiresAt = at, at.Add(40*time.Minute)
	mustNil(t, "Revoke(later mark)", s.Revoke(ctx, mark))
	mustNil(t, "Revoke(earlier mark)", s.Revoke(ctx, live[2]))
	got, err = s.ActiveRevocations(ctx, at)
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations after re-revoking", got, []storage.Revocation{live[0], longer, mark})

	// Revoke in a transaction that rolls back leaves nothing.
	txCtx, err := s.BeginTx(ctx)
	mustNil(t, "BeginTx", err)
	gone := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(time.Hour)}
	mustNil(t, "Revoke(in tx)", s.Revoke(txCtx, gone))
	mustNil(t, "Rollback", s.Rollback(txCtx))
	if revoked, err := s.IsRevoked(ctx, storage.TokenRef{JTI: gone.Value}); err != nil || revoked {
		t.Errorf("IsRevoked(rolled back) = %v, %v; want false", revoked, err)
	}
}

func checkRevocations(t *testing.T, what string, got, want []storage.Revocation) {
	t.Helper()
	key := func(a, b storage.Revocation) int {
		return strings.Compare(string(a.Kind)+":"+a.Value, string(b.Kind)+":"+b.Value)
	}
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, key)
	slices.SortFunc(want, key)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Kind == want[i].Kind && got[i].Value == want[i].Value &&
			sameTime(got[i].ExpiresAt, want[i].ExpiresAt) && isUTC(got[i].ExpiresAt) &&
			sameTime(got[i].Cutoff, want[i].Cutoff) && isUTC(got[i].Cutoff)
	}
	if !ok {
		t.Errorf("%s = %+v; want %+v", what, got, want)
	}
}

// --- audit ---

func testAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	user, other := uid("user"), uid("user")
	base := now().Add(-time.Hour)
	entries := []storage.AuditEntry{
		{Time: base, Type: "auth.login.failed", UserID: user, ClientID: "cli", IP: "192.0.2.1", Data: []byte(`{"reason":"password"}`)},
		{Time: base.Add(time.Minute), Type: "auth.login.succeeded", UserID: user, IP: "2001:db8::1"},
		{Time: base.Add(2 * time.Minute), Type: "auth.login.failed", UserID: other, Data: []byte(`{"n": 2, "ok": false}`)},
		{Time: base.Add(3 * time.Minute), Type: "user.locked", UserID: user, Data: []byte(`{}`)},
		{Time: base.Add(3 * time.Minute), Type: "user.unlocked", UserID: user}, // same time: the later id first
	}
	for _, e := range entries {
		mustNil(t, "AppendAudit", s.AppendAudit(ctx, e))
	}
	all, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustNil(t, "ListAudit", err)
	if len(all) != len(entries) {
		t.Fatalf("ListAudit = %d entries; want %d", len(all), len(entries))
	}
	for i, got := range all {
		want := entries[len(entries)-1-i]
		if got.ID <= 0 || got.Type != want.Type || got.UserID != want.UserID || got.ClientID != want.ClientID ||
			got.IP != want.IP || !sameJSON(got.Data, want.Data) || !sameTime(got.Time, want.Time) || !isUTC(got.Time) {
			t.Errorf("ListAudit[%d] = %+v; want %+v with an id", i, got, want)
		}
		if i > 0 && got.ID >= all[i-1].ID {
			t.Errorf("ListAudit ids %d then %d; want newest (highest) first", all[i-1].ID, got.ID)
		}
	}

	types := func(es []storage.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Type)
		}
		return out
	}
	tests := []struct {
		name string
		f    storage.AuditFilter
		want []string
	}{
		{"user", storage.AuditFilter{UserID: user}, []string{"user.unlocked", "user.locked", "auth.login.succeeded", "auth.login.failed"}},
		{"type", storage.AuditFilter{Type: "auth.login.failed"}, []string{"auth.login.failed", "auth.login.failed"}},
		{"user and type", storage.AuditFilter{UserID: other, Type: "auth.login.failed"}, []string{"auth.login.failed"}},
		{"since", storage.AuditFilter{Since: base.Add(2 * time.Minute)}, []string{"user.unlocked", "user.locked", "auth.login.failed"}},
		{"limit", storage.AuditFilter{UserID: user, Limit: 2}, []string{"user.unlocked", "user.locked"}},
		{"no match", storage.AuditFilter{UserID: uid("nobody")}, nil},
	}
	for _, tc := range tests {
		got, err := s.ListAudit(ctx, tc.f)
		mustNil(t, "ListAudit("+tc.name+")", err)
		if !slices.Equal(types(got), tc.want) {
			t.Errorf("ListAudit(%s) = %v; want %v", tc.name, types(got), tc.want)
		}
	}

	// The store fills in the time.
	mustNil(t, "AppendAudit(no time)", s.AppendAudit(ctx, storage.AuditEntry{Type: "now", UserID: other}))
	got, err := s.ListAudit(ctx, storage.AuditFilter{UserID: other, Limit: 1})
	mustNil(t, "ListAudit", err)
	if len(got) != 1 || got[0].Type != "now" || time.Since(got[0].Time) > time.Minute {
		t.Errorf("ListAudit after an entry without time = %+v; want it first, stamped now", got)
	}
}

// --- outbox ---

func testOutbox(t *testing.T, s storage.Store) {
	ctx := t.Context()
	base := now().Add(-time.Minute)
	var events []storage.OutboxEvent
	for i := range 4 {
		e := storage.OutboxEvent{
			ID:        uid("evt"),
			Type:      "user.created",
			Key:       uid("user"),
			Payload:   []byte(fmt.Sprintf(`{"i": %d}`, i)), // kept byte for byte
			CreatedAt: base.Add(time.Duration(i) * time.Second),
		}
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
		events = append(events, e)
	}
	wantErr(t, "AppendOutbox(same id)", s.AppendOutbox(ctx, events[0]), storage.ErrConflict)

	check := func(what string, got, want []storage.OutboxEvent) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			g, w := got[i], want[i]
			ok = g.ID == w.ID && g.Type == w.Type && g.Key == w.Key && bytes.Equal(g.Payload, w.Payload) &&
				sameTime(g.CreatedAt, w.CreatedAt) && g.SentAt.IsZero() && isUTC(g.CreatedAt)
		}
		if !ok {
			t.Fatalf("%s = %+v; want %+v", what, got, want)
		}
	}
	got, err := s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox", got, events)
	got, err = s.PendingOutbox(ctx, 2)
	mustNil(t, "PendingOutbox(2)", err)
	check("PendingOutbox(2)", got, events[:2])

	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{events[0].ID, events[2].ID}, now()))
	mustNil(t, "MarkOutboxSent(none)", s.MarkOutboxSent(ctx, nil, now()))
	got, err = s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox after MarkOutboxSent", got, []storage.OutboxEvent{events[1], events[3]})

	// An event appended in a transaction that rolls back is never published.
	txCtx, err := s.BeginTx(ctx)
	mustNil(t, "BeginTx", err)
	mustNil(t, "AppendOutbox(in tx)", s.AppendOutbox(txCtx, storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`)}))
	mustNil(t, "Rollback", s.Rollback(txCtx))
	got, err = s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox after a rolled back append", got, []storage.OutboxEvent{events[1], events[3]})

	// Claims: a claimed event is not claimed again while its lease lasts,
	// until it is released; sent events are never claimed.
	claim := func(limit int, lease time.Duration) []storage.OutboxEvent {
		t.Helper()
		got, err := s.ClaimOutbox(ctx, limit, lease)
		mustNil(t, "ClaimOutbox", err)
		return got
	}
	check("ClaimOutbox(1)", claim(1, time.Minute), events[1:2])
	check("ClaimOutbox(10) with one claimed", claim(10, time.Minute), events[3:4])
	check("ClaimOutbox with all claimed", claim(10, time.Minute), nil)
	mustNil(t, "ReleaseOutbox", s.ReleaseOutbox(ctx, []string{events[1].ID}))
	mustNil(t, "ReleaseOutbox(none)", s.ReleaseOutbox(ctx, nil))
	check("ClaimOutbox after a release", claim(10, 10*time.Millisecond), events[1:2])
	time.Sleep(30 * time.Millisecond) // the lease runs on the database's clock
	check("ClaimOutbox after the lease ran out", claim(10, time.Minute), events[1:2])
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{events[1].ID, events[3].ID}, now()))
	mustNil(t, "ReleaseOutbox(sent)", s.ReleaseOutbox(ctx, []string{events[1].ID}))
	check("ClaimOutbox with everything sent", claim(10, 0), nil)

	// Four relays claiming at once never get the same event.
	var fresh []storage.OutboxEvent
	for i := range 40 {
		e := storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`), CreatedAt: base.Add(time.Hour + time.Duration(i)*time.Millisecond)}
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
		fresh = append(fresh, e)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	for i, err := range parallel(4, func(int) error {
		for {
			got, err := s.ClaimOutbox(ctx, 3, time.Minute)
			if err != nil || len(got) == 0 {
				return err
			}
			mu.Lock()
			for _, e := range got {
				seen[e.ID]++
			}
			mu.Unlock()
		}
	}) {
		if err != nil {
			t.Errorf("concurrent ClaimOutbox #%d: %v", i, err)
		}
	}
	for _, e := range fresh {
		if seen[e.ID] != 1 {
			t.Errorf("event %s claimed %d times by four concurrent relays; want exactly once", e.ID, seen[e.ID])
		}
	}
}

// --- purge ---

func testPurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))

	expired := newToken(c.ID, uid("fam"), uid("sub"))
	expired.ExpiresAt = at.Add(-time.Second)
	live := newToken(c.ID, uid("fam"), uid("sub"))
	forever := newToken(c.ID, uid("fam"), uid("sub"))
	forever.ExpiresAt = time.Time{}
	for _, tok := range []storage.RefreshToken{expired, live, forever} {
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
	}
	deadRev := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(-time.Second)}
	liveRev := storage.Revocation{Kind: storage.RevokedFamily, Value: uid("fam"), ExpiresAt: at.Add(time.Hour)}
	mustNil(t, "Revoke", s.Revoke(ctx, deadRev, liveRev))

	dropped := newKey(storage.KeyRetired)
	dropped.ExpiresAt = at.Add(-time.Second)
	retired := newKey(storage.KeyRetired)
	current := newKey(storage.KeyCurrent)
	mustNil(t, "UpdateKeys", s.UpdateKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{dropped, retired, current}, nil
	}))

	oldSent := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-9 * 24 * time.Hour)}
	newSent := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-time.Hour)}
	pending := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-30 * 24 * time.Hour)}
	for _, e := range []storage.OutboxEvent{oldSent, newSent, pending} {
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
	}
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{oldSent.ID}, at.Add(-storage.OutboxRetention-time.Hour)))
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{newSent.ID}, at.Add(-time.Minute)))

	oldAudit := storage.AuditEntry{Time: at.Add(-100 * 24 * time.Hour), Type: "auth.logout", UserID: uid("user")}
	newAudit := storage.AuditEntry{Time: at.Add(-time.Hour), Type: "auth.logout", UserID: uid("user")}
	for _, e := range []storage.AuditEntry{oldAudit, newAudit} {
		mustNil(t, "AppendAudit", s.AppendAudit(ctx, e))
	}
	// Nothing of the history goes without a retention.
	n, err := s.Purge(ctx, at, storage.Retention{})
	mustNil(t, "Purge(keep history)", err)
	if n != 3 {
		t.Errorf("Purge(keep history) = %d; want 3 (a token, a revocation, a key)", n)
	}
	n, err = s.Purge(ctx, at, storage.Retention{Audit: 90 * 24 * time.Hour, SentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge", err)
	if n != 2 {
		t.Errorf("Purge = %d; want 2 (an old sent event, an old audit entry)", n)
	}
	for _, u := range []struct {
		id   string
		want int
	}{{oldAudit.UserID, 0}, {newAudit.UserID, 1}} {
		got, err := s.ListAudit(ctx, storage.AuditFilter{UserID: u.id})
		mustNil(t, "ListAudit", err)
		if len(got) != u.want {
			t.Errorf("audit entries of %s after Purge = %d; want %d", u.id, len(got), u.want)
		}
	}
	pend, err := s.PendingOutbox(ctx, 1000)
	mustNil(t, "PendingOutbox", err)
	found := false
	for _, e := range pend {
		found = found || e.ID == pending.ID
	}
	if !found {
		t.Errorf("Purge deleted a pending outbox event")
	}
	_, err = s.GetRefreshToken(ctx, expired.SignatureHash)
	wantErr(t, "GetRefreshToken(expired)", err, storage.ErrNotFound)
	for _, sig := range []string{live.SignatureHash, forever.SignatureHash} {
		if _, err := s.GetRefreshToken(ctx, sig); err != nil {
			t.Errorf("GetRefreshToken(unexpired) after Purge: %v", err)
		}
	}
	revs, err := s.ActiveRevocations(ctx, at.Add(-time.Hour))
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations after Purge", revs, []storage.Revocation{liveRev})
	keys, err := s.ListKeys(ctx)
	mustNil(t, "ListKeys", err)
	checkKeys(t, "ListKeys after Purge", keys, []storage.SigningKey{retired, current})

	// Without a broker, events that were never published go after a while too.
	n, err = s.Purge(ctx, at, storage.Retention{UnsentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge(unsent)", err)
	if n != 1 {
		t.Errorf("Purge(unsent) = %d; want 1 (the month-old unpublished event)", n)
	}
	n, err = s.Purge(ctx, at, storage.Retention{Audit: 90 * 24 * time.Hour, SentOutbox: storage.OutboxRetention, UnsentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge(again)", err)
	if n != 0 {
		t.Errorf("second Purge = %d; want 0", n)
	}
}

// --- DPoP proof replay ---

func testProofReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	key := uid("proof")
	fresh, err := s.RememberProof(ctx, key, time.Now().Add(time.Minute))
	if err != nil || !fresh {
		t.Fatalf("RememberProof(new) = %v, %v; want true", fresh, err)
	}
	if fresh, err := s.RememberProof(ctx, key, time.Now().Add(time.Minute)); err != nil || fresh {
		t.Errorf("RememberProof(again) = %v, %v; want false", fresh, err)
	}
	// An expired record is taken over.
	old := uid("proof")
	mustNil(t, "RememberProof(expired)", func() error { _, err := s.RememberProof(ctx, old, time.Now().Add(-time.Second)); return err }())
	if fresh, err := s.RememberProof(ctx, old, time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Errorf("RememberProof(after expiry) = %v, %v; want true", fresh, err)
	}
	// 20 at once: exactly one is fresh.
	same := uid("proof")
	freshCount := make([]bool, 20)
	for i, err := range parallel(20, func(i int) error {
		f, err := s.RememberProof(ctx, same, time.Now().Add(time.Minute))
		freshCount[i] = f
		return err
	}) {
		if err != nil {
			t.Errorf("concurrent RememberProof #%d: %v", i, err)
		}
	}
	n := 0
	for _, f := range freshCount {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 20 concurrent RememberProof calls were fresh; want exactly 1", n)
	}
}
