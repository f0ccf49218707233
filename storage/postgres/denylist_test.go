package postgres_test

import (
	"context"
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
	dsn := storagetest.PostgresDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
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
	marker := "marker-" + storagetest.RandomID(6)
	if err := b.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: marker, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the marker", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: marker})
		return err == nil && got
	})
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
// cutoff; a notification this version cannot read (an older replica's
// format) makes the listener reload from SQL instead of missing the entry.
func TestDenylistMarksAndUnreadableNotifications(t *testing.T) {
	t.Parallel()
	dsn := storagetest.PostgresDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d := a.NewDenylist()
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

	// An entry stored without its notification, then an unreadable one.
	silent := "silent-" + storagetest.RandomID(6)
	if _, err := b.Pool().Exec(ctx, `INSERT INTO revocations (kind, value, expires_at) VALUES ('jti', $1, now() + interval '1 hour')`, silent); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pool().Exec(ctx, `SELECT pg_notify('authd_revoked_' || md5(current_schema()), 'jti 123 old-format')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload after an unreadable notification", func() bool {
		got, err := d.IsRevoked(ctx, storage.TokenRef{JTI: silent})
		return err == nil && got && d.Synced()
	})
}
