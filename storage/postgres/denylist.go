package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// revocationChannelSQL names the NOTIFY channel of the current schema, so
// that schemas sharing a database (tests, tenants) do not hear each other.
const revocationChannelSQL = `'authd_revoked_' || md5(current_schema())`

// Payloads of revocation notifications:
// "<kind> <expiry unix ns> <cutoff unix ns, 0 for none> <value>", or
// resyncPayload when an entry does not fit in a notification, or an empty
// ping. A payload that does not parse (a replica of another version) makes
// the listener reload from SQL rather than miss an entry.
const (
	resyncPayload = "resync"
	maxPayload    = 7000 // PostgreSQL refuses payloads of 8000 bytes and more
)

func notifyPayload(e storage.Revocation) string {
	var cutoff int64
	if !e.Cutoff.IsZero() {
		cutoff = e.Cutoff.UnixNano()
	}
	p := string(e.Kind) + " " + strconv.FormatInt(e.ExpiresAt.UnixNano(), 10) + " " +
		strconv.FormatInt(cutoff, 10) + " " + e.Value
	if len(p) > maxPayload {
		return resyncPayload
	}
	return p
}

func parsePayload(p string) (storage.Revocation, bool) {
	f := strings.SplitN(p, " ", 4)
	if len(f) != 4 || f[3] == "" {
		return storage.Revocation{}, false
	}
	exp, err1 := strconv.ParseInt(f[1], 10, 64)
	cutoff, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return storage.Revocation{}, false
	}
	e := storage.Revocation{Kind: storage.RevocationKind(f[0]), Value: f[3], ExpiresAt: time.Unix(0, exp)}
	if cutoff != 0 {
		e.Cutoff = time.Unix(0, cutoff)
	}
	return e, e.Valid() == nil
}

// Denylist defaults.
const (
	DefaultDenylistMaxEntries = 200_000
	denylistPingEvery         = 5 * time.Second
	denylistSilentAfter       = 3 * denylistPingEvery
	denylistPurgeEvery        = time.Minute
)

// Denylist is the store's denylist held in memory, so that checking a token
// costs no database round trip. It is kept complete by PostgreSQL itself:
// Revoke announces every entry with NOTIFY in the transaction that writes it,
// and Run LISTENs on a connection of its own, loads the active entries once
// listening, then applies every announcement. A revocation committed by any
// replica is therefore seen here as soon as PostgreSQL delivers the
// notification, milliseconds after the commit; one made through this
// Denylist is seen here at once.
//
// Whenever the memory copy may be incomplete (before Run has loaded it, after
// the listening connection failed or fell silent, while it holds more than
// the maximum entries) IsRevoked answers from SQL, exactly as the Store does.
type Denylist struct {
	st         *Store
	log        *slog.Logger
	now        func() time.Time
	maxEntries int

	synced atomic.Bool // the memory copy is complete
	mu     sync.RWMutex
	deny   map[denyKey]storage.Revocation

	sqlAnswers atomic.Uint64 // IsRevoked answered from SQL (for Stats)
}

// DenylistStats is a read-only view of a Denylist, for metrics.
type DenylistStats struct {
	Entries    int    // entries held in memory (expired ones linger until the next purge)
	MaxEntries int    // the bound on Entries
	InMemory   bool   // IsRevoked answers from memory (the copy is complete)
	SQLAnswers uint64 // IsRevoked answers that came from SQL since NewDenylist
}

// Stats reports the memory copy's size and how many answers fell back to SQL.
func (d *Denylist) Stats() DenylistStats {
	d.mu.RLock()
	n := len(d.deny)
	d.mu.RUnlock()
	return DenylistStats{Entries: n, MaxEntries: d.maxEntries, InMemory: d.synced.Load(), SQLAnswers: d.sqlAnswers.Load()}
}

type denyKey struct {
	kind  storage.RevocationKind
	value string
}

var _ storage.Denylist = (*Denylist)(nil)

// DenylistOption configures NewDenylist.
type DenylistOption func(*Denylist)

// WithDenylistLogger sets where listener failures are reported (default: discard).
func WithDenylistLogger(l *slog.Logger) DenylistOption { return func(d *Denylist) { d.log = l } }

// WithDenylistMaxEntries bounds the memory copy (default DefaultDenylistMaxEntries);
// beyond it, answers come from SQL until entries expire.
func WithDenylistMaxEntries(n int) DenylistOption {
	return func(d *Denylist) { d.maxEntries = n }
}

// NewDenylist returns the in-memory denylist of st; it answers from SQL until
// Run has loaded it.
func (s *Store) NewDenylist(opts ...DenylistOption) *Denylist {
	d := &Denylist{st: s, log: slog.New(slog.DiscardHandler), now: s.now, maxEntries: DefaultDenylistMaxEntries, deny: map[denyKey]storage.Revocation{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Revoke writes the entries to SQL (in ctx's transaction, if any) and adds
// them to memory at once. An entry of a transaction that later rolls back
// stays in this replica's memory until it expires: the copy errs on the side
// of revoked.
func (d *Denylist) Revoke(ctx context.Context, entries ...storage.Revocation) error {
	if err := d.st.Revoke(ctx, entries...); err != nil {
		return err
	}
	d.add(entries...)
	return nil
}

// IsRevoked reports whether an unexpired entry matches the token, from
// memory when the copy is complete, else from SQL.
func (d *Denylist) IsRevoked(ctx context.Context, t storage.TokenRef) (bool, error) {
	if t == (storage.TokenRef{}) {
		return false, nil
	}
	if !d.synced.Load() {
		d.sqlAnswers.Add(1)
		return d.st.IsRevoked(ctx, t)
	}
	now := d.now()
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, k := range [...]denyKey{
		{storage.RevokedJTI, t.JTI}, {storage.RevokedFamily, t.Family},
		{storage.RevokedSubject, t.Subject}, {storage.RevokedClient, t.ClientID},
	} {
		if k.value == "" {
			continue
		}
		if e, ok := d.deny[k]; ok && e.Matches(t, now) {
			return true, nil
		}
	}
	return false, nil
}

// add merges entries into memory. The copy never holds more than maxEntries:
// an entry that does not fit is left out and the copy is marked incomplete
// (answers come from SQL) until expiries make room and Run reloads it.
func (d *Denylist) add(entries ...storage.Revocation) (complete bool) {
	d.mu.Lock()
	full := false
	for _, e := range entries {
		k := denyKey{e.Kind, e.Value}
		if old, ok := d.deny[k]; ok {
			d.deny[k] = old.Merge(e)
		} else if len(d.deny) < d.maxEntries {
			d.deny[k] = e
		} else {
			full = true
		}
	}
	d.mu.Unlock()
	if full && d.synced.CompareAndSwap(true, false) {
		d.log.Warn("postgres denylist: too many entries to hold in memory; answering from SQL until they expire", "max", d.maxEntries)
	}
	return !full
}

// purge drops expired entries and reports how many remain.
func (d *Denylist) purge() int {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.deny {
		if !now.Before(e.ExpiresAt) {
			delete(d.deny, k)
		}
	}
	return len(d.deny)
}

// Synced reports whether IsRevoked currently answers from memory.
func (d *Denylist) Synced() bool { return d.synced.Load() }

// Run keeps the memory copy complete until ctx is done: it listens for
// revocations, loads the active entries, and starts over (answering from SQL
// meanwhile) whenever the listening connection fails or falls silent.
func (d *Denylist) Run(ctx context.Context) {
	backoff := time.Second
	for {
		start := time.Now()
		err := d.listen(ctx)
		d.synced.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		d.log.Warn("postgres denylist: listener stopped; answering from SQL until it is back", "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// listen runs one listening session; it returns when the connection fails,
// falls silent or ctx is done.
func (d *Denylist) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, d.st.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+revocationChannelSQL).Scan(&channel); err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Listening first, loading second: an entry committed meanwhile is in
	// the load, in a notification, or in both.
	if err := d.load(ctx); err != nil {
		return err
	}
	pingCtx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	go d.ping(pingCtx, channel)

	lastPurge := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, denylistSilentAfter)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return errors.New("no notification, not even a ping, for " + denylistSilentAfter.String())
		case err != nil:
			return fmt.Errorf("wait: %w", err)
		}
		switch n.Payload {
		case "": // ping
		case resyncPayload:
			d.synced.Store(false)
			if err := d.load(ctx); err != nil {
				return err
			}
		default:
			if e, ok := parsePayload(n.Payload); ok {
				d.add(e)
			} else {
				d.log.Warn("postgres denylist: a notification it cannot read; reloading from SQL")
				d.synced.Store(false)
				if err := d.load(ctx); err != nil {
					return err
				}
			}
		}
		if time.Since(lastPurge) > denylistPurgeEvery {
			lastPurge = time.Now()
			if left := d.purge(); left <= d.maxEntries && !d.synced.Load() {
				if err := d.load(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// load adds every active entry to memory and, if they fit, marks the copy complete.
func (d *Denylist) load(ctx context.Context) error {
	revs, err := d.st.ActiveRevocations(ctx, d.now())
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if len(revs) > d.maxEntries {
		d.log.Warn("postgres denylist: too many entries to hold in memory; answering from SQL until they expire", "entries", len(revs), "max", d.maxEntries)
		return nil
	}
	d.purge()
	if d.add(revs...) {
		d.synced.Store(true)
	}
	return nil
}

// ping sends an empty notification on the channel every few seconds, so a
// listener that hears nothing knows its connection is dead.
func (d *Denylist) ping(ctx context.Context, channel string) {
	t := time.NewTicker(denylistPingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.st.pool.Exec(ctx, "SELECT pg_notify($1, '')", channel); err != nil && ctx.Err() == nil {
				d.log.Warn("postgres denylist: ping failed", "error", err)
			}
		}
	}
}
