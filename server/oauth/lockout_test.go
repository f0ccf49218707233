package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// TestConcurrentPasswordGrantsOfOneAccount: a client's 32 workers sign one
// account in at once, with the lockout threshold at 5: every grant gets a
// token (the attempts beyond the threshold wait their turn; none counts as a
// failure), and the account is not locked.
func TestConcurrentPasswordGrantsOfOneAccount(t *testing.T) {
	const n = 32
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var st storage.Store
			if backend == "sqlite" {
				st = openSQLite(t)
			} else {
				st = openPostgres(t)
			}
			h := newHarnessWith(t, st, fastParams, func(o *oauth.Options) {
				o.Auth = identity.NewService(st, events.NewRecorder(st, nil), identity.Options{LockoutThreshold: 5, LockoutDuration: time.Hour, Params: fastParams})
			})
			var wg sync.WaitGroup
			codes := make([]int, n)
			for i := range n {
				wg.Go(func() {
					rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
					codes[i] = rec.Code
				})
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				if c == http.StatusOK {
					ok++
				}
			}
			if ok != n {
				t.Errorf("%d of %d concurrent password grants answered 200; codes %v", ok, n, codes)
			}
			u, err := st.GetUser(context.Background(), h.userID)
			if err != nil {
				t.Fatal(err)
			}
			if u.FailedLogins != 0 || u.PendingLogins != 0 || !u.LockedUntil.IsZero() {
				t.Errorf("after the grants: failed=%d pending=%d until=%v; want 0, 0, unlocked", u.FailedLogins, u.PendingLogins, u.LockedUntil)
			}
		})
	}
}

// busyAuth answers every login as an account whose queue timed out.
type busyAuth struct{}

func (busyAuth) Authenticate(context.Context, string, string, identity.Meta) (storage.User, error) {
	return storage.User{}, fmt.Errorf("identity: authenticate: %w", identity.ErrBusy)
}

// An account that stays full answers 503 temporarily_unavailable with
// Retry-After, not 500 and not invalid_grant.
func TestBusyAccountIsTemporarilyUnavailable(t *testing.T) {
	st := openSQLite(t)
	h := newHarnessWith(t, st, fastParams, func(o *oauth.Options) { o.Auth = busyAuth{} })
	rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("busy account: %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := tokenResponse(t, rec)["error"]; got != "temporarily_unavailable" {
		t.Errorf("error = %v; want temporarily_unavailable", got)
	}
}
