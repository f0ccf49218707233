package idlemem

import (
	"context"
	"testing"
	"time"
)

// A burst of work, then quiet: one release at the first quiet interval,
// none while work goes on, none again until enough new work.
func TestReleaseOnceIdleAfterWork(t *testing.T) {
	var allocated uint64
	releases := 0
	r := newReleaser(func() uint64 { return allocated }, func() { releases++ })
	steps := []struct {
		alloc uint64 // allocated during the interval
		want  bool   // released at its end
	}{
		{0, false},                    // idle since start: nothing to give back
		{100 << 20, false},            // busy
		{200 << 20, false},            // busy
		{64 << 10, true},              // quiet after work: release
		{0, false},                    // still idle: once is enough
		{2 << 20, false},              // some work, not quiet
		{0, false},                    // quiet, but too little work since the release
		{DefaultAfter, false},         // work again
		{DefaultIdleBelow - 1, true},  // quiet: release
		{DefaultIdleBelow + 1, false}, // work below the threshold for another
		{DefaultAfter - 1, false},     // more work
		{0, true},                     // quiet after enough work since the last release
	}
	for i, s := range steps {
		allocated += s.alloc
		if got := r.tick(); got != s.want {
			t.Errorf("step %d (allocated %d): released %v; want %v", i, s.alloc, got, s.want)
		}
	}
	if releases != 3 {
		t.Errorf("releases = %d; want 3", releases)
	}
}

// The release's own allocations do not count as work.
func TestReleaseAllocationsAreNotWork(t *testing.T) {
	var allocated uint64
	r := newReleaser(func() uint64 { return allocated }, func() { allocated += 50 << 20 })
	allocated += 100 << 20
	r.tick()
	if !r.tick() {
		t.Fatal("no release at the first quiet interval after work")
	}
	for i := range 3 {
		if r.tick() {
			t.Errorf("quiet interval %d after a release released again", i)
		}
	}
}

// The process's own counter moves, and Run stops with its context.
func TestNewAndRun(t *testing.T) {
	r := New()
	before := r.allocated()
	buf := make([][]byte, 0, 64)
	for range 64 {
		buf = append(buf, make([]byte, 64<<10))
	}
	_ = buf
	if after := r.allocated(); after <= before {
		t.Errorf("allocated %d then %d; want it to grow", before, after)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}
