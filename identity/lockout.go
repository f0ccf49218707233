package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// Lockout, with any number of attempts at once.
//
// The counters live in the user's row in SQL, so replicas share them:
//
//   - FailedLogins counts the failed password checks since the last success,
//     expired lock or unlock.
//   - PendingLogins counts the checks in flight.
//
// An attempt is admitted to a password check (reserve: one short
// transaction with the row locked) only while FailedLogins+PendingLogins is
// below the threshold. Whatever arrives at once, no more than threshold
// passwords are checked between two successes, so a burst of guesses gets
// threshold checks, not one per request. An attempt that finds the account
// full waits (queue) until a check in flight settles, then tries again; it
// is not counted while it waits, so that a burst of right passwords (a
// client's pool of workers sharing one account) all succeed.
//
// Only a checked wrong password counts as a failure (settle). The failure
// that brings FailedLogins to the threshold locks the account; by the rule
// above no other check is in flight then, so the lock never races a right
// password already admitted. Attempts reserved while the account is locked,
// and those still queued when it locks, are refused without a check (the
// dummy is verified instead, so they cost what a check costs). A success
// clears FailedLogins and the lock.
//
// A process that dies between reserve and settle leaves PendingLogins too
// high. A live attempt settles within pendingLease of its reservation, which
// wrote the row, so counts in flight on a row untouched for longer are
// stale and are forgotten at the next reservation; an unlock forgets them
// too. A database crash may lose reservations not yet settled (their commit
// does not wait for the disk); a settled attempt's outcome is durable.

const (
	// settleTimeout bounds the bookkeeping after the check, which runs even
	// when the caller has gone away.
	settleTimeout = 30 * time.Second
	// slotTimeout bounds an admitted attempt's wait for a hashing slot.
	slotTimeout = 30 * time.Second
	// pendingLease is how long after the last write of its row an attempt
	// in flight is believed alive: more than slotTimeout + settleTimeout.
	pendingLease = 2 * time.Minute
	// defaultQueueTimeout is how long an attempt waits for a full account
	// to admit it before ErrBusy.
	defaultQueueTimeout = 10 * time.Second
	// queuePoll is how soon a queued attempt first looks again when no
	// settle of this process wakes it (the checks in flight run on another
	// replica); each look waits twice as long, up to queuePollMax.
	queuePoll    = 25 * time.Millisecond
	queuePollMax = 200 * time.Millisecond
	// defaultQueueMax bounds the attempts of one account queued in this
	// process; more get ErrBusy at once. A client's pool of workers fits;
	// a flood of one account costs neither memory nor database polls.
	defaultQueueMax = 64
)

// ErrBusy is returned when an account had threshold password checks in
// flight for the whole queue timeout: the caller should retry later (an
// HTTP layer answers 503 with Retry-After). It tells nothing of the
// password.
var ErrBusy = errors.New("identity: too many sign-ins of this account in flight")

// Unavailable reports whether err means "not now, retry later": a store
// outage (storage.Retryable) or an account busy with sign-ins (ErrBusy). An
// HTTP layer answers it 503 with Retry-After, never 500.
func Unavailable(err error) bool { return storage.Retryable(err) || errors.Is(err, ErrBusy) }

// errFull aborts a reservation's write when the account admits no more checks.
var errFull = errors.New("identity: account full")

// attempt is one login attempt, as reserve admitted or refused it.
type attempt struct {
	userID  string // empty when no user matched
	encoded string // the hash to check: the user's, or the dummy
	refused string // why the password is not checked (unknown_user, disabled, locked); empty when it is
}

// target is where the attempt's store round trips go: an unknown user's go to an
// id that matches no row, so they cost what a known user's cost.
func (s *Service) target(a attempt) string {
	if a.userID == "" {
		return s.noUser
	}
	return a.userID
}

// reserve looks the user up and admits the attempt to a check, or decides
// that its password will not be checked (unknown user, disabled or locked
// account). Every path that does not queue runs the same statements: one
// lookup and one update.
func (s *Service) reserve(ctx context.Context, login string) (attempt, error) {
	// No username or email is longer than an email may be: such a login is
	// looked up as "", which matches no one, at the cost of any lookup.
	if len(login) > MaxEmailLen {
		login = ""
	}
	id := s.noUser
	switch u, err := s.store.GetUserByLogin(ctx, NormalizeUsername(login)); {
	case err == nil:
		id = u.ID
	case !errors.Is(err, storage.ErrNotFound):
		return attempt{}, err
	}
	var (
		w       *waiter
		timeout <-chan time.Time
		poll    = queuePoll
	)
	defer func() { s.queue.leave(w) }()
	for {
		a, err := s.tryReserve(ctx, id)
		if !errors.Is(err, errFull) {
			return a, err
		}
		if w == nil {
			// Listen before looking again, so that a settle in between is heard.
			if w = s.queue.join(id, s.queueMax); w == nil {
				return attempt{}, ErrBusy
			}
			timeout = time.After(s.queueTimeout)
			if s.testQueued != nil {
				s.testQueued()
			}
			continue
		}
		select {
		case <-w.ch:
			s.queue.leave(w)
			w = s.queue.join(id, 0)
			poll = queuePoll
		case <-time.After(poll):
			poll = min(2*poll, queuePollMax)
		case <-timeout:
			return attempt{}, ErrBusy
		case <-ctx.Done():
			return attempt{}, fmt.Errorf("identity: waiting to sign in: %w", context.Cause(ctx))
		}
	}
}

// tryReserve is one reservation: errFull when the account admits no more
// checks now (nothing is written then).
func (s *Service) tryReserve(ctx context.Context, id string) (attempt, error) {
	a := attempt{encoded: s.dummy, refused: ReasonUnknownUser}
	// The reservation need not wait for the disk: settle's commit, which
	// does, makes it durable before the attempt's outcome is told. So every
	// path, unknown users' too, waits for one flush.
	_, err := s.store.UpdateUserAsyncCommit(ctx, id, func(x *storage.User) error {
		a = attempt{userID: x.ID, encoded: s.dummy}
		now := s.now()
		if !x.LockedUntil.IsZero() && !x.LockedUntil.After(now) {
			x.FailedLogins, x.LockedUntil = 0, time.Time{} // the lock has expired: count afresh
		}
		if x.PendingLogins > 0 && now.Sub(x.UpdatedAt) > pendingLease {
			x.PendingLogins = 0 // left by a process that died
		}
		switch {
		case x.Disabled:
			a.refused = ReasonDisabled
		case x.LockedUntil.After(now):
			a.refused = ReasonLocked
		case s.threshold > 0 && x.FailedLogins+x.PendingLogins >= s.threshold:
			return errFull
		default:
			a.encoded = x.PasswordHash
			x.PendingLogins++
		}
		return nil
	})
	switch {
	case errors.Is(err, errFull):
		return attempt{}, errFull
	case err != nil && !errors.Is(err, storage.ErrNotFound): // not found: unknown, or deleted since the lookup
		return attempt{}, err
	}
	return a, nil
}

// settle resolves a checked attempt in one transaction: it releases the
// reservation, decides, and records the outcome. ok is whether the password
// matched (false when it was not checked). It returns the user on success,
// ErrInvalidCredentials on any refusal. ctx is the caller's, sctx outlives it.
func (s *Service) settle(ctx, sctx context.Context, a attempt, password string, ok, needsRehash bool, m Meta) (storage.User, error) {
	var (
		u      storage.User
		reason string    // why the login is refused; empty on success
		lock   time.Time // the lock this failure set; zero when none
		count  int
	)
	err := s.store.InTx(sctx, func(ctx context.Context) error {
		reason, lock = a.refused, time.Time{}
		var err error
		u, err = s.store.UpdateUser(ctx, s.target(a), func(x *storage.User) error {
			if a.refused != "" {
				return nil // nothing was counted; the write keeps the shape of a failure's
			}
			x.PendingLogins = max(x.PendingLogins-1, 0)
			now := s.now()
			switch {
			case !ok:
				reason = ReasonBadPassword
				x.FailedLogins++
				if s.threshold > 0 && x.FailedLogins >= s.threshold && !x.LockedUntil.After(now) {
					// PostgreSQL keeps microseconds.
					lock = now.Add(s.lockFor).UTC().Truncate(time.Microsecond)
					x.LockedUntil = lock
				}
			case x.Disabled: // since the reservation
				reason = ReasonDisabled
			case x.LockedUntil.After(now):
				reason = ReasonLocked // locked since the reservation (an admin, or counts forgotten as stale)
			default:
				x.FailedLogins, x.LockedUntil = 0, time.Time{}
			}
			count = x.FailedLogins
			return nil
		})
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if reason == "" {
				reason = ReasonUnknownUser // deleted since the reservation
			}
		case err != nil:
			return err
		}
		if !lock.IsZero() {
			if err := s.recordLock(ctx, a.userID, count, lock, m); err != nil {
				return err
			}
		}
		if reason != "" {
			data := map[string]any{"reason": reason}
			if m.Via != "" {
				data["via"] = m.Via
			}
			return s.rec.Record(ctx, events.Event{
				Type: events.LoginFailed, Subject: a.userID, ClientID: m.ClientID, IP: m.IP, Data: data,
			})
		}
		if ok && needsRehash {
			return nil // recorded with the rehash
		}
		return s.recordSuccess(ctx, u.ID, false, m)
	})
	if err != nil {
		s.releaseQuietly(sctx, a)
		return storage.User{}, fmt.Errorf("identity: authenticate: record outcome: %w", err)
	}
	s.queue.wake(a.userID)
	if reason != "" {
		return storage.User{}, ErrInvalidCredentials
	}
	if needsRehash {
		return s.rehash(ctx, sctx, u, a.encoded, password, m)
	}
	return u, nil
}

// rehash replaces old, a bcrypt or outdated argon2id hash that password
// matched, unless the password changed meanwhile, and records the success.
// The hash is computed only once the success is decided, so that a refused
// right password costs what a wrong one costs.
func (s *Service) rehash(ctx, sctx context.Context, u storage.User, old, password string, m Meta) (storage.User, error) {
	fresh, err := s.hash(ctx, password)
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "identity: rehash failed", "user_id", u.ID, "error", err)
	}
	rehashed := false
	err = s.store.InTx(sctx, func(ctx context.Context) error {
		rehashed = false
		if fresh != "" {
			updated, err := s.store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
				if x.PasswordHash == old { // never overwrite a password changed meanwhile
					x.PasswordHash = fresh
					rehashed = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			u = updated
		}
		return s.recordSuccess(ctx, u.ID, rehashed, m)
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: authenticate: record success: %w", err)
	}
	if rehashed {
		s.log.InfoContext(ctx, "identity: password rehashed", "user_id", u.ID)
	}
	return u, nil
}

// abandon releases a reservation whose password was never checked (the
// caller went away while it waited for a hashing slot). Nothing is counted:
// no password was checked.
func (s *Service) abandon(ctx context.Context, a attempt) {
	s.releaseQuietly(ctx, a)
}

// releaseQuietly gives back a reservation whose outcome could not be
// recorded, or that was never checked, so that it does not count as in
// flight; it records nothing. Best effort: when it fails too, the count is
// forgotten as stale after pendingLease.
func (s *Service) releaseQuietly(ctx context.Context, a attempt) {
	if a.refused != "" {
		return
	}
	_, err := s.store.UpdateUser(ctx, a.userID, func(x *storage.User) error {
		x.PendingLogins = max(x.PendingLogins-1, 0)
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "identity: release login attempt", "user_id", a.userID, "error", err)
	}
	s.queue.wake(a.userID)
}

func (s *Service) recordLock(ctx context.Context, userID string, count int, until time.Time, m Meta) error {
	s.log.WarnContext(ctx, "identity: account locked", "user_id", userID, "failed_logins", count, "until", until)
	return s.rec.Record(ctx, events.Event{
		Type: events.UserLocked, Subject: userID, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"failed_logins": count, "locked_until": until.UTC().Format(time.RFC3339)},
	})
}

func (s *Service) recordSuccess(ctx context.Context, userID string, rehashed bool, m Meta) error {
	data := map[string]any{"method": "password"}
	if rehashed {
		data["rehashed"] = true
	}
	if m.Via != "" {
		data["via"] = m.Via
	}
	return s.rec.Record(ctx, events.Event{
		Type: events.LoginSuccess, Subject: userID, ClientID: m.ClientID, IP: m.IP, Data: data,
	})
}

// loginQueue wakes the attempts of this process queued on an account when
// one of its checks settles here. Entries exist only while someone waits.
type loginQueue struct {
	mu sync.Mutex
	m  map[string]*waiter
}

// waiter is the wake-up of the attempts queued on one account; ch is
// closed by the next settle of that account.
type waiter struct {
	id string
	ch chan struct{}
	n  int
}

// join adds a waiter on the account id, or returns nil when max (if not
// 0) wait on it already.
func (q *loginQueue) join(id string, max int) *waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = make(map[string]*waiter)
	}
	w := q.m[id]
	if w == nil {
		w = &waiter{id: id, ch: make(chan struct{})}
		q.m[id] = w
	}
	if max > 0 && w.n >= max {
		return nil
	}
	w.n++
	return w
}

// leave forgets one waiter of w; w may be nil or already woken.
func (q *loginQueue) leave(w *waiter) {
	if w == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.n--; w.n == 0 && q.m[w.id] == w {
		delete(q.m, w.id)
	}
}

// wake wakes every attempt queued on the account id.
func (q *loginQueue) wake(id string) {
	if id == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.m[id]; w != nil {
		close(w.ch)
		delete(q.m, id)
	}
}
