package keys

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// TestStatusForMetrics: Status names the current key, when it started
// signing and when its rotation is due (RotationPeriod, 90 days by
// default); a rotation restarts the clock.
func TestStatusForMetrics(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	store := &memStore{}
	start := clock.Now()
	m := newTestManager(t, store, testOptions(ES256, clock))

	s := m.Status()
	cur := store.byState(storage.KeyCurrent)[0]
	if s.CurrentKID != cur.ID || s.CurrentAlg != ES256 || !s.ActivatedAt.Equal(start) ||
		!s.RotationDue.Equal(start.Add(DefaultRotationPeriod)) || s.Published != 2 {
		t.Fatalf("Status = %+v; want kid %s activated %v, due %v, 2 published", s, cur.ID, start, start.Add(DefaultRotationPeriod))
	}

	clock.Advance(40 * 24 * time.Hour)
	rotated, err := m.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s = m.Status()
	if s.CurrentKID != rotated.ID || !s.ActivatedAt.Equal(clock.Now()) || !s.RotationDue.Equal(clock.Now().Add(DefaultRotationPeriod)) || s.Published != 3 {
		t.Errorf("Status after Rotate = %+v; want kid %s activated now, 3 published", s, rotated.ID)
	}

	opts := testOptions(ES256, clock)
	opts.RotationPeriod = 30 * 24 * time.Hour
	m2 := newTestManager(t, store, opts)
	if s := m2.Status(); !s.RotationDue.Equal(s.ActivatedAt.Add(opts.RotationPeriod)) {
		t.Errorf("RotationDue = %v; want ActivatedAt + RotationPeriod", s.RotationDue)
	}
	opts.RotationPeriod = -time.Hour
	if _, err := NewManager(t.Context(), store, opts); err == nil {
		t.Error("NewManager accepted a negative RotationPeriod")
	}
}
