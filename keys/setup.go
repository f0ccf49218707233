package keys

import (
	"context"
	"fmt"
	"slices"

	"github.com/authd/authd/storage"
)

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
