package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authd/authd/storage"
)

// A transaction queues the writes whose results nobody reads and sends them
// with its next statement or its commit. These tests hold it to what a
// transaction promises: all or nothing, its own writes visible to its later
// reads, nothing after a rollback, and a usable connection afterwards.

func auditCount(t *testing.T, s storage.Store, userID string) int {
	t.Helper()
	got, err := s.ListAudit(t.Context(), storage.AuditFilter{UserID: userID, Limit: 10})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return len(got)
}

func outboxEvent(id string) storage.OutboxEvent {
	return storage.OutboxEvent{ID: id, Type: "test.event", Key: "k", Payload: []byte(`{}`), CreatedAt: time.Now()}
}

func TestQueuedWritesAreAllOrNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, explicit := range []bool{false, true} {
		user := uuid.NewString()
		dup := uuid.NewString()
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			if err := s.AppendAudit(ctx, storage.AuditEntry{Type: "test", UserID: user}); err != nil {
				return err
			}
			if explicit {
				// A statement that needs an answer opens an explicit
				// transaction; a missing row is an answer, not a failure.
				if _, err := s.GetUser(ctx, uuid.NewString()); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetUser(missing) in the transaction = %v; want ErrNotFound", err)
				}
			}
			if err := s.AppendOutbox(ctx, outboxEvent(dup)); err != nil {
				return err
			}
			return s.AppendOutbox(ctx, outboxEvent(dup)) // fails, at commit
		})
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("explicit=%v: commit with a duplicate event = %v; want ErrConflict", explicit, err)
		}
		if n := auditCount(t, s, user); n != 0 {
			t.Errorf("explicit=%v: the failed transaction's audit row was written (%d)", explicit, n)
		}
	}
	// The connections went back to the pool usable.
	for range 20 {
		user := uuid.NewString()
		if err := s.AppendAudit(t.Context(), storage.AuditEntry{Type: "test", UserID: user}); err != nil {
			t.Fatalf("AppendAudit after failed transactions: %v", err)
		}
		if n := auditCount(t, s, user); n != 1 {
			t.Fatalf("audit rows after failed transactions = %d; want 1", n)
		}
	}
}

func TestQueuedWritesAreSeenByLaterReads(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	user := uuid.NewString()
	err := s.InTx(t.Context(), func(ctx context.Context) error {
		if err := s.AppendAudit(ctx, storage.AuditEntry{Type: "test", UserID: user}); err != nil {
			return err
		}
		got, err := s.ListAudit(ctx, storage.AuditFilter{UserID: user, Limit: 10})
		if err != nil || len(got) != 1 {
			t.Errorf("ListAudit in the transaction after AppendAudit = %d rows, %v; want 1", len(got), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := auditCount(t, s, user); n != 1 {
		t.Errorf("after commit: %d audit rows; want 1", n)
	}
}

func TestQueuedWritesRollBack(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, explicit := range []bool{false, true} {
		user := uuid.NewString()
		rollback := errors.New("roll back")
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			if err := s.AppendAudit(ctx, storage.AuditEntry{Type: "test", UserID: user}); err != nil {
				return err
			}
			if explicit { // a read sends the queued write before the rollback
				if _, err := s.ListAudit(ctx, storage.AuditFilter{UserID: user, Limit: 1}); err != nil {
					return err
				}
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("explicit=%v: InTx = %v; want the function's error", explicit, err)
		}
		if n := auditCount(t, s, user); n != 0 {
			t.Errorf("explicit=%v: a rolled-back audit row was written", explicit)
		}
	}
}

// An error returned by the function rolls back what it queued.
func TestQueuedWritesOfAFailedFunction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	user := uuid.NewString()
	boom := errors.New("boom")
	err := s.InTx(t.Context(), func(ctx context.Context) error {
		if err := s.AppendAudit(ctx, storage.AuditEntry{Type: "test", UserID: user}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v; want the function's error", err)
	}
	if n := auditCount(t, s, user); n != 0 {
		t.Errorf("the failed function's audit row was written")
	}
}
