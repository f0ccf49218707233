package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// stores are the backends the refresh grant runs on: each store as is, and
// behind the client cache, which is how cmd/authd wires it (and which hides
// PostgreSQL's single-statement rotation behind Unwrap).
func stores() map[string]func(*testing.T) storage.Store {
	return map[string]func(*testing.T) storage.Store{
		"sqlite":           func(t *testing.T) storage.Store { return openSQLite(t) },
		"postgres":         func(t *testing.T) storage.Store { return openPostgres(t) },
		"sqlite+cache":     func(t *testing.T) storage.Store { return oauth.NewClientCache(openSQLite(t), 0, nil) },
		"postgres+cache":   func(t *testing.T) storage.Store { return oauth.NewClientCache(openPostgres(t), 0, nil) },
		"postgres+nocache": func(t *testing.T) storage.Store { return oauth.NewClientCache(openPostgres(t), -1, nil) },
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

// The cache answers from memory, drops a client changed through it at once,
// remembers unknown ids for the TTL too, and reads the store inside a transaction.
func TestClientCache(t *testing.T) {
	ctx := t.Context()
	base := openSQLite(t)
	if err := base.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	cc := oauth.NewClientCache(base, 5*time.Second, func() time.Time { return now })
	if err := cc.CreateClient(ctx, storage.Client{ID: "c1", Name: "one", GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	get := func(ctx context.Context, st storage.Store, id string) storage.Client {
		t.Helper()
		c, err := st.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("GetClient(%s): %v", id, err)
		}
		return c
	}
	if c := get(ctx, cc, "c1"); c.Name != "one" {
		t.Fatalf("GetClient = %+v", c)
	}
	// Another process renames it: the cache keeps the old record until the TTL.
	if _, err := base.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "two"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "one" {
		t.Errorf("within the TTL: name %q; want the cached one", c.Name)
	}
	if err := cc.InTx(ctx, func(tctx context.Context) error {
		if c := get(tctx, cc, "c1"); c.Name != "two" {
			t.Errorf("inside a transaction: name %q; want the store's", c.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second)
	if c := get(ctx, cc, "c1"); c.Name != "two" {
		t.Errorf("after the TTL: name %q; want two", c.Name)
	}
	// Changes through the cache apply at once.
	if _, err := cc.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "three"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "three" {
		t.Errorf("after UpdateClient: name %q; want three", c.Name)
	}
	// A change inside a transaction is dropped again when it ends, whatever
	// was read outside it meanwhile.
	err := cc.InTx(ctx, func(tctx context.Context) error {
		if _, err := cc.UpdateClient(tctx, "c1", func(c *storage.Client) error { c.Name = "four"; return nil }); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "four" {
		t.Errorf("after an update in a transaction: name %q; want four", c.Name)
	}
	if err := cc.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.GetClient(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after DeleteClient: %v; want ErrNotFound", err)
	}
	// Unknown ids are cached as unknown (so that their answer costs what a
	// known client's costs): a client created by another process is seen
	// within the TTL.
	if _, err := cc.GetClient(ctx, "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient(unknown) = %v", err)
	}
	if err := base.CreateClient(ctx, storage.Client{ID: "c2", Name: "new"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.GetClient(ctx, "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("client created elsewhere, within the TTL: %v; want the cached ErrNotFound", err)
	}
	now = now.Add(5 * time.Second)
	if c := get(ctx, cc, "c2"); c.Name != "new" {
		t.Errorf("client created elsewhere, after the TTL: %+v", c)
	}
}
