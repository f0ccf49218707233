package postgres_test

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

// TestDenylistStatsForMetrics: Stats reports the entries held, the bound,
// whether answers come from memory, and how many came from SQL.
func TestDenylistStatsForMetrics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := newStore(t).(*postgres.Store)
	exp := time.Now().Add(time.Hour)
	if err := st.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: "a-" + storagetest.RandomID(6), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	d := st.NewDenylist(postgres.WithDenylistMaxEntries(100))
	if s := d.Stats(); s != (postgres.DenylistStats{MaxEntries: 100}) {
		t.Fatalf("Stats before Run = %+v; want only the bound", s)
	}
	// Not loaded yet: answers come from SQL.
	if _, err := d.IsRevoked(ctx, storage.TokenRef{JTI: "unknown"}); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.SQLAnswers != 1 || s.InMemory {
		t.Fatalf("Stats after an answer before Run = %+v; want 1 SQL answer, not in memory", s)
	}
	runDenylist(t, d)
	if err := d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedFamily, Value: "f-" + storagetest.RandomID(6), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.IsRevoked(ctx, storage.TokenRef{JTI: "unknown"}); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Entries != 2 || !s.InMemory || s.SQLAnswers != 1 || s.MaxEntries != 100 {
		t.Errorf("Stats once loaded = %+v; want 2 entries in memory, still 1 SQL answer", s)
	}
}
