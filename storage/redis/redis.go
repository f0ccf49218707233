// Package redis is a cache for authd's denylist in Redis. SQL stays the
// truth: revocations are written there first, and every answer falls back to
// SQL when Redis fails or has lost its data.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authd/authd/storage"
)

// Truth is the SQL denylist the cache sits in front of (a storage.Store is one).
type Truth interface {
	storage.Denylist
	// ActiveRevocations lists the entries not yet expired at now.
	ActiveRevocations(ctx context.Context, now time.Time) ([]storage.Revocation, error)
}

var _ storage.Denylist = (*Denylist)(nil)

// Denylist is a storage.Denylist cached in Redis under
// <prefix>revoked:<kind>:<value>, each key living as long as its entry.
//
// A marker key says the cache is complete (Warm copied every active entry).
// Without it, for instance after Redis restarted empty, IsRevoked answers from
// SQL and asks Run to warm the cache again.
//
// Redis must not evict keys (maxmemory-policy noeviction): an evicted entry
// would read as not revoked.
type Denylist struct {
	rdb      goredis.UniversalClient
	prefix   string
	truth    Truth
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	rewarm chan struct{} // IsRevoked found the marker gone
	warmMu sync.Mutex    // one Warm at a time
	// failures counts revocations that reached SQL but maybe not Redis (and
	// whose marker could not be dropped) since the last Warm; while it is not
	// zero this process answers from SQL.
	failures atomic.Int64
}

// Option configures New.
type Option func(*Denylist)

// WithLogger sets the logger for Redis failures (default: discard).
func WithLogger(l *slog.Logger) Option { return func(d *Denylist) { d.log = l } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(d *Denylist) { d.now = now } }

// WithCheckInterval sets how often Run checks for the marker (default 10s).
func WithCheckInterval(iv time.Duration) Option { return func(d *Denylist) { d.interval = iv } }

// New returns a denylist cached in rdb (a *goredis.Client, or a cluster or
// failover client) under prefix, over truth. Call Warm, or Run, to fill it.
func New(rdb goredis.UniversalClient, prefix string, truth Truth, opts ...Option) *Denylist {
	d := &Denylist{
		rdb:      rdb,
		prefix:   prefix,
		truth:    truth,
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
		interval: 10 * time.Second,
		rewarm:   make(chan struct{}, 1),
	}
	for _, opt := range opts {
		opt(d)
	}
	return d
}

func (d *Denylist) key(kind storage.RevocationKind, value string) string {
	return d.prefix + "revoked:" + string(kind) + ":" + value
}

func (d *Denylist) marker() string { return d.prefix + "denylist:warm" }

// Revoke writes the entries to SQL (in ctx's transaction, if any) and then to
// Redis. Entries of a transaction that later rolls back stay in Redis until
// they expire: the cache errs on the side of revoked. Once SQL has the
// entries Revoke succeeds: a Redis failure only marks the cache for a re-warm.
func (d *Denylist) Revoke(ctx context.Context, entries ...storage.Revocation) error {
	if err := d.truth.Revoke(ctx, entries...); err != nil {
		return fmt.Errorf("redis: revoke: %w", err)
	}
	if err := d.set(ctx, entries); err != nil {
		// Drop the marker so that every replica reads SQL until the cache is
		// warmed again; if even that fails, at least this process does.
		if derr := d.rdb.Del(context.WithoutCancel(ctx), d.marker()).Err(); derr != nil {
			d.failures.Add(1)
			err = errors.Join(err, derr)
		}
		d.log.WarnContext(ctx, "redis: caching a revocation failed; answering from SQL until re-warmed", "error", err)
		d.askRewarm()
	}
	return nil
}

// set caches entries with a TTL of their remaining lifetime; expired ones are skipped.
func (d *Denylist) set(ctx context.Context, entries []storage.Revocation) error {
	now := d.now()
	_, err := d.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, e := range entries {
			ttl := e.ExpiresAt.Sub(now)
			if ttl <= 0 {
				continue
			}
			p.Set(ctx, d.key(e.Kind, e.Value), 1, max(ttl, time.Millisecond))
		}
		return nil
	})
	return err
}

// IsRevoked answers from Redis in one round trip, or from SQL when Redis
// fails or the cache is not warm.
func (d *Denylist) IsRevoked(ctx context.Context, jti, family string) (bool, error) {
	if jti == "" && family == "" {
		return false, nil
	}
	if d.failures.Load() > 0 {
		return d.askTruth(ctx, jti, family)
	}
	// EXISTS per key rather than one multi-key command, so that a cluster
	// client can route each key to its slot; still one round trip.
	cmds := make([]*goredis.IntCmd, 0, 3)
	_, err := d.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cmds = append(cmds, p.Exists(ctx, d.marker()))
		if jti != "" {
			cmds = append(cmds, p.Exists(ctx, d.key(storage.RevokedJTI, jti)))
		}
		if family != "" {
			cmds = append(cmds, p.Exists(ctx, d.key(storage.RevokedFamily, family)))
		}
		return nil
	})
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return false, fmt.Errorf("redis: is revoked: %w", ctx.Err())
		}
		d.log.WarnContext(ctx, "redis: denylist lookup failed; asking SQL", "error", err)
	case cmds[0].Val() == 0:
		d.askRewarm()
	default:
		for _, c := range cmds[1:] {
			if c.Val() > 0 {
				return true, nil
			}
		}
		return false, nil
	}
	return d.askTruth(ctx, jti, family)
}

func (d *Denylist) askTruth(ctx context.Context, jti, family string) (bool, error) {
	revoked, err := d.truth.IsRevoked(ctx, jti, family)
	if err != nil {
		return false, fmt.Errorf("redis: is revoked: %w", err)
	}
	return revoked, nil
}

func (d *Denylist) askRewarm() {
	select {
	case d.rewarm <- struct{}{}:
	default:
	}
}

// Warm copies every active entry from SQL into Redis, then sets the marker.
func (d *Denylist) Warm(ctx context.Context) error {
	d.warmMu.Lock()
	defer d.warmMu.Unlock()
	failures := d.failures.Load()
	revs, err := d.truth.ActiveRevocations(ctx, d.now())
	if err != nil {
		return fmt.Errorf("redis: warm: %w", err)
	}
	const batch = 1000
	for len(revs) > 0 {
		n := min(batch, len(revs))
		if err := d.set(ctx, revs[:n]); err != nil {
			return fmt.Errorf("redis: warm: %w", err)
		}
		revs = revs[n:]
	}
	if err := d.rdb.Set(ctx, d.marker(), 1, 0).Err(); err != nil {
		return fmt.Errorf("redis: warm: %w", err)
	}
	// Revocations that failed while this ran may be missing: keep answering
	// from SQL until the next Warm then.
	d.failures.CompareAndSwap(failures, 0)
	return nil
}

// Warmed reports whether the marker is present.
func (d *Denylist) Warmed(ctx context.Context) (bool, error) {
	n, err := d.rdb.Exists(ctx, d.marker()).Result()
	if err != nil {
		return false, fmt.Errorf("redis: warmed: %w", err)
	}
	return n > 0, nil
}

// Run keeps the cache warm until ctx is done: it warms at once if needed,
// then whenever the marker is found missing (every check interval, or as
// soon as IsRevoked notices). Failures are logged and retried. It returns
// nil when ctx is done.
func (d *Denylist) Run(ctx context.Context) error {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if ok, err := d.Warmed(ctx); err != nil {
			if ctx.Err() == nil {
				d.log.WarnContext(ctx, "redis: denylist check failed", "error", err)
			}
		} else if !ok || d.failures.Load() > 0 {
			if err := d.Warm(ctx); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "redis: denylist warm-up failed", "error", err)
			} else if err == nil {
				d.log.InfoContext(ctx, "redis: denylist cache warmed")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.rewarm:
		}
	}
}
