package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

func TestNewLink(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	full := storage.Link{ConnectorID: "github", Subject: "42", UserID: "u"}
	if got, err := sqlstore.NewLink(full, clock); err != nil || !got.CreatedAt.Equal(now) || !got.LastLoginAt.Equal(now) {
		t.Errorf("NewLink(defaults) = %+v, %v; want created and last signed in now", got, err)
	}
	given := full
	given.CreatedAt = now.Add(-time.Hour)
	if got, err := sqlstore.NewLink(given, clock); err != nil || !got.CreatedAt.Equal(given.CreatedAt) || !got.LastLoginAt.Equal(given.CreatedAt) {
		t.Errorf("NewLink(created given) = %+v, %v; want the given time for both", got, err)
	}
	given.LastLoginAt = now.Add(-time.Minute)
	if got, err := sqlstore.NewLink(given, clock); err != nil || !got.LastLoginAt.Equal(given.LastLoginAt) {
		t.Errorf("NewLink(both given) = %+v, %v; want the given last sign-in", got, err)
	}
	for name, bad := range map[string]func(*storage.Link){
		"no connector": func(l *storage.Link) { l.ConnectorID = "" },
		"no subject":   func(l *storage.Link) { l.Subject = "" },
		"no user":      func(l *storage.Link) { l.UserID = "" },
	} {
		l := full
		bad(&l)
		if _, err := sqlstore.NewLink(l, clock); err == nil {
			t.Errorf("NewLink(%s) = nil error", name)
		}
	}
}

func TestNewUpstreamLogin(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	full := storage.UpstreamLogin{IDHash: "h", BindingHash: "b", ConnectorID: "github", ExpiresAt: now.Add(10 * time.Minute)}
	got, err := sqlstore.NewUpstreamLogin(full, clock)
	if err != nil || !got.CreatedAt.Equal(now) || got.Data == nil || len(got.Data) != 0 {
		t.Errorf("NewUpstreamLogin(defaults) = %+v, %v; want created now, empty non-nil data", got, err)
	}
	given := full
	given.CreatedAt, given.Data = now.Add(-time.Second), []byte("x")
	if got, err := sqlstore.NewUpstreamLogin(given, clock); err != nil || !got.CreatedAt.Equal(given.CreatedAt) || string(got.Data) != "x" {
		t.Errorf("NewUpstreamLogin(given) = %+v, %v; want the given time and data", got, err)
	}
	for name, bad := range map[string]func(*storage.UpstreamLogin){
		"no hash":         func(l *storage.UpstreamLogin) { l.IDHash = "" },
		"no binding hash": func(l *storage.UpstreamLogin) { l.BindingHash = "" },
		"no connector":    func(l *storage.UpstreamLogin) { l.ConnectorID = "" },
		"no expiry":       func(l *storage.UpstreamLogin) { l.ExpiresAt = time.Time{} },
	} {
		l := full
		bad(&l)
		if _, err := sqlstore.NewUpstreamLogin(l, clock); err == nil {
			t.Errorf("NewUpstreamLogin(%s) = nil error", name)
		}
	}
}

func TestTaken(t *testing.T) {
	end := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l := storage.UpstreamLogin{IDHash: "h", ExpiresAt: end}
	for _, tc := range []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{"before its end", end.Add(-time.Nanosecond), nil},
		{"at its end", end, storage.ErrNotFound},
		{"after its end", end.Add(time.Second), storage.ErrNotFound},
	} {
		got, err := sqlstore.Taken(l, tc.now)
		if !errors.Is(err, tc.wantErr) || (err == nil && got.IDHash != "h") || (err != nil && got.IDHash != "") {
			t.Errorf("Taken(%s) = %+v, %v; want %v", tc.name, got, err, tc.wantErr)
		}
	}
}
