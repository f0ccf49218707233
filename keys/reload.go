package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authd/authd/storage"
)

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
