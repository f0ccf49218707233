package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/authd/authd/storage"
)

func testTransactions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	exists := func(t *testing.T, id string) bool {
		t.Helper()
		_, err := s.GetUser(ctx, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetUser: %v", err)
		}
		return err == nil
	}

	t.Run("CommitKeeps", func(t *testing.T) {
		u := newUser("commit")
		mustNil(t, "InTx", s.InTx(ctx, func(txCtx context.Context) error {
			mustNil(t, "CreateUser", s.CreateUser(txCtx, u))
			if _, err := s.GetUser(txCtx, u.ID); err != nil {
				t.Errorf("GetUser in the transaction: %v", err)
			}
			if exists(t, u.ID) {
				t.Error("uncommitted user visible outside the transaction")
			}
			return nil
		}))
		if !exists(t, u.ID) {
			t.Error("committed user not found")
		}
	})

	t.Run("RollbackDiscards", func(t *testing.T) {
		u := newUser("rollback")
		inRolledBackTx(t, s, func(ctx context.Context) {
			mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		})
		if exists(t, u.ID) {
			t.Error("rolled back user found")
		}
		// The connection went back to the pool: the next transaction runs.
		mustNil(t, "InTx after a rollback", s.InTx(ctx, func(ctx context.Context) error {
			_, err := s.GetUser(ctx, u.ID)
			if !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("GetUser(rolled back) = %w; want ErrNotFound", err)
			}
			return nil
		}))
	})

	t.Run("InTx", func(t *testing.T) {
		a, b := newUser("intx"), newUser("intx")
		mustNil(t, "InTx", s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, a); err != nil {
				return err
			}
			// Nested: runs in the same transaction and sees a.
			return s.InTx(ctx, func(ctx context.Context) error {
				if _, err := s.GetUser(ctx, a.ID); err != nil {
					return fmt.Errorf("nested InTx does not see the outer write: %w", err)
				}
				return s.CreateUser(ctx, b)
			})
		}))
		if !exists(t, a.ID) || !exists(t, b.ID) {
			t.Error("InTx did not commit")
		}
	})

	t.Run("InTxFailureRollsBack", func(t *testing.T) {
		a, b := newUser("intxfail"), newUser("intxfail")
		fnErr := errors.New("fn failed")
		err := s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, a); err != nil {
				return err
			}
			if _, err := s.UpdateUser(ctx, a.ID, func(u *storage.User) error { u.FailedLogins = 1; return nil }); err != nil {
				return err
			}
			if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, b) }); err != nil {
				return err
			}
			return fnErr
		})
		wantErr(t, "InTx", err, fnErr)
		if exists(t, a.ID) || exists(t, b.ID) {
			t.Error("writes of a failed InTx were kept")
		}
		// A failing statement inside (a conflict) fails the whole transaction.
		c := newUser("intxfail")
		mustNil(t, "CreateUser", s.CreateUser(ctx, c))
		d := newUser("intxfail")
		err = s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, d); err != nil {
				return err
			}
			return s.CreateUser(ctx, c)
		})
		wantErr(t, "InTx(conflict)", err, storage.ErrConflict)
		if exists(t, d.ID) {
			t.Error("write before a conflict was kept")
		}
	})
}

// inRolledBackTx runs fn in a transaction of s that then rolls back.
func inRolledBackTx(t *testing.T, s storage.Store, fn func(ctx context.Context)) {
	t.Helper()
	rollback := errors.New("roll back")
	if err := s.InTx(t.Context(), func(ctx context.Context) error {
		fn(ctx)
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatalf("InTx = %v; want its function's error back", err)
	}
}
