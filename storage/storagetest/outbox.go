package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func testOutbox(t *testing.T, s storage.Store) {
	ctx := t.Context()
	base := now().Add(-time.Minute)
	var events []storage.OutboxEvent
	for i := range 4 {
		e := storage.OutboxEvent{
			ID:        uid("evt"),
			Type:      "user.created",
			Key:       uid("user"),
			Payload:   []byte(fmt.Sprintf(`{"i": %d}`, i)), // kept byte for byte
			CreatedAt: base.Add(time.Duration(i) * time.Second),
		}
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
		events = append(events, e)
	}
	wantErr(t, "AppendOutbox(same id)", s.AppendOutbox(ctx, events[0]), storage.ErrConflict)

	check := func(what string, got, want []storage.OutboxEvent) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			g, w := got[i], want[i]
			ok = g.ID == w.ID && g.Type == w.Type && g.Key == w.Key && bytes.Equal(g.Payload, w.Payload) &&
				sameTime(g.CreatedAt, w.CreatedAt) && g.SentAt.IsZero() && isUTC(g.CreatedAt)
		}
		if !ok {
			t.Fatalf("%s = %+v; want %+v", what, got, want)
		}
	}
	got, err := s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox", got, events)
	got, err = s.PendingOutbox(ctx, 2)
	mustNil(t, "PendingOutbox(2)", err)
	check("PendingOutbox(2)", got, events[:2])

	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{events[0].ID, events[2].ID}, now()))
	mustNil(t, "MarkOutboxSent(none)", s.MarkOutboxSent(ctx, nil, now()))
	got, err = s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox after MarkOutboxSent", got, []storage.OutboxEvent{events[1], events[3]})

	// An event appended in a transaction that rolls back is never published.
	inRolledBackTx(t, s, func(ctx context.Context) {
		mustNil(t, "AppendOutbox(in tx)", s.AppendOutbox(ctx, storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`)}))
	})
	got, err = s.PendingOutbox(ctx, 10)
	mustNil(t, "PendingOutbox", err)
	check("PendingOutbox after a rolled back append", got, []storage.OutboxEvent{events[1], events[3]})

	// Claims: a claimed event is not claimed again while its lease lasts,
	// until it is released; sent events are never claimed.
	claim := func(limit int, lease time.Duration) []storage.OutboxEvent {
		t.Helper()
		got, err := s.ClaimOutbox(ctx, limit, lease)
		mustNil(t, "ClaimOutbox", err)
		return got
	}
	check("ClaimOutbox(1)", claim(1, time.Minute), events[1:2])
	check("ClaimOutbox(10) with one claimed", claim(10, time.Minute), events[3:4])
	check("ClaimOutbox with all claimed", claim(10, time.Minute), nil)
	mustNil(t, "ReleaseOutbox", s.ReleaseOutbox(ctx, []string{events[1].ID}))
	mustNil(t, "ReleaseOutbox(none)", s.ReleaseOutbox(ctx, nil))
	check("ClaimOutbox after a release", claim(10, 10*time.Millisecond), events[1:2])
	time.Sleep(30 * time.Millisecond) // the lease runs on the database's clock
	check("ClaimOutbox after the lease ran out", claim(10, time.Minute), events[1:2])
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{events[1].ID, events[3].ID}, now()))
	mustNil(t, "ReleaseOutbox(sent)", s.ReleaseOutbox(ctx, []string{events[1].ID}))
	check("ClaimOutbox with everything sent", claim(10, 0), nil)

	// Four relays claiming at once never get the same event.
	var fresh []storage.OutboxEvent
	for i := range 40 {
		e := storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`), CreatedAt: base.Add(time.Hour + time.Duration(i)*time.Millisecond)}
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
		fresh = append(fresh, e)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	for i, err := range parallel(4, func(int) error {
		for {
			got, err := s.ClaimOutbox(ctx, 3, time.Minute)
			if err != nil || len(got) == 0 {
				return err
			}
			mu.Lock()
			for _, e := range got {
				seen[e.ID]++
			}
			mu.Unlock()
		}
	}) {
		if err != nil {
			t.Errorf("concurrent ClaimOutbox #%d: %v", i, err)
		}
	}
	for _, e := range fresh {
		if seen[e.ID] != 1 {
			t.Errorf("event %s claimed %d times by four concurrent relays; want exactly once", e.ID, seen[e.ID])
		}
	}
}
