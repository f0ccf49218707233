package events_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

// slowPublisher counts every event it is handed, taking a moment per batch
// so that relays overlap.
type slowPublisher struct {
	mu    sync.Mutex
	count map[string]int
}

func (p *slowPublisher) Publish(_ context.Context, evs []storage.OutboxEvent) error {
	time.Sleep(2 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range evs {
		p.count[e.ID]++
	}
	return nil
}

// Three relays on one database (replicas) publish every event exactly once
// in normal operation: each claims what it publishes.
func TestRelaysPublishOnce(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) storage.Store{
		"sqlite": newSQLite,
		"postgres": func(t *testing.T) storage.Store {
			st, err := postgres.New(t.Context(), storagetest.PostgresDSN(t))
			if err != nil {
				t.Fatalf("postgres.New: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			return st
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ids := make([]string, 300)
			for i := range ids {
				ids[i] = fmt.Sprintf("evt-%03d", i)
			}
			record(t, st, t0, loginTypes, ids...)
			pub := &slowPublisher{count: map[string]int{}}
			var wg sync.WaitGroup
			for range 3 {
				r := events.NewRelay(st, pub, events.RelayOptions{Batch: 7})
				wg.Go(func() {
					if _, err := r.Flush(t.Context()); err != nil {
						t.Errorf("Flush: %v", err)
					}
				})
			}
			wg.Wait()
			for _, id := range ids {
				if n := pub.count[id]; n != 1 {
					t.Errorf("event %s published %d times by three relays; want exactly once", id, n)
				}
			}
			if p := pending(t, st); len(p) != 0 {
				t.Errorf("%d events still pending", len(p))
			}
		})
	}
}
