// Package identity holds the rules for users: signup validation, the password
// policy (length after NFKC, repetition, sequences, blocklist), argon2id
// hashing with bcrypt import and rehash, and password authentication with
// lockout. Every change it makes is recorded as a security event in the same
// transaction.
package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

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

// Store is what the service needs from storage: users, and browser
// sessions to end them when an account is disabled, deleted or changes
// password.
type Store interface {
	storage.Users
	storage.BrowserSessions
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
	// BcryptPadCost is the bcrypt cost every password check is padded to,
	// so that an account with an imported bcrypt hash of that cost answers
	// in the time of any other (see check). 0 pads nothing until a bcrypt
	// hash is met: the service raises it to the highest cost it sees at
	// import or login. Values are clamped to [4, 16].
	BcryptPadCost int
	// HashObserver, when set, hears how long each password hash and each
	// password check took (for a duration histogram).
	HashObserver HashObserver
	// NoCollection turns off the collection after each hash (see collect):
	// about a fifth more password checks a second on 2 CPUs, against the
	// heap holding the blocks of recent hashes (peak RSS under 16
	// concurrent logins 130-150 MiB instead of about 93). For a process
	// without a memory limit.
	NoCollection bool
}

// HashObserver is told the duration of the service's password hashing: op
// is "hash" (a new argon2id hash: signup, password change, rehash) or
// "verify" (one password check, padded to the work every check does). It is
// called in the hashing slot and must return quickly.
type HashObserver interface {
	ObservePasswordHash(op string, d time.Duration)
}

// observeHash reports the time since start to the hash observer, if any.
func (s *Service) observeHash(op string, start time.Time) {
	if s.hashObs != nil {
		s.hashObs.ObservePasswordHash(op, time.Since(start))
	}
}

// Meta describes where a request came from, for the events.
type Meta struct {
	ClientID string
	IP       string
	// Via is how a password login came, recorded as data.via of
	// auth.login.success and auth.login.failed when set: ViaForm for the
	// browser sign-in page; empty for the token endpoint's password grant
	// (whose events carry no via).
	Via string
}

// ViaForm marks a login made through the browser sign-in page (Meta.Via).
const ViaForm = "form"

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
	hashObs   HashObserver

	queue        loginQueue    // attempts waiting for an account to admit them
	queueTimeout time.Duration // how long they wait before ErrBusy
	queueMax     int           // how many may wait on one account

	collecting   atomic.Bool // a collection after a hash is running (collect)
	noCollection bool        // Options.NoCollection

	noUser      string       // an id no user has: unknown users' store round trips go to it
	bcryptPad   atomic.Int32 // bcrypt cost every check is padded to; 0 for none
	bcryptDummy string       // a bcrypt hash of a random password, at bcrypt.MinCost

	// Test hooks, nil outside tests: after each reservation, when an
	// attempt starts queueing, and after each password check (real: against
	// the account's own hash, not the dummy).
	testReserved func()
	testQueued   func()
	testChecked  func(real, ok bool)
}

// NewService returns a service on store that records events with rec. It
// computes one argon2id hash (the dummy verified for unknown users) and one
// bcrypt hash of the lowest cost (the dummy of the bcrypt padding).
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
		hashObs:   opts.HashObserver,

		noCollection: opts.NoCollection,

		queueTimeout: defaultQueueTimeout,
		queueMax:     defaultQueueMax,
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
	dummy, err := s.hasher.Unmatchable()
	if err != nil {
		// Only a broken random source gets here; crypto/rand already aborts then.
		panic("identity: dummy hash: " + err.Error())
	}
	s.dummy = dummy
	s.noUser = "no-user-" + uuid.NewString() // user ids are UUIDv7 without a prefix
	bd, err := bcrypt.GenerateFromPassword(b[:], bcrypt.MinCost)
	if err != nil {
		panic("identity: dummy bcrypt hash: " + err.Error())
	}
	s.bcryptDummy = string(bd)
	if c := opts.BcryptPadCost; c > 0 {
		s.noteBcryptCost(min(max(c, bcrypt.MinCost), maxBcryptCost))
	}
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

// collectAboveKiB is the argon2id memory from which a collection follows
// every hash (collect): 1 MiB; the test parameters use less.
const collectAboveKiB = 1024

// collect runs a garbage collection after an argon2id computation, in its
// hashing slot. Its memory (19 MiB with the default parameters) is garbage
// the moment the hash returns: collected then, the next hash reuses the
// same pages; left to the pacer, the heap grows to the soft memory limit
// while logins run. Measured on PostgreSQL, 16 connections of password
// logins: peak RSS 149-150 MiB without, 110 MiB with, at the same 43-52
// logins/s. One collection runs at a time: a hash that ends meanwhile
// shares it.
func (s *Service) collect() {
	if s.noCollection || s.hasher.params.Memory < collectAboveKiB || !s.collecting.CompareAndSwap(false, true) {
		return
	}
	runtime.GC()
	s.collecting.Store(false)
}

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	defer s.collect()
	defer s.observeHash("hash", time.Now())
	return s.hasher.Hash(password)
}

// Authenticate checks a password login; login is a username or an email. It
// returns the user, or ErrInvalidCredentials for an unknown user, a wrong
// password, a locked or a disabled account alike, after the same work and
// the same store round trips (see check and reserve). Each outcome is
// recorded as an event. Other errors are storage failures, ErrBusy, or
// ctx's when it ends while the request waits.
//
// Lockout (see lockout.go): an attempt is admitted to a check (reserve)
// only while the account's failures and checks in flight are below
// LockoutThreshold, so that however many arrive at once, at most
// LockoutThreshold passwords are checked between two successes; the others
// wait their turn. The failure that reaches the threshold locks the
// account; a success clears the counter. A bcrypt or outdated argon2id hash
// is replaced after a success.
func (s *Service) Authenticate(ctx context.Context, login, password string, m Meta) (storage.User, error) {
	a, err := s.reserve(ctx, login)
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: authenticate: %w", err)
	}
	if s.testReserved != nil {
		s.testReserved()
	}
	// The attempt is in flight: settle it even if the caller goes away.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, slotTimeout)
	err = s.acquire(actx)
	acancel()
	if err != nil {
		s.abandon(sctx, a)
		return storage.User{}, err
	}
	ok, needsRehash, verr := s.check(password, a.encoded)
	s.collect()
	s.release()
	if verr != nil {
		if a.refused == "" && !errors.Is(verr, ErrPasswordTooLong) {
			s.log.ErrorContext(ctx, "identity: stored password hash unusable", "user_id", a.userID, "error", verr)
		}
		ok = false
	}
	if s.testChecked != nil {
		s.testChecked(a.refused == "", ok)
	}
	return s.settle(ctx, sctx, a, password, ok && a.refused == "", needsRehash, m)
}

// SignupProblems lists every problem of a signup's input, one at most per
// field (username, email, password, in that order), by the rules CreateUser
// applies; empty when there is none. A form shows them all at once;
// CreateUser still checks (and stops at the first).
func (s *Service) SignupProblems(username, email, password string) []*ValidationError {
	var out []*ValidationError
	add := func(err error) {
		var ve *ValidationError
		if errors.As(err, &ve) {
			out = append(out, ve)
		}
	}
	u, err := ValidateUsername(username)
	add(err)
	if err != nil {
		u = NormalizeUsername(username) // still kept out of the password
	}
	add(ValidateEmail(email))
	add(ValidatePassword(password, u, email, s.blocklist))
	return out
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
