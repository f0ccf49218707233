package postgres

import (
	"context"
	"time"
)

// OutboxBacklog counts the unsent events and returns the oldest one's
// creation time (zero when there is none); outbox_pending_idx covers it.
func (s *Store) OutboxBacklog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int64
		oldest *time.Time
	)
	err := s.q(ctx).QueryRow(ctx, `SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, wrap("outbox backlog", err)
	}
	return int(n), utc(oldest), nil
}
