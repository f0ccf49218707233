package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authd/authd/storage"
)

// clientOutage is a store whose client lookups fail as PostgreSQL does
// when it is down, once failing is set.
type clientOutage struct {
	storage.Store
	failing atomic.Bool
}

func (s *clientOutage) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if s.failing.Load() {
		return storage.Client{}, storage.ErrUnavailable
	}
	return s.Store.GetClient(ctx, id)
}

// A store outage while the authorize or logout endpoint looks the client up
// is a 503 error page with Retry-After: never a 500, never a redirect.
func TestSignInPagesDuringAnOutage(t *testing.T) {
	st := &clientOutage{Store: openSQLite(t)}
	s := newSignin(t, st)
	st.failing.Store(true)
	b := s.browser()
	for _, u := range []string{
		s.srv.URL + "/oauth2/authorize?" + url.Values{"client_id": {"web"}, "redirect_uri": {rpRedirect},
			"response_type": {"code"}, "state": {"state-1234"}}.Encode(),
		s.srv.URL + "/oauth2/logout?" + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {rpSignedOut}}.Encode(),
	} {
		pg := b.get(u)
		if pg.status != http.StatusServiceUnavailable || pg.header.Get("Retry-After") == "" || pg.location != nil ||
			!strings.Contains(pg.body, "try again") {
			t.Errorf("GET %s during an outage = %d, Retry-After %q, Location %v:\n%s", u, pg.status, pg.header.Get("Retry-After"), pg.location, pg.body)
		}
	}
}
