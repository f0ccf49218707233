package verify

import "time"

// clock is the time source of the package's own schedules: the rate limit on
// key-set refetches (MinRefetchInterval), the background refresh, and the
// expiry of cached introspection answers. Every Verifier uses realClock; the
// package's tests substitute a manual clock (export_test.go) so that they
// need not sleep.
//
// Config.Now is deliberately not this clock. It is the clock for judging a
// token's exp, nbf and iat, and callers set it to a fixed instant to check
// recorded tokens: were the caches run on it, a frozen Now would make an
// introspection answer live for ever (a revocation never seen) and stop
// refetches for good. time.Now also carries a monotonic reading, so that a
// step of the wall clock neither stretches nor cuts a cache lifetime.
type clock struct {
	now func() time.Time
	// after is time.After: it wakes the background refresh when the next
	// fetch is due.
	after func(time.Duration) <-chan time.Time
}

var realClock = clock{now: time.Now, after: time.After}
