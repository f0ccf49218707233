package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newSession(userID string) storage.BrowserSession {
	at := now()
	return storage.BrowserSession{
		IDHash:     uid("cookiehash"),
		ID:         uid("sid"),
		UserID:     userID,
		AuthTime:   at.Add(-10 * time.Minute),
		AMR:        []string{"pwd"},
		CreatedAt:  at.Add(-time.Hour),
		LastSeenAt: at.Add(-5 * time.Minute),
		ExpiresAt:  at.Add(720 * time.Hour),
	}
}

func checkSession(t *testing.T, what string, got, want storage.BrowserSession) {
	t.Helper()
	ok := got.IDHash == want.IDHash && got.ID == want.ID && got.UserID == want.UserID &&
		sameStrings(got.AMR, want.AMR) && sameTime(got.AuthTime, want.AuthTime) &&
		sameTime(got.CreatedAt, want.CreatedAt) && sameTime(got.LastSeenAt, want.LastSeenAt) &&
		sameTime(got.ExpiresAt, want.ExpiresAt)
	for _, tm := range []time.Time{got.AuthTime, got.CreatedAt, got.LastSeenAt, got.ExpiresAt} {
		ok = ok && isUTC(tm)
	}
	if !ok {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func getSession(t *testing.T, s storage.Store, idHash string) storage.BrowserSession {
	t.Helper()
	got, err := s.GetBrowserSession(t.Context(), idHash)
	mustNil(t, "GetBrowserSession", err)
	return got
}

func testBrowserSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := newUser("sso")
	mustNil(t, "CreateUser", s.CreateUser(ctx, u))

	t.Run("CreateGetDelete", func(t *testing.T) {
		bs := newSession(u.ID)
		mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, bs))
		checkSession(t, "GetBrowserSession", getSession(t, s, bs.IDHash), bs)

		again := newSession(u.ID)
		again.IDHash = bs.IDHash
		wantErr(t, "CreateBrowserSession(same hash)", s.CreateBrowserSession(ctx, again), storage.ErrConflict)
		again = newSession(u.ID)
		again.ID = bs.ID
		wantErr(t, "CreateBrowserSession(same sid)", s.CreateBrowserSession(ctx, again), storage.ErrConflict)
		_, err := s.GetBrowserSession(ctx, uid("cookiehash"))
		wantErr(t, "GetBrowserSession(missing)", err, storage.ErrNotFound)

		mustNil(t, "DeleteBrowserSession", s.DeleteBrowserSession(ctx, bs.IDHash))
		_, err = s.GetBrowserSession(ctx, bs.IDHash)
		wantErr(t, "GetBrowserSession(deleted)", err, storage.ErrNotFound)
		wantErr(t, "DeleteBrowserSession(deleted)", s.DeleteBrowserSession(ctx, bs.IDHash), storage.ErrNotFound)
	})

	t.Run("Defaults", func(t *testing.T) {
		before := time.Now()
		bs := newSession(u.ID)
		bs.CreatedAt, bs.AuthTime, bs.LastSeenAt, bs.AMR = time.Time{}, time.Time{}, time.Time{}, nil
		mustNil(t, "CreateBrowserSession(defaults)", s.CreateBrowserSession(ctx, bs))
		got := getSession(t, s, bs.IDHash)
		if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) ||
			!got.AuthTime.Equal(got.CreatedAt) || !got.LastSeenAt.Equal(got.CreatedAt) || len(got.AMR) != 0 {
			t.Errorf("CreateBrowserSession(defaults) stored %+v; want created now, auth time and last seen the same, no amr", got)
		}
		for name, bad := range map[string]func(*storage.BrowserSession){
			"no hash":      func(b *storage.BrowserSession) { b.IDHash = "" },
			"no sid":       func(b *storage.BrowserSession) { b.ID = "" },
			"no user":      func(b *storage.BrowserSession) { b.UserID = "" },
			"no expiry":    func(b *storage.BrowserSession) { b.ExpiresAt = time.Time{} },
			"unknown user": func(b *storage.BrowserSession) { b.UserID = uid("nobody") },
		} {
			b := newSession(u.ID)
			bad(&b)
			if err := s.CreateBrowserSession(ctx, b); err == nil {
				t.Errorf("CreateBrowserSession(%s) = nil; want an error", name)
			}
		}
	})

	t.Run("Touch", func(t *testing.T) {
		bs := newSession(u.ID)
		mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, bs))

		// Seen again: only LastSeenAt moves.
		seen := now()
		mustNil(t, "TouchBrowserSession(seen)", s.TouchBrowserSession(ctx, bs.IDHash, seen, time.Time{}, nil))
		want := bs
		want.LastSeenAt = seen
		checkSession(t, "GetBrowserSession after a touch", getSession(t, s, bs.IDHash), want)

		// Signed in again: AuthTime and AMR move too.
		again := seen.Add(time.Minute)
		mustNil(t, "TouchBrowserSession(re-authenticated)", s.TouchBrowserSession(ctx, bs.IDHash, again, again, []string{"pwd", "otp"}))
		want.LastSeenAt, want.AuthTime, want.AMR = again, again, []string{"pwd", "otp"}
		checkSession(t, "GetBrowserSession after re-authentication", getSession(t, s, bs.IDHash), want)

		// A non-nil empty AMR is a value, not "keep".
		mustNil(t, "TouchBrowserSession(empty amr)", s.TouchBrowserSession(ctx, bs.IDHash, again, time.Time{}, []string{}))
		want.AMR = nil
		checkSession(t, "GetBrowserSession after an empty amr", getSession(t, s, bs.IDHash), want)

		wantErr(t, "TouchBrowserSession(missing)", s.TouchBrowserSession(ctx, uid("cookiehash"), seen, time.Time{}, nil), storage.ErrNotFound)

		// A touch in a transaction that rolls back leaves nothing.
		inRolledBackTx(t, s, func(ctx context.Context) {
			mustNil(t, "TouchBrowserSession(in tx)", s.TouchBrowserSession(ctx, bs.IDHash, again.Add(time.Hour), again.Add(time.Hour), []string{"x"}))
		})
		checkSession(t, "GetBrowserSession after a rolled-back touch", getSession(t, s, bs.IDHash), want)
	})

	t.Run("DeleteUserSessions", func(t *testing.T) {
		owner, other := newUser("owner"), newUser("other")
		mustNil(t, "CreateUser", s.CreateUser(ctx, owner))
		mustNil(t, "CreateUser", s.CreateUser(ctx, other))
		var hashes []string
		for range 3 {
			bs := newSession(owner.ID)
			mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, bs))
			hashes = append(hashes, bs.IDHash)
		}
		keep := newSession(other.ID)
		mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, keep))

		inRolledBackTx(t, s, func(ctx context.Context) {
			n, err := s.DeleteUserBrowserSessions(ctx, owner.ID)
			if err != nil || n != 3 {
				t.Errorf("DeleteUserBrowserSessions(in tx) = %d, %v; want 3", n, err)
			}
		})
		getSession(t, s, hashes[0]) // the rollback kept it

		n, err := s.DeleteUserBrowserSessions(ctx, owner.ID)
		if err != nil || n != 3 {
			t.Fatalf("DeleteUserBrowserSessions = %d, %v; want 3", n, err)
		}
		for _, h := range hashes {
			_, err := s.GetBrowserSession(ctx, h)
			wantErr(t, "GetBrowserSession(ended)", err, storage.ErrNotFound)
		}
		checkSession(t, "another user's session", getSession(t, s, keep.IDHash), keep)
		if n, err := s.DeleteUserBrowserSessions(ctx, owner.ID); err != nil || n != 0 {
			t.Errorf("DeleteUserBrowserSessions(again) = %d, %v; want 0", n, err)
		}
		if n, err := s.DeleteUserBrowserSessions(ctx, uid("nobody")); err != nil || n != 0 {
			t.Errorf("DeleteUserBrowserSessions(unknown user) = %d, %v; want 0", n, err)
		}
	})

	t.Run("UserDeleteCascades", func(t *testing.T) {
		gone := newUser("gone")
		mustNil(t, "CreateUser", s.CreateUser(ctx, gone))
		bs := newSession(gone.ID)
		mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, bs))
		mustNil(t, "DeleteUser", s.DeleteUser(ctx, gone.ID))
		_, err := s.GetBrowserSession(ctx, bs.IDHash)
		wantErr(t, "GetBrowserSession(user deleted)", err, storage.ErrNotFound)
	})
}

// testBrowserSessionPurge runs on a store of its own: Purge counts every
// expired row.
func testBrowserSessionPurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	u := newUser("purge")
	mustNil(t, "CreateUser", s.CreateUser(ctx, u))
	ended := newSession(u.ID)
	ended.ExpiresAt = at.Add(-time.Second)
	live := newSession(u.ID)
	// Idle for long, but before its absolute end: the reader's to judge.
	idle := newSession(u.ID)
	idle.LastSeenAt = at.Add(-30 * 24 * time.Hour)
	for _, bs := range []storage.BrowserSession{ended, live, idle} {
		mustNil(t, "CreateBrowserSession", s.CreateBrowserSession(ctx, bs))
	}
	n, err := s.Purge(ctx, at, storage.Retention{})
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1 (the session past its end)", n, err)
	}
	_, err = s.GetBrowserSession(ctx, ended.IDHash)
	wantErr(t, "GetBrowserSession(past its end, purged)", err, storage.ErrNotFound)
	checkSession(t, "live session after Purge", getSession(t, s, live.IDHash), live)
	checkSession(t, "idle session after Purge", getSession(t, s, idle.IDHash), idle)
}
