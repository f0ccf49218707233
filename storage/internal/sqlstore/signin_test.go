package sqlstore_test

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

func TestNewBrowserSession(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	earlier, end := now.Add(-time.Hour), now.Add(720*time.Hour)
	clock := func() time.Time { return now }
	full := storage.BrowserSession{IDHash: "h", ID: "sid", UserID: "u", ExpiresAt: end}

	got, err := sqlstore.NewBrowserSession(full, clock)
	if err != nil || !got.CreatedAt.Equal(now) || !got.AuthTime.Equal(now) || !got.LastSeenAt.Equal(now) {
		t.Errorf("NewBrowserSession(defaults) = %+v, %v; want created, authenticated and seen now", got, err)
	}
	given := full
	given.CreatedAt, given.AuthTime = earlier, earlier.Add(time.Minute)
	got, err = sqlstore.NewBrowserSession(given, clock)
	if err != nil || !got.CreatedAt.Equal(earlier) || !got.AuthTime.Equal(earlier.Add(time.Minute)) || !got.LastSeenAt.Equal(earlier) {
		t.Errorf("NewBrowserSession(created given) = %+v, %v; want the given times, last seen at creation", got, err)
	}
	for name, bad := range map[string]func(*storage.BrowserSession){
		"no hash":   func(s *storage.BrowserSession) { s.IDHash = "" },
		"no sid":    func(s *storage.BrowserSession) { s.ID = "" },
		"no user":   func(s *storage.BrowserSession) { s.UserID = "" },
		"no expiry": func(s *storage.BrowserSession) { s.ExpiresAt = time.Time{} },
	} {
		s := full
		bad(&s)
		if _, err := sqlstore.NewBrowserSession(s, clock); err == nil {
			t.Errorf("NewBrowserSession(%s) = nil error", name)
		}
	}
}

func TestNewAuthorizationCode(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	full := storage.AuthorizationCode{SignatureHash: "h", RequestID: "r", ClientID: "c", ExpiresAt: now.Add(time.Minute)}
	if got, err := sqlstore.NewAuthorizationCode(full, clock); err != nil || !got.RequestedAt.Equal(now) {
		t.Errorf("NewAuthorizationCode(defaults) = %+v, %v; want requested now", got, err)
	}
	given := full
	given.RequestedAt = now.Add(-time.Second)
	if got, err := sqlstore.NewAuthorizationCode(given, clock); err != nil || !got.RequestedAt.Equal(given.RequestedAt) {
		t.Errorf("NewAuthorizationCode(requested given) = %+v, %v; want the given time", got, err)
	}
	for name, bad := range map[string]func(*storage.AuthorizationCode){
		"no hash":       func(c *storage.AuthorizationCode) { c.SignatureHash = "" },
		"no request id": func(c *storage.AuthorizationCode) { c.RequestID = "" },
		"no client":     func(c *storage.AuthorizationCode) { c.ClientID = "" },
		"no expiry":     func(c *storage.AuthorizationCode) { c.ExpiresAt = time.Time{} },
	} {
		c := full
		bad(&c)
		if _, err := sqlstore.NewAuthorizationCode(c, clock); err == nil {
			t.Errorf("NewAuthorizationCode(%s) = nil error", name)
		}
	}
}

func TestNewConsent(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	if got := sqlstore.NewConsent(storage.Consent{UserID: "u", ClientID: "c"}, clock); !got.GrantedAt.Equal(now) {
		t.Errorf("NewConsent(defaults).GrantedAt = %v; want %v", got.GrantedAt, now)
	}
	at := now.Add(-time.Hour)
	if got := sqlstore.NewConsent(storage.Consent{UserID: "u", ClientID: "c", GrantedAt: at}, clock); !got.GrantedAt.Equal(at) {
		t.Errorf("NewConsent(given).GrantedAt = %v; want %v", got.GrantedAt, at)
	}
}
