package identity

import (
	"sync"
	"testing"
	"time"
)

// hashLog is a HashObserver that remembers the operations it heard.
type hashLog struct {
	mu  sync.Mutex
	ops []string
}

func (h *hashLog) ObservePasswordHash(op string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d <= 0 {
		op += "(no duration)"
	}
	h.ops = append(h.ops, op)
}

func (h *hashLog) count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, o := range h.ops {
		if o == op {
			n++
		}
	}
	return n
}

// TestHashObserverForMetrics: every argon2id hash (signup, password change)
// is observed as "hash", every password check (success, failure, unknown
// user, locked account alike) as one "verify", each with its duration.
func TestHashObserverForMetrics(t *testing.T) {
	t.Parallel()
	obs := &hashLog{}
	f := newFixture(t, Options{HashObserver: obs})
	u := f.createAlice(t)
	if n := obs.count("hash"); n != 1 {
		t.Fatalf("after signup: %d hashes observed; want 1 (%v)", n, obs.ops)
	}
	ctx := t.Context()
	_, _ = f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	_, _ = f.svc.Authenticate(ctx, "alice", "wrong password, surely", meta)
	_, _ = f.svc.Authenticate(ctx, "nobody", alicePassword, meta)
	if n := obs.count("verify"); n != 3 {
		t.Errorf("after 3 logins: %d checks observed; want 3 (%v)", n, obs.ops)
	}
	if err := f.svc.ChangePassword(ctx, u.ID, alicePassword, "a brand new passphrase, quite long", meta, nil); err != nil {
		t.Fatal(err)
	}
	if h, v := obs.count("hash"), obs.count("verify"); h != 2 || v != 4 {
		t.Errorf("after a password change: %d hashes, %d checks; want 2, 4 (%v)", h, v, obs.ops)
	}
}
