package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authd/authd/storage/redis"
	"github.com/authd/authd/storage/storagetest"
)

// warmUp calls fn until it succeeds (a first call dials and may miss the
// 30 ms deadline on a loaded machine; if the breaker opened meanwhile it
// waits for it to half-open).
func warmUp(t *testing.T, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis never answered within the deadline: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	rdb := goredis.NewClient(redis.ClientOptions(opts))
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Two replicas (two clients, one prefix) share one limit: together they
// allow it exactly once.
func TestLimiterIsShared(t *testing.T) {
	url, prefix := storagetest.RedisURL(t)
	a := redis.NewLimiter(newClient(t, url), prefix, 5, nil)
	b := redis.NewLimiter(newClient(t, url), prefix, 5, nil)
	// A first call dials and loads the script: on a loaded machine it may
	// miss the 30 ms deadline (and fall back, by design). Warm both up on
	// another key so that the calls counted below reach Redis.
	for _, l := range []*redis.Limiter{a, b} {
		warmUp(t, func() error { _, _, err := l.Allow(t.Context(), "warm-up"); return err })
	}
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, wait, err := l.Allow(t.Context(), "192.0.2.1")
		if err != nil {
			t.Fatalf("Allow #%d: %v", i, err)
		}
		if ok {
			allowed++
		} else if wait <= 0 || wait > time.Minute {
			t.Errorf("Allow #%d refused with retry-after %v", i, wait)
		}
	}
	if allowed != 5 {
		t.Errorf("two replicas allowed %d of 10 requests; want exactly 5 (the limit, once)", allowed)
	}
	if ok, _, err := a.Allow(t.Context(), "192.0.2.2"); err != nil || !ok {
		t.Errorf("another address: %v, %v; want allowed", ok, err)
	}
}

// Redis unreachable (a black hole: connections hang, nothing is refused):
// Allow fails within its short deadline, then the breaker opens and it
// fails at once, so requests never wait on Redis.
func TestLimiterOutageIsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	l := redis.NewLimiter(newClient(t, "redis://"+ln.Addr().String()), "down:", 5, nil)
	var took []time.Duration
	for i := range 50 {
		start := time.Now()
		if _, _, err := l.Allow(t.Context(), "192.0.2.1"); err == nil {
			t.Fatalf("Allow #%d against a black hole succeeded", i)
		}
		took = append(took, time.Since(start))
	}
	// The first calls each wait for the call deadline; once the breaker is
	// open, none does.
	for i, d := range took[:3] {
		if d > 10*redis.CallTimeout {
			t.Errorf("call %d took %v; want about the %v deadline", i, d, redis.CallTimeout)
		}
	}
	rest := slices.Clone(took[3:])
	slices.Sort(rest)
	t.Logf("black-holed Redis: first calls %v, then p50 %v, max %v", took[:3], rest[len(rest)/2], rest[len(rest)-1])
	if rest[len(rest)-1] > redis.CallTimeout/2 {
		t.Errorf("with the breaker open a call took %v; want no wait on Redis", rest[len(rest)-1])
	}
}

// countingReplay is a fallback that counts its calls.
type countingReplay struct{ calls int }

func (c *countingReplay) RememberProof(context.Context, string, time.Time) (bool, error) {
	c.calls++
	return true, nil
}

// Proof ids are remembered once across replicas; with Redis unreachable the
// fallback answers.
func TestProofReplay(t *testing.T) {
	url, prefix := storagetest.RedisURL(t)
	fb := &countingReplay{}
	// Clients with a connection already made: a first call's dial may miss
	// the 30 ms deadline on a loaded machine (and fall back, by design).
	warm := func() *goredis.Client {
		rdb := newClient(t, url)
		warmUp(t, func() error { return rdb.Ping(t.Context()).Err() })
		return rdb
	}
	a := redis.NewProofReplay(warm(), prefix, fb, nil)
	b := redis.NewProofReplay(warm(), prefix, fb, nil)
	exp := time.Now().Add(time.Minute)
	if fresh, err := a.RememberProof(t.Context(), "jti-1", exp); err != nil || !fresh {
		t.Fatalf("first RememberProof = %v, %v; want true", fresh, err)
	}
	if fresh, err := b.RememberProof(t.Context(), "jti-1", exp); err != nil || fresh {
		t.Errorf("RememberProof on another replica = %v, %v; want false", fresh, err)
	}
	if fb.calls != 0 {
		t.Errorf("fallback asked %d times with Redis up", fb.calls)
	}
	down := redis.NewProofReplay(newClient(t, "redis://127.0.0.1:1"), prefix, fb, nil)
	if fresh, err := down.RememberProof(t.Context(), "jti-2", exp); err != nil || !fresh || fb.calls != 1 {
		t.Errorf("RememberProof with Redis down = %v, %v (fallback calls %d); want the fallback's answer", fresh, err, fb.calls)
	}
}

// The go-redis log adapter writes JSON, at most one line per interval.
func TestLoggerIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := redis.NewLogger(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	for i := range 95 {
		l.Printf(t.Context(), "redis: connection pool: failed to dial after %d attempts", i)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[0], `"level":"WARN"`) {
		t.Errorf("95 go-redis lines logged as %q; want one JSON warning", lines)
	}
}
