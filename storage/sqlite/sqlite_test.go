package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.New(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) storage.Store {
	s := open(t, filepath.Join(t.TempDir(), "authd.db"))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, newStore)
}

// Two processes (here two Stores) migrating one file at once both succeed.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "authd.db") // New creates the directories
	storagetest.ConcurrentMigrate(t, open(t, path), open(t, path), open(t, path))
}

// A writer that cannot get the lock within the busy timeout fails with ErrSerialization.
func TestBusyIsSerializationFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authd.db")
	holder := open(t, path)
	if err := holder.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	waiter := open(t, path, sqlite.WithBusyTimeout(50*time.Millisecond))
	// The holder's transaction holds the write lock until the checks below
	// are done.
	holding, done := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- holder.InTx(t.Context(), func(ctx context.Context) error {
			err := holder.CreateClient(ctx, storage.Client{ID: "held", Name: "held"})
			close(holding)
			<-done
			return err
		})
	}()
	defer func() {
		close(done)
		if err := <-held; err != nil {
			t.Errorf("the holder's transaction: %v", err)
		}
	}()
	<-holding
	err := waiter.CreateClient(t.Context(), storage.Client{ID: "c", Name: "c"})
	if !errors.Is(err, storage.ErrSerialization) {
		t.Errorf("CreateClient while another store holds the write lock = %v; want ErrSerialization", err)
	}
	// Reads go on while a writer holds the lock (WAL).
	if _, err := waiter.ListClients(t.Context()); err != nil {
		t.Errorf("ListClients during a write transaction: %v", err)
	}
}
