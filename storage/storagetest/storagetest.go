// Package storagetest is the one conformance suite every authd SQL store and
// every denylist passes, plus helpers that hand tests a PostgreSQL schema or
// a Redis key prefix of their own.
package storagetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// Run runs the conformance suite. newStore must return a new, migrated and
// empty store, and close it when the test ends; it is called once per group
// of subtests, from parallel tests.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	groups := []struct {
		name string
		fn   func(*testing.T, storage.Store)
	}{
		{"Migrations", testMigrations},
		{"Users", testUsers},
		{"Lockout", testLockout},
		{"Clients", testClients},
		{"RefreshTokens", testRefreshTokens},
		{"BrowserSessions", testBrowserSessions},
		{"BrowserSessionPurge", testBrowserSessionPurge},
		{"AuthorizationCodes", testAuthorizationCodes},
		{"AuthorizationCodePurge", testAuthorizationCodePurge},
		{"Consents", testConsents},
		{"Links", testLinks},
		{"UpstreamLogins", testUpstreamLogins},
		{"UpstreamLoginPurge", testUpstreamLoginPurge},
		{"Transactions", testTransactions},
		{"Keys", testKeys},
		{"Denylist", testStoreDenylist},
		{"Audit", testAudit},
		{"Outbox", testOutbox},
		{"OutboxBacklog", testOutboxBacklog},
		{"Purge", testPurge},
		{"ProofReplay", testProofReplay},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, newStore(t))
		})
	}
	t.Run("DenylistConformance", func(t *testing.T) {
		t.Parallel()
		RunDenylist(t, func(t *testing.T) storage.Denylist { return newStore(t) })
	})
}

// now is the suite's reference time: UTC, whole microseconds (PostgreSQL's
// precision), no monotonic reading.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func uid(prefix string) string { return prefix + "-" + RandomID(6) }

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", what, err, want)
	}
}

func sameTime(a, b time.Time) bool { return a.Equal(b) && a.IsZero() == b.IsZero() }

// isUTC reports whether t is the zero time or in UTC.
func isUTC(t time.Time) bool { return t.IsZero() || t.Location() == time.UTC }

func sameStrings(a, b []string) bool { return slices.Equal(a, b) } // nil equals empty

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// parallel runs fn n times at once and returns each call's error.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testMigrations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustNil(t, "Ping", s.Ping(ctx))
	st, err := s.MigrationStatus(ctx)
	mustNil(t, "MigrationStatus", err)
	if len(st) == 0 {
		t.Fatal("MigrationStatus returned no migration")
	}
	check := func(st []storage.MigrationState) {
		t.Helper()
		for i, m := range st {
			if !m.Applied || m.AppliedAt.IsZero() {
				t.Errorf("migration %d %q: applied %v at %v; want applied with a time", m.Version, m.Name, m.Applied, m.AppliedAt)
			}
			if !strings.HasSuffix(m.Name, ".sql") || m.Version <= 0 {
				t.Errorf("migration %+v: want a positive version and a .sql name", m)
			}
			if i > 0 && st[i-1].Version >= m.Version {
				t.Errorf("migrations not in ascending order: %d then %d", st[i-1].Version, m.Version)
			}
		}
	}
	check(st)
	// Migrating again is a no-op.
	mustNil(t, "Migrate again", s.Migrate(ctx))
	st2, err := s.MigrationStatus(ctx)
	mustNil(t, "MigrationStatus", err)
	check(st2)
	if len(st2) != len(st) {
		t.Errorf("MigrationStatus after a second Migrate: %d migrations; want %d", len(st2), len(st))
	}
}
