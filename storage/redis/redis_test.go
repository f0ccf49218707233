package redis_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/redis"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

// countingTruth counts the lookups that reach SQL.
type countingTruth struct {
	redis.Truth
	lookups atomic.Int64
}

func (c *countingTruth) IsRevoked(ctx context.Context, jti, family string) (bool, error) {
	c.lookups.Add(1)
	return c.Truth.IsRevoked(ctx, jti, family)
}

func newTruth(t *testing.T) *countingTruth {
	t.Helper()
	s, err := sqlite.New(t.Context(), filepath.Join(t.TempDir(), "authd.db"))
	if err != nil {
		t.Fatalf("sqlite.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return &countingTruth{Truth: s}
}

func newClient(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	url, prefix := storagetest.RedisURL(t)
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, prefix
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunDenylist(t, func(t *testing.T) storage.Denylist {
		rdb, prefix := newClient(t)
		d := redis.New(rdb, prefix, newTruth(t))
		if err := d.Warm(t.Context()); err != nil {
			t.Fatalf("Warm: %v", err)
		}
		return d
	})
}

func revocation(kind storage.RevocationKind, ttl time.Duration) storage.Revocation {
	return storage.Revocation{Kind: kind, Value: string(kind) + "-" + storagetest.RandomID(6), ExpiresAt: time.Now().Add(ttl)}
}

// Warm copies what SQL holds, keyed <prefix>revoked:<kind>:<value> with the
// remaining lifetime, and answers then come from Redis alone.
func TestWarm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb, prefix := newClient(t)
	truth := newTruth(t)
	jti, fam := revocation(storage.RevokedJTI, time.Hour), revocation(storage.RevokedFamily, 2*time.Hour)
	if err := truth.Revoke(ctx, jti, fam); err != nil {
		t.Fatalf("Revoke in SQL: %v", err)
	}
	d := redis.New(rdb, prefix, truth)
	if ok, err := d.Warmed(ctx); err != nil || ok {
		t.Fatalf("Warmed before Warm = %v, %v; want false", ok, err)
	}
	if err := d.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	for _, r := range []storage.Revocation{jti, fam} {
		ttl, err := rdb.PTTL(ctx, prefix+"revoked:"+string(r.Kind)+":"+r.Value).Result()
		if err != nil || ttl <= 0 || ttl > time.Until(r.ExpiresAt)+time.Second || ttl < time.Until(r.ExpiresAt)-time.Minute {
			t.Errorf("PTTL of %s = %v, %v; want about %v", r.Value, ttl, err, time.Until(r.ExpiresAt))
		}
	}
	for _, tc := range []struct {
		jti, fam string
		want     bool
	}{{jti.Value, "", true}, {"", fam.Value, true}, {"other", "other", false}} {
		if got, err := d.IsRevoked(ctx, tc.jti, tc.fam); err != nil || got != tc.want {
			t.Errorf("IsRevoked(%q, %q) = %v, %v; want %v", tc.jti, tc.fam, got, err, tc.want)
		}
	}
	if n := truth.lookups.Load(); n != 0 {
		t.Errorf("%d lookups reached SQL with a warm cache; want 0", n)
	}
}

// When Redis loses its data, answers come from SQL and Run warms it again.
func TestRewarmAfterDataLoss(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb, prefix := newClient(t)
	truth := newTruth(t)
	d := redis.New(rdb, prefix, truth, redis.WithCheckInterval(time.Hour)) // only IsRevoked's nudge can wake Run
	jti := revocation(storage.RevokedJTI, time.Hour)
	if err := d.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if err := d.Revoke(ctx, jti); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Redis restarts empty.
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("Keys = %v, %v; want the cached entries", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := d.IsRevoked(ctx, jti.Value, ""); err != nil || !got {
		t.Fatalf("IsRevoked after data loss = %v, %v; want true (from SQL)", got, err)
	}
	if truth.lookups.Load() == 0 {
		t.Fatal("IsRevoked without the marker did not ask SQL")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := d.Warmed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not warm the cache again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := truth.lookups.Load()
	if got, err := d.IsRevoked(ctx, jti.Value, ""); err != nil || !got {
		t.Errorf("IsRevoked after re-warm = %v, %v; want true", got, err)
	}
	if truth.lookups.Load() != before {
		t.Error("IsRevoked after re-warm reached SQL; want Redis")
	}
}

// With Redis unreachable, revocations still land in SQL and answers come from
// SQL, with a warning that names no token.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	var logs syncBuffer
	truth := newTruth(t)
	d := redis.New(rdb, "down:", truth, redis.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	if err := d.Warm(ctx); err == nil {
		t.Error("Warm with Redis down = nil; want an error")
	}
	jti := revocation(storage.RevokedJTI, time.Hour)
	if err := d.Revoke(ctx, jti); err != nil {
		t.Fatalf("Revoke with Redis down: %v; want nil (SQL has it)", err)
	}
	if got, err := truth.Truth.IsRevoked(ctx, jti.Value, ""); err != nil || !got {
		t.Errorf("SQL IsRevoked = %v, %v; want true", got, err)
	}
	for _, tc := range []struct {
		jti  string
		want bool
	}{{jti.Value, true}, {"unknown", false}} {
		if got, err := d.IsRevoked(ctx, tc.jti, ""); err != nil || got != tc.want {
			t.Errorf("IsRevoked(%q) with Redis down = %v, %v; want %v", tc.jti, got, err, tc.want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") {
		t.Errorf("logs = %q; want a warning", out)
	}
	if strings.Contains(out, jti.Value) {
		t.Errorf("logs = %q; must not name the token", out)
	}
}
