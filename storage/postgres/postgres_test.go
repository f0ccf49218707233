package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/authd/authd/migrations"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.New(t.Context(), dsn)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) storage.Store {
	s := open(t, storagetest.PostgresDSN(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, newStore)
}

// Replicas starting together migrate one after the other, and both succeed.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	dsn := storagetest.PostgresDSN(t)
	storagetest.ConcurrentMigrate(t, open(t, dsn), open(t, dsn), open(t, dsn))
}

func TestStatusBeforeMigrate(t *testing.T) {
	t.Parallel()
	s := open(t, storagetest.PostgresDSN(t))
	st, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(st) == 0 {
		t.Fatal("MigrationStatus listed no migration")
	}
	for _, m := range st {
		if m.Applied {
			t.Errorf("migration %s applied before Migrate", m.Name)
		}
	}
}

// A deadlock between two transactions surfaces as ErrSerialization.
func TestDeadlockIsSerializationFailure(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if err := s.CreateUser(ctx, storage.User{ID: id, Username: id, PasswordHash: "x"}); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	bump := func(ctx context.Context, id string) error {
		_, err := s.UpdateUser(ctx, id, func(u *storage.User) error { u.FailedLogins++; return nil })
		return err
	}
	// Each transaction locks its first row, waits until the other has
	// locked its own, then asks for the other's: a deadlock, which
	// PostgreSQL breaks by failing one of them.
	var locked sync.WaitGroup
	locked.Add(2)
	run := func(first, second string) error {
		return s.InTx(ctx, func(ctx context.Context) error {
			err := bump(ctx, first)
			locked.Done()
			if err != nil {
				return err
			}
			locked.Wait()
			return bump(ctx, second)
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = run("a", "b") })
	wg.Go(func() { errs[1] = run("b", "a") })
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if !errors.Is(err, storage.ErrSerialization) {
				t.Errorf("deadlocked UpdateUser: %v; want ErrSerialization", err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d transactions failed; want 1 (the deadlock victim)", failed)
	}
}

// Migrate's one-query check sees a migration rolled back and applies it
// again (goose deletes the version's row on the way down).
func TestMigrateAfterARollback(t *testing.T) {
	t.Parallel()
	s := newStore(t).(*postgres.Store)
	ctx := t.Context()
	db := stdlib.OpenDBFromPool(s.Pool())
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %d %s not applied after Migrate", m.Version, m.Name)
		}
	}
}
