// Package idlemem hands a process's unused memory back to the operating
// system once the process goes idle after work.
//
// Go's runtime returns freed memory gradually, and an idle process runs no
// collections: the garbage of a burst of logins (argon2id's 19 MiB per hash)
// would stay resident until the forced collection two minutes later. The
// Releaser watches how much the process allocates; when a quiet interval
// follows real work, it collects and releases once (debug.FreeOSMemory).
package idlemem

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Releaser.
const (
	DefaultEvery     = 5 * time.Second
	DefaultIdleBelow = 1 << 20  // allocated in one interval: still idle
	DefaultAfter     = 16 << 20 // allocated since the last release: worth another
)

// Releaser releases memory to the operating system after work, once idle.
// The zero value is not usable: use New.
type Releaser struct {
	every     time.Duration
	idleBelow uint64
	after     uint64
	allocated func() uint64 // bytes allocated since the process started
	release   func()

	last     uint64 // allocated at the previous tick
	released uint64 // allocated at the previous release
}

// New returns a Releaser of the process's own memory, with the defaults.
func New() *Releaser {
	return newReleaser(heapAllocated, debug.FreeOSMemory)
}

func newReleaser(allocated func() uint64, release func()) *Releaser {
	r := &Releaser{every: DefaultEvery, idleBelow: DefaultIdleBelow, after: DefaultAfter, allocated: allocated, release: release}
	r.last = allocated()
	r.released = r.last
	return r
}

// Run checks every interval until ctx is done.
func (r *Releaser) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick looks at the allocations of the interval just ended and releases
// memory when it was quiet after enough work. It reports whether it did.
func (r *Releaser) tick() bool {
	now := r.allocated()
	quiet := now-r.last < r.idleBelow
	r.last = now
	if !quiet || now-r.released < r.after {
		return false
	}
	r.release()
	r.released = r.allocated() // the release's own allocations are not work
	r.last = r.released
	return true
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocated reads the bytes allocated on the heap since the process started.
func heapAllocated() uint64 {
	s := make([]metrics.Sample, len(allocSample))
	copy(s, allocSample)
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
