// Package redis holds authd's state that every replica must share and that
// may be lost without harm: today the per-client-IP rate limits. It is never
// the truth about anything (revocations live in SQL), and a Redis outage
// must never slow a request: every call has a short deadline, and a circuit
// breaker stops calling Redis while it fails, so that callers fall back to
// their own in-process state at once.
package redis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
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
	o.MaxRetries = -1 // no retries: the breaker and the fallback handle failures
	o.ContextTimeoutEnabled = true
	return o
}

// Limiter is a rate limit per key (a client IP) shared by every replica
// through Redis (GCRA, go-redis/redis_rate): N replicas together allow the
// limit once, not N times.
type Limiter struct {
	rl      *redis_rate.Limiter
	limit   redis_rate.Limit
	prefix  string
	breaker *gobreaker.CircuitBreaker[*redis_rate.Result]
}

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
	if err != nil {
		return false, 0, fmt.Errorf("redis: rate limit: %w", err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}
