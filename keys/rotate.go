package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authd/authd/storage"
)

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
