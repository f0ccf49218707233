package sqlstore

import (
	"errors"
	"time"

	"github.com/authd/authd/storage"
)

// NewBrowserSession is s as a store creates it: CreatedAt defaulting to
// now(), AuthTime and LastSeenAt to CreatedAt. A session without a hash, a
// public id, a user or an end is refused.
func NewBrowserSession(s storage.BrowserSession, now func() time.Time) (storage.BrowserSession, error) {
	if s.IDHash == "" || s.ID == "" || s.UserID == "" || s.ExpiresAt.IsZero() {
		return storage.BrowserSession{}, errors.New("storage: a browser session needs an id hash, an id, a user and an expiry")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	if s.AuthTime.IsZero() {
		s.AuthTime = s.CreatedAt
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = s.CreatedAt
	}
	return s, nil
}

// NewAuthorizationCode is c as a store creates it: RequestedAt defaulting
// to now(). A code without a hash, a request id, a client or an expiry is
// refused.
func NewAuthorizationCode(c storage.AuthorizationCode, now func() time.Time) (storage.AuthorizationCode, error) {
	if c.SignatureHash == "" || c.RequestID == "" || c.ClientID == "" || c.ExpiresAt.IsZero() {
		return storage.AuthorizationCode{}, errors.New("storage: an authorization code needs a signature hash, a request id, a client and an expiry")
	}
	if c.RequestedAt.IsZero() {
		c.RequestedAt = now()
	}
	return c, nil
}

// NewConsent is c as a store saves it: GrantedAt defaulting to now().
func NewConsent(c storage.Consent, now func() time.Time) storage.Consent {
	if c.GrantedAt.IsZero() {
		c.GrantedAt = now()
	}
	return c
}
