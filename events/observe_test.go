package events_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/authd/authd/events"
)

// counted is an events.Observer that remembers the types it heard.
type counted struct {
	mu    sync.Mutex
	types []events.Type
}

func (c *counted) ObserveEvent(e events.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.types = append(c.types, e.Type)
}

func (c *counted) seen() []events.Type {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.types)
}

// TestObserverCountsCommittedEvents: through a CommitStore, an event is
// observed once its transaction committed (InTx or nested InTx), never when
// it rolls back; outside a transaction at once.
func TestObserverCountsCommittedEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := events.NewCommitStore(newSQLite(t))
	obs := &counted{}
	rec := events.NewRecorder(st, nil, events.WithObserver(obs))
	want := func(what string, types ...events.Type) {
		t.Helper()
		if got := obs.seen(); !slices.Equal(got, types) {
			t.Fatalf("%s: observed %v; want %v", what, got, types)
		}
	}

	err := st.InTx(ctx, func(ctx context.Context) error {
		if err := rec.Record(ctx, events.Event{Type: events.LoginFailed, Data: map[string]any{"reason": "bad_password"}}); err != nil {
			return err
		}
		// A nested InTx is part of the outer transaction.
		if err := st.InTx(ctx, func(ctx context.Context) error {
			return rec.Record(ctx, events.Event{Type: events.UserLocked})
		}); err != nil {
			return err
		}
		want("before the commit")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want("after the commit", events.LoginFailed, events.UserLocked)

	boom := errors.New("boom")
	err = st.InTx(ctx, func(ctx context.Context) error {
		if err := rec.Record(ctx, events.Event{Type: events.Logout}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v; want boom", err)
	}
	want("after a rollback", events.LoginFailed, events.UserLocked)

	if err := rec.Record(ctx, events.Event{Type: events.KeyRotated}); err != nil {
		t.Fatal(err)
	}
	want("outside a transaction", events.LoginFailed, events.UserLocked, events.KeyRotated)

	// The rolled-back events are not in the outbox either; the others are.
	pending, err := st.PendingOutbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 {
		t.Errorf("outbox holds %d events; want the 3 committed", len(pending))
	}
}

// TestObserverWithoutCommitStore: a Recorder on a bare store observes at
// Record time (documented: a rolled-back event is counted then); without an
// observer nothing is called.
func TestObserverWithoutCommitStore(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	obs := &counted{}
	rec := events.NewRecorder(st, nil, events.WithObserver(obs))
	_ = st.InTx(t.Context(), func(ctx context.Context) error {
		if err := rec.Record(ctx, events.Event{Type: events.Logout}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if got := obs.seen(); !slices.Equal(got, []events.Type{events.Logout}) {
		t.Errorf("observed %v; want the event at Record time", got)
	}
	if err := events.NewRecorder(st, nil).Record(t.Context(), events.Event{Type: events.Logout}); err != nil {
		t.Errorf("Record without an observer: %v", err)
	}
}
