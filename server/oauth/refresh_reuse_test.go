package oauth_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/server/oauth"
)

func withReuseInterval(d time.Duration) func(*oauth.Options) {
	return func(o *oauth.Options) { o.RefreshReuseInterval = d }
}

// Idempotent rotation: 50 concurrent refreshes of one token all answer 200
// with one and the same successor, each with a fresh access token; the
// family lives on. A retry after a lost response gets that successor again.
// Once the successor is used, the old token is reuse and the family dies.
func TestIdempotentRefresh(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, open(t), fastParams, withReuseInterval(10*time.Second))
			refresh := func(rt string) (int, map[string]any) {
				rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				return rec.Code, tokenResponse(t, rec)
			}
			active := func(tok string) bool {
				return tokenResponse(t, h.call(h.p.Introspect, "rs", url.Values{"token": {tok}}))["active"] == true
			}
			m := tokenResponse(t, h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}))
			rt0 := m["refresh_token"].(string)

			const n = 50
			codes, rts, ats := make([]int, n), make([]string, n), make([]string, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					code, m := refresh(rt0)
					codes[i] = code
					rts[i], _ = m["refresh_token"].(string)
					ats[i], _ = m["access_token"].(string)
				})
			}
			close(start)
			wg.Wait()
			successors, accesses := map[string]bool{}, map[string]bool{}
			for i := range n {
				if codes[i] != http.StatusOK {
					t.Errorf("concurrent refresh #%d: %d", i, codes[i])
					continue
				}
				successors[rts[i]], accesses[ats[i]] = true, true
			}
			if len(successors) != 1 || len(accesses) != n {
				t.Fatalf("%d concurrent refreshes: %d successors, %d access tokens; want 1 and %d", n, len(successors), len(accesses), n)
			}
			rt1 := rts[0]
			for _, at := range ats {
				if !active(at) {
					t.Fatal("an access token of the concurrent refreshes is not active")
				}
			}

			// A lost response: presented again, rt0 answers rt1 again.
			if code, m := refresh(rt0); code != http.StatusOK || m["refresh_token"] != rt1 {
				t.Fatalf("retry of rt0: %d, same successor %v", code, m["refresh_token"] == rt1)
			}
			// rt1 works (the family is alive) ...
			code, m := refresh(rt1)
			if code != http.StatusOK {
				t.Fatalf("refresh of the successor: %d %v", code, m)
			}
			rt2, at2 := m["refresh_token"].(string), m["access_token"].(string)
			// ... and once it is used, rt0 is reuse: the family dies.
			if code, m := refresh(rt0); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Fatalf("rt0 after its successor was used: %d %v; want 400 invalid_grant", code, m)
			}
			if code, _ := refresh(rt2); code != http.StatusBadRequest {
				t.Errorf("the newest refresh token after reuse: %d; want 400", code)
			}
			if active(at2) {
				t.Error("an access token of the dead family is active")
			}
		})
	}
}

// Outside the interval a rotated token is reuse, even with its successor
// unused; with interval 0 (strict) at once.
func TestRefreshReuseIntervalEnds(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, interval := range []time.Duration{0, 300 * time.Millisecond} {
				h := newHarnessWith(t, open(t), fastParams, withReuseInterval(interval))
				refresh := func(rt string) (int, map[string]any) {
					rec := h.call(h.p.Token, "app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
					return rec.Code, tokenResponse(t, rec)
				}
				m := tokenResponse(t, h.call(h.p.Token, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}))
				rt0 := m["refresh_token"].(string)
				code, m := refresh(rt0)
				if code != http.StatusOK {
					t.Fatalf("refresh: %d %v", code, m)
				}
				rt1 := m["refresh_token"].(string)
				time.Sleep(interval + 100*time.Millisecond) // the interval runs on the database's clock
				if code, m := refresh(rt0); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
					t.Fatalf("interval %v: rt0 after the interval: %d %v; want 400 invalid_grant", interval, code, m)
				}
				if code, _ := refresh(rt1); code != http.StatusBadRequest {
					t.Errorf("interval %v: the successor after reuse: %d; want 400 (family dead)", interval, code)
				}
			}
		})
	}
}
