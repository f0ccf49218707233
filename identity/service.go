// Package identity holds the rules for users: signup validation, the password
// policy (length after NFKC, repetition, sequences, blocklist), argon2id
// hashing with bcrypt import and rehash, and password authentication with
// lockout. Every change it makes is recorded as a security event in the same
// transaction.
package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// ErrInvalidCredentials is the one answer to a failed login, whatever the
// reason: unknown user, wrong password, locked or disabled account.
var ErrInvalidCredentials = errors.New("identity: invalid credentials")

// Reasons recorded in auth.login.failed. They go to the audit trail only.
const (
	ReasonUnknownUser = "unknown_user"
	ReasonBadPassword = "bad_password"
	ReasonLocked      = "locked"
	ReasonDisabled    = "disabled"
)

// Store is what the service needs from storage.
type Store interface {
	storage.Users
	storage.Transactor
}

// Options configure a Service. Zero values pick defaults.
type Options struct {
	LockoutThreshold int           // failed logins in a row before a lock; 0 turns lockout off
	LockoutDuration  time.Duration // length of a lock
	Blocklist        Blocklist     // common passwords refused at signup; nil for none
	Now              func() time.Time
	Logger           *slog.Logger
	Params           Params // argon2id parameters of new hashes; zero for DefaultParams
	// MaxConcurrentHashes bounds the argon2id computations running at once
	// (each holds Params.Memory); others wait. 0 means GOMAXPROCS: a hash is
	// pure CPU and memory bandwidth, so more at once only adds memory (19 MiB
	// each) and latency, never throughput.
	MaxConcurrentHashes int
}

// Meta describes where a request came from, for the events.
type Meta struct {
	ClientID string
	IP       string
}

// NewUser is an account to create.
type NewUser struct {
	Username string
	Email    string
	Password string
	Roles    []string // RoleUser is always added
}

// Service authenticates and creates users.
type Service struct {
	store     Store
	rec       *events.Recorder
	hasher    *Hasher
	dummy     string // hash verified for unknown users, so they cost the same
	threshold int
	lockFor   time.Duration
	blocklist Blocklist
	now       func() time.Time
	log       *slog.Logger
	slots     chan struct{}
}

// NewService returns a service on store that records events with rec. It
// computes one argon2id hash (the dummy verified for unknown users).
func NewService(store Store, rec *events.Recorder, opts Options) *Service {
	s := &Service{
		store:     store,
		rec:       rec,
		hasher:    NewHasher(opts.Params),
		threshold: opts.LockoutThreshold,
		lockFor:   opts.LockoutDuration,
		blocklist: opts.Blocklist,
		now:       opts.Now,
		log:       opts.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	n := opts.MaxConcurrentHashes
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.slots = make(chan struct{}, n)
	var b [24]byte
	_, _ = rand.Read(b[:])
	dummy, err := s.hasher.Hash(hex.EncodeToString(b[:]))
	if err != nil {
		// Only a broken random source gets here; crypto/rand already aborts then.
		panic("identity: dummy hash: " + err.Error())
	}
	s.dummy = dummy
	return s
}

// Hasher returns the service's password hasher.
func (s *Service) Hasher() *Hasher { return s.hasher }

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("identity: waiting to hash: %w", context.Cause(ctx))
	}
}

func (s *Service) release() { <-s.slots }

// verify checks password against encoded in a hashing slot. When Verify
// refuses early (password too long, unusable hash) it spends the time of a
// real verification on the dummy, so the answer's timing tells nothing.
func (s *Service) verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if err := s.acquire(ctx); err != nil {
		return false, false, err
	}
	defer s.release()
	ok, needsRehash, err = s.hasher.Verify(password, encoded)
	if err != nil {
		_, _, _ = s.hasher.Verify("not the password", s.dummy)
	}
	return ok, needsRehash, err
}

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return s.hasher.Hash(password)
}

// Authenticate checks a password login; login is a username or an email. It
// returns the user, or ErrInvalidCredentials for an unknown user, a wrong
// password, a locked or a disabled account alike, after the same work: one
// password verification, against a dummy hash when the user is unknown. A
// failure increments the user's failed-login counter and locks the account
// for LockoutDuration when it reaches LockoutThreshold; a success clears
// them and rehashes a bcrypt or outdated argon2id hash. Each outcome is
// recorded as an event. Other errors are storage failures.
func (s *Service) Authenticate(ctx context.Context, login, password string, m Meta) (storage.User, error) {
	var (
		u     storage.User
		known bool
	)
	// No username or email is longer than an email may be; skip the lookup.
	if len(login) <= MaxEmailLen {
		var err error
		u, err = s.store.GetUserByLogin(ctx, NormalizeUsername(login))
		switch {
		case err == nil:
			known = true
		case !errors.Is(err, storage.ErrNotFound):
			return storage.User{}, fmt.Errorf("identity: authenticate: %w", err)
		}
	}

	encoded := s.dummy
	if known {
		encoded = u.PasswordHash
	}
	ok, needsRehash, verr := s.verify(ctx, password, encoded)
	if verr != nil {
		if ctx.Err() != nil {
			return storage.User{}, verr
		}
		if known && !errors.Is(verr, ErrPasswordTooLong) {
			s.log.ErrorContext(ctx, "identity: stored password hash unusable", "user_id", u.ID, "error", verr)
		}
		ok = false
	}

	now := s.now()
	switch {
	case !known:
		return storage.User{}, s.fail(ctx, nil, ReasonUnknownUser, m)
	case u.Disabled:
		return storage.User{}, s.fail(ctx, &u, ReasonDisabled, m)
	case u.LockedUntil.After(now):
		return storage.User{}, s.fail(ctx, &u, ReasonLocked, m)
	case !ok:
		return storage.User{}, s.fail(ctx, &u, ReasonBadPassword, m)
	}
	return s.succeed(ctx, u, password, needsRehash, m)
}

// fail records a failed login (and a lock, if this failure causes one) in
// one transaction and returns ErrInvalidCredentials. u is nil for an unknown
// user: the event then names no one.
func (s *Service) fail(ctx context.Context, u *storage.User, reason string, m Meta) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var subject string
		if u != nil {
			subject = u.ID
		}
		if u != nil && reason == ReasonBadPassword {
			var (
				locked bool
				until  time.Time
				count  int
			)
			_, err := s.store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
				now := s.now()
				locked = false
				if !x.LockedUntil.IsZero() && !x.LockedUntil.After(now) {
					// The last lock has expired: count afresh.
					x.FailedLogins, x.LockedUntil = 0, time.Time{}
				}
				x.FailedLogins++
				if s.threshold > 0 && x.FailedLogins >= s.threshold && x.LockedUntil.IsZero() {
					x.LockedUntil = now.Add(s.lockFor)
					locked = true
				}
				count, until = x.FailedLogins, x.LockedUntil
				return nil
			})
			switch {
			case errors.Is(err, storage.ErrNotFound):
				// Deleted meanwhile: nothing to count.
			case err != nil:
				return err
			case locked:
				s.log.WarnContext(ctx, "identity: account locked", "user_id", u.ID, "failed_logins", count, "until", until)
				if err := s.rec.Record(ctx, events.Event{
					Type: events.UserLocked, Subject: u.ID, ClientID: m.ClientID, IP: m.IP,
					Data: map[string]any{"failed_logins": count, "locked_until": until.UTC().Format(time.RFC3339)},
				}); err != nil {
					return err
				}
			}
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.LoginFailed, Subject: subject, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"reason": reason},
		})
	})
	if err != nil {
		return fmt.Errorf("identity: authenticate: record failure: %w", err)
	}
	return ErrInvalidCredentials
}

// succeed clears the lockout state, stores a fresh hash when the old one
// needs it, and records the login, in one transaction.
func (s *Service) succeed(ctx context.Context, u storage.User, password string, needsRehash bool, m Meta) (storage.User, error) {
	var fresh string
	if needsRehash {
		// Hashed before the transaction, so no row stays locked meanwhile.
		h, err := s.hash(ctx, password)
		if err != nil {
			if ctx.Err() != nil {
				return storage.User{}, err
			}
			s.log.WarnContext(ctx, "identity: rehash failed", "user_id", u.ID, "error", err)
		}
		fresh = h
	}
	old := u.PasswordHash
	rehashed := false
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		rehashed = false
		if u.FailedLogins != 0 || !u.LockedUntil.IsZero() || fresh != "" {
			updated, err := s.store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
				x.FailedLogins, x.LockedUntil = 0, time.Time{}
				// Never overwrite a password changed meanwhile.
				if fresh != "" && x.PasswordHash == old {
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
		data := map[string]any{"method": "password"}
		if rehashed {
			data["rehashed"] = true
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.LoginSuccess, Subject: u.ID, ClientID: m.ClientID, IP: m.IP, Data: data,
		})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: authenticate: record success: %w", err)
	}
	if rehashed {
		s.log.InfoContext(ctx, "identity: password rehashed", "user_id", u.ID)
	}
	return u, nil
}

// CreateUser validates nu (ValidateSignup, then the roles), hashes the
// password and, in one transaction, inserts the user and records
// auth.user_created. Invalid input is a *ValidationError; a username or email
// already taken wraps storage.ErrConflict.
func (s *Service) CreateUser(ctx context.Context, nu NewUser, m Meta) (storage.User, error) {
	username, err := ValidateSignup(nu.Username, nu.Email, nu.Password, s.blocklist)
	if err != nil {
		return storage.User{}, err
	}
	roles, err := normalizeRoles(nu.Roles, storage.RoleUser)
	if err != nil {
		return storage.User{}, err
	}
	hash, err := s.hash(ctx, nu.Password)
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: create user: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: create user: id: %w", err)
	}
	now := s.now().UTC()
	u := storage.User{
		ID:           id.String(),
		Username:     username,
		Email:        nu.Email,
		PasswordHash: hash,
		Roles:        roles,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.UserCreated, Subject: u.ID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"username": u.Username, "roles": u.Roles},
		})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: create user: %w", err)
	}
	return u, nil
}
