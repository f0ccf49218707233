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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authd/authd/storage"
)

const (
	// tokenType is the typ header of an access token (RFC 9068 §2.1).
	tokenType = "at+jwt"
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

func hasCurrent(recs []storage.SigningKey) bool {
	return slices.ContainsFunc(recs, func(k storage.SigningKey) bool { return k.State == storage.KeyCurrent })
}

// createInitial stores a current and a next key unless, inside the
// transaction, a current key turns out to exist already. It returns the set
// as stored.
func (m *Manager) createInitial(ctx context.Context) ([]storage.SigningKey, error) {
	// Generate outside the transaction: an RSA key takes a while.
	cur, err := m.newRecord(m.alg)
	if err != nil {
		return nil, err
	}
	next, err := m.newRecord(m.alg)
	if err != nil {
		return nil, err
	}
	var (
		result  []storage.SigningKey
		created bool
	)
	err = m.update(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		if hasCurrent(old) { // another replica won
			result, created = old, false
			return old, nil
		}
		now := m.now()
		c, n := cur, next
		c.State, c.CreatedAt, c.ActivatedAt = storage.KeyCurrent, now, now
		n.State, n.CreatedAt = storage.KeyNext, now
		out := make([]storage.SigningKey, 0, len(old)+2)
		for _, k := range old {
			// A next key without a current one never signed anything: drop it.
			if k.State == storage.KeyRetired {
				out = append(out, k)
			}
		}
		out = append(out, c, n)
		result, created = out, true
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("keys: create initial keys: %w", err)
	}
	if created {
		m.log.Info("keys: created initial signing keys", "current_kid", cur.ID, "next_kid", next.ID, "alg", m.alg)
	}
	return result, nil
}

// rewrap seals again, under the primary secret, the current and next keys
// that only an old secret opens, so the old secret can be dropped without a
// key rotation. Failures are logged: the keys keep working as they are.
func (m *Manager) rewrap(ctx context.Context, recs []storage.SigningKey) {
	resealed := map[string]storage.SigningKey{} // kid -> record with the new sealed key
	for _, r := range recs {
		if r.State != storage.KeyCurrent && r.State != storage.KeyNext {
			continue
		}
		der, primary, err := m.sealer.open(r.ID, r.Alg, r.PrivateKey)
		if err != nil {
			m.log.Warn("keys: private key cannot be decrypted with the configured secrets", "kid", r.ID, "state", string(r.State), "err", err)
			continue
		}
		if !primary {
			sealed, err := m.sealer.seal(r.ID, r.Alg, der)
			if err == nil {
				r.PrivateKey = sealed
				resealed[r.ID] = r
			}
		}
		clear(der)
	}
	if len(resealed) == 0 {
		return
	}
	// Compare against what was opened, so a key changed meanwhile is left alone.
	opened := map[string][]byte{}
	for _, r := range recs {
		opened[r.ID] = r.PrivateKey
	}
	var result []storage.SigningKey
	err := m.update(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		out := slices.Clone(old)
		for i, k := range out {
			if n, ok := resealed[k.ID]; ok && string(k.PrivateKey) == string(opened[k.ID]) {
				out[i].PrivateKey = n.PrivateKey
			}
		}
		result = out
		return out, nil
	})
	if err != nil {
		m.log.Warn("keys: sealing keys under the current secret failed", "err", err)
		return
	}
	if err := m.install(result); err != nil {
		m.log.Warn("keys: reload after sealing keys under the current secret failed", "err", err)
		return
	}
	m.log.Info("keys: sealed private keys under the current secret", "count", len(resealed))
}

// update runs UpdateKeys, trying again when the store reports a
// serialization failure.
func (m *Manager) update(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	for attempt := 1; ; attempt++ {
		err := m.store.UpdateKeys(ctx, fn)
		if err == nil || !errors.Is(err, storage.ErrSerialization) || attempt == updateAttempts {
			return err
		}
		t := time.NewTimer(time.Duration(attempt) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Sign returns a compact JWS over claims, which must be a JSON object, signed
// with the current key; the header holds alg, kid and typ "at+jwt".
func (m *Manager) Sign(ctx context.Context, claims []byte) (string, error) {
	if len(claims) == 0 || claims[0] != '{' || !json.Valid(claims) {
		return "", ErrInvalidClaims
	}
	set := m.set.Load()
	token, err := set.signer.sign(claims)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	if len(token) > MaxTokenSize {
		return "", fmt.Errorf("%w: a token of %d bytes exceeds MaxTokenSize", ErrInvalidClaims, len(token))
	}
	return token, nil
}

// Verify checks that token is a compact JWS signed by one of the published
// keys and returns its payload and the kid that signed it. The header must
// hold exactly alg, kid and typ: alg must be the algorithm of the key kid
// names, typ "at+jwt" or "application/at+jwt" (any case). Any other header
// parameter (jku, x5u, x5c, jwk, crit, ...) is refused, as is a token larger
// than MaxTokenSize. An unknown kid makes Verify reload the key set once (at
// most once every few seconds across all callers) before failing with
// ErrUnknownKey. Verify checks no claim: exp, nbf, iss, aud are the caller's.
//
// Every segment must be canonical base64url, so a token has one spelling;
// but an ECDSA signature (r, s) has a twin (r, n-s) that verifies too, so
// identify tokens by their jti, never by their string or signature.
func (m *Manager) Verify(ctx context.Context, token string) (claims []byte, kid string, err error) {
	if len(token) > MaxTokenSize {
		return nil, "", &tokenError{reason: ErrTokenTooLarge}
	}
	enc, reason := splitCompact(token)
	if reason != "" {
		return nil, "", invalid(reason)
	}
	var buf [maxHeaderDecoded]byte
	raw, ok := decodeSegment(buf[:], enc)
	if !ok {
		return nil, "", invalid("header too large")
	}
	h, reason := scanHeader(raw)
	if reason != "" {
		return nil, "", invalid(reason)
	}
	if !typOK(h.typ) {
		return nil, "", invalid("typ is not at+jwt")
	}
	k := m.set.Load().keys[string(h.kid)]
	if k == nil {
		if k = m.reloadForKID(ctx, string(h.kid)); k == nil {
			return nil, "", &tokenError{reason: ErrUnknownKey}
		}
	}
	if string(h.alg) != k.alg {
		return nil, "", invalid("alg does not match the key")
	}

	// splitCompact accepted exactly three canonical segments.
	dot1 := len(enc)
	dot2 := strings.LastIndexByte(token, '.')
	if !checkSignature(k, token[:dot2], token[dot2+1:]) {
		return nil, "", &tokenError{reason: ErrInvalidSignature}
	}
	payloadEnc := token[dot1+1 : dot2]
	payload := make([]byte, base64.RawURLEncoding.DecodedLen(len(payloadEnc)))
	payload, ok = decodeSegment(payload, payloadEnc)
	if !ok {
		return nil, "", invalid("malformed JWS")
	}
	return payload, k.id, nil
}

// reloadForKID reloads the key set for a kid the snapshot lacks, at most once
// every unknownKIDReloadEvery whatever the number of callers, and returns the
// key if it is now known.
func (m *Manager) reloadForKID(ctx context.Context, kid string) *verifyKey {
	limited := func() bool {
		now, last := m.now().UnixNano(), m.lastKIDReload.Load()
		return last != 0 && now >= last && now-last < int64(unknownKIDReloadEvery)
	}
	if limited() { // the cheap answer to a flood of made-up kids
		return nil
	}
	ch := m.kidReload.DoChan("reload", func() (any, error) {
		if limited() {
			return nil, nil
		}
		// Shared by every waiting caller: one caller's cancellation must not fail the others.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unknownKIDReloadTimeout)
		defer cancel()
		err := m.Reload(rctx)
		// Stamped when done: callers arriving meanwhile wait for this reload
		// instead of being turned away by the limit.
		m.lastKIDReload.Store(m.now().UnixNano())
		if err != nil {
			m.log.Warn("keys: reload for an unknown kid failed", "err", err)
		}
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil
	}
	return m.set.Load().keys[kid]
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

// Rotate makes the next key current, retires the current key (it stays
// published until RetiredAt + TokenTTL + ReloadInterval + RetireLeeway), drops
// retired keys past their ExpiresAt and adds a new next key of the configured
// algorithm, all in one UpdateKeys call. It returns the new current key with
// PrivateKey cleared.
func (m *Manager) Rotate(ctx context.Context) (storage.SigningKey, error) {
	fresh, err := m.newRecord(m.alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	var spare *storage.SigningKey // becomes current when the store has no next key
	for {
		cur, err := m.rotateOnce(ctx, fresh, spare)
		if errors.Is(err, errNoNext) && spare == nil {
			s, err := m.newRecord(m.alg)
			if err != nil {
				return storage.SigningKey{}, err
			}
			spare = &s
			continue
		}
		if err != nil {
			return storage.SigningKey{}, err
		}
		cur.PrivateKey = nil
		return cur, nil
	}
}

func (m *Manager) rotateOnce(ctx context.Context, fresh storage.SigningKey, spare *storage.SigningKey) (storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		result  []storage.SigningKey
		cur     storage.SigningKey
		retired []string
		dropped int
	)
	err := m.update(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		var err error
		result, cur, retired, dropped, err = m.rotated(old, fresh, spare, m.now())
		return result, err
	})
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: rotate: %w", err)
	}
	if err := m.install(result); err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: rotate: stored, but loading the new set failed: %w", err)
	}
	m.log.Info("keys: rotated signing keys", "current_kid", cur.ID, "alg", cur.Alg, "retired_kids", retired, "next_kid", fresh.ID, "next_alg", fresh.Alg, "dropped", dropped)
	return cur, nil
}

// rotated computes the key set after a rotation of old at now.
func (m *Manager) rotated(old []storage.SigningKey, fresh storage.SigningKey, spare *storage.SigningKey, now time.Time) (out []storage.SigningKey, cur storage.SigningKey, retired []string, dropped int, err error) {
	var nexts []storage.SigningKey
	out = make([]storage.SigningKey, 0, len(old)+1)
	for _, k := range old {
		switch k.State {
		case storage.KeyNext:
			nexts = append(nexts, k)
		case storage.KeyCurrent:
			k.State = storage.KeyRetired
			k.RetiredAt, k.ExpiresAt = now, now.Add(m.retention)
			retired = append(retired, k.ID)
			out = append(out, k)
		case storage.KeyRetired:
			if k.ExpiresAt.IsZero() {
				k.ExpiresAt = cmp.Or(k.RetiredAt, now).Add(m.retention)
			}
			if !now.Before(k.ExpiresAt) {
				dropped++
				continue
			}
			out = append(out, k)
		default:
			m.log.Warn("keys: dropping key in unknown state", "kid", k.ID, "state", string(k.State))
			dropped++
		}
	}
	switch {
	case len(nexts) > 0:
		// Promote the oldest next key: it has been published the longest.
		slices.SortStableFunc(nexts, func(a, b storage.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
		cur = nexts[0]
		// Nothing signed with the other next keys; drop them.
		dropped += len(nexts) - 1
		der, _, err := m.sealer.open(cur.ID, cur.Alg, cur.PrivateKey)
		if err != nil {
			return nil, storage.SigningKey{}, nil, 0, err
		}
		// Check it before it signs, and seal it under the current secret.
		pub, perr := parsePublic(cur.ID, cur.Alg, cur.PublicKey)
		if perr == nil {
			_, perr = parsePrivate(cur.ID, cur.Alg, der, pub.Key)
		}
		if perr == nil {
			cur.PrivateKey, perr = m.sealer.seal(cur.ID, cur.Alg, der)
		}
		clear(der)
		if perr != nil {
			return nil, storage.SigningKey{}, nil, 0, perr
		}
	case spare != nil:
		cur = *spare
		cur.CreatedAt = now
	default:
		return nil, storage.SigningKey{}, nil, 0, errNoNext
	}
	cur.State, cur.ActivatedAt, cur.RetiredAt, cur.ExpiresAt = storage.KeyCurrent, now, time.Time{}, time.Time{}
	n := fresh
	n.State, n.CreatedAt = storage.KeyNext, now
	out = append(out, cur, n)
	return out, cur, retired, dropped, nil
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

// Reload reads the key set from the store and makes it the one Sign, Verify
// and JWKS use. On error the previous set stays in use.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: reload: %w", err)
	}
	return m.install(recs)
}

// Run reloads the key set every ReloadInterval until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("keys: periodic reload failed", "err", err)
			}
		}
	}
}

// etagOf is the strong ETag of a JWKS body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
