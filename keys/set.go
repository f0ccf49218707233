package keys

import (
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/storage"
)

// keySet is an immutable snapshot of the published keys; Sign, Verify and
// JWKS read it through Manager.set without locking.
type keySet struct {
	current *verifyKey
	// activated is when the current key started signing (its ActivatedAt,
	// else its CreatedAt).
	activated time.Time
	signer    *tokenSigner // signs with current
	keys      map[string]*verifyKey
	jwks      []byte
	etag      string
}

// verifyKey is a parsed public key. It does not depend on the key's state, so
// snapshots share it until the stored public key changes.
type verifyKey struct {
	id  string
	alg string
	pub crypto.PublicKey
	jwk jose.JSONWebKey // public, with kid, alg and use
	raw string          // the stored public JWK, to tell when it changed
}

// signerEntry caches the signer of the current key across reloads, so the
// private key is decrypted only when the current key changes.
type signerEntry struct {
	id     string
	sealed [sha256.Size]byte // hash of the sealed private key it came from
	signer *tokenSigner
}

// install builds a snapshot of recs and publishes it. Called with m.mu held.
func (m *Manager) install(recs []storage.SigningKey) error {
	set, err := m.build(recs)
	if err != nil {
		return err
	}
	prev := m.set.Swap(set)
	if prev != nil && prev.current.id != set.current.id {
		m.log.Info("keys: current signing key changed", "kid", set.current.id, "alg", set.current.alg, "previous_kid", prev.current.id)
	}
	return nil
}

// build parses recs into a snapshot: retired keys past ExpiresAt are left
// out, the current key's private part is decrypted and its signer built.
// Called with m.mu held.
func (m *Manager) build(recs []storage.SigningKey) (*keySet, error) {
	now := m.now()
	var published []*storage.SigningKey
	for i := range recs {
		r := &recs[i]
		switch r.State {
		case storage.KeyCurrent, storage.KeyNext:
		case storage.KeyRetired:
			if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
				continue // every token it signed has expired
			}
		default:
			m.log.Warn("keys: ignoring key in unknown state", "kid", r.ID, "state", string(r.State))
			continue
		}
		published = append(published, r)
	}
	// current first (the most recently activated if the store holds several),
	// then next keys, then retired ones, newest first.
	slices.SortStableFunc(published, func(a, b *storage.SigningKey) int {
		if c := stateRank(a.State) - stateRank(b.State); c != 0 {
			return c
		}
		if c := b.ActivatedAt.Compare(a.ActivatedAt); c != 0 {
			return c
		}
		if c := b.RetiredAt.Compare(a.RetiredAt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	if len(published) == 0 || published[0].State != storage.KeyCurrent {
		return nil, ErrNoCurrentKey
	}

	set := &keySet{keys: make(map[string]*verifyKey, len(published))}
	pubs := make(map[string]*verifyKey, len(published))
	jwks := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(published))}
	for i, r := range published {
		if _, dup := set.keys[r.ID]; dup {
			return nil, fmt.Errorf("keys: duplicate key id %q", r.ID)
		}
		k, err := m.verifyKey(r)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			// A broken next or retired key must not take signing down.
			m.log.Warn("keys: ignoring unusable key", "kid", r.ID, "state", string(r.State), "err", err)
			continue
		}
		if i > 0 && r.State == storage.KeyCurrent {
			m.log.Warn("keys: store holds several current keys; signing with the most recently activated", "kid", r.ID, "signing_kid", published[0].ID)
		}
		set.keys[k.id] = k
		pubs[k.id] = k
		jwks.Keys = append(jwks.Keys, k.jwk)
	}
	set.current = set.keys[published[0].ID]
	set.activated = published[0].ActivatedAt
	if set.activated.IsZero() {
		set.activated = published[0].CreatedAt
	}

	signer, err := m.signerFor(published[0], set.current)
	if err != nil {
		return nil, err
	}
	set.signer = signer
	body, err := json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("keys: render JWKS: %w", err)
	}
	set.jwks, set.etag = body, etagOf(body)
	m.pubs = pubs
	return set, nil
}

// verifyKey returns the parsed public key of r, from the cache when the
// stored JWK has not changed.
func (m *Manager) verifyKey(r *storage.SigningKey) (*verifyKey, error) {
	if k, ok := m.pubs[r.ID]; ok && k.alg == r.Alg && k.raw == string(r.PublicKey) {
		return k, nil
	}
	jwk, err := parsePublic(r.ID, r.Alg, r.PublicKey)
	if err != nil {
		return nil, err
	}
	return &verifyKey{
		id:  r.ID,
		alg: r.Alg,
		pub: jwk.Key,
		jwk: jwk,
		raw: string(r.PublicKey),
	}, nil
}

// signerFor returns the signer of the current key r, decrypting its private
// key unless the cached signer came from the same sealed bytes.
func (m *Manager) signerFor(r *storage.SigningKey, k *verifyKey) (*tokenSigner, error) {
	sum := sha256.Sum256(r.PrivateKey)
	if c := m.current; c != nil && c.id == r.ID && c.sealed == sum {
		return c.signer, nil
	}
	der, _, err := m.sealer.open(r.ID, r.Alg, r.PrivateKey)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	priv, err := parsePrivate(r.ID, r.Alg, der, k.pub)
	if err != nil {
		return nil, err
	}
	signer, err := newTokenSigner(r.ID, r.Alg, priv)
	if err != nil {
		return nil, err
	}
	m.current = &signerEntry{id: r.ID, sealed: sum, signer: signer}
	return signer, nil
}
