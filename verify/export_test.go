package verify

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// NewWithClock is New with clk in place of the real clock for the refetch
// rate limit, the background refresh and the introspection cache.
// Config.Now stays the clock of exp, nbf and iat.
func NewWithClock(ctx context.Context, cfg Config, clk *TestClock) (*Verifier, error) {
	return newRemote(ctx, cfg, clk.clock())
}

// TestClock is a clock that moves only when told to. Its timers fire when
// Advance reaches their deadline. It is safe for concurrent use.
type TestClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []testTimer
	changed chan struct{} // closed, then replaced, when a timer is armed
}

type testTimer struct {
	at time.Time
	ch chan time.Time
}

// NewTestClock returns a TestClock reading start.
func NewTestClock(start time.Time) *TestClock {
	return &TestClock{now: start, changed: make(chan struct{})}
}

func (c *TestClock) clock() clock { return clock{now: c.Now, after: c.After} }

// Now reads the clock.
func (c *TestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward and fires the timers that are then due.
func (c *TestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(tm testTimer) bool {
		if tm.at.After(c.now) {
			return false
		}
		tm.ch <- c.now // buffered, sent once
		return true
	})
}

// After is time.After on this clock.
func (c *TestClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, testTimer{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Pending reports how many timers wait for a later time.
func (c *TestClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitTimer waits until some goroutine has armed a timer that has not fired,
// and returns the earliest such deadline. It fails t after 10s: the code
// under test never armed one.
func (c *TestClock) WaitTimer(t testing.TB) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.timers) > 0 {
			at := c.timers[0].at
			for _, tm := range c.timers[1:] {
				if tm.at.Before(at) {
					at = tm.at
				}
			}
			c.mu.Unlock()
			return at
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no timer armed within 10s")
		}
	}
}
