package dpop_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/dpop"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func remember(t *testing.T, c dpop.ReplayCache, key string, until time.Time) (bool, error) {
	t.Helper()
	return c.Remember(context.Background(), key, until)
}

func TestMemoryReplayCache(t *testing.T) {
	clk := &fakeClock{now: testNow}
	c := dpop.NewMemoryReplayCache(3, clk.Now)
	until := testNow.Add(time.Minute)

	if fresh, err := remember(t, c, "a", until); !fresh || err != nil {
		t.Fatalf("first a = %v, %v; want fresh", fresh, err)
	}
	if fresh, err := remember(t, c, "a", until); fresh || err != nil {
		t.Fatalf("second a = %v, %v; want not fresh, no error", fresh, err)
	}
	if fresh, err := remember(t, c, "b", until.Add(time.Minute)); !fresh || err != nil {
		t.Fatalf("b = %v, %v; want fresh", fresh, err)
	}
	if fresh, err := remember(t, c, "c", until.Add(2*time.Minute)); !fresh || err != nil {
		t.Fatalf("c = %v, %v; want fresh", fresh, err)
	}

	// Full: fails closed, and a key already held is still not fresh.
	if fresh, err := remember(t, c, "d", until); fresh || !errors.Is(err, dpop.ErrCacheFull) {
		t.Fatalf("d in a full cache = %v, %v; want ErrCacheFull", fresh, err)
	}
	if fresh, err := remember(t, c, "b", until); fresh || err != nil {
		t.Fatalf("b again in a full cache = %v, %v; want not fresh, no error", fresh, err)
	}

	// Just before a's expiry it is still held; at its expiry it is freed,
	// and its room goes to d.
	clk.Advance(time.Minute - time.Nanosecond)
	if fresh, _ := remember(t, c, "a", until); fresh {
		t.Fatal("a is fresh before its expiry")
	}
	clk.Advance(time.Nanosecond)
	if fresh, err := remember(t, c, "d", until.Add(time.Hour)); !fresh || err != nil {
		t.Fatalf("d after a expired = %v, %v; want fresh", fresh, err)
	}
	if fresh, err := remember(t, c, "a", until.Add(time.Hour)); fresh || !errors.Is(err, dpop.ErrCacheFull) {
		t.Fatalf("a after expiry in a full cache = %v, %v; want ErrCacheFull", fresh, err)
	}
	clk.Advance(2 * time.Minute) // b and c expire
	for _, k := range []string{"a", "b"} {
		if fresh, err := remember(t, c, k, until.Add(time.Hour)); !fresh || err != nil {
			t.Fatalf("%s after expiries = %v, %v; want fresh", k, fresh, err)
		}
	}
	if fresh, _ := remember(t, c, "d", until.Add(time.Hour)); fresh {
		t.Fatal("d, still held, is fresh")
	}
}

// TestMemoryReplayCacheExpiryOrder remembers keys with random expiries and
// checks, step by step, that exactly the expired ones are forgotten.
func TestMemoryReplayCacheExpiryOrder(t *testing.T) {
	clk := &fakeClock{now: testNow}
	const n = 500
	c := dpop.NewMemoryReplayCache(n, clk.Now)
	r := rand.New(rand.NewPCG(1, 2))
	exp := map[string]time.Time{}
	for i := range n {
		k := fmt.Sprint("k", i)
		exp[k] = testNow.Add(time.Duration(1+r.IntN(600)) * time.Second)
		if fresh, err := remember(t, c, k, exp[k]); !fresh || err != nil {
			t.Fatalf("%s = %v, %v", k, fresh, err)
		}
	}
	for step := 0; step < 650; step += 7 {
		clk.Advance(7 * time.Second)
		now := clk.Now()
		for k, e := range exp {
			fresh, err := remember(t, c, k, now.Add(time.Hour))
			if err != nil {
				t.Fatalf("%s at +%ds: %v", k, step+7, err)
			}
			if expired := !now.Before(e); fresh != expired {
				t.Fatalf("%s (expires %v) at %v: fresh = %v", k, e.Sub(testNow), now.Sub(testNow), fresh)
			}
			if fresh {
				exp[k] = now.Add(time.Hour) // remembered again
			}
		}
	}
}

// TestMemoryReplayCacheConcurrent: many goroutines present the same proofs;
// each is fresh exactly once.
func TestMemoryReplayCacheConcurrent(t *testing.T) {
	c := dpop.NewMemoryReplayCache(0, nil)
	until := time.Now().Add(time.Minute)
	var fresh [50]atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range fresh {
				ok, err := c.Remember(context.Background(), fmt.Sprint("jti-", i), until)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					fresh[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for i := range fresh {
		if n := fresh[i].Load(); n != 1 {
			t.Errorf("jti-%d fresh %d times; want once", i, n)
		}
	}
}

// BenchmarkMemoryReplayCacheFull: a full cache answers in O(log n), not by
// scanning its entries.
func BenchmarkMemoryReplayCacheFull(b *testing.B) {
	now := testNow
	c := dpop.NewMemoryReplayCache(100_000, func() time.Time { return now })
	ctx := context.Background()
	for i := range 100_000 {
		_, _ = c.Remember(ctx, fmt.Sprint(i), now.Add(time.Hour))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Remember(ctx, "new", now.Add(time.Hour)); !errors.Is(err, dpop.ErrCacheFull) {
			b.Fatal(err)
		}
	}
}
