// Package redis holds authd's state that every replica must share and that
// may be lost without much harm: the per-client-IP rate limits and the DPoP
// proof ids seen (SQL backs those up while Redis fails). It is never
// the truth about anything (revocations live in SQL), and a Redis outage
// must never slow a request: every call has a short deadline, and a circuit
// breaker stops calling Redis while it fails, so that callers fall back to
// their own in-process state at once.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/authd/authd/storage"
)

// Defaults of the client options and the breaker.
const (
	// CallTimeout bounds one Redis call made on a request's path.
	CallTimeout = 30 * time.Millisecond
	// breakerFailures in a row open the breaker for breakerOpenFor; then one
	// trial call decides whether to close it again.
	breakerFailures = 3
	breakerOpenFor  = 5 * time.Second
)

// ClientOptions tightens go-redis's defaults (seconds of dial and read
// timeouts, retries) so that a Redis outage costs a request milliseconds.
func ClientOptions(o *goredis.Options) *goredis.Options {
	o.DialTimeout = 200 * time.Millisecond
	o.ReadTimeout = CallTimeout
	o.WriteTimeout = CallTimeout
	o.PoolTimeout = CallTimeout
	o.MaxRetries = -1   // no retries: the breaker and the fallback handle failures
	o.DialerRetries = 1 // one dial: its retries would outlast the call deadline
	o.ContextTimeoutEnabled = true
	return o
}

// Logger routes go-redis's own log lines (its pool's dial failures) into
// log as JSON at warn level, at most one line per interval, counting the
// lines dropped meanwhile: an outage is one line a minute, not hundreds.
// go-redis has one logger per process; pass it to goredis.SetLogger once.
type Logger struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	dropped  int
}

// NewLogger returns a Logger writing to log at most once per interval.
func NewLogger(log *slog.Logger, interval time.Duration) *Logger {
	return &Logger{log: log, interval: interval}
}

// Printf implements go-redis's internal.Logging.
func (l *Logger) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...), "similar_lines_dropped", dropped)
}

// BreakerStats is a read-only view of a circuit breaker in front of Redis
// and of the calls it guarded since it was created, for metrics.
type BreakerStats struct {
	// State is "closed" (calls go to Redis), "open" (they do not) or
	// "half-open" (one trial call decides).
	State string
	// Failures counts the calls Redis failed (an error or the call deadline).
	Failures uint64
	// Rejected counts the calls the open breaker kept from Redis.
	Rejected uint64
}

// breakerCounts counts the failures and rejections of breaker calls.
type breakerCounts struct {
	failures atomic.Uint64
	rejected atomic.Uint64
}

// note counts err, the result of a breaker's Execute.
func (c *breakerCounts) note(err error) {
	switch {
	case err == nil:
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		c.rejected.Add(1)
	default:
		c.failures.Add(1)
	}
}

func (c *breakerCounts) stats(state gobreaker.State) BreakerStats {
	return BreakerStats{State: state.String(), Failures: c.failures.Load(), Rejected: c.rejected.Load()}
}

// Limiter is a rate limit per key (a client IP) shared by every replica
// through Redis (GCRA, go-redis/redis_rate): N replicas together allow the
// limit once, not N times.
type Limiter struct {
	rl      *redis_rate.Limiter
	limit   redis_rate.Limit
	prefix  string
	breaker *gobreaker.CircuitBreaker[*redis_rate.Result]
	counts  breakerCounts
}

// Stats reports the limiter's breaker and its failed and rejected calls.
func (l *Limiter) Stats() BreakerStats { return l.counts.stats(l.breaker.State()) }

// NewLimiter allows perMin requests a minute per key (with a burst of
// perMin), under prefix. log hears the breaker open and close.
func NewLimiter(rdb goredis.UniversalClient, prefix string, perMin int, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{
		rl:     redis_rate.NewLimiter(rdb),
		limit:  redis_rate.PerMinute(perMin),
		prefix: prefix + "ratelimit:",
		breaker: gobreaker.NewCircuitBreaker[*redis_rate.Result](gobreaker.Settings{
			Name:        "redis",
			Timeout:     breakerOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerFailures },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				log.Warn("redis: circuit breaker changed state", "from", from.String(), "to", to.String())
			},
		}),
	}
}

// Allow reports whether key may make a request now and, if not, how long to
// wait. An error means Redis could not answer in time (or the breaker is
// open): the caller decides on its own.
func (l *Limiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	res, err := l.breaker.Execute(func() (*redis_rate.Result, error) {
		ctx, cancel := context.WithTimeout(ctx, CallTimeout)
		defer cancel()
		return l.rl.Allow(ctx, l.prefix+key, l.limit)
	})
	l.counts.note(err)
	if err != nil {
		return false, 0, fmt.Errorf("redis: rate limit: %w", err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}

// ProofReplay remembers DPoP proof ids in Redis (SET NX with the proof's
// remaining window), shared by every replica; while Redis fails (or the
// breaker is open) it asks fallback, the SQL store, which every replica
// shares too.
type ProofReplay struct {
	rdb      goredis.UniversalClient
	prefix   string
	breaker  *gobreaker.CircuitBreaker[bool]
	fallback storage.ProofReplay
	counts   breakerCounts
}

// Stats reports the breaker and its failed and rejected calls (each of them
// answered by the fallback).
func (p *ProofReplay) Stats() BreakerStats { return p.counts.stats(p.breaker.State()) }

// NewProofReplay remembers proofs under prefix, falling back to fallback.
func NewProofReplay(rdb goredis.UniversalClient, prefix string, fallback storage.ProofReplay, log *slog.Logger) *ProofReplay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ProofReplay{
		rdb: rdb, prefix: prefix + "dpop:", fallback: fallback,
		breaker: gobreaker.NewCircuitBreaker[bool](gobreaker.Settings{
			Name:        "redis-dpop",
			Timeout:     breakerOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerFailures },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				log.Warn("redis: circuit breaker changed state", "breaker", "dpop", "from", from.String(), "to", to.String())
			},
		}),
	}
}

var _ storage.ProofReplay = (*ProofReplay)(nil)

// RememberProof implements storage.ProofReplay.
func (p *ProofReplay) RememberProof(ctx context.Context, key string, expires time.Time) (bool, error) {
	fresh, err := p.breaker.Execute(func() (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, CallTimeout)
		defer cancel()
		res, err := p.rdb.SetArgs(ctx, p.prefix+key, 1, goredis.SetArgs{Mode: "NX", ExpireAt: expires}).Result()
		if errors.Is(err, goredis.Nil) {
			return false, nil // the key exists: seen before
		}
		return res == "OK", err
	})
	p.counts.note(err)
	if err != nil {
		return p.fallback.RememberProof(ctx, key, expires)
	}
	return fresh, nil
}
