package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/authd/authd/migrations"
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

// The newest migration goes down and comes up again on a migrated file
// (every Down part is tested on PostgreSQL by TestMigrateAfterARollback).
func TestMigrateAfterARollback(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authd.db")
	s := open(t, path)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	st, err := s.MigrationStatus(ctx)
	if err != nil || len(st) == 0 || st[len(st)-1].Applied {
		t.Fatalf("MigrationStatus after Down = %+v, %v; want the newest migration pending", st, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after Down: %v", err)
	}
	st, err = s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %d %s not applied after Migrate", m.Version, m.Name)
		}
	}
}
