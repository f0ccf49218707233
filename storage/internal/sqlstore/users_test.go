package sqlstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

func TestNewUser(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	calls := 0
	clock := func() time.Time { calls++; return now }
	for _, tc := range []struct {
		name               string
		in                 storage.User
		created, updated   time.Time
		wantUsername       string
		wantClockCallsUpTo int
	}{
		{"defaults", storage.User{Username: "Ann"}, now, now, "ann", 1},
		{"created given", storage.User{Username: "ann", CreatedAt: earlier}, earlier, earlier, "ann", 0},
		{"both given", storage.User{Username: "ANN", CreatedAt: earlier, UpdatedAt: now}, earlier, now, "ann", 0},
	} {
		calls = 0
		got := sqlstore.NewUser(tc.in, clock)
		if got.Username != tc.wantUsername || !got.CreatedAt.Equal(tc.created) || !got.UpdatedAt.Equal(tc.updated) {
			t.Errorf("NewUser(%s) = %q created %v updated %v; want %q, %v, %v", tc.name,
				got.Username, got.CreatedAt, got.UpdatedAt, tc.wantUsername, tc.created, tc.updated)
		}
		if calls > tc.wantClockCallsUpTo {
			t.Errorf("NewUser(%s) read the clock %d times; want at most %d", tc.name, calls, tc.wantClockCallsUpTo)
		}
	}
}

func TestUpdatedUser(t *testing.T) {
	now := time.Date(2025, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	in := storage.User{ID: "changed-by-fn", Username: "Bob", Email: "Bob@example.com", Roles: []string{"admin"}, FailedLogins: 2}
	got := sqlstore.UpdatedUser(in, "u1", now)
	want := storage.User{ID: "u1", Username: "bob", Email: "Bob@example.com", Roles: []string{"admin"}, FailedLogins: 2,
		UpdatedAt: now.UTC()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UpdatedUser = %+v; want %+v", got, want)
	}
}
