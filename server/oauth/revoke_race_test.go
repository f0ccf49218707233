package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
)

// A logout (RevokeSubject) racing refreshes of the user's refresh token ends
// the session whatever the interleaving: afterwards no refresh token a
// refresh handed out still works, and no access token it handed out is
// active. (On PostgreSQL a rotation that held the row lock while the
// revocation waited commits a successor the revocation's first statement
// cannot see.)
func TestRevokeSubjectRacingRefresh(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, open(t), fastParams)
			for round := range 5 {
				m := tokenResponse(t, h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}))
				rt := m["refresh_token"].(string)
				var (
					wg             sync.WaitGroup
					mu             sync.Mutex
					refresh, acces []string
				)
				start := make(chan struct{})
				for range 4 {
					wg.Go(func() {
						<-start
						rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
						if rec.Code >= 500 {
							t.Errorf("round %d: refresh answered %d", round, rec.Code)
						}
						if rec.Code == http.StatusOK {
							m := tokenResponse(t, rec)
							mu.Lock()
							refresh, acces = append(refresh, m["refresh_token"].(string)), append(acces, m["access_token"].(string))
							mu.Unlock()
						}
					})
				}
				wg.Go(func() {
					<-start
					if err := h.p.RevokeSubject(context.Background(), h.userID, ""); err != nil {
						t.Errorf("round %d: RevokeSubject: %v", round, err)
					}
				})
				close(start)
				wg.Wait()
				for _, rt := range refresh {
					if rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); rec.Code == http.StatusOK {
						t.Errorf("round %d: a refresh token handed out during the logout still works", round)
					}
				}
				for _, at := range acces {
					if got := tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {at}})); got["active"] != false {
						t.Errorf("round %d: an access token handed out during the logout is active: %v", round, got)
					}
				}
			}
		})
	}
}
