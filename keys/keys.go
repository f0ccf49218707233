// Package keys manages the keys that sign authd's JWT access tokens (RFC 9068).
//
// A key is in one of three states (storage.KeyState): next keys are published
// in the JWKS before they ever sign, so verifiers that cache the JWKS know them
// in advance; the current key signs; retired keys only verify, and stay
// published until every token they can have signed has expired. Rotate moves
// next to current and current to retired in one storage.Keys.UpdateKeys call,
// so replicas sharing a store never disagree on the outcome; each replica picks
// the change up on its next Reload (Run reloads periodically, and Verify
// reloads once, rate-limited, when it meets an unknown kid).
//
// Private keys are stored as PKCS #8 encrypted with AES-256-GCM under a key
// derived from Options.Secret with HKDF-SHA256; Options.OldSecrets still open
// keys sealed under an earlier secret, and NewManager seals such keys again
// under the current secret.
//
// Changing Options.Alg does not replace existing keys: the current key keeps
// signing with its own algorithm and every published key keeps verifying. The
// next Rotate promotes the existing next key (still of the old algorithm) and
// generates the new next key with the configured algorithm; the rotation after
// that makes a key of the configured algorithm current. Two rotations therefore
// complete an algorithm change, each of them announced in the JWKS first.
package keys

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authd/authd/storage"
)

const (
	// tokenType is the typ header of an access token (RFC 9068 §2.1).
	tokenType = "at+jwt"
	// idTokenType is the typ header of an OpenID Connect id_token: a plain
	// JWT, which Verify refuses, so that an id_token never passes for an
	// access token.
	idTokenType = "JWT"
	// RetireLeeway is added to the published lifetime of a retired key, on top
	// of Options.TokenTTL and Options.ReloadInterval, to absorb clock skew.
	RetireLeeway = 5 * time.Minute
	// DefaultReloadInterval is used when Options.ReloadInterval is zero.
	DefaultReloadInterval = 30 * time.Second
	// unknownKIDReloadEvery rate-limits the reloads Verify triggers on an unknown kid.
	unknownKIDReloadEvery = 5 * time.Second
	// unknownKIDReloadTimeout bounds such a reload.
	unknownKIDReloadTimeout = 5 * time.Second
	// DefaultRotationPeriod is used when Options.RotationPeriod is zero.
	DefaultRotationPeriod = 90 * 24 * time.Hour
	// updateAttempts is how many times an UpdateKeys that failed with
	// storage.ErrSerialization is tried.
	updateAttempts = 3
)

// Errors returned by the package; test them with errors.Is. Every error Verify
// returns matches ErrInvalidToken, and some also match a more precise one.
var (
	ErrInvalidToken     = errors.New("keys: invalid token")
	ErrTokenTooLarge    = errors.New("keys: token too large")
	ErrUnknownKey       = errors.New("keys: unknown signing key")
	ErrInvalidSignature = errors.New("keys: invalid token signature")
	ErrInvalidClaims    = errors.New("keys: claims must be a JSON object")
	ErrNoCurrentKey     = errors.New("keys: no current signing key")
	ErrDecrypt          = errors.New("keys: cannot decrypt private key")
	ErrUnsupportedAlg   = errors.New("keys: unsupported signing algorithm")
)

// errNoNext tells Rotate that the stored set has no next key to promote.
var errNoNext = errors.New("keys: no next key to promote")

// tokenError is a Verify failure: it matches ErrInvalidToken and its reason.
type tokenError struct {
	reason error
	detail string // fixed text, never a part of the token
}

func (e *tokenError) Error() string {
	if e.detail == "" {
		return e.reason.Error()
	}
	return e.reason.Error() + ": " + e.detail
}

func (e *tokenError) Unwrap() []error { return []error{e.reason, ErrInvalidToken} }

func invalid(detail string) error { return &tokenError{reason: ErrInvalidToken, detail: detail} }

// Store is the part of storage.Keys the manager needs.
type Store interface {
	ListKeys(ctx context.Context) ([]storage.SigningKey, error)
	// UpdateKeys replaces the key set with fn's result in one transaction that
	// only one caller (across replicas) runs at a time. fn may be called again
	// when the transaction is retried.
	UpdateKeys(ctx context.Context, fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) error
}

var _ Store = storage.Keys(nil)

// Options configures a Manager.
type Options struct {
	// Alg is the algorithm of new keys: ES256 (P-256, the default), RS256
	// (3072-bit) or EdDSA (Ed25519). See the package documentation for what
	// changing it does to existing keys.
	Alg string
	// Secret encrypts private keys at rest; at least MinSecretLen bytes.
	Secret []byte
	// OldSecrets still decrypt keys sealed under earlier secrets.
	OldSecrets [][]byte
	// TokenTTL is the longest lifetime of a token signed by a key; required.
	// A retired key stays published for TokenTTL + ReloadInterval +
	// RetireLeeway after it stopped signing.
	TokenTTL time.Duration
	// ReloadInterval is how often Run reloads the key set from the store, so
	// that rotations made by other replicas are seen; DefaultReloadInterval
	// when zero. Another replica may sign with a key for up to this long after
	// a rotation retired it.
	ReloadInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives key lifecycle events; nothing is logged when nil.
	Logger *slog.Logger
	// RotationPeriod is how long a key should sign before the next rotation
	// (`authd keys rotate`); DefaultRotationPeriod when zero. authd does not
	// rotate on its own: Status reports when a rotation is due, for alerts.
	RotationPeriod time.Duration
}

// KeyInfo describes a signing key without any private material.
type KeyInfo struct {
	ID          string           `json:"kid"`
	Alg         string           `json:"alg"`
	State       storage.KeyState `json:"state"`
	CreatedAt   time.Time        `json:"created_at"`
	ActivatedAt time.Time        `json:"activated_at,omitzero"`
	RetiredAt   time.Time        `json:"retired_at,omitzero"`
	ExpiresAt   time.Time        `json:"expires_at,omitzero"`
}

// Manager signs and verifies access tokens and rotates the keys doing so. It
// is safe for concurrent use; Sign, Verify and JWKS read an immutable snapshot
// of the key set and take no lock.
type Manager struct {
	store     Store
	sealer    *sealer
	alg       string
	retention time.Duration // how long a retired key stays published
	reload    time.Duration
	rotateDue time.Duration // Options.RotationPeriod
	now       func() time.Time
	log       *slog.Logger

	set atomic.Pointer[keySet]

	// mu serialises Reload, Rotate and the initial load, so an older read of
	// the store never replaces a newer one; it guards the caches below.
	mu      sync.Mutex
	pubs    map[string]*verifyKey // parsed public keys by kid
	current *signerEntry          // signer of the current key

	kidReload     singleflight.Group
	lastKIDReload atomic.Int64 // unix nanoseconds of the last reload for an unknown kid
}

// NewManager loads the key set from store. When the store has no current key
// it creates a current and a next key in one UpdateKeys call; if another
// replica does the same at the same moment, one of them wins and both use its
// keys. Keys that only an old secret opens are sealed again under Secret.
func NewManager(ctx context.Context, store Store, opts Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	alg := cmp.Or(opts.Alg, ES256)
	switch alg {
	case ES256, RS256, EdDSA:
	default:
		return nil, fmt.Errorf("%w %q (want %s, %s or %s)", ErrUnsupportedAlg, alg, ES256, RS256, EdDSA)
	}
	if opts.TokenTTL <= 0 {
		return nil, errors.New("keys: Options.TokenTTL must be positive")
	}
	if opts.ReloadInterval < 0 {
		return nil, errors.New("keys: Options.ReloadInterval must not be negative")
	}
	if opts.RotationPeriod < 0 {
		return nil, errors.New("keys: Options.RotationPeriod must not be negative")
	}
	s, err := newSealer(opts.Secret, opts.OldSecrets)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:     store,
		sealer:    s,
		alg:       alg,
		reload:    cmp.Or(opts.ReloadInterval, DefaultReloadInterval),
		rotateDue: cmp.Or(opts.RotationPeriod, DefaultRotationPeriod),
		now:       opts.Now,
		log:       opts.Logger,
		pubs:      map[string]*verifyKey{},
	}
	m.retention = opts.TokenTTL + m.reload + RetireLeeway
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list keys: %w", err)
	}
	if !hasCurrent(recs) {
		if recs, err = m.createInitial(ctx); err != nil {
			return nil, err
		}
	}
	if err := m.install(recs); err != nil {
		return nil, err
	}
	m.rewrap(ctx, recs)
	return m, nil
}

// JWKS returns the published key set (current, next and retired public keys,
// each with kid, alg and use "sig") and its strong ETag. Both are rendered when
// the key set changes; the caller must not modify body.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.set.Load()
	return s.jwks, s.etag
}

// Alg returns the algorithm of the current key, the one Sign uses. It differs
// from Options.Alg until an algorithm change has been rotated in.
func (m *Manager) Alg() string {
	return m.set.Load().current.alg
}

// Status describes the key that signs now, for metrics and alerts.
type Status struct {
	CurrentKID string
	CurrentAlg string
	// ActivatedAt is when the current key started signing.
	ActivatedAt time.Time
	// RotationDue is ActivatedAt + Options.RotationPeriod: when the next
	// rotation should happen.
	RotationDue time.Time
	// Published is the number of keys in the JWKS.
	Published int
}

// Status reports on the key set in use (this replica's last load of it). It
// reads the snapshot Sign uses and takes no lock.
func (m *Manager) Status() Status {
	s := m.set.Load()
	return Status{
		CurrentKID: s.current.id, CurrentAlg: s.current.alg,
		ActivatedAt: s.activated, RotationDue: s.activated.Add(m.rotateDue),
		Published: len(s.keys),
	}
}

// Keys lists the stored keys, current first, then next, then retired from
// the most recently retired, without private material.
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, KeyInfo{
			ID: r.ID, Alg: r.Alg, State: r.State,
			CreatedAt: r.CreatedAt, ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt, ExpiresAt: r.ExpiresAt,
		})
	}
	slices.SortStableFunc(out, func(a, b KeyInfo) int {
		if c := cmp.Compare(stateRank(a.State), stateRank(b.State)); c != 0 {
			return c
		}
		if c := b.RetiredAt.Compare(a.RetiredAt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return out, nil
}

func stateRank(s storage.KeyState) int {
	switch s {
	case storage.KeyCurrent:
		return 0
	case storage.KeyNext:
		return 1
	case storage.KeyRetired:
		return 2
	}
	return 3
}

// etagOf is the strong ETag of a JWKS body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
