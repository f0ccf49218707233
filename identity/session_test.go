package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

func newSessions(f *fixture) *Sessions {
	return NewSessions(f.store, SessionOptions{TTL: 48 * time.Hour, IdleTTL: 3 * time.Hour, Now: f.clock})
}

func (f *fixture) startSession(t *testing.T, ss *Sessions, userID string) (string, storage.BrowserSession) {
	t.Helper()
	cookie, bs, err := ss.StartSession(t.Context(), userID, []string{"pwd"})
	if err != nil {
		t.Fatalf("StartSession = %v", err)
	}
	return cookie, bs
}

func (f *fixture) sessionGone(t *testing.T, bs storage.BrowserSession) bool {
	t.Helper()
	_, err := f.store.GetBrowserSession(t.Context(), bs.IDHash)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetBrowserSession = %v", err)
	}
	return errors.Is(err, storage.ErrNotFound)
}

func TestSessionStartAndCheck(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{})
			alice := f.createAlice(t)
			ss := newSessions(f)
			cookie, bs := f.startSession(t, ss, alice.ID)
			if len(cookie) != 43 || strings.ContainsAny(cookie, "+/=") {
				t.Errorf("cookie value %q; want 32 bytes of unpadded base64url", cookie)
			}
			sum := sha256.Sum256([]byte(cookie))
			stored, err := f.store.GetBrowserSession(t.Context(), hex.EncodeToString(sum[:]))
			if err != nil {
				t.Fatalf("the store holds no session under the cookie's SHA-256: %v", err)
			}
			if stored.IDHash == cookie || stored.ID == cookie || strings.Contains(stored.ID, cookie[:8]) {
				t.Errorf("the store holds the cookie value: %+v", stored)
			}
			if stored.UserID != alice.ID || !slices.Equal(stored.AMR, []string{"pwd"}) || !stored.AuthTime.Equal(f.now) ||
				!stored.ExpiresAt.Equal(f.now.Add(48*time.Hour)) || stored.ID == "" {
				t.Errorf("stored session = %+v", stored)
			}
			got, u, err := ss.CheckSession(t.Context(), cookie, f.now.Add(time.Second))
			if err != nil || u.ID != alice.ID || got.ID != bs.ID {
				t.Fatalf("CheckSession = %+v, %s, %v; want alice's session", got, u.ID, err)
			}
			// Another session of the same user has another cookie and id.
			cookie2, bs2 := f.startSession(t, ss, alice.ID)
			if cookie2 == cookie || bs2.ID == bs.ID || bs2.IDHash == bs.IDHash {
				t.Error("two sessions share a cookie, id or hash")
			}
			for _, junk := range []string{"", "x", cookie[:42], cookie + "A", strings.Repeat("*", 43), bs.IDHash, bs.ID} {
				if _, _, err := ss.CheckSession(t.Context(), junk, f.now); !errors.Is(err, ErrNoSession) {
					t.Errorf("CheckSession(%q) = %v; want ErrNoSession", junk, err)
				}
			}
			if ok, err := ss.EndSession(t.Context(), cookie); !ok || err != nil {
				t.Errorf("EndSession = %v, %v; want true", ok, err)
			}
			if ok, err := ss.EndSession(t.Context(), cookie); ok || err != nil {
				t.Errorf("EndSession again = %v, %v; want false, nil", ok, err)
			}
			if _, _, err := ss.CheckSession(t.Context(), cookie, f.now); !errors.Is(err, ErrNoSession) {
				t.Errorf("CheckSession after EndSession = %v; want ErrNoSession", err)
			}
			if _, _, err := ss.CheckSession(t.Context(), cookie2, f.now); err != nil {
				t.Errorf("the other session ended too: %v", err)
			}
		})
	}
}

// LastSeenAt is written at most once a minute; the idle lifetime counts
// from it, the absolute one from the start.
func TestSessionLifetimes(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{})
			alice := f.createAlice(t)
			ss := newSessions(f)
			start := f.now
			cookie, bs := f.startSession(t, ss, alice.ID)
			lastSeen := func() time.Time {
				got, err := f.store.GetBrowserSession(t.Context(), bs.IDHash)
				if err != nil {
					t.Fatalf("GetBrowserSession = %v", err)
				}
				return got.LastSeenAt
			}
			if _, _, err := ss.CheckSession(t.Context(), cookie, start.Add(59*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := lastSeen(); !got.Equal(start) {
				t.Errorf("LastSeenAt = %v after a check within a minute; want %v (no write)", got, start)
			}
			// Used every two hours (idle 3h): alive until the absolute end (48h).
			at := start
			for at.Add(2 * time.Hour).Before(start.Add(48 * time.Hour)) {
				at = at.Add(2 * time.Hour)
				got, _, err := ss.CheckSession(t.Context(), cookie, at)
				if err != nil {
					t.Fatalf("CheckSession at +%s = %v; want alive", at.Sub(start), err)
				}
				if !got.LastSeenAt.Equal(at) || !lastSeen().Equal(at) {
					t.Fatalf("LastSeenAt = %v (stored %v); want %v", got.LastSeenAt, lastSeen(), at)
				}
			}
			if _, _, err := ss.CheckSession(t.Context(), cookie, start.Add(48*time.Hour)); !errors.Is(err, ErrNoSession) {
				t.Errorf("CheckSession at the absolute end = %v; want ErrNoSession", err)
			}
			if !f.sessionGone(t, bs) {
				t.Error("an expired session stays stored")
			}

			// Idle: three hours unused ends it.
			cookie, bs = f.startSession(t, ss, alice.ID)
			if _, _, err := ss.CheckSession(t.Context(), cookie, f.now.Add(3*time.Hour-time.Second)); err != nil {
				t.Errorf("CheckSession just before the idle end = %v", err)
			}
			if _, _, err := ss.CheckSession(t.Context(), cookie, f.now.Add(6*time.Hour-time.Second)); !errors.Is(err, ErrNoSession) {
				t.Errorf("CheckSession after 3h idle = %v; want ErrNoSession", err)
			}
			if !f.sessionGone(t, bs) {
				t.Error("an idle session stays stored")
			}
		})
	}
}

func TestSessionEndsWithItsUser(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	ss := newSessions(f)
	cookie, bs := f.startSession(t, ss, alice.ID)
	// Disabled behind the service's back (no DeleteUserBrowserSessions):
	// the check itself refuses it.
	if _, err := f.store.UpdateUser(t.Context(), alice.ID, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.CheckSession(t.Context(), cookie, f.now); !errors.Is(err, ErrNoSession) {
		t.Errorf("CheckSession of a disabled user = %v; want ErrNoSession", err)
	}
	if !f.sessionGone(t, bs) {
		t.Error("a disabled user's session stays stored")
	}
}

// Disabling, deleting and password changes end every browser session of
// the user in their transaction; other users' stay.
func TestAccountChangesEndSessions(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture, t *testing.T, userID string) error
	}{
		{"disable", func(f *fixture, t *testing.T, id string) error {
			_, err := f.svc.SetDisabled(t.Context(), id, true, CLIAdmin, meta, &revokes{})
			return err
		}},
		{"delete", func(f *fixture, t *testing.T, id string) error {
			return f.svc.DeleteUser(t.Context(), id, CLIAdmin, meta, &revokes{})
		}},
		{"change password", func(f *fixture, t *testing.T, id string) error {
			return f.svc.ChangePassword(t.Context(), id, alicePassword, "a brand new pass phrase", meta, nil)
		}},
		{"set password", func(f *fixture, t *testing.T, id string) error {
			_, err := f.svc.SetPassword(t.Context(), id, "a brand new pass phrase", CLIAdmin, meta, &revokes{})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			alice := f.createAlice(t)
			bob, err := f.svc.CreateUser(t.Context(), NewUser{Username: "bob", Email: "bob@example.com", Password: "a quiet river runs at midnight"}, meta)
			if err != nil {
				t.Fatal(err)
			}
			ss := newSessions(f)
			_, a1 := f.startSession(t, ss, alice.ID)
			_, a2 := f.startSession(t, ss, alice.ID)
			_, b1 := f.startSession(t, ss, bob.ID)

			// A failure later in the transaction keeps the sessions.
			f.store.failOutbox = errors.New("outbox down")
			if err := c.change(f, t, alice.ID); err == nil {
				t.Fatalf("%s with a failing outbox = nil; want an error", c.name)
			}
			f.store.failOutbox = nil
			if f.sessionGone(t, a1) || f.sessionGone(t, a2) {
				t.Fatalf("a rolled-back %s ended sessions", c.name)
			}

			if err := c.change(f, t, alice.ID); err != nil {
				t.Fatalf("%s = %v", c.name, err)
			}
			if !f.sessionGone(t, a1) || !f.sessionGone(t, a2) {
				t.Errorf("%s left alice's sessions", c.name)
			}
			if f.sessionGone(t, b1) {
				t.Errorf("%s ended bob's session", c.name)
			}
		})
	}
}

// Concurrent checks of one session: of an idle one, every check answers
// ErrNoSession (one deletes it, the others find it gone), never an error;
// of a live one due for a touch, every check succeeds.
func TestConcurrentSessionChecks(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{})
			alice := f.createAlice(t)
			ss := newSessions(f)
			idleCookie, idle := f.startSession(t, ss, alice.ID)
			liveCookie, _ := f.startSession(t, ss, alice.ID)
			const n = 16
			check := func(cookie string, at time.Time) []error {
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						_, _, errs[i] = ss.CheckSession(context.WithoutCancel(t.Context()), cookie, at)
					})
				}
				close(start)
				wg.Wait()
				return errs
			}
			for i, err := range check(idleCookie, f.now.Add(4*time.Hour)) {
				if !errors.Is(err, ErrNoSession) {
					t.Errorf("idle check %d = %v; want ErrNoSession", i, err)
				}
			}
			if !f.sessionGone(t, idle) {
				t.Error("the idle session stays stored")
			}
			for i, err := range check(liveCookie, f.now.Add(2*time.Hour)) {
				if err != nil {
					t.Errorf("live check %d = %v; want nil", i, err)
				}
			}
		})
	}
}

// The browser sign-in page's logins carry via=form in their events; the
// password grant's (no Via) carry none.
func TestLoginEventsNameTheForm(t *testing.T) {
	f := newFixture(t, Options{})
	f.createAlice(t)
	form := Meta{IP: meIP, Via: ViaForm}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, form); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", "not the right password", form); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatal(err)
	}
	ok := f.audit(t, events.LoginSuccess)
	if len(ok) != 2 || ok[0].data["via"] != "form" || ok[0].data["method"] != "password" || ok[1].data["via"] != nil {
		t.Errorf("auth.login.success data = %v, %v; want via=form then no via", ok[0].data, ok[1].data)
	}
	failed := f.audit(t, events.LoginFailed)
	if len(failed) != 1 || failed[0].data["via"] != "form" || failed[0].data["reason"] != ReasonBadPassword {
		t.Errorf("auth.login.failed = %+v; want one with via=form, reason bad_password", failed)
	}
}

func TestSignupProblems(t *testing.T) {
	f := newFixture(t, Options{Blocklist: listBlocklist{"correct horse battery staple": true}})
	got := f.svc.SignupProblems("A", "not an email", "short")
	var fields []string
	for _, p := range got {
		fields = append(fields, p.Field)
	}
	if !slices.Equal(fields, []string{FieldUsername, FieldEmail, FieldPassword}) {
		t.Errorf("SignupProblems = %v; want one per field", got)
	}
	if got := f.svc.SignupProblems("carol", "carol@example.com", "correct horse battery staple"); len(got) != 1 || got[0].Field != FieldPassword {
		t.Errorf("SignupProblems(blocklisted) = %v; want the password", got)
	}
	if got := f.svc.SignupProblems("carol", "carol@example.com", "my carol is a long phrase"); len(got) != 1 || got[0].Field != FieldPassword {
		t.Errorf("SignupProblems(password holds the username) = %v; want the password", got)
	}
	if got := f.svc.SignupProblems("Carol", "carol@example.com", "a perfectly fine pass phrase"); len(got) != 0 {
		t.Errorf("SignupProblems(valid) = %v; want none", got)
	}
}
