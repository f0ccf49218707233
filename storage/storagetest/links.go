package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newLink(connectorID, userID string) storage.Link {
	at := now()
	return storage.Link{
		ConnectorID: connectorID,
		Subject:     uid("upstream-sub"),
		UserID:      userID,
		Email:       uid("upstream") + "@example.org",
		CreatedAt:   at.Add(-time.Hour),
		LastLoginAt: at.Add(-time.Minute),
	}
}

func checkLink(t *testing.T, what string, got, want storage.Link) {
	t.Helper()
	ok := got.ConnectorID == want.ConnectorID && got.Subject == want.Subject && got.UserID == want.UserID &&
		got.Email == want.Email && sameTime(got.CreatedAt, want.CreatedAt) &&
		sameTime(got.LastLoginAt, want.LastLoginAt) && isUTC(got.CreatedAt) && isUTC(got.LastLoginAt)
	if !ok {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func checkLinks(t *testing.T, what string, got, want []storage.Link) {
	t.Helper()
	if got == nil || len(got) != len(want) {
		t.Fatalf("%s = %+v; want %+v (and not nil)", what, got, want)
	}
	for i := range want {
		checkLink(t, what, got[i], want[i])
	}
}

func getLink(t *testing.T, s storage.Store, connectorID, subject string) storage.Link {
	t.Helper()
	got, err := s.GetLink(t.Context(), connectorID, subject)
	mustNil(t, "GetLink", err)
	return got
}

func listLinks(t *testing.T, s storage.Store, userID string) []storage.Link {
	t.Helper()
	got, err := s.ListUserLinks(t.Context(), userID)
	mustNil(t, "ListUserLinks", err)
	return got
}

func testLinks(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := newUser("linked"), newUser("other")
	for _, x := range []storage.User{u, other} {
		mustNil(t, "CreateUser", s.CreateUser(ctx, x))
	}

	t.Run("CreateGetListDelete", func(t *testing.T) {
		u := newUser("links")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		checkLinks(t, "ListUserLinks(none)", listLinks(t, s, u.ID), nil)
		checkLinks(t, "ListUserLinks(unknown user)", listLinks(t, s, uid("nobody")), nil)

		// Created out of order: the list is ordered by connector id.
		z, a := newLink("zz-oidc", u.ID), newLink("aa-github", u.ID)
		a.Email = ""
		for _, l := range []storage.Link{z, a} {
			mustNil(t, "CreateLink", s.CreateLink(ctx, l))
		}
		checkLink(t, "GetLink", getLink(t, s, z.ConnectorID, z.Subject), z)
		checkLink(t, "GetLink(no email)", getLink(t, s, a.ConnectorID, a.Subject), a)
		checkLinks(t, "ListUserLinks", listLinks(t, s, u.ID), []storage.Link{a, z})

		for name, key := range map[string][2]string{
			"unknown subject":   {z.ConnectorID, uid("upstream-sub")},
			"another connector": {"mm-other", z.Subject},
		} {
			_, err := s.GetLink(ctx, key[0], key[1])
			wantErr(t, "GetLink("+name+")", err, storage.ErrNotFound)
		}

		mustNil(t, "DeleteLink", s.DeleteLink(ctx, u.ID, z.ConnectorID))
		_, err := s.GetLink(ctx, z.ConnectorID, z.Subject)
		wantErr(t, "GetLink(deleted)", err, storage.ErrNotFound)
		checkLinks(t, "ListUserLinks after a delete", listLinks(t, s, u.ID), []storage.Link{a})
		wantErr(t, "DeleteLink(again)", s.DeleteLink(ctx, u.ID, z.ConnectorID), storage.ErrNotFound)
		// Another user's link to the connector is not the user's.
		wantErr(t, "DeleteLink(another user)", s.DeleteLink(ctx, other.ID, a.ConnectorID), storage.ErrNotFound)
		checkLink(t, "GetLink after another user's delete", getLink(t, s, a.ConnectorID, a.Subject), a)

		// Once unlinked, the upstream identity may be linked to someone else.
		z.UserID = other.ID
		mustNil(t, "CreateLink(unlinked identity, another user)", s.CreateLink(ctx, z))
		checkLink(t, "GetLink(relinked)", getLink(t, s, z.ConnectorID, z.Subject), z)
	})

	t.Run("Conflicts", func(t *testing.T) {
		l := newLink("github", u.ID)
		mustNil(t, "CreateLink", s.CreateLink(ctx, l))

		// The upstream identity is linked already, to another user or the same.
		taken := newLink(l.ConnectorID, other.ID)
		taken.Subject = l.Subject
		wantErr(t, "CreateLink(identity linked to another user)", s.CreateLink(ctx, taken), storage.ErrConflict)
		wantErr(t, "CreateLink(same link again)", s.CreateLink(ctx, l), storage.ErrConflict)
		// The user has a link to the connector already, of another subject.
		second := newLink(l.ConnectorID, u.ID)
		wantErr(t, "CreateLink(second link to the connector)", s.CreateLink(ctx, second), storage.ErrConflict)

		checkLink(t, "GetLink after the conflicts", getLink(t, s, l.ConnectorID, l.Subject), l)
		_, err := s.GetLink(ctx, second.ConnectorID, second.Subject)
		wantErr(t, "GetLink(refused second link)", err, storage.ErrNotFound)
		for _, l := range listLinks(t, s, other.ID) {
			if l.ConnectorID == taken.ConnectorID {
				t.Errorf("ListUserLinks(other) holds %+v after a refused link", l)
			}
		}
		// The same subject at another connector is another identity.
		elsewhere := newLink("gitlab", other.ID)
		elsewhere.Subject = l.Subject
		mustNil(t, "CreateLink(same subject, another connector)", s.CreateLink(ctx, elsewhere))
	})

	t.Run("UnknownUser", func(t *testing.T) {
		l := newLink("github", uid("nobody"))
		wantErr(t, "CreateLink(unknown user)", s.CreateLink(ctx, l), storage.ErrNotFound)
		_, err := s.GetLink(ctx, l.ConnectorID, l.Subject)
		wantErr(t, "GetLink(refused link)", err, storage.ErrNotFound)
		// In a transaction too; the transaction is the caller's to end.
		inRolledBackTx(t, s, func(ctx context.Context) {
			wantErr(t, "CreateLink(unknown user, in tx)", s.CreateLink(ctx, l), storage.ErrNotFound)
		})
	})

	t.Run("Defaults", func(t *testing.T) {
		u := newUser("defaults")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		before := time.Now()
		l := newLink("github", u.ID)
		l.CreatedAt, l.LastLoginAt, l.Email = time.Time{}, time.Time{}, ""
		mustNil(t, "CreateLink(defaults)", s.CreateLink(ctx, l))
		got := getLink(t, s, l.ConnectorID, l.Subject)
		if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) ||
			!got.LastLoginAt.Equal(got.CreatedAt) || got.Email != "" || !isUTC(got.CreatedAt) {
			t.Errorf("CreateLink(defaults) stored %+v; want created now, last signed in then, no email", got)
		}
		for name, bad := range map[string]func(*storage.Link){
			"no connector": func(l *storage.Link) { l.ConnectorID = "" },
			"no subject":   func(l *storage.Link) { l.Subject = "" },
			"no user":      func(l *storage.Link) { l.UserID = "" },
		} {
			l := newLink("oidc", u.ID)
			bad(&l)
			if err := s.CreateLink(ctx, l); err == nil {
				t.Errorf("CreateLink(%s) = nil; want an error", name)
			}
		}
	})

	t.Run("Touch", func(t *testing.T) {
		u := newUser("touch")
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		l := newLink("github", u.ID)
		mustNil(t, "CreateLink", s.CreateLink(ctx, l))

		at := now()
		mustNil(t, "TouchLink", s.TouchLink(ctx, l.ConnectorID, l.Subject, at))
		want := l
		want.LastLoginAt = at
		checkLink(t, "GetLink after a touch", getLink(t, s, l.ConnectorID, l.Subject), want)

		// A touch in a transaction that rolls back changes nothing.
		inRolledBackTx(t, s, func(ctx context.Context) {
			mustNil(t, "TouchLink(in tx)", s.TouchLink(ctx, l.ConnectorID, l.Subject, at.Add(time.Hour)))
		})
		checkLink(t, "GetLink after a rolled-back touch", getLink(t, s, l.ConnectorID, l.Subject), want)

		wantErr(t, "TouchLink(missing)", s.TouchLink(ctx, l.ConnectorID, uid("upstream-sub"), at), storage.ErrNotFound)
		mustNil(t, "DeleteLink", s.DeleteLink(ctx, u.ID, l.ConnectorID))
		wantErr(t, "TouchLink(deleted)", s.TouchLink(ctx, l.ConnectorID, l.Subject, at), storage.ErrNotFound)
	})

	t.Run("UserDeleteCascades", func(t *testing.T) {
		gone := newUser("gone")
		mustNil(t, "CreateUser", s.CreateUser(ctx, gone))
		a, b := newLink("github", gone.ID), newLink("oidc", gone.ID)
		keep := newLink("github", other.ID)
		keep.ConnectorID = "cascade-keep"
		for _, l := range []storage.Link{a, b, keep} {
			mustNil(t, "CreateLink", s.CreateLink(ctx, l))
		}
		mustNil(t, "DeleteUser", s.DeleteUser(ctx, gone.ID))
		for _, l := range []storage.Link{a, b} {
			_, err := s.GetLink(ctx, l.ConnectorID, l.Subject)
			wantErr(t, "GetLink(user deleted)", err, storage.ErrNotFound)
		}
		checkLinks(t, "ListUserLinks(user deleted)", listLinks(t, s, gone.ID), nil)
		checkLink(t, "another user's link", getLink(t, s, keep.ConnectorID, keep.Subject), keep)
	})

	// Of concurrent links of one upstream identity to different users
	// exactly one is made; the others are ErrConflict. On PostgreSQL they
	// run at once on separate connections; in the later rounds each create
	// sits in a transaction that stays open a while, so that the others
	// meet its uncommitted row and wait for its commit.
	t.Run("ConcurrentCreateOneWins", func(t *testing.T) {
		const racers = 8
		users := make([]storage.User, racers)
		for i := range users {
			users[i] = newUser("racer")
			mustNil(t, "CreateUser", s.CreateUser(ctx, users[i]))
		}
		for round := range 4 {
			inTx := round >= 2
			subject := uid("upstream-sub")
			winner := -1
			won, lost := 0, 0
			for i, err := range parallel(racers, func(i int) error {
				l := newLink("race", users[i].ID)
				l.Subject = subject
				if !inTx {
					return s.CreateLink(ctx, l)
				}
				return s.InTx(ctx, func(ctx context.Context) error {
					if err := s.CreateLink(ctx, l); err != nil {
						return err
					}
					time.Sleep(20 * time.Millisecond)
					return nil
				})
			}) {
				switch {
				case err == nil:
					won++
					winner = i
				case errors.Is(err, storage.ErrConflict):
					lost++
				default:
					t.Errorf("round %d: CreateLink = %v; want nil or ErrConflict", round, err)
				}
			}
			if won != 1 || lost != racers-1 {
				t.Fatalf("round %d (in transactions %v): %d creates won, %d got ErrConflict; want exactly 1 and %d",
					round, inTx, won, lost, racers-1)
			}
			if got := getLink(t, s, "race", subject); got.UserID != users[winner].ID {
				t.Errorf("round %d: the link is %s's; want the winner %s's", round, got.UserID, users[winner].ID)
			}
			// The winner's link to the connector goes, so that it races again.
			mustNil(t, "DeleteLink", s.DeleteLink(ctx, users[winner].ID, "race"))
		}
	})
}

func newUpstreamLogin() storage.UpstreamLogin {
	at := now()
	return storage.UpstreamLogin{
		IDHash:      uid("statehash"),
		BindingHash: uid("bindinghash"),
		ConnectorID: "github",
		Data:        []byte(`{"verifier":"` + RandomID(8) + `","return":"/oauth2/authorize?x=1"}`),
		CreatedAt:   at.Add(-time.Minute),
		ExpiresAt:   at.Add(10 * time.Minute),
	}
}

func checkUpstreamLogin(t *testing.T, what string, got, want storage.UpstreamLogin) {
	t.Helper()
	ok := got.IDHash == want.IDHash && got.BindingHash == want.BindingHash && got.ConnectorID == want.ConnectorID &&
		bytes.Equal(got.Data, want.Data) && sameTime(got.CreatedAt, want.CreatedAt) &&
		sameTime(got.ExpiresAt, want.ExpiresAt) && isUTC(got.CreatedAt) && isUTC(got.ExpiresAt)
	if !ok {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func testUpstreamLogins(t *testing.T, s storage.Store) {
	ctx := t.Context()

	t.Run("CreateTakeOnce", func(t *testing.T) {
		l := newUpstreamLogin()
		mustNil(t, "CreateUpstreamLogin", s.CreateUpstreamLogin(ctx, l))
		again := newUpstreamLogin()
		again.IDHash = l.IDHash
		wantErr(t, "CreateUpstreamLogin(same hash)", s.CreateUpstreamLogin(ctx, again), storage.ErrConflict)

		// A take in a transaction that rolls back leaves the sign-in.
		inRolledBackTx(t, s, func(ctx context.Context) {
			got, err := s.TakeUpstreamLogin(ctx, l.IDHash, now())
			mustNil(t, "TakeUpstreamLogin(in tx)", err)
			checkUpstreamLogin(t, "TakeUpstreamLogin(in tx)", got, l)
		})

		got, err := s.TakeUpstreamLogin(ctx, l.IDHash, now())
		mustNil(t, "TakeUpstreamLogin", err)
		checkUpstreamLogin(t, "TakeUpstreamLogin", got, l)
		_, err = s.TakeUpstreamLogin(ctx, l.IDHash, now())
		wantErr(t, "TakeUpstreamLogin(again)", err, storage.ErrNotFound)
		_, err = s.TakeUpstreamLogin(ctx, uid("statehash"), now())
		wantErr(t, "TakeUpstreamLogin(unknown)", err, storage.ErrNotFound)
		// Once taken, the hash is free again.
		mustNil(t, "CreateUpstreamLogin(taken hash)", s.CreateUpstreamLogin(ctx, again))
		got, err = s.TakeUpstreamLogin(ctx, again.IDHash, now())
		mustNil(t, "TakeUpstreamLogin(recreated)", err)
		checkUpstreamLogin(t, "TakeUpstreamLogin(recreated)", got, again)
	})

	t.Run("Expired", func(t *testing.T) {
		at := now()
		for name, end := range map[string]time.Time{
			"past its end": at.Add(-time.Second),
			"at its end":   at,
		} {
			l := newUpstreamLogin()
			l.CreatedAt, l.ExpiresAt = end.Add(-10*time.Minute), end
			mustNil(t, "CreateUpstreamLogin", s.CreateUpstreamLogin(ctx, l))
			_, err := s.TakeUpstreamLogin(ctx, l.IDHash, at)
			wantErr(t, "TakeUpstreamLogin("+name+")", err, storage.ErrNotFound)
			// The expired take deleted it: a take with an earlier clock,
			// at which it would still be valid, finds nothing.
			_, err = s.TakeUpstreamLogin(ctx, l.IDHash, end.Add(-time.Minute))
			wantErr(t, "TakeUpstreamLogin(after an expired take of one "+name+")", err, storage.ErrNotFound)
		}
		// A nanosecond before its end it is still valid.
		l := newUpstreamLogin()
		mustNil(t, "CreateUpstreamLogin", s.CreateUpstreamLogin(ctx, l))
		got, err := s.TakeUpstreamLogin(ctx, l.IDHash, l.ExpiresAt.Add(-time.Nanosecond))
		mustNil(t, "TakeUpstreamLogin(just before its end)", err)
		checkUpstreamLogin(t, "TakeUpstreamLogin(just before its end)", got, l)
	})

	t.Run("Defaults", func(t *testing.T) {
		before := time.Now()
		l := newUpstreamLogin()
		l.CreatedAt, l.Data = time.Time{}, nil
		mustNil(t, "CreateUpstreamLogin(defaults)", s.CreateUpstreamLogin(ctx, l))
		got, err := s.TakeUpstreamLogin(ctx, l.IDHash, now())
		mustNil(t, "TakeUpstreamLogin", err)
		if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) ||
			!isUTC(got.CreatedAt) || len(got.Data) != 0 {
			t.Errorf("CreateUpstreamLogin(defaults) stored %+v; want created now, no data", got)
		}
		for name, bad := range map[string]func(*storage.UpstreamLogin){
			"no hash":         func(l *storage.UpstreamLogin) { l.IDHash = "" },
			"no binding hash": func(l *storage.UpstreamLogin) { l.BindingHash = "" },
			"no connector":    func(l *storage.UpstreamLogin) { l.ConnectorID = "" },
			"no expiry":       func(l *storage.UpstreamLogin) { l.ExpiresAt = time.Time{} },
		} {
			l := newUpstreamLogin()
			bad(&l)
			if err := s.CreateUpstreamLogin(ctx, l); err == nil {
				t.Errorf("CreateUpstreamLogin(%s) = nil; want an error", name)
			}
		}
	})

	// Of concurrent takes of one sign-in exactly one gets it; the others
	// are ErrNotFound. On PostgreSQL they run at once on separate
	// connections; in the later rounds each take sits in a transaction
	// that stays open a while, so that the others wait on its deleted row.
	t.Run("ConcurrentTakeOneWins", func(t *testing.T) {
		const racers = 8
		for round := range 4 {
			inTx := round >= 2
			l := newUpstreamLogin()
			mustNil(t, "CreateUpstreamLogin", s.CreateUpstreamLogin(ctx, l))
			taken := make([]storage.UpstreamLogin, racers)
			won, lost := 0, 0
			for i, err := range parallel(racers, func(i int) error {
				if !inTx {
					var err error
					taken[i], err = s.TakeUpstreamLogin(ctx, l.IDHash, now())
					return err
				}
				return s.InTx(ctx, func(ctx context.Context) error {
					var err error
					if taken[i], err = s.TakeUpstreamLogin(ctx, l.IDHash, now()); err != nil {
						return err
					}
					time.Sleep(20 * time.Millisecond)
					return nil
				})
			}) {
				switch {
				case err == nil:
					won++
					checkUpstreamLogin(t, "TakeUpstreamLogin(winner)", taken[i], l)
				case errors.Is(err, storage.ErrNotFound):
					lost++
				default:
					t.Errorf("round %d: TakeUpstreamLogin = %v; want nil or ErrNotFound", round, err)
				}
			}
			if won != 1 || lost != racers-1 {
				t.Fatalf("round %d (in transactions %v): %d takes won, %d got ErrNotFound; want exactly 1 and %d",
					round, inTx, won, lost, racers-1)
			}
			_, err := s.TakeUpstreamLogin(ctx, l.IDHash, now())
			wantErr(t, "TakeUpstreamLogin(after the race)", err, storage.ErrNotFound)
		}
	})
}

// testUpstreamLoginPurge runs on a store of its own: Purge counts every
// expired row.
func testUpstreamLoginPurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	expired, atEnd, live := newUpstreamLogin(), newUpstreamLogin(), newUpstreamLogin()
	expired.CreatedAt, expired.ExpiresAt = at.Add(-time.Hour), at.Add(-time.Second)
	atEnd.CreatedAt, atEnd.ExpiresAt = at.Add(-time.Hour), at
	for _, l := range []storage.UpstreamLogin{expired, atEnd, live} {
		mustNil(t, "CreateUpstreamLogin", s.CreateUpstreamLogin(ctx, l))
	}
	n, err := s.Purge(ctx, at, storage.Retention{})
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2 (the sign-ins expired at now)", n, err)
	}
	// Purged: not even a take with a clock at which they were valid finds them.
	for _, l := range []storage.UpstreamLogin{expired, atEnd} {
		_, err := s.TakeUpstreamLogin(ctx, l.IDHash, l.CreatedAt)
		wantErr(t, "TakeUpstreamLogin(purged)", err, storage.ErrNotFound)
	}
	if n, err := s.Purge(ctx, at, storage.Retention{}); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v; want 0", n, err)
	}
	got, err := s.TakeUpstreamLogin(ctx, live.IDHash, at)
	mustNil(t, "TakeUpstreamLogin(unexpired, after Purge)", err)
	checkUpstreamLogin(t, "TakeUpstreamLogin(unexpired, after Purge)", got, live)
}
