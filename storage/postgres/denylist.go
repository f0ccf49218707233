package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/storage"
)

// revocationChannelSQL names the NOTIFY channel of the current schema, so
// that schemas sharing a database (tests, tenants) do not hear each other.
const revocationChannelSQL = `'authd_revoked_' || md5(current_schema())`

// The channel carries wake-ups only: the payload "poll" after a revocation
// commits, and an empty ping. Whatever the payload (an older replica's
// carried the entry), a listener reads what it has not seen from SQL.
const qAnnounce = `SELECT set_config('synchronous_commit', 'off', true), pg_notify(` + revocationChannelSQL + `, 'poll')`

// announcer wakes every replica's Denylist after revocations commit. It
// sends one NOTIFY at a time, for all the revocations committed since the
// last one, each in a transaction of its own that does not wait for the WAL
// flush. (PostgreSQL serialises the commits of notifying transactions behind
// one lock: a revoking transaction that notified held it through its own
// flush, which capped revocations at about 1,200 a second.) A wake-up lost
// to a crash is made up by the listeners' periodic read.
type announcer struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newAnnouncer(pool *pgxpool.Pool, log *slog.Logger) *announcer {
	a := &announcer{pool: pool, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// announce asks for a wake-up; it never blocks.
func (a *announcer) announce() {
	select {
	case a.kick <- struct{}{}:
	default: // one is pending already: it covers this revocation too
	}
}

func (a *announcer) run() {
	defer close(a.done)
	for {
		select {
		case <-a.kick:
			a.send()
		case <-a.stop:
			select {
			case <-a.kick:
				a.send()
			default:
			}
			return
		}
	}
}

func (a *announcer) send() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.pool.Exec(ctx, qAnnounce); err != nil {
		a.log.Warn("postgres denylist: wake-up not sent; replicas read it within "+denylistPollEvery.String(), "error", err)
	}
}

// close sends the pending wake-up, if any, and stops.
func (a *announcer) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

// Denylist defaults.
const (
	DefaultDenylistMaxEntries = 200_000
	denylistPingEvery         = 5 * time.Second
	denylistSilentAfter       = 3 * denylistPingEvery
	denylistPurgeEvery        = time.Minute
	// denylistPollEvery bounds how late a replica sees a revocation whose
	// wake-up was lost (its writer died between the commit and the NOTIFY).
	denylistPollEvery = time.Second
	// denylistReadGap spaces the reads a burst of wake-ups asks for.
	denylistReadGap = 20 * time.Millisecond
	// denylistBacklogWarn is the size of a read that is worth a warning.
	denylistBacklogWarn = 10_000
)

// Denylist is the store's denylist held in memory, so that checking a token
// costs no database round trip. Every entry records the transaction that
// wrote it (xid8). Run LISTENs on a connection of its own, loads the active
// entries, and then, whenever it is woken and at least every
// denylistPollEvery, reads the entries of the transactions at or after the
// oldest one still running at its previous read: transactions commit in any
// order, and none is missed. Revoke wakes the listeners with a NOTIFY sent
// after its transaction commits (announcer), so a revocation committed by any
// replica is seen here milliseconds after the commit; one made through this
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
	deny   map[denyKey]denyEntry
	seeds  [4][2]maphash.Seed // of denyKey, by kind (kindIndex)
	since  string             // xid8 (text) the next read starts at; the listener's alone

	pollEvery   time.Duration // the periodic read (denylistPollEvery; tests change it)
	warned      time.Time     // the last warning about a large read; the listener's alone
	backlogWarn int           // a read larger than this is worth a warning (denylistBacklogWarn)

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

// denyKey names an entry in memory: a 128-bit hash of its value, with seeds
// drawn by each process for each kind. The copy holds no strings: an entry is
// 32 bytes and no pointer (52 bytes of heap with the map's own), so that
// 200,000 of them (the default bound) take about 10 MiB the garbage
// collector never traces, where a map of strings and storage.Revocation
// values took 200 to 600 bytes an entry, all of it traced (the token's id
// was retained as decoded from JSON or scanned by pgx). Two values sharing a
// hash would make a token look revoked, never the other way round; with 128
// bits and unpredictable seeds that does not happen.
type denyKey [2]uint64

// key is the entry's key; ok is false for an unknown kind (which matches
// no token).
func (d *Denylist) key(kind storage.RevocationKind, value string) (k denyKey, ok bool) {
	i := kindIndex(kind)
	if i < 0 {
		return k, false
	}
	return denyKey{maphash.String(d.seeds[i][0], value), maphash.String(d.seeds[i][1], value)}, true
}

func kindIndex(kind storage.RevocationKind) int {
	switch kind {
	case storage.RevokedJTI:
		return 0
	case storage.RevokedFamily:
		return 1
	case storage.RevokedSubject:
		return 2
	case storage.RevokedClient:
		return 3
	}
	return -1
}

// denyEntry is an entry in memory: its expiry and, for a subject or client
// mark, its cutoff, in Unix nanoseconds (0: none). Which token it matches
// and how two entries combine are storage.Revocation's rules (Matches,
// Merge), applied to the entry turned back into one (revocation).
type denyEntry struct {
	cutoff  int64
	expires int64
}

func entryOf(r storage.Revocation) denyEntry {
	return denyEntry{cutoff: unixNano(r.Cutoff), expires: unixNano(r.ExpiresAt)}
}

// revocation is e as the storage.Revocation of kind and value it was made from.
func (e denyEntry) revocation(kind storage.RevocationKind, value string) storage.Revocation {
	return storage.Revocation{Kind: kind, Value: value, Cutoff: fromUnixNano(e.cutoff), ExpiresAt: fromUnixNano(e.expires)}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
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
	d := &Denylist{st: s, log: slog.New(slog.DiscardHandler), now: s.now, maxEntries: DefaultDenylistMaxEntries, deny: map[denyKey]denyEntry{}, pollEvery: denylistPollEvery, backlogWarn: denylistBacklogWarn}
	for i := range d.seeds {
		d.seeds[i] = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	}
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
	for _, c := range [...]struct {
		kind  storage.RevocationKind
		value string
	}{
		{storage.RevokedJTI, t.JTI}, {storage.RevokedFamily, t.Family},
		{storage.RevokedSubject, t.Subject}, {storage.RevokedClient, t.ClientID},
	} {
		if c.value == "" {
			continue
		}
		k, _ := d.key(c.kind, c.value) // the four kinds are known
		if e, ok := d.deny[k]; ok && e.revocation(c.kind, c.value).Matches(t, now) {
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
	for _, r := range entries {
		k, known := d.key(r.Kind, r.Value)
		if !known {
			continue // storage.Revocation.Valid refuses it; it would match nothing
		}
		if old, ok := d.deny[k]; ok {
			d.deny[k] = entryOf(old.revocation(r.Kind, r.Value).Merge(r))
		} else if len(d.deny) < d.maxEntries {
			d.deny[k] = entryOf(r)
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
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.deny {
		if now >= e.expires {
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
	// the load, or its wake-up comes after.
	if err := d.load(ctx, conn); err != nil {
		return err
	}
	pingCtx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	go d.ping(pingCtx, channel)

	lastPurge, lastHeard, lastRead := time.Now(), time.Now(), time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, min(d.pollEvery, denylistSilentAfter))
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if time.Since(lastHeard) > denylistSilentAfter {
				return errors.New("no notification, not even a ping, for " + denylistSilentAfter.String())
			}
			if time.Since(lastRead) < d.pollEvery {
				continue
			}
		case err != nil:
			return fmt.Errorf("wait: %w", err)
		default:
			lastHeard = time.Now()
			// At most one read per denylistReadGap: under a burst of
			// revocations the wake-ups of the gap share one read.
			if wait := denylistReadGap - time.Since(lastRead); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			drain(conn)
		}
		lastRead = time.Now()
		if time.Since(lastPurge) > denylistPurgeEvery {
			lastPurge = time.Now()
			if left := d.purge(); left <= d.maxEntries && !d.synced.Load() {
				if err := d.load(ctx, conn); err != nil {
					return err
				}
				continue
			}
		}
		if err := d.poll(ctx, conn); err != nil {
			return err
		}
	}
}

// drain takes the wake-ups already received: one read covers them all.
func drain(conn *pgx.Conn) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if _, err := conn.WaitForNotification(done); err != nil {
			return
		}
	}
}

// load reads every active entry into memory and, if they fit, marks the
// copy complete.
func (d *Denylist) load(ctx context.Context, conn *pgx.Conn) error {
	since, revs, err := d.read(ctx, conn, "0")
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	d.since = since
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

// poll reads the entries written since the previous read into memory.
func (d *Denylist) poll(ctx context.Context, conn *pgx.Conn) error {
	since, revs, err := d.read(ctx, conn, d.since)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	d.since = since
	d.add(revs...)
	if len(revs) > d.backlogWarn && time.Since(d.warned) > time.Minute {
		// Every read starts at the oldest transaction still running in the
		// cluster: one left open (idle in transaction, a long report) makes
		// every read return what was revoked since it began.
		d.warned = time.Now()
		d.log.Warn("postgres denylist: reads return many entries; a long-running transaction holds their start back (see pg_stat_activity.backend_xid / backend_xmin)",
			"entries", len(revs), "since_xid", d.since)
	}
	return nil
}

// read returns the unexpired entries of the transactions at or after since,
// and where the next read starts.
func (d *Denylist) read(ctx context.Context, conn *pgx.Conn, since string) (string, []storage.Revocation, error) {
	rows, err := conn.Query(ctx, qRevocationsSince, d.now().UTC(), since)
	if err != nil {
		return "", nil, err
	}
	defer rows.Close()
	var (
		next string
		revs []storage.Revocation
	)
	for rows.Next() {
		var (
			kind, value    *string
			cutoff, expiry *time.Time
		)
		if err := rows.Scan(&next, &kind, &value, &cutoff, &expiry); err != nil {
			return "", nil, err
		}
		if kind != nil && value != nil && expiry != nil { // nil: no entry matched
			revs = append(revs, storage.Revocation{Kind: storage.RevocationKind(*kind), Value: *value, Cutoff: utc(cutoff), ExpiresAt: expiry.UTC()})
		}
	}
	if err := rows.Err(); err != nil {
		return "", nil, err
	}
	if next == "" {
		return "", nil, errors.New("no snapshot horizon in the answer")
	}
	return next, revs, nil
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
