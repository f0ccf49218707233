package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// testOutboxBacklog: OutboxBacklog counts the unsent events, claimed or not,
// and names the oldest one's creation time; sent events and events of a
// rolled-back transaction do not count; an empty backlog is (0, zero time).
func testOutboxBacklog(t *testing.T, s storage.Store) {
	ctx := t.Context()
	backlog := func(what string, wantN int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := s.OutboxBacklog(ctx)
		mustNil(t, "OutboxBacklog", err)
		if n != wantN || !sameTime(oldest, wantOldest) || !isUTC(oldest) {
			t.Errorf("%s: OutboxBacklog = %d, %v; want %d, %v", what, n, oldest, wantN, wantOldest)
		}
	}
	backlog("empty outbox", 0, time.Time{})

	base := now().Add(-time.Hour)
	var ids []string
	for i := range 5 {
		e := storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`), CreatedAt: base.Add(time.Duration(i) * time.Second)}
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
		ids = append(ids, e.ID)
	}
	backlog("five pending", 5, base)

	_, err := s.ClaimOutbox(ctx, 2, time.Minute)
	mustNil(t, "ClaimOutbox", err)
	backlog("two of them claimed", 5, base)

	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, ids[:2], now()))
	backlog("the two oldest sent", 3, base.Add(2*time.Second))

	inRolledBackTx(t, s, func(ctx context.Context) {
		mustNil(t, "AppendOutbox(in tx)", s.AppendOutbox(ctx, storage.OutboxEvent{ID: uid("evt"), Type: "x", Payload: []byte(`{}`), CreatedAt: base.Add(-time.Hour)}))
	})
	backlog("after a rolled-back append", 3, base.Add(2*time.Second))

	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, ids[2:], now()))
	backlog("everything sent", 0, time.Time{})
}
