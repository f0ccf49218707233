// Package events defines authd's security events and records them: each event
// goes to the audit trail and to the outbox in the caller's transaction, so the
// change it reports and the event commit or fail together.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/authd/authd/storage"
)

// Type is a security event type; it is also the Kafka topic.
type Type string

// The event types of API.md.
const (
	UserCreated     Type = "auth.user_created"
	LoginSuccess    Type = "auth.login.success"
	LoginFailed     Type = "auth.login.failed"
	UserLocked      Type = "auth.user_locked"
	UserUnlocked    Type = "auth.user_unlocked"
	Logout          Type = "auth.logout"
	TokenRevoked    Type = "auth.token.revoked"
	RefreshReuse    Type = "auth.refresh.reuse_detected"
	PasswordChanged Type = "auth.password.changed"
	KeyRotated      Type = "auth.key.rotated"
)

// Administrative event types (audit trail and outbox), beside those of API.md.
const (
	UserUpdated   Type = "auth.user_updated"
	UserDeleted   Type = "auth.user_deleted"
	ClientCreated Type = "auth.client_created"
	ClientUpdated Type = "auth.client_updated"
	ClientDeleted Type = "auth.client_deleted"
	// LinkCreated: an upstream identity (data.connector_id) was linked to
	// the user; data.by says how (created_user, verified_email, password).
	LinkCreated Type = "auth.link.created"
	// LinkRemoved: an administrator removed the user's link (data.connector_id).
	LinkRemoved Type = "auth.link.removed"
)

// Event is one security event. Data must never hold a token, password, secret or hash.
type Event struct {
	ID       string         `json:"id"`
	Type     Type           `json:"type"`
	Time     time.Time      `json:"time"`
	Subject  string         `json:"subject"`
	ClientID string         `json:"client_id"`
	IP       string         `json:"ip"`
	Data     map[string]any `json:"data"`
}

// Store is what the recorder writes to.
type Store interface {
	storage.Audit
	storage.Outbox
}

// Recorder writes events to the audit trail and the outbox.
type Recorder struct {
	store Store
	now   func() time.Time
	obs   Observer // nil: none
}

// NewRecorder returns a recorder on store; now may be nil for time.Now.
func NewRecorder(store Store, now func() time.Time, opts ...RecorderOption) *Recorder {
	if now == nil {
		now = time.Now
	}
	r := &Recorder{store: store, now: now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Record writes e to the audit trail and the outbox. Call it with the context
// of the transaction that makes the change e reports. The observer, if any,
// hears of e once that transaction committed (see WithObserver).
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = r.now().UTC()
	}
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("events: encode data: %w", err)
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("events: encode event: %w", err)
	}
	if err := r.store.AppendAudit(ctx, storage.AuditEntry{
		Time: e.Time, Type: string(e.Type), UserID: e.Subject, ClientID: e.ClientID, IP: e.IP, Data: data,
	}); err != nil {
		return fmt.Errorf("events: audit %s: %w", e.Type, err)
	}
	if err := r.store.AppendOutbox(ctx, storage.OutboxEvent{
		ID: e.ID, Type: string(e.Type), Key: e.Subject, Payload: payload, CreatedAt: e.Time,
	}); err != nil {
		return fmt.Errorf("events: outbox %s: %w", e.Type, err)
	}
	r.observe(ctx, e)
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
