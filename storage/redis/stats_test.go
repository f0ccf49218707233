package redis_test

import (
	"context"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authd/authd/storage/redis"
)

// memReplay is a fallback that remembers nothing.
type memReplay struct{}

func (memReplay) RememberProof(context.Context, string, time.Time) (bool, error) { return true, nil }

// TestBreakerStatsForMetrics: with Redis unreachable, Stats counts the
// failed calls until the breaker opens, then the calls it rejects, and
// reports the open state; no Redis server is needed.
func TestBreakerStatsForMetrics(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: every dial is refused
	rdb := goredis.NewClient(redis.ClientOptions(&goredis.Options{Addr: addr}))
	t.Cleanup(func() { rdb.Close() })

	l := redis.NewLimiter(rdb, "stats:", 10, nil)
	p := redis.NewProofReplay(rdb, "stats:", memReplay{}, nil)
	if s := l.Stats(); s != (redis.BreakerStats{State: "closed"}) {
		t.Fatalf("a new limiter's Stats = %+v; want closed, no failures", s)
	}
	for range 5 {
		if _, _, err := l.Allow(t.Context(), "192.0.2.1"); err == nil {
			t.Fatal("Allow succeeded without Redis")
		}
		if fresh, err := p.RememberProof(t.Context(), "jti", time.Now().Add(time.Minute)); err != nil || !fresh {
			t.Fatalf("RememberProof = %v, %v; want the fallback's answer", fresh, err)
		}
	}
	for name, s := range map[string]redis.BreakerStats{"limiter": l.Stats(), "dpop": p.Stats()} {
		if s.State != "open" || s.Failures != 3 || s.Rejected != 2 {
			t.Errorf("%s Stats = %+v; want open after 3 failures, 2 calls rejected", name, s)
		}
	}
}
