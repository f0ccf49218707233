package identity

import (
	"context"
	"encoding/json"
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
// release, every hashing slot is held, so that the attempts are admitted
// (or refused) and queued while none is checked yet: the order a real burst
// takes when hashes take tens of milliseconds and reservations one.
type burst struct {
	f        *fixture
	checks   checks
	reserved chan struct{}
	queued   chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error
	users    []storage.User
}

func newBurst(t *testing.T, f *fixture) *burst {
	t.Helper()
	b := &burst{f: f, reserved: make(chan struct{}, 1024), queued: make(chan struct{}, 1024)}
	f.svc.testReserved = func() { b.reserved <- struct{}{} }
	f.svc.testQueued = func() { b.queued <- struct{}{} }
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

// await waits until n more attempts have been reserved (admitted or
// refused: reserved) or have started to queue (queued), and checks that no
// attempt did the other meanwhile.
func (b *burst) await(t *testing.T, reserved, queued int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for reserved+queued > 0 {
		select {
		case <-b.reserved:
			reserved--
		case <-b.queued:
			queued--
		case <-timeout:
			t.Fatalf("within a minute: %d more reservations, %d more queued attempts missing", reserved, queued)
		}
		if reserved < 0 || queued < 0 {
			t.Fatalf("an attempt was reserved or queued unexpectedly (%d, %d left)", reserved, queued)
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

// logins lists the outcomes of the logins, oldest first: "success" or the
// reason of the failure. Outcomes of one account are written with its row
// locked, so their order is the order they were decided in.
func (f *fixture) logins(t *testing.T) []string {
	t.Helper()
	entries, err := f.store.ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(entries)
	var out []string
	for _, e := range entries {
		switch e.Type {
		case string(events.LoginSuccess):
			out = append(out, "success")
		case string(events.LoginFailed):
			var d struct{ Reason string }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d.Reason)
		}
	}
	return out
}

// TestConcurrentRightPasswords: the defect this design fixes. A client's
// pool signs one account in from 16 workers at once: every login succeeds,
// nothing is counted as a failure, the account is not locked. With the
// hashing slots held, exactly threshold attempts are admitted and the rest
// queue; without, the checks in flight never exceed the threshold.
func TestConcurrentRightPasswords(t *testing.T) {
	const (
		n         = 16
		threshold = 5
	)
	for _, backend := range backends {
		for _, held := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/slots held %v", backend, held), func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute, MaxConcurrentHashes: n})
				alice := f.createAlice(t)
				var b *burst
				var inFlight, peak atomic.Int32
				if held {
					b = newBurst(t, f)
					b.start(t, n, func(int) string { return alicePassword })
					b.await(t, threshold, n-threshold)
					b.finish(t)
				} else {
					b = &burst{f: f}
					f.svc.testReserved = func() {
						v := inFlight.Add(1)
						for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
						}
					}
					f.svc.testChecked = func(real, ok bool) {
						b.checks.hook(real, ok)
						inFlight.Add(-1)
					}
					b.start(t, n, func(int) string { return alicePassword })
					b.wg.Wait()
					if p := peak.Load(); p > threshold {
						t.Errorf("%d passwords checked at once; the gate admits %d", p, threshold)
					}
					t.Logf("checks at once: %d", peak.Load())
				}
				if len(b.users) != n {
					t.Errorf("%d of %d concurrent right passwords succeeded; errors %v", len(b.users), n, b.errs)
				}
				if real, ok := b.checks.real.Load(), b.checks.realOK.Load(); real != n || ok != n {
					t.Errorf("checks: %d real, %d matched; want %d, %d", real, ok, n, n)
				}
				if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
					t.Errorf("after the burst: failed=%d pending=%d until=%v; want 0, 0, unlocked", u.FailedLogins, u.PendingLogins, u.LockedUntil)
				}
				if got := f.audit(t, events.LoginSuccess); len(got) != n {
					t.Errorf("auth.login.success entries = %d; want %d", len(got), n)
				}
				if got := f.reasons(t); len(got) != 0 {
					t.Errorf("auth.login.failed reasons = %v; want none", got)
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
			if got := f.reasons(t); got[ReasonBadPassword] != threshold || got[ReasonLocked] != n-threshold {
				t.Errorf("auth.login.failed reasons = %v; want %d bad_password, %d locked", got, threshold, n-threshold)
			}
		})
	}
}

// TestConcurrentLoginsWithTheRightPassword: 64 logins admitted one at a
// time in launch order (hashing slots held), one of them with the right
// password, threshold 5. The first 5 are admitted, the other 59 queue.
// Right password admitted: it succeeds (no lock can race it: the admitted
// failures are 4), and exactly 5 failures after it lock the account. Right
// password queued: the 5 admitted failures lock the account, every queued
// attempt is refused unchecked, the right one too.
func TestConcurrentLoginsWithTheRightPassword(t *testing.T) {
	const (
		n         = 64
		threshold = 5
	)
	for _, backend := range backends {
		for _, right := range []int{0, threshold - 1, threshold, n - 1} {
			t.Run(fmt.Sprintf("%s/right %d", backend, right), func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute})
				alice := f.createAlice(t)
				b := newBurst(t, f)
				for i := range n {
					password := wrongPassword
					if i == right {
						password = alicePassword
					}
					b.start(t, 1, func(int) string { return password })
					if i < threshold {
						b.await(t, 1, 0)
					} else {
						b.await(t, 0, 1)
					}
				}
				b.finish(t)

				admitted := right < threshold
				real, realOK := b.checks.real.Load(), b.checks.realOK.Load()
				logins := f.logins(t)
				u := f.user(t, alice.ID)
				if u.FailedLogins != threshold || u.PendingLogins != 0 || !u.LockedUntil.Equal(f.now.Add(15*time.Minute)) {
					t.Errorf("after the burst: failed=%d pending=%d until=%v; want %d, 0, locked 15 min",
						u.FailedLogins, u.PendingLogins, u.LockedUntil, threshold)
				}
				if got := f.audit(t, events.UserLocked); len(got) != 1 || got[0].UserID != alice.ID {
					t.Errorf("auth.user_locked entries = %+v; want one for alice", got)
				}
				if len(logins) != n {
					t.Fatalf("%d outcomes recorded; want %d", len(logins), n)
				}
				if !admitted {
					if real != threshold || realOK != 0 || len(b.users) != 0 {
						t.Errorf("checks %d (%d matched), %d successes; want %d, 0, 0", real, realOK, len(b.users), threshold)
					}
					want := slices.Concat(slices.Repeat([]string{ReasonBadPassword}, threshold), slices.Repeat([]string{ReasonLocked}, n-threshold))
					if !slices.Equal(logins, want) {
						t.Errorf("outcomes %v; want %d bad_password then locked", logins, threshold)
					}
					return
				}
				if realOK != 1 || len(b.users) != 1 {
					t.Errorf("right password: %d matched, %d successes; want 1, 1", realOK, len(b.users))
				}
				// Failures decided before the success are forgotten by it; after
				// it, exactly threshold are checked, then the rest are refused.
				at := slices.Index(logins, "success")
				after := logins[at+1:]
				want := slices.Concat(slices.Repeat([]string{ReasonBadPassword}, threshold), slices.Repeat([]string{ReasonLocked}, len(after)-threshold))
				if at < 0 || at >= threshold || !slices.Equal(after, want) {
					t.Errorf("outcomes %v; want at most %d bad_password, the success, %d bad_password, then locked", logins, threshold-1, threshold)
				}
				if int(real) != at+1+threshold {
					t.Errorf("passwords checked %d; want %d", real, at+1+threshold)
				}
			})
		}
	}
}

// TestConcurrentLoginsAfterFourFailures: 4 failures, then 16 logins at
// once, threshold 5. Exactly one is admitted; the others queue. A wrong
// password admitted first locks the account and every queued attempt is
// refused, the right one too. The right password admitted first succeeds
// (the sequential case), and exactly 5 of the 15 queued wrong passwords are
// checked before the account locks.
func TestConcurrentLoginsAfterFourFailures(t *testing.T) {
	const (
		n         = 16
		threshold = 5
	)
	for _, backend := range backends {
		for _, rightFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/right first %v", backend, rightFirst), func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute})
				alice := f.createAlice(t)
				for range threshold - 1 {
					if _, err := f.svc.Authenticate(t.Context(), "alice", wrongPassword, meta); !errors.Is(err, ErrInvalidCredentials) {
						t.Fatal(err)
					}
				}
				b := newBurst(t, f)
				b.start(t, 1, func(int) string {
					if rightFirst {
						return alicePassword
					}
					return wrongPassword
				})
				b.await(t, 1, 0)
				b.start(t, n-1, func(i int) string {
					if i == n/2 && !rightFirst {
						return alicePassword
					}
					return wrongPassword
				})
				b.await(t, 0, n-1)
				b.finish(t)

				real, realOK := b.checks.real.Load(), b.checks.realOK.Load()
				wantReal, wantOK := 1, 0
				if rightFirst {
					wantReal, wantOK = 1+threshold, 1
				}
				if int(real) != wantReal || int(realOK) != wantOK || len(b.users) != wantOK || len(b.errs) != n {
					t.Errorf("checks %d (%d matched), %d successes of %d; want %d (%d), %d", real, realOK, len(b.users), len(b.errs), wantReal, wantOK, wantOK)
				}
				for _, err := range b.errs {
					if err != nil && !errors.Is(err, ErrInvalidCredentials) {
						t.Errorf("Authenticate = %v; want nil or ErrInvalidCredentials", err)
					}
				}
				u := f.user(t, alice.ID)
				if u.FailedLogins != threshold || u.PendingLogins != 0 || u.LockedUntil.IsZero() {
					t.Errorf("failed=%d pending=%d until=%v; want %d, 0, locked", u.FailedLogins, u.PendingLogins, u.LockedUntil, threshold)
				}
				if got := f.audit(t, events.UserLocked); len(got) != 1 {
					t.Errorf("auth.user_locked entries = %d; want 1", len(got))
				}
				want := slices.Repeat([]string{ReasonBadPassword}, threshold) // the 4 before the burst, then one
				if rightFirst {
					want = slices.Concat(want[:threshold-1], []string{"success"}, slices.Repeat([]string{ReasonBadPassword}, threshold))
				}
				want = append(want, slices.Repeat([]string{ReasonLocked}, threshold-1+n-len(want))...)
				if got := f.logins(t); !slices.Equal(got, want) {
					t.Errorf("outcomes %v;\nwant %v", got, want)
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

// An attempt whose caller gives up while it waits for a hashing slot is
// released unchecked and is not counted.
func TestAbandonedAttemptIsNotCounted(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrentHashes: 1, LockoutThreshold: 2, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	var c checks
	f.svc.testChecked = c.hook
	if err := f.svc.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := f.svc.Authenticate(ctx, "alice", wrongPassword, meta)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Authenticate with no free slot = %v; want DeadlineExceeded", err)
		}
		if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
			t.Errorf("after %d abandoned attempts: failed=%d pending=%d until=%v; want 0, 0, unlocked", i, u.FailedLogins, u.PendingLogins, u.LockedUntil)
		}
	}
	f.svc.release()
	if c.real.Load()+c.dummy.Load() != 0 {
		t.Errorf("abandoned attempts checked %d passwords; want none", c.real.Load()+c.dummy.Load())
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Errorf("Authenticate after abandoned attempts = %v; want success", err)
	}
	if got := f.audit(t, events.UserLocked); len(got) != 0 {
		t.Errorf("auth.user_locked entries = %d; want none", len(got))
	}
}

// A queued attempt gives up when its caller does, or with ErrBusy after the
// queue timeout; neither is counted, and the admitted attempts go on.
func TestQueuedAttemptGivesUp(t *testing.T) {
	const threshold = 2
	f := newFixture(t, Options{LockoutThreshold: threshold, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	b := newBurst(t, f)
	b.start(t, threshold, func(int) string { return alicePassword })
	b.await(t, threshold, 0)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued attempt whose caller gives up = %v; want DeadlineExceeded", err)
	}
	f.svc.queueTimeout = 50 * time.Millisecond
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); !errors.Is(err, ErrBusy) {
		t.Errorf("queued attempt past the queue timeout = %v; want ErrBusy", err)
	}
	b.await(t, 0, 2)
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != threshold {
		t.Errorf("while queued: failed=%d pending=%d; want 0, %d", u.FailedLogins, u.PendingLogins, threshold)
	}
	b.finish(t)
	if len(b.users) != threshold {
		t.Errorf("admitted attempts: %d successes; want %d (%v)", len(b.users), threshold, b.errs)
	}
	if got := f.logins(t); !slices.Equal(got, []string{"success", "success"}) {
		t.Errorf("outcomes %v; want two successes", got)
	}
	if n := len(f.svc.queue.m); n != 0 {
		t.Errorf("%d accounts still in the wake-up map; want none", n)
	}
}

// Replicas share the gate through SQL: an attempt queued on one is admitted
// when a check on the other settles (it polls: no wake-up crosses processes).
func TestQueueAcrossReplicas(t *testing.T) {
	const threshold = 3
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend, Options{LockoutThreshold: threshold, LockoutDuration: time.Minute})
			f.createAlice(t)
			other := NewService(f.store, events.NewRecorder(f.store, f.clock),
				Options{LockoutThreshold: threshold, LockoutDuration: time.Minute, Params: cheap, Now: f.clock})
			b := newBurst(t, f)
			b.start(t, threshold, func(int) string { return alicePassword })
			b.await(t, threshold, 0)
			queued := make(chan struct{}, 1)
			other.testQueued = func() { queued <- struct{}{} }
			done := make(chan error, 1)
			go func() {
				_, err := other.Authenticate(t.Context(), "alice", alicePassword, meta)
				done <- err
			}()
			select {
			case <-queued:
			case <-time.After(time.Minute):
				t.Fatal("the other replica's attempt did not queue")
			}
			b.finish(t)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("the other replica's attempt = %v; want success", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the other replica's attempt was not admitted")
			}
			if got := f.audit(t, events.LoginSuccess); len(got) != threshold+1 {
				t.Errorf("successes %d; want %d", len(got), threshold+1)
			}
		})
	}
}

// Checks left in flight by a process that died are forgotten once the row
// has not been written for pendingLease, and by an unlock.
func TestStaleReservationsAreForgotten(t *testing.T) {
	const threshold = 5
	f := newFixture(t, Options{LockoutThreshold: threshold, LockoutDuration: 10 * time.Minute})
	alice := f.createAlice(t)
	stale := func() {
		t.Helper()
		if _, err := f.store.UpdateUser(t.Context(), alice.ID, func(u *storage.User) error {
			u.FailedLogins, u.PendingLogins = 1, threshold-1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	stale()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authenticate while the account is full = %v; want DeadlineExceeded (queued)", err)
	}
	f.now = f.now.Add(pendingLease - time.Second)
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err = f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authenticate within the lease = %v; want DeadlineExceeded (queued)", err)
	}
	f.now = f.now.Add(2 * time.Second)
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatalf("Authenticate after the lease = %v; want success", err)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("failed=%d pending=%d until=%v; want cleared", u.FailedLogins, u.PendingLogins, u.LockedUntil)
	}
	stale()
	if _, err := f.svc.Unlock(t.Context(), alice.ID, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatalf("Authenticate after an unlock = %v; want success", err)
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

// At most queueMax attempts of one account wait in a process; the next is
// ErrBusy at once, uncounted, and the waiting ones go on.
func TestQueueIsBounded(t *testing.T) {
	const threshold = 1
	f := newFixture(t, Options{LockoutThreshold: threshold, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	f.svc.queueMax = 3
	b := newBurst(t, f)
	b.start(t, threshold, func(int) string { return alicePassword })
	b.await(t, threshold, 0)
	b.start(t, 3, func(int) string { return alicePassword })
	b.await(t, 0, 3)
	start := time.Now()
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); !errors.Is(err, ErrBusy) {
		t.Errorf("attempt beyond the queue = %v; want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the attempt beyond the queue waited %v; want an answer at once", d)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != threshold {
		t.Errorf("failed=%d pending=%d; want 0, %d", u.FailedLogins, u.PendingLogins, threshold)
	}
	b.finish(t)
	if len(b.users) != threshold+3 {
		t.Errorf("%d successes; want %d (errors %v)", len(b.users), threshold+3, b.errs)
	}
}
