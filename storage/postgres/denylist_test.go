package postgres_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

// runDenylist starts d's listener and waits until it answers from memory.
func runDenylist(t *testing.T, d *postgres.Denylist) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the denylist to load", d.Synced)
}

// waitFor polls cond: notifications arrive asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDenylistConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunDenylist(t, func(t *testing.T) storage.Denylist {
		st := newStore(t).(*postgres.Store)
		d := st.NewDenylist()
		runDenylist(t, d)
		return d
	})
}

// Entries written before the listener started, and entries any other
// process writes afterwards, reach the memory copy; another schema's do not.
func TestDenylistFollowsOtherReplicas(t *testing.T) {
	t.Parallel()
	a, b := replicas(t)
	other := newStore(t) // its own schema, same database
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	before := storage.Revocation{Kind: storage.RevokedJTI, Value: "before-" + storagetest.RandomID(6), ExpiresAt: exp}
	if err := b.Revoke(ctx, before); err != nil {
		t.Fatal(err)
	}

	d := a.NewDenylist()
	runDenylist(t, d)
	if got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: before.Value}); err != nil || !got {
		t.Fatalf("IsRevoked(entry written before Run) = %v, %v; want true", got, err)
	}

	// Written by replica b, in a transaction: seen once committed.
	fam := "fam-" + storagetest.RandomID(6)
	err := b.InTx(ctx, func(ctx context.Context) error {
		return b.Revoke(ctx, storage.Revocation{Kind: storage.RevokedFamily, Value: fam, ExpiresAt: exp})
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other replica's revocation", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{Family: fam})
		return err == nil && got
	})

	// A rolled-back revocation is never announced; an expired one is not revoked.
	rolled := "rolled-" + storagetest.RandomID(6)
	_ = b.InTx(ctx, func(ctx context.Context) error {
		if err := b.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: rolled, ExpiresAt: exp}); err != nil {
			return err
		}
		return context.Canceled
	})
	gone := "gone-" + storagetest.RandomID(6)
	if err := b.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: gone, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	theirs := "theirs-" + storagetest.RandomID(6)
	if err := other.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: theirs, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	// A marker written after them: once it arrives, the others would have too.
	waitRevoked(t, d, "the marker", revokeJTI(t, b, "marker"))
	for _, v := range []string{rolled, gone, theirs} {
		if got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: v}); err != nil || got {
			t.Errorf("IsRevoked(%s) = %v, %v; want false", v, got, err)
		}
	}
	if !d.Synced() {
		t.Error("the denylist stopped answering from memory")
	}
}

// Until Run has loaded it, and when it holds more than its maximum, the
// denylist answers from SQL.
func TestDenylistFallsBackToSQL(t *testing.T) {
	t.Parallel()
	st := newStore(t).(*postgres.Store)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	d := st.NewDenylist(postgres.WithDenylistMaxEntries(2))
	jti := "jti-" + storagetest.RandomID(6)
	if err := st.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if d.Synced() {
		t.Fatal("Synced before Run")
	}
	if got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: jti}); err != nil || !got {
		t.Fatalf("IsRevoked before Run = %v, %v; want true from SQL", got, err)
	}
	runDenylist(t, d)
	for i := range 3 {
		v := "many-" + storagetest.RandomID(6)
		if err := d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: v, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: v}); err != nil || !got {
			t.Fatalf("IsRevoked(entry %d) = %v, %v; want true", i, got, err)
		}
	}
	if d.Synced() {
		t.Error("Synced with more entries than the maximum")
	}
}

// A subject mark written by another replica reaches the memory copy with its
// cutoff. An entry whose wake-up was lost (its writer died after the
// commit) is read by the periodic read; a notification of an older
// replica's format (it carried the entry) wakes a read too.
func TestDenylistMarksAndLostWakeUps(t *testing.T) {
	t.Parallel()
	a, b := replicas(t)
	ctx := t.Context()
	d := a.NewDenylist()
	postgres.SetDenylistPollEvery(d, 200*time.Millisecond)
	runDenylist(t, d)

	user := "user-" + storagetest.RandomID(6)
	cutoff := time.Now().UTC().Truncate(time.Millisecond)
	if err := b.Revoke(ctx, storage.Revocation{Kind: storage.RevokedSubject, Value: user, Cutoff: cutoff, ExpiresAt: cutoff.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other replica's subject mark", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{Subject: user, IssuedAt: cutoff.Add(-time.Second)})
		return err == nil && got
	})
	if got, err := d.IsRevoked(ctx, storage.TokenRef{Subject: user, IssuedAt: cutoff.Add(time.Millisecond)}); err != nil || got {
		t.Errorf("IsRevoked(issued after the mark) = %v, %v; want false", got, err)
	}

	// An entry stored without a wake-up.
	silent := "silent-" + storagetest.RandomID(6)
	if _, err := b.Pool().Exec(ctx, `INSERT INTO revocations (kind, value, expires_at) VALUES ('jti', $1, now() + interval '1 hour')`, silent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the periodic read", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: silent})
		return err == nil && got && d.Synced()
	})
	// An older replica's notification, with the entry in it.
	old := "old-" + storagetest.RandomID(6)
	if _, err := b.Pool().Exec(ctx, `WITH x AS (INSERT INTO revocations (kind, value, expires_at) VALUES ('jti', $1, now() + interval '1 hour'))
SELECT pg_notify('authd_revoked_' || md5(current_schema()), 'jti 123 0 ' || $1)`, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the read after an older replica's notification", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: old})
		return err == nil && got && d.Synced()
	})
}

// Transactions commit in any order: an entry of a transaction that began
// before a read and commits after it, with no wake-up of its own, is still
// read. Reading from the highest transaction id seen would miss it.
// Wake-ups alone carry the other replica's revocations here (no periodic
// read), so they are shown to work too.
func TestDenylistOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	a, b := replicas(t)
	ctx := t.Context()
	d := a.NewDenylist()
	postgres.SetDenylistPollEvery(d, time.Hour)
	runDenylist(t, d)

	slow, err := b.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(context.Background())
	late := "late-" + storagetest.RandomID(6)
	if _, err := slow.Exec(ctx, `INSERT INTO revocations (kind, value, expires_at) VALUES ('jti', $1, now() + interval '1 hour')`, late); err != nil {
		t.Fatal(err)
	}
	for range 3 { // later transactions commit first, each read by the listener
		waitRevoked(t, d, "a woken read", revokeJTI(t, b, "early"))
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The next wake-up reads it.
	waitRevoked(t, d, "the marker", revokeJTI(t, b, "marker"))
	if got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: late}); err != nil || !got || !d.Synced() {
		t.Errorf("IsRevoked(committed out of order) = %v, %v (synced %v); want true from memory", got, err, d.Synced())
	}
}

// A transaction left open holds every read's start back: reads return what
// was revoked since it began, and the listener says so (once a minute).
func TestDenylistWarnsOfAHeldHorizon(t *testing.T) {
	t.Parallel()
	a, b := replicas(t)
	ctx := t.Context()
	var warned atomic.Int32
	d := a.NewDenylist(postgres.WithDenylistLogger(slog.New(warnings{text: "long-running transaction", n: &warned})))
	postgres.SetDenylistBacklogWarn(d, 5)
	runDenylist(t, d)

	held, err := b.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(context.Background())
	if _, err := held.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // it has an id: the horizon stops here
		t.Fatal(err)
	}
	for range 8 {
		waitRevoked(t, d, "a revocation", revokeJTI(t, b, "held"))
	}
	waitFor(t, "the warning", func() bool { return warned.Load() == 1 })
}

// warnings counts the warnings whose message holds text.
type warnings struct {
	text string
	n    *atomic.Int32
}

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w warnings) WithGroup(string) slog.Handler                { return w }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.text) {
		w.n.Add(1)
	}
	return nil
}

// replicas opens two stores on one new, migrated schema.
func replicas(t *testing.T) (a, b *postgres.Store) {
	t.Helper()
	dsn := storagetest.PostgresDSN(t)
	a, b = open(t, dsn), open(t, dsn)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// revokeJTI revokes a new jti named after prefix through st, for an hour.
func revokeJTI(t *testing.T, st *postgres.Store, prefix string) string {
	t.Helper()
	v := prefix + "-" + storagetest.RandomID(8)
	if err := st.Revoke(t.Context(), storage.Revocation{Kind: storage.RevokedJTI, Value: v, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitRevoked waits until d says the jti is revoked.
func waitRevoked(t *testing.T, d *postgres.Denylist, what, jti string) {
	t.Helper()
	waitFor(t, what, func() bool {
		got, err := d.IsRevoked(t.Context(), storage.TokenRef{JTI: jti})
		return err == nil && got
	})
}
