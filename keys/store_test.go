package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// memStore is an in-memory Store: a mutex around a slice, UpdateKeys runs fn
// under the mutex as a SQL backend runs it in a serialised transaction.
type memStore struct {
	mu   sync.Mutex
	keys []storage.SigningKey

	lists   atomic.Int64 // ListKeys calls
	updates atomic.Int64 // UpdateKeys calls that committed

	// listGate, when set, is called by ListKeys after it read the keys and
	// before it returns them (outside the mutex); tests use it to line
	// callers up.
	listGate func()
	// listErr and updateErrs make the next calls fail.
	listErr    atomic.Pointer[error]
	updateErrs []error
}

var _ Store = (*memStore)(nil)

func (s *memStore) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if p := s.listErr.Load(); p != nil {
		return nil, *p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lists.Add(1)
	s.mu.Lock()
	keys := slices.Clone(s.keys)
	s.mu.Unlock()
	if s.listGate != nil {
		s.listGate()
	}
	return keys, nil
}

func (s *memStore) UpdateKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.updateErrs) > 0 {
		err := s.updateErrs[0]
		s.updateErrs = s.updateErrs[1:]
		return err
	}
	out, err := fn(slices.Clone(s.keys))
	if err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	seen := map[string]bool{}
	for _, k := range out {
		if seen[k.ID] {
			return fmt.Errorf("memstore: key %q: %w", k.ID, storage.ErrConflict)
		}
		seen[k.ID] = true
	}
	s.keys = slices.Clone(out)
	s.updates.Add(1)
	return nil
}

// snapshot returns the stored keys.
func (s *memStore) snapshot() []storage.SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// set replaces the stored keys.
func (s *memStore) set(keys []storage.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = slices.Clone(keys)
}

// byState returns the stored keys in state st.
func (s *memStore) byState(st storage.KeyState) []storage.SigningKey {
	var out []storage.SigningKey
	for _, k := range s.snapshot() {
		if k.State == st {
			out = append(out, k)
		}
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	otherSecret = []byte("fedcba9876543210fedcba9876543210-other-secret")
)

const testTTL = 15 * time.Minute

func testOptions(alg string, clock *fakeClock) Options {
	return Options{
		Alg:            alg,
		Secret:         testSecret,
		TokenTTL:       testTTL,
		ReloadInterval: 30 * time.Second,
		Now:            clock.Now,
	}
}

func newTestManager(t testing.TB, store Store, opts Options) *Manager {
	t.Helper()
	m, err := NewManager(t.Context(), store, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// privateKey decrypts the stored private key of kid, for tests that forge
// tokens with the manager's own key.
func privateKey(t testing.TB, m *Manager, store *memStore, kid string) crypto.Signer {
	t.Helper()
	for _, k := range store.snapshot() {
		if k.ID != kid {
			continue
		}
		der, _, err := m.sealer.open(k.ID, k.Alg, k.PrivateKey)
		if err != nil {
			t.Fatalf("open %s: %v", kid, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatalf("parse %s: %v", kid, err)
		}
		return priv.(crypto.Signer)
	}
	t.Fatalf("no stored key %q", kid)
	return nil
}
