package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

var backends = []string{backendSQLite, backendPostgres}

const wrongPassword = "wrong password number x"

// checks counts the password checks of a service: real ones (against the
// account's own hash) and those of them that matched.
type checks struct{ real, realOK, dummy atomic.Int32 }

func (c *checks) hook(real, ok bool) {
	switch {
	case !real:
		c.dummy.Add(1)
	case ok:
		c.realOK.Add(1)
		c.real.Add(1)
	default:
		c.real.Add(1)
	}
}

// burst drives concurrent logins of one account through f's service. Until
// release, every hashing slot is held, so that the attempts are reserved
// (counted or refused) while none is checked yet: the order a real burst
// takes when hashes take tens of milliseconds and reservations one.
type burst struct {
	f        *fixture
	checks   checks
	reserved chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error
	users    []storage.User
}

func newBurst(t *testing.T, f *fixture) *burst {
	t.Helper()
	b := &burst{f: f, reserved: make(chan struct{}, 1024)}
	f.svc.testReserved = func() { b.reserved <- struct{}{} }
	f.svc.testChecked = b.checks.hook
	for range cap(f.svc.slots) {
		if err := f.svc.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// start launches n logins of alice at once, with password(i).
func (b *burst) start(t *testing.T, n int, password func(i int) string) {
	for i := range n {
		b.wg.Go(func() {
			u, err := b.f.svc.Authenticate(t.Context(), "alice", password(i), meta)
			b.mu.Lock()
			defer b.mu.Unlock()
			b.errs = append(b.errs, err)
			if err == nil {
				b.users = append(b.users, u)
			}
		})
	}
}

// awaitReserved waits until n more attempts have been reserved.
func (b *burst) awaitReserved(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for range n {
		select {
		case <-b.reserved:
		case <-timeout:
			t.Fatalf("attempts not reserved within a minute")
		}
	}
}

// finish releases the hashing slots and waits for every login.
func (b *burst) finish(t *testing.T) {
	t.Helper()
	for range cap(b.f.svc.slots) {
		b.f.svc.release()
	}
	b.wg.Wait()
}

// reasons counts auth.login.failed entries by reason.
func (f *fixture) reasons(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range f.audit(t, events.LoginFailed) {
		n[e.data["reason"].(string)]++
	}
	return n
}

// TestConcurrentLoginsCheckAtMostThreshold: 64 logins at once, the right
// password among them, threshold 5. Exactly 5 passwords are checked, every
// caller is refused (the right password too: it arrives while the account
// is locked, or races with the failures that lock it), the account ends
// locked, with one auth.user_locked.
func TestConcurrentLoginsCheckAtMostThreshold(t *testing.T) {
	const (
		n         = 64
		threshold = 5
	)
	cases := []struct {
		name    string
		ordered bool // reserve one at a time, in launch order, so right is its reservation rank
		right   int
	}{
		{"burst/right first", false, 0},
		{"burst/right in the middle", false, n / 2},
		{"burst/right last", false, n - 1},
		{"ordered/right counted first", true, 0},
		{"ordered/right reaches the threshold", true, threshold - 1},
		{"ordered/right after the lock", true, n / 2},
		{"ordered/right last", true, n - 1},
	}
	for _, backend := range backends {
		for _, tc := range cases {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute})
				alice := f.createAlice(t)
				b := newBurst(t, f)
				password := func(i int) string {
					if i == tc.right {
						return alicePassword
					}
					return wrongPassword
				}
				if tc.ordered {
					for i := range n {
						b.start(t, 1, func(int) string { return password(i) })
						b.awaitReserved(t, 1)
					}
				} else {
					b.start(t, n, password)
					b.awaitReserved(t, n)
				}
				b.finish(t)

				for _, err := range b.errs {
					if !errors.Is(err, ErrInvalidCredentials) {
						t.Errorf("Authenticate = %v; want ErrInvalidCredentials", err)
					}
				}
				real, realOK, dummy := b.checks.real.Load(), b.checks.realOK.Load(), b.checks.dummy.Load()
				if real != threshold || dummy != n-threshold {
					t.Errorf("password checks: %d real, %d dummy; want %d, %d", real, dummy, threshold, n-threshold)
				}
				if tc.ordered && (realOK == 1) != (tc.right < threshold) {
					t.Errorf("right password checked %d times; want %v", realOK, tc.right < threshold)
				}
				u := f.user(t, alice.ID)
				if u.FailedLogins != threshold || u.PendingLogins != 0 || !u.LockedUntil.Equal(f.now.Add(15*time.Minute)) {
					t.Errorf("after the burst: failed=%d pending=%d until=%v; want %d, 0, locked 15 min",
						u.FailedLogins, u.PendingLogins, u.LockedUntil, threshold)
				}
				if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
					t.Errorf("auth.login.success entries = %d; want none", len(got))
				}
				if got := f.audit(t, events.UserLocked); len(got) != 1 || got[0].UserID != alice.ID {
					t.Errorf("auth.user_locked entries = %+v; want one for alice", got)
				}
				reasons := f.reasons(t)
				if reasons[ReasonBadPassword] != int(real-realOK) || reasons[ReasonLocked] != n-int(real-realOK) {
					t.Errorf("auth.login.failed reasons = %v; want %d bad_password, the others locked", reasons, real-realOK)
				}
			})
		}
	}
}

// TestConcurrentWrongPasswordsCheckThreshold: the attacker's burst, with no
// help from the test (the hashing slots are free): 64 wrong passwords at
// once get exactly threshold checks, whatever the interleaving.
func TestConcurrentWrongPasswordsCheckThreshold(t *testing.T) {
	const (
		n         = 64
		threshold = 5
	)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: time.Hour})
			alice := f.createAlice(t)
			var c checks
			f.svc.testChecked = c.hook
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { _, errs[i] = f.svc.Authenticate(t.Context(), "alice", wrongPassword, meta) })
			}
			wg.Wait()
			for _, err := range errs {
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("Authenticate = %v; want ErrInvalidCredentials", err)
				}
			}
			if c.real.Load() != threshold {
				t.Errorf("%d concurrent wrong passwords: %d checked; want %d", n, c.real.Load(), threshold)
			}
			if u := f.user(t, alice.ID); u.FailedLogins != threshold || u.PendingLogins != 0 || u.LockedUntil.IsZero() {
				t.Errorf("failed=%d pending=%d until=%v; want %d, 0, locked", u.FailedLogins, u.PendingLogins, u.LockedUntil, threshold)
			}
			if got := f.audit(t, events.UserLocked); len(got) != 1 {
				t.Errorf("auth.user_locked entries = %d; want 1", len(got))
			}
		})
	}
}

// TestConcurrentLoginsAfterFourFailures: 4 failures, then 16 logins at
// once with the right password among them, threshold 5. Only the attempt
// counted fifth is checked; the others are refused as locked. The right
// password succeeds only if it is that attempt: then it is the sequential
// case (threshold-1 failures then the right password), nothing raced it.
func TestConcurrentLoginsAfterFourFailures(t *testing.T) {
	const (
		n         = 16
		threshold = 5
	)
	for _, backend := range backends {
		for _, first := range []string{"wrong first", "right first", "burst"} {
			t.Run(backend+"/"+first, func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute})
				alice := f.createAlice(t)
				for range threshold - 1 {
					if _, err := f.svc.Authenticate(t.Context(), "alice", wrongPassword, meta); !errors.Is(err, ErrInvalidCredentials) {
						t.Fatal(err)
					}
				}
				b := newBurst(t, f)
				switch first {
				case "wrong first", "right first":
					firstPassword := wrongPassword
					if first == "right first" {
						firstPassword = alicePassword
					}
					b.start(t, 1, func(int) string { return firstPassword })
					b.awaitReserved(t, 1)
					b.start(t, n-1, func(i int) string {
						if i == n/2 && first == "wrong first" {
							return alicePassword
						}
						return wrongPassword
					})
					b.awaitReserved(t, n-1)
				case "burst":
					b.start(t, n, func(i int) string {
						if i == n/2 {
							return alicePassword
						}
						return wrongPassword
					})
					b.awaitReserved(t, n)
				}
				b.finish(t)

				real, realOK := b.checks.real.Load(), b.checks.realOK.Load()
				if real != 1 {
					t.Errorf("passwords checked: %d; want 1", real)
				}
				if first != "burst" && (realOK == 1) != (first == "right first") {
					t.Errorf("right password checked %d times; want it checked only when reserved first", realOK)
				}
				success := realOK == 1
				if len(b.users) != int(realOK) || len(b.errs) != n {
					t.Errorf("%d successes of %d; want %d", len(b.users), len(b.errs), realOK)
				}
				for _, err := range b.errs {
					if err != nil && !errors.Is(err, ErrInvalidCredentials) {
						t.Errorf("Authenticate = %v; want nil or ErrInvalidCredentials", err)
					}
				}
				u := f.user(t, alice.ID)
				locks := f.audit(t, events.UserLocked)
				if success {
					if u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() || len(locks) != 0 {
						t.Errorf("after the success: failed=%d pending=%d until=%v, %d locks; want all cleared, none",
							u.FailedLogins, u.PendingLogins, u.LockedUntil, len(locks))
					}
				} else if u.FailedLogins != threshold || u.PendingLogins != 0 || u.LockedUntil.IsZero() || len(locks) != 1 {
					t.Errorf("without success: failed=%d pending=%d until=%v, %d locks; want %d, 0, locked, 1",
						u.FailedLogins, u.PendingLogins, u.LockedUntil, len(locks), threshold)
				}
				if got := f.audit(t, events.LoginSuccess); len(got) != int(realOK) {
					t.Errorf("auth.login.success entries = %d; want %d", len(got), realOK)
				}
				if reasons := f.reasons(t); reasons[ReasonLocked] != n-1 {
					t.Errorf("auth.login.failed reasons = %v; want %d locked", reasons, n-1)
				}
			})
		}
	}
}

// TestSequentialLockout: the sequential rules, at threshold 5, on both stores.
func TestSequentialLockout(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{LockoutThreshold: 5, LockoutDuration: 10 * time.Minute})
			alice := f.createAlice(t)
			ctx := t.Context()
			fail := func(n int) {
				t.Helper()
				for range n {
					if _, err := f.svc.Authenticate(ctx, "alice", wrongPassword, meta); !errors.Is(err, ErrInvalidCredentials) {
						t.Fatalf("Authenticate(wrong) = %v", err)
					}
				}
			}
			// 4 failures then the right password: success, counter reset.
			fail(4)
			if _, err := f.svc.Authenticate(ctx, "alice@example.com", alicePassword, meta); err != nil {
				t.Fatalf("4 failures then the right password = %v; want success", err)
			}
			if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
				t.Errorf("after the success: failed=%d pending=%d until=%v; want cleared", u.FailedLogins, u.PendingLogins, u.LockedUntil)
			}
			if got := f.audit(t, events.UserLocked); len(got) != 0 {
				t.Errorf("auth.user_locked entries = %d; want none", len(got))
			}
			// Username and email are one account: 5 failures, mixed, lock it.
			for i := range 5 {
				login := "alice"
				if i%2 == 1 {
					login = "ALICE@example.com"
				}
				if _, err := f.svc.Authenticate(ctx, login, wrongPassword, meta); !errors.Is(err, ErrInvalidCredentials) {
					t.Fatal(err)
				}
			}
			if u := f.user(t, alice.ID); u.FailedLogins != 5 || !u.LockedUntil.Equal(f.now.Add(10*time.Minute)) {
				t.Errorf("after 5 failures: failed=%d until=%v; want 5, locked 10 min", u.FailedLogins, u.LockedUntil)
			}
			if _, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("right password while locked = %v; want ErrInvalidCredentials", err)
			}
			// The lock expires: counting starts afresh.
			f.now = f.now.Add(10 * time.Minute)
			fail(1)
			if u := f.user(t, alice.ID); u.FailedLogins != 1 || !u.LockedUntil.IsZero() {
				t.Errorf("after expiry and 1 failure: failed=%d until=%v; want 1, unlocked", u.FailedLogins, u.LockedUntil)
			}
			// Locked again, then unlocked by an admin: everything cleared.
			fail(4)
			if _, err := f.svc.Unlock(ctx, alice.ID, meta); err != nil {
				t.Fatal(err)
			}
			if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
				t.Errorf("after Unlock: failed=%d pending=%d until=%v; want cleared", u.FailedLogins, u.PendingLogins, u.LockedUntil)
			}
			if _, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta); err != nil {
				t.Errorf("Authenticate after Unlock = %v", err)
			}
			if got := f.audit(t, events.UserLocked); len(got) != 2 {
				t.Errorf("auth.user_locked entries = %d; want 2", len(got))
			}
		})
	}
}

// A change made while the password is being checked is seen by the outcome.
func TestSettleSeesChangesDuringTheCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fixture, id string) error
		reason string
	}{
		{"disabled", func(f *fixture, id string) error {
			_, err := f.store.UpdateUser(context.Background(), id, func(u *storage.User) error { u.Disabled = true; return nil })
			return err
		}, ReasonDisabled},
		{"deleted", func(f *fixture, id string) error { return f.store.DeleteUser(context.Background(), id) }, ReasonUnknownUser},
		{"locked by others", func(f *fixture, id string) error {
			_, err := f.store.UpdateUser(context.Background(), id, func(u *storage.User) error {
				u.LockedUntil = f.now.Add(time.Minute)
				return nil
			})
			return err
		}, ReasonLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			alice := f.createAlice(t)
			f.svc.testReserved = func() {
				if err := tt.change(f, alice.ID); err != nil {
					t.Error(err)
				}
			}
			if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("Authenticate = %v; want ErrInvalidCredentials", err)
			}
			if got := f.reasons(t); got[tt.reason] != 1 || len(got) != 1 {
				t.Errorf("auth.login.failed reasons = %v; want one %s", got, tt.reason)
			}
			if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
				t.Errorf("auth.login.success entries = %d; want none", len(got))
			}
		})
	}
}

// An attempt whose caller gives up while it waits for a hashing slot stays
// counted, unchecked, and is no longer in flight.
func TestAbandonedAttemptStaysCounted(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrentHashes: 1, LockoutThreshold: 2, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	var c checks
	f.svc.testChecked = c.hook
	if err := f.svc.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Authenticate with no free slot = %v; want DeadlineExceeded", err)
		}
		if u := f.user(t, alice.ID); u.FailedLogins != i || u.PendingLogins != 0 {
			t.Errorf("after %d abandoned attempts: failed=%d pending=%d; want %d, 0", i, u.FailedLogins, u.PendingLogins, i)
		}
	}
	f.svc.release()
	if c.real.Load()+c.dummy.Load() != 0 {
		t.Errorf("abandoned attempts checked %d passwords; want none", c.real.Load()+c.dummy.Load())
	}
	// The second one reached the threshold: the lock stays, and is recorded.
	if u := f.user(t, alice.ID); u.LockedUntil.IsZero() {
		t.Error("the abandoned attempt that reached the threshold did not lock")
	}
	if got := f.audit(t, events.UserLocked); len(got) != 1 {
		t.Errorf("auth.user_locked entries = %d; want 1", len(got))
	}
}

// Attempts left in flight by a process that died cannot block an account
// for more than one lock window.
func TestStaleReservationsExpireWithTheLock(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 5, LockoutDuration: 10 * time.Minute})
	alice := f.createAlice(t)
	// 2 failures resolved, 2 attempts whose process died.
	if _, err := f.store.UpdateUser(t.Context(), alice.ID, func(u *storage.User) error {
		u.FailedLogins, u.PendingLogins = 4, 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The right password reaches the threshold with attempts "in flight":
	// refused, locked for one window (fail safe).
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Authenticate = %v; want ErrInvalidCredentials", err)
	}
	if u := f.user(t, alice.ID); u.LockedUntil.IsZero() {
		t.Fatal("not locked")
	}
	f.now = f.now.Add(10 * time.Minute)
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatalf("Authenticate after the lock = %v; want success", err)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("failed=%d pending=%d until=%v; want cleared", u.FailedLogins, u.PendingLogins, u.LockedUntil)
	}
	// A success below the threshold clears stale attempts too.
	if _, err := f.store.UpdateUser(t.Context(), alice.ID, func(u *storage.User) error { u.PendingLogins = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatal(err)
	}
	if u := f.user(t, alice.ID); u.PendingLogins != 0 {
		t.Errorf("pending after a success = %d; want 0", u.PendingLogins)
	}
}

// Every failed-login path makes the same store calls, in the same order: an
// unknown user's reservation and outcome go to a row that does not exist
// (UpdateUser then runs its statements against no row).
func TestFailuresMakeTheSameStoreCalls(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 1 << 30, LockoutDuration: time.Minute})
	f.createAlice(t)
	paths := append(failurePaths(t, f, 0),
		failurePath{"over-long login", strings.Repeat("m", 4096), alicePassword},
		failurePath{"over-long password", "alice", strings.Repeat("x", 2000)})
	var want []string
	for i, p := range paths {
		f.store.mu.Lock()
		f.store.calls = []string{}
		f.store.mu.Unlock()
		if _, err := f.svc.Authenticate(t.Context(), p.login, p.password, meta); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: Authenticate = %v", p.name, err)
		}
		f.store.mu.Lock()
		got := f.store.calls
		f.store.calls = nil
		f.store.mu.Unlock()
		if i == 0 {
			want = got
			t.Logf("store calls of a failed login: %v", got)
		} else if !slices.Equal(got, want) {
			t.Errorf("%s: store calls %v; a wrong password makes %v", p.name, got, want)
		}
	}
}

// failurePaths creates the accounts of every failed-login path on f (alice
// must exist): a locked and a disabled account, and, when bcryptCost is
// not 0, accounts imported with bcrypt hashes of that cost and of a lower
// one. It returns the paths, named, with the login and password to use.
func failurePaths(t testing.TB, f *fixture, bcryptCost int) []failurePath {
	t.Helper()
	for _, name := range []string{"lena", "dora"} {
		u, err := f.svc.CreateUser(context.Background(), NewUser{Username: name, Email: name + "@example.com", Password: alicePassword}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.UpdateUser(context.Background(), u.ID, func(x *storage.User) error {
			x.Disabled = name == "dora"
			if name == "lena" {
				x.LockedUntil = f.now.Add(24 * time.Hour)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	paths := []failurePath{
		{"wrong password (argon2id)", "alice", "not the password at all"},
		{"unknown user", "mallory", "not the password at all"},
		{"locked", "lena", alicePassword},
		{"disabled", "dora", alicePassword},
	}
	if bcryptCost == 0 {
		return paths
	}
	for _, c := range []int{bcryptCost, bcryptCost - 2} {
		h, err := bcrypt.GenerateFromPassword([]byte(alicePassword), c)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("bcrypt%d", c)
		if _, err := f.svc.ImportUser(context.Background(), Imported{Username: name, Email: name + "@example.com", PasswordHash: string(h)}, meta); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, failurePath{fmt.Sprintf("wrong password (bcrypt %d)", c), name, "not the password at all"})
	}
	return paths
}

type failurePath struct{ name, login, password string }
