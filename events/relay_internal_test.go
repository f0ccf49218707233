package events

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base, limit time.Duration
		failures    int
		want        time.Duration
	}{
		{time.Second, time.Minute, 1, time.Second},
		{time.Second, time.Minute, 2, 2 * time.Second},
		{time.Second, time.Minute, 3, 4 * time.Second},
		{time.Second, time.Minute, 6, 32 * time.Second},
		{time.Second, time.Minute, 7, time.Minute},
		{time.Second, time.Minute, 1 << 20, time.Minute}, // no overflow
		{time.Second, time.Second, 5, time.Second},
	} {
		if got := backoff(tc.base, tc.limit, tc.failures); got != tc.want {
			t.Errorf("backoff(%v, %v, %d) = %v; want %v", tc.base, tc.limit, tc.failures, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	const d = time.Second
	lo, hi := d, d
	for range 1000 {
		got := jitter(d)
		if got < 800*time.Millisecond || got >= 1200*time.Millisecond {
			t.Fatalf("jitter(%v) = %v; want within [800ms, 1.2s)", d, got)
		}
		lo, hi = min(lo, got), max(hi, got)
	}
	// 1000 uniform draws all within 10% of d would be a broken jitter.
	if lo > 900*time.Millisecond || hi < 1100*time.Millisecond {
		t.Errorf("jitter(%v) spread over [%v, %v] only; want about [800ms, 1.2s)", d, lo, hi)
	}
	if got := jitter(0); got != 0 {
		t.Errorf("jitter(0) = %v; want 0", got)
	}
}
