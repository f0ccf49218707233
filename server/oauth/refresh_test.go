package oauth_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
)

// stores are the backends the refresh grant runs on: each store as is, and
// behind the client cache, which is how cmd/authd wires it (and which hides
// PostgreSQL's single-statement rotation behind Unwrap).
func stores() map[string]func(*testing.T) storage.Store {
	return map[string]func(*testing.T) storage.Store{
		"sqlite":           func(t *testing.T) storage.Store { return openSQLite(t) },
		"postgres":         func(t *testing.T) storage.Store { return openPostgres(t) },
		"sqlite+cache":     func(t *testing.T) storage.Store { return clientcache.New(openSQLite(t), 0, nil) },
		"postgres+cache":   func(t *testing.T) storage.Store { return clientcache.New(openPostgres(t), 0, nil) },
		"postgres+nocache": func(t *testing.T) storage.Store { return clientcache.New(openPostgres(t), -1, nil) },
	}
}

// Every refresh rotates; a rotated token presented again is reuse and kills
// the family, its newest refresh token and its access tokens included.
func TestRefreshRotationAndReuse(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, open(t), fastParams)
			refresh := func(rt string) (int, map[string]any) {
				rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				return rec.Code, tokenResponse(t, rec)
			}
			m := tokenResponse(t, h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}))
			first := m["refresh_token"].(string)
			rt := first
			var at string
			for i := range 3 {
				code, m := refresh(rt)
				if code != http.StatusOK {
					t.Fatalf("refresh %d: %d %v", i, code, m)
				}
				if m["refresh_token"] == rt {
					t.Fatalf("refresh %d returned the same refresh token", i)
				}
				rt, at = m["refresh_token"].(string), m["access_token"].(string)
				if got := tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {at}})); got["active"] != true {
					t.Fatalf("access token of refresh %d: %v", i, got)
				}
			}
			if code, m := refresh(first); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Fatalf("reuse of a rotated token: %d %v; want 400 invalid_grant", code, m)
			}
			if code, m := refresh(rt); code == http.StatusOK {
				t.Errorf("newest refresh token still works after reuse: %v", m)
			}
			for _, tok := range []string{rt, at} {
				if got := tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {tok}})); got["active"] != false {
					t.Errorf("token of a family killed by reuse: %v", got)
				}
			}
		})
	}
}

// Of concurrent refreshes of one token at most one succeeds: the family
// never forks. The others get 400, invalid_request when they lost the race
// to the conditional write, invalid_grant when they came after the winner's
// commit (reuse, which ends the family); never a 5xx.
func TestConcurrentRefreshNeverForks(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, open(t), fastParams)
			m := tokenResponse(t, h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}))
			rt := m["refresh_token"].(string)
			const n = 8
			codes := make([]int, n)
			bodies := make([]map[string]any, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
					codes[i], bodies[i] = rec.Code, tokenResponse(t, rec)
				})
			}
			wg.Wait()
			wins := 0
			for i, code := range codes {
				switch {
				case code == http.StatusOK:
					wins++
				case code != http.StatusBadRequest || (bodies[i]["error"] != "invalid_request" && bodies[i]["error"] != "invalid_grant"):
					t.Errorf("losing refresh: %d %v; want 400 invalid_request or invalid_grant", code, bodies[i])
				}
			}
			if wins != 1 {
				t.Errorf("%d concurrent refreshes of one token succeeded; want exactly 1", wins)
			}
		})
	}
}
