package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

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
