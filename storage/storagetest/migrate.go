package storagetest

import (
	"sync"
	"testing"

	"github.com/authd/authd/storage"
)

// ConcurrentMigrate migrates stores, unmigrated and on one database, all at
// once, as replicas (or processes on one SQLite file) starting together do:
// every Migrate succeeds, and every store then sees every migration applied.
func ConcurrentMigrate(t *testing.T, stores ...storage.Store) {
	t.Helper()
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	for i, s := range stores {
		st, err := s.MigrationStatus(t.Context())
		if err != nil {
			t.Fatalf("MigrationStatus #%d: %v", i, err)
		}
		for _, m := range st {
			if !m.Applied {
				t.Errorf("store #%d: migration %s not applied", i, m.Name)
			}
		}
	}
}
