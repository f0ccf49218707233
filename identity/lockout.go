package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// Lockout, with any number of attempts at once.
//
// An attempt is counted before its password is checked, in one short
// transaction with the user's row locked (reserve, through
// UpdateUserAsyncCommit), before the attempt waits for a hashing slot: a
// burst is counted within milliseconds, while its hashes take tens of
// milliseconds each. The counters live in SQL, so replicas share them.
//
//   - FailedLogins counts the attempts since the last success, expired lock
//     or unlock: those resolved as failures and those in flight.
//   - PendingLogins counts the attempts in flight.
//   - The attempt that brings FailedLogins to the threshold sets LockedUntil
//     at once, before its own check: the attempts after it are refused
//     without a check (the dummy is verified instead), so at most
//     LockoutThreshold passwords are checked per lock window.
//   - A success (settle) clears the counters and the lock, except that it
//     is refused when a lock it did not set is in force (set by attempts
//     that reached the threshold meanwhile), or when it set the lock itself
//     while other attempts were in flight (it raced with the failures that
//     lock the account). The attempt that sets the lock with nothing else in
//     flight is the sequential case, threshold-1 failures then the right
//     password: it succeeds.
//
// A process that dies between reserve and settle leaves PendingLogins too
// high. That cannot block an account for longer than one lock window:
// PendingLogins is reset with the counters when a lock expires, on success
// and by Unlock, and it only matters to the attempt that reaches the
// threshold (which a stale count makes fail safe: refused, locked for one
// LockoutDuration). An attempt whose caller goes away while it waits for a
// hashing slot is released (abandon) but stays counted, its password
// unchecked. A database crash may lose reservations not yet settled (their
// commit does not wait for the disk); a settled attempt's is durable.
//
// The lock's owner is recognised by its value (a microsecond timestamp):
// two locks of one account set within the same microsecond, which only a
// frozen clock produces, would be taken for one another.

// settleTimeout bounds the bookkeeping after the check, which runs even when
// the caller has gone away.
const settleTimeout = 30 * time.Second

// attempt is one login attempt, as reserve counted it.
type attempt struct {
	userID  string    // empty when no user matched
	encoded string    // the hash to check: the user's, or the dummy
	refused string    // why the password is not checked (unknown_user, disabled, locked); empty when it is
	setLock bool      // this reservation reached the threshold and set the lock
	lock    time.Time // the lock it set
	alone   bool      // no other counted attempt was in flight when it was reserved
}

// ownsLock reports whether x's lock is the one a set.
func (a *attempt) ownsLock(x *storage.User) bool { return a.setLock && x.LockedUntil.Equal(a.lock) }

// target is where the attempt's store round trips go: an unknown user's go to an
// id that matches no row, so they cost what a known user's cost.
func (s *Service) target(a attempt) string {
	if a.userID == "" {
		return s.noUser
	}
	return a.userID
}

// reserve looks the user up and counts the attempt, or decides that its
// password will not be checked (unknown user, disabled or locked account).
// Every path runs the same statements: one lookup and one update.
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
	a := attempt{encoded: s.dummy, refused: ReasonUnknownUser}
	// The reservation need not wait for the disk: settle's commit, which
	// does, makes it durable before the attempt's outcome is told. So every
	// path, unknown users' too, waits for one flush.
	_, err := s.store.UpdateUserAsyncCommit(ctx, id, func(x *storage.User) error {
		a = attempt{userID: x.ID, encoded: s.dummy}
		now := s.now()
		if !x.LockedUntil.IsZero() && !x.LockedUntil.After(now) {
			// The lock has expired: count afresh, and forget attempts
			// left in flight by a process that died.
			x.FailedLogins, x.PendingLogins, x.LockedUntil = 0, 0, time.Time{}
		}
		switch {
		case x.Disabled:
			a.refused = ReasonDisabled
		case x.LockedUntil.After(now):
			a.refused = ReasonLocked
		default:
			a.encoded = x.PasswordHash
			a.alone = x.PendingLogins == 0
			x.FailedLogins++
			x.PendingLogins++
			if s.threshold > 0 && x.FailedLogins >= s.threshold {
				// PostgreSQL keeps microseconds: settle compares the stored value.
				a.setLock, a.lock = true, now.Add(s.lockFor).UTC().Truncate(time.Microsecond)
				x.LockedUntil = a.lock
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // not found: unknown, or deleted since the lookup
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
		reason string // why the login is refused; empty on success
		locked bool   // the attempt set the lock, and the lock stays
		count  int
	)
	err := s.store.InTx(sctx, func(ctx context.Context) error {
		reason, locked = a.refused, false
		var err error
		u, err = s.store.UpdateUser(ctx, s.target(a), func(x *storage.User) error {
			if a.refused != "" {
				return nil // nothing was counted; the write keeps the shape of a failure's
			}
			x.PendingLogins = max(x.PendingLogins-1, 0)
			own := a.ownsLock(x)
			switch {
			case !ok:
				reason = ReasonBadPassword
			case x.Disabled: // since the reservation
				reason = ReasonDisabled
			case own && !a.alone:
				reason = ReasonLocked // it raced with the failures that lock the account
			case !own && x.LockedUntil.After(s.now()):
				reason = ReasonLocked // locked by others since the reservation
			default:
				x.FailedLogins, x.PendingLogins, x.LockedUntil = 0, 0, time.Time{}
			}
			locked = own && reason != ""
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
		if locked {
			if err := s.recordLock(ctx, a, count, m); err != nil {
				return err
			}
		}
		if reason != "" {
			return s.rec.Record(ctx, events.Event{
				Type: events.LoginFailed, Subject: a.userID, ClientID: m.ClientID, IP: m.IP,
				Data: map[string]any{"reason": reason},
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
// caller went away while it waited for a hashing slot). The attempt stays
// counted; if it set the lock, the lock stays and is recorded.
func (s *Service) abandon(ctx context.Context, a attempt, m Meta) {
	if a.refused != "" {
		return
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		locked, count := false, 0
		_, err := s.store.UpdateUser(ctx, a.userID, func(x *storage.User) error {
			x.PendingLogins = max(x.PendingLogins-1, 0)
			locked, count = a.ownsLock(x), x.FailedLogins
			return nil
		})
		if err != nil || !locked {
			return err
		}
		return s.recordLock(ctx, a, count, m)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "identity: release login attempt", "user_id", a.userID, "error", err)
	}
}

// releaseQuietly gives back a reservation whose outcome could not be recorded, so
// that it does not count as in flight; it records nothing. Best effort: when
// it fails too, the next expired lock, success or unlock resets the count.
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
}

func (s *Service) recordLock(ctx context.Context, a attempt, count int, m Meta) error {
	s.log.WarnContext(ctx, "identity: account locked", "user_id", a.userID, "failed_logins", count, "until", a.lock)
	return s.rec.Record(ctx, events.Event{
		Type: events.UserLocked, Subject: a.userID, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"failed_logins": count, "locked_until": a.lock.UTC().Format(time.RFC3339)},
	})
}

func (s *Service) recordSuccess(ctx context.Context, userID string, rehashed bool, m Meta) error {
	data := map[string]any{"method": "password"}
	if rehashed {
		data["rehashed"] = true
	}
	return s.rec.Record(ctx, events.Event{
		Type: events.LoginSuccess, Subject: userID, ClientID: m.ClientID, IP: m.IP, Data: data,
	})
}
