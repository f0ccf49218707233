package sqlstore

import (
	"errors"
	"time"

	"github.com/authd/authd/storage"
)

// NewLink is l as a store creates it: CreatedAt defaulting to now(),
// LastLoginAt to CreatedAt. A link without a connector, a subject or a user
// is refused.
func NewLink(l storage.Link, now func() time.Time) (storage.Link, error) {
	if l.ConnectorID == "" || l.Subject == "" || l.UserID == "" {
		return storage.Link{}, errors.New("storage: a link needs a connector, a subject and a user")
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = now()
	}
	if l.LastLoginAt.IsZero() {
		l.LastLoginAt = l.CreatedAt
	}
	return l, nil
}

// NewUpstreamLogin is l as a store creates it: CreatedAt defaulting to
// now(), Data never nil. A sign-in without an id hash, a binding hash, a
// connector or an expiry is refused.
func NewUpstreamLogin(l storage.UpstreamLogin, now func() time.Time) (storage.UpstreamLogin, error) {
	if l.IDHash == "" || l.BindingHash == "" || l.ConnectorID == "" || l.ExpiresAt.IsZero() {
		return storage.UpstreamLogin{}, errors.New("storage: an upstream sign-in needs an id hash, a binding hash, a connector and an expiry")
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = now()
	}
	l.Data = NotNil(l.Data)
	return l, nil
}

// Taken is what a take of an upstream sign-in returns once the row l is
// deleted: l, or ErrNotFound when it expired at now (ExpiresAt not after
// now, the same bound Purge deletes by).
func Taken(l storage.UpstreamLogin, now time.Time) (storage.UpstreamLogin, error) {
	if !l.ExpiresAt.After(now) {
		return storage.UpstreamLogin{}, storage.ErrNotFound
	}
	return l, nil
}
