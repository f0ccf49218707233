package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/storage"
)

// Publisher hands a batch of outbox events to a message broker.
//
// Publish returns nil only when the broker acknowledged every event of evs.
// When it acknowledged some of them, Publish returns an error that is (or
// wraps) a PartialPublishError naming those; any other error means none of
// evs counts as published. An event reported as published must really have
// been acknowledged: the relay marks it sent and never publishes it again.
type Publisher interface {
	Publish(ctx context.Context, evs []storage.OutboxEvent) error
}

// PartialPublishError is implemented by an error a Publisher returns when the
// broker acknowledged only part of a batch. The relay finds it with errors.As.
type PartialPublishError interface {
	error
	// Acknowledged returns the ids of the events the broker acknowledged.
	Acknowledged() []string
}

// RelayOptions configures a Relay. Zero values take the defaults.
type RelayOptions struct {
	// Interval is the pause between two polls of the outbox once it is
	// drained (default 1s); each pause is jittered by ±20%.
	Interval time.Duration
	// Batch is the number of events read and published at a time (default 100).
	Batch int
	// MaxBackoff caps the pause after consecutive failures, which doubles from
	// Interval on each one (default 1m).
	MaxBackoff time.Duration
	// Logger receives failures at warn level, never payloads (default: discard).
	Logger *slog.Logger
	// Now stamps the events marked sent (default time.Now).
	Now func() time.Time
}

// Relay defaults.
const (
	DefaultRelayInterval   = time.Second
	DefaultRelayBatch      = 100
	DefaultRelayMaxBackoff = time.Minute
)

// claimLease is how long a relay holds the events it claimed: longer than a
// publish and its mark take, so that no other relay publishes them meanwhile;
// a relay that dies holding them delays them by at most this.
const claimLease = 2 * time.Minute

// markTimeout bounds MarkOutboxSent after a publish. It runs even when the
// caller's context was cancelled meanwhile: the broker has the events, and
// not recording that only means publishing them a second time.
const markTimeout = 10 * time.Second

// Relay publishes the outbox at least once: it reads pending events oldest
// first, hands them to a Publisher and marks sent those the broker
// acknowledged. An event is marked sent only after its acknowledgement, so a
// crash, a broker outage or a failed mark can cause a second delivery but no
// loss; consumers dedupe on the event id (the `event-id` header and the
// payload's "id").
//
// Several replicas may run a Relay on one database: each claims the events it
// publishes for a while (ClaimOutbox; FOR UPDATE SKIP LOCKED on PostgreSQL),
// so in normal operation every event is published once. A relay that dies
// after publishing but before marking lets another publish the events again
// when its claim runs out: at least once, still. Within one process, passes
// never overlap.
//
// Ordering: events are read oldest first and a Publisher keeps the order of a
// batch per key, but an event that fails while a later one of the same key
// succeeds is delivered after it, on a later pass.
type Relay struct {
	store storage.Outbox
	pub   Publisher
	opts  RelayOptions

	mu sync.Mutex // serialises passes

	// Read by Stats.
	published atomic.Uint64
	failures  atomic.Uint64
	lag       atomic.Int64 // nanoseconds
	lastOK    atomic.Int64 // unix nanoseconds
}

// RelayStats is what a relay has done since it was created (for metrics).
type RelayStats struct {
	// Published counts the events published and marked sent.
	Published uint64
	// Failures counts the batches that failed: the outbox could not be
	// claimed, the broker did not acknowledge every event, or the
	// acknowledged events could not be marked sent.
	Failures uint64
	// Lag is how old the oldest event of the last batch published was when
	// it was marked sent (zero before the first).
	Lag time.Duration
	// LastSuccess is when a pass last drained the outbox without a failure
	// (zero before the first).
	LastSuccess time.Time
}

// Stats returns what the relay has done so far; safe for concurrent use.
func (r *Relay) Stats() RelayStats {
	s := RelayStats{Published: r.published.Load(), Failures: r.failures.Load(), Lag: time.Duration(r.lag.Load())}
	if ns := r.lastOK.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns)
	}
	return s
}

// NewRelay returns a relay from store to pub; both must be non-nil.
func NewRelay(store storage.Outbox, pub Publisher, opts RelayOptions) *Relay {
	if opts.Interval <= 0 {
		opts.Interval = DefaultRelayInterval
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultRelayBatch
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultRelayMaxBackoff
	}
	if opts.MaxBackoff < opts.Interval {
		opts.MaxBackoff = opts.Interval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Relay{store: store, pub: pub, opts: opts}
}

// Run relays until ctx is done, then returns nil. It flushes at once, then
// after every Interval; after a failure it waits twice as long each time, up
// to MaxBackoff, and logs the failure at warn. Events wait in the outbox
// meanwhile. The error result lets Run sit in an errgroup; it is always nil.
func (r *Relay) Run(ctx context.Context) error {
	failures := 0
	for {
		n, err := r.Flush(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.opts.Interval
		if err != nil {
			failures++
			wait = backoff(r.opts.Interval, r.opts.MaxBackoff, failures)
			r.opts.Logger.WarnContext(ctx, "events: outbox relay failed; events stay in the outbox",
				"err", err, "published", n, "failures", failures, "retry_in", wait)
		} else if failures > 0 {
			r.opts.Logger.InfoContext(ctx, "events: outbox relay recovered",
				"published", n, "after_failures", failures)
			failures = 0
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Flush makes one pass: it publishes pending events, Batch at a time, until
// the outbox is drained or a batch fails, and returns how many events it
// published and marked sent. After a failure the acknowledged part of the
// failed batch is marked sent; the rest stays pending for the next pass.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("events: relay: %w", err)
		}
		n, more, err := r.batch(ctx)
		total += n
		if err != nil {
			r.failures.Add(1)
			return total, err
		}
		if !more {
			r.lastOK.Store(r.opts.Now().UnixNano())
			return total, nil
		}
	}
}

// batch publishes one batch and reports whether more events may be pending.
func (r *Relay) batch(ctx context.Context) (published int, more bool, err error) {
	evs, err := r.store.ClaimOutbox(ctx, r.opts.Batch, claimLease)
	if err != nil {
		return 0, false, fmt.Errorf("events: relay: claim outbox: %w", err)
	}
	if len(evs) == 0 {
		return 0, false, nil
	}
	pubErr := r.pub.Publish(ctx, evs)
	ids := acknowledged(evs, pubErr)
	if pubErr != nil {
		pubErr = fmt.Errorf("events: relay: publish: %d of %d events not acknowledged: %w",
			len(evs)-len(ids), len(evs), pubErr)
		// Hand the rest back at once, for the next pass (of any relay)
		// rather than when the claim runs out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		defer cancel()
		if err := r.store.ReleaseOutbox(rctx, unacknowledged(evs, ids)); err != nil {
			pubErr = errors.Join(pubErr, fmt.Errorf("events: relay: release the claim on unpublished events: %w", err))
		}
	}
	if len(ids) > 0 {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		defer cancel()
		if err := r.store.MarkOutboxSent(mctx, ids, r.opts.Now()); err != nil {
			// Published but still pending: the next pass publishes them
			// again (once the claim is released, or has run out).
			_ = r.store.ReleaseOutbox(mctx, ids)
			return 0, false, errors.Join(pubErr,
				fmt.Errorf("events: relay: mark %d published events sent: %w", len(ids), err))
		}
		r.published.Add(uint64(len(ids)))
		r.lag.Store(int64(r.opts.Now().Sub(oldest(evs, ids))))
	}
	if pubErr != nil {
		return len(ids), false, pubErr
	}
	return len(ids), len(evs) >= r.opts.Batch, nil
}

// oldest returns the creation time of the oldest event of evs named in ids.
func oldest(evs []storage.OutboxEvent, ids []string) time.Time {
	var t time.Time
	for _, e := range evs {
		if (t.IsZero() || e.CreatedAt.Before(t)) && slices.Contains(ids, e.ID) {
			t = e.CreatedAt
		}
	}
	return t
}

// unacknowledged returns the ids of evs not in acked.
func unacknowledged(evs []storage.OutboxEvent, acked []string) []string {
	var ids []string
	for _, e := range evs {
		if !slices.Contains(acked, e.ID) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// acknowledged returns the ids of evs that err (Publish's result) reports as
// published, in batch order. Ids a publisher names that are not in evs are
// ignored.
func acknowledged(evs []storage.OutboxEvent, err error) []string {
	if err == nil {
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = e.ID
		}
		return ids
	}
	var partial PartialPublishError
	if !errors.As(err, &partial) {
		return nil
	}
	acked := make(map[string]bool)
	for _, id := range partial.Acknowledged() {
		acked[id] = true
	}
	var ids []string
	for _, e := range evs {
		if acked[e.ID] {
			ids = append(ids, e.ID)
			delete(acked, e.ID) // an id the outbox returned twice is marked once
		}
	}
	return ids
}

// backoff returns the pause after the given number (≥ 1) of consecutive
// failures: base doubled failures-1 times, capped at max.
func backoff(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// jitter spreads d uniformly over [0.8d, 1.2d).
func jitter(d time.Duration) time.Duration {
	spread := int64(d) * 2 / 5
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}
