package storagetest

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func testPurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))

	expired := newToken(c.ID, uid("fam"), uid("sub"))
	expired.ExpiresAt = at.Add(-time.Second)
	live := newToken(c.ID, uid("fam"), uid("sub"))
	forever := newToken(c.ID, uid("fam"), uid("sub"))
	forever.ExpiresAt = time.Time{}
	for _, tok := range []storage.RefreshToken{expired, live, forever} {
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
	}
	deadRev := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(-time.Second)}
	liveRev := storage.Revocation{Kind: storage.RevokedFamily, Value: uid("fam"), ExpiresAt: at.Add(time.Hour)}
	mustNil(t, "Revoke", s.Revoke(ctx, deadRev, liveRev))

	dropped := newKey(storage.KeyRetired)
	dropped.ExpiresAt = at.Add(-time.Second)
	retired := newKey(storage.KeyRetired)
	current := newKey(storage.KeyCurrent)
	mustNil(t, "UpdateKeys", s.UpdateKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{dropped, retired, current}, nil
	}))

	oldSent := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-9 * 24 * time.Hour)}
	newSent := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-time.Hour)}
	pending := storage.OutboxEvent{ID: uid("ev"), Type: "auth.logout", Key: uid("sub"), Payload: []byte(`{}`), CreatedAt: at.Add(-30 * 24 * time.Hour)}
	for _, e := range []storage.OutboxEvent{oldSent, newSent, pending} {
		mustNil(t, "AppendOutbox", s.AppendOutbox(ctx, e))
	}
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{oldSent.ID}, at.Add(-storage.OutboxRetention-time.Hour)))
	mustNil(t, "MarkOutboxSent", s.MarkOutboxSent(ctx, []string{newSent.ID}, at.Add(-time.Minute)))

	oldAudit := storage.AuditEntry{Time: at.Add(-100 * 24 * time.Hour), Type: "auth.logout", UserID: uid("user")}
	newAudit := storage.AuditEntry{Time: at.Add(-time.Hour), Type: "auth.logout", UserID: uid("user")}
	for _, e := range []storage.AuditEntry{oldAudit, newAudit} {
		mustNil(t, "AppendAudit", s.AppendAudit(ctx, e))
	}
	// Nothing of the history goes without a retention.
	n, err := s.Purge(ctx, at, storage.Retention{})
	mustNil(t, "Purge(keep history)", err)
	if n != 3 {
		t.Errorf("Purge(keep history) = %d; want 3 (a token, a revocation, a key)", n)
	}
	n, err = s.Purge(ctx, at, storage.Retention{Audit: 90 * 24 * time.Hour, SentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge", err)
	if n != 2 {
		t.Errorf("Purge = %d; want 2 (an old sent event, an old audit entry)", n)
	}
	for _, u := range []struct {
		id   string
		want int
	}{{oldAudit.UserID, 0}, {newAudit.UserID, 1}} {
		got, err := s.ListAudit(ctx, storage.AuditFilter{UserID: u.id})
		mustNil(t, "ListAudit", err)
		if len(got) != u.want {
			t.Errorf("audit entries of %s after Purge = %d; want %d", u.id, len(got), u.want)
		}
	}
	pend, err := s.PendingOutbox(ctx, 1000)
	mustNil(t, "PendingOutbox", err)
	found := false
	for _, e := range pend {
		found = found || e.ID == pending.ID
	}
	if !found {
		t.Errorf("Purge deleted a pending outbox event")
	}
	_, err = s.GetRefreshToken(ctx, expired.SignatureHash)
	wantErr(t, "GetRefreshToken(expired)", err, storage.ErrNotFound)
	for _, sig := range []string{live.SignatureHash, forever.SignatureHash} {
		if _, err := s.GetRefreshToken(ctx, sig); err != nil {
			t.Errorf("GetRefreshToken(unexpired) after Purge: %v", err)
		}
	}
	revs, err := s.ActiveRevocations(ctx, at.Add(-time.Hour))
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations after Purge", revs, []storage.Revocation{liveRev})
	keys, err := s.ListKeys(ctx)
	mustNil(t, "ListKeys", err)
	checkKeys(t, "ListKeys after Purge", keys, []storage.SigningKey{retired, current})

	// Without a broker, events that were never published go after a while too.
	n, err = s.Purge(ctx, at, storage.Retention{UnsentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge(unsent)", err)
	if n != 1 {
		t.Errorf("Purge(unsent) = %d; want 1 (the month-old unpublished event)", n)
	}
	n, err = s.Purge(ctx, at, storage.Retention{Audit: 90 * 24 * time.Hour, SentOutbox: storage.OutboxRetention, UnsentOutbox: storage.OutboxRetention})
	mustNil(t, "Purge(again)", err)
	if n != 0 {
		t.Errorf("second Purge = %d; want 0", n)
	}
}
