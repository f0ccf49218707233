package storagetest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// testLockout checks what the login lockout (identity.Authenticate) relies
// on: the lockout columns round-trip, UpdateUserAsyncCommit behaves as
// UpdateUser and serialises concurrent read-modify-writes of them exactly,
// and a miss of UpdateUser inside a transaction leaves it usable.
func testLockout(t *testing.T, s storage.Store) {
	ctx := t.Context()

	t.Run("Columns", func(t *testing.T) {
		u := newUser("lockcols")
		u.FailedLogins, u.PendingLogins = 4, 2
		u.LockedUntil = now().Add(time.Minute)
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		check := func(what string, got storage.User, failed, pending int, until time.Time) {
			t.Helper()
			if got.FailedLogins != failed || got.PendingLogins != pending || !sameTime(got.LockedUntil, until) || !isUTC(got.LockedUntil) {
				t.Errorf("%s: failed=%d pending=%d until=%v; want %d, %d, %v (UTC)", what,
					got.FailedLogins, got.PendingLogins, got.LockedUntil, failed, pending, until)
			}
		}
		got, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		check("GetUser", got, 4, 2, u.LockedUntil)
		got, err = s.GetUserByLogin(ctx, strings.ToUpper(u.Email))
		mustNil(t, "GetUserByLogin", err)
		check("GetUserByLogin", got, 4, 2, u.LockedUntil)
		users, _, err := s.ListUsers(ctx, storage.UserQuery{Query: u.Username})
		mustNil(t, "ListUsers", err)
		if len(users) != 1 {
			t.Fatalf("ListUsers(%q) = %d users; want 1", u.Username, len(users))
		}
		check("ListUsers", users[0], 4, 2, u.LockedUntil)

		got, err = s.UpdateUser(ctx, u.ID, func(v *storage.User) error {
			check("UpdateUser's fn argument", *v, 4, 2, u.LockedUntil)
			v.FailedLogins, v.PendingLogins, v.LockedUntil = 0, 0, time.Time{}
			return nil
		})
		mustNil(t, "UpdateUser", err)
		check("UpdateUser", got, 0, 0, time.Time{})
		got, err = s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser after UpdateUser", err)
		check("GetUser after UpdateUser", got, 0, 0, time.Time{})
	})

	// A user the login path does not find costs a miss of UpdateUser, in a
	// transaction that then records the failure: the miss must not break it.
	t.Run("MissInTransaction", func(t *testing.T) {
		missing := uid("nouser")
		marker := uid("client")
		called := false
		err := s.InTx(ctx, func(ctx context.Context) error {
			_, err := s.UpdateUser(ctx, missing, func(*storage.User) error { called = true; return nil })
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("UpdateUser(missing) in a transaction = %v; want ErrNotFound", err)
			}
			return s.AppendAudit(ctx, storage.AuditEntry{Time: now(), Type: "test.miss", ClientID: marker, Data: []byte(`{}`)})
		})
		mustNil(t, "InTx after a miss", err)
		if called {
			t.Error("UpdateUser(missing) called fn")
		}
		entries, err := s.ListAudit(ctx, storage.AuditFilter{Type: "test.miss", Limit: 1000})
		mustNil(t, "ListAudit", err)
		found := false
		for _, e := range entries {
			found = found || e.ClientID == marker
		}
		if !found {
			t.Error("the audit entry written after a miss was not committed")
		}
		_, err = s.GetUser(ctx, missing)
		wantErr(t, "GetUser(missing) after UpdateUser(missing)", err, storage.ErrNotFound)
		// The miss outside a transaction changes nothing either.
		other := newUser("lockmiss")
		mustNil(t, "CreateUser", s.CreateUser(ctx, other))
		_, err = s.UpdateUser(ctx, missing, func(*storage.User) error { called = true; return nil })
		wantErr(t, "UpdateUser(missing)", err, storage.ErrNotFound)
		got, err := s.GetUser(ctx, other.ID)
		mustNil(t, "GetUser", err)
		checkUser(t, "another user after a miss", got, other)
	})

	// UpdateUserAsyncCommit is UpdateUser with a commit that does not wait
	// for the disk: visible at once, joining a caller's transaction.
	t.Run("AsyncCommit", func(t *testing.T) {
		u := newUser("lockasync")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.UpdateUserAsyncCommit(ctx, u.ID, func(v *storage.User) error {
			checkUser(t, "UpdateUserAsyncCommit's fn argument", *v, u)
			v.FailedLogins, v.PendingLogins = 1, 1
			return nil
		})
		mustNil(t, "UpdateUserAsyncCommit", err)
		if got.FailedLogins != 1 || got.PendingLogins != 1 || !got.UpdatedAt.After(u.UpdatedAt) {
			t.Errorf("UpdateUserAsyncCommit = %+v; want failed 1, pending 1, UpdatedAt now", got)
		}
		stored, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		if stored.FailedLogins != 1 || stored.PendingLogins != 1 {
			t.Errorf("GetUser after UpdateUserAsyncCommit: failed=%d pending=%d; want 1, 1", stored.FailedLogins, stored.PendingLogins)
		}

		fnErr := errors.New("fn failed")
		_, err = s.UpdateUserAsyncCommit(ctx, u.ID, func(v *storage.User) error { v.FailedLogins = 99; return fnErr })
		wantErr(t, "UpdateUserAsyncCommit(fn fails)", err, fnErr)
		called := false
		_, err = s.UpdateUserAsyncCommit(ctx, uid("missing"), func(*storage.User) error { called = true; return nil })
		wantErr(t, "UpdateUserAsyncCommit(missing)", err, storage.ErrNotFound)
		if called {
			t.Error("UpdateUserAsyncCommit(missing) called fn")
		}

		// In a transaction that rolls back, it rolls back too.
		inRolledBackTx(t, s, func(ctx context.Context) {
			_, err := s.UpdateUserAsyncCommit(ctx, u.ID, func(v *storage.User) error { v.FailedLogins = 7; return nil })
			mustNil(t, "UpdateUserAsyncCommit(in tx)", err)
		})
		if stored, err := s.GetUser(ctx, u.ID); err != nil || stored.FailedLogins != 1 {
			t.Errorf("after a rolled-back UpdateUserAsyncCommit: failed=%d, %v; want 1", stored.FailedLogins, err)
		}
	})

	// 64 concurrent reservations of one account with a threshold of 5: the
	// row lock lets exactly 5 count, and exactly one of them sets the lock.
	t.Run("ConcurrentReservations", func(t *testing.T) {
		const (
			n         = 64
			threshold = 5
		)
		u := newUser("lockrace")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		until := now().Add(time.Hour)
		var counted, setLock, alone atomic.Int32
		errs := parallel(n, func(int) error {
			var c, l, a bool
			_, err := s.UpdateUserAsyncCommit(ctx, u.ID, func(v *storage.User) error {
				c, l, a = false, false, false // fn may run again if the store retries
				if !v.LockedUntil.IsZero() {
					return nil
				}
				c, a = true, v.PendingLogins == 0
				v.FailedLogins++
				v.PendingLogins++
				if v.FailedLogins >= threshold {
					v.LockedUntil, l = until, true
				}
				return nil
			})
			if err == nil {
				if c {
					counted.Add(1)
				}
				if l {
					setLock.Add(1)
				}
				if a {
					alone.Add(1)
				}
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("UpdateUser #%d: %v", i, err)
			}
		}
		got, err := s.GetUser(ctx, u.ID)
		mustNil(t, "GetUser", err)
		if counted.Load() != threshold || setLock.Load() != 1 || alone.Load() != 1 ||
			got.FailedLogins != threshold || got.PendingLogins != threshold || !sameTime(got.LockedUntil, until) {
			t.Errorf("after %d concurrent reservations: counted %d, lock set %d times, %d found none pending, "+
				"stored failed=%d pending=%d until=%v; want %d, 1, 1, %d, %d, %v",
				n, counted.Load(), setLock.Load(), alone.Load(), got.FailedLogins, got.PendingLogins, got.LockedUntil,
				threshold, threshold, threshold, until)
		}
	})
}
