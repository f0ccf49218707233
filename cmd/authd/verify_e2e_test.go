package main

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authd/authd/verify"
)

// TestVerifyWithRealTokens checks the verify package against tokens minted by
// a real authd, for every signing algorithm, across a key rotation, and in
// online mode after a revocation.
func TestVerifyWithRealTokens(t *testing.T) {
	b := backends()[0]
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b, map[string]string{"AUTHD_SIGNING_ALG": alg})
			ctx := t.Context()
			v, err := verify.New(ctx, verify.Config{
				Issuer: f.base, Audience: "orders", MinRefetchInterval: 10 * time.Millisecond,
				IntrospectionClientID: f.rs.ID, IntrospectionClientSecret: f.rs.Secret, IntrospectionCacheTTL: time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			// The issuer in these tests is the listening address; check it matches.
			if f.base != f.vars["AUTHD_ISSUER"] {
				t.Fatalf("base %s != issuer %s", f.base, f.vars["AUTHD_ISSUER"])
			}
			at, _ := f.login(f.app, "alice", userPassword)
			c, err := v.Verify(ctx, at)
			if err != nil {
				t.Fatalf("Verify(authd token) = %v", err)
			}
			if c.Subject != f.userID || c.Username != "alice" || !c.HasRole("user") || c.HasRole("admin") || c.ClientID != "app" {
				t.Errorf("claims = %+v", c)
			}
			// A token for another audience is refused.
			_, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"audience": {"inventory"}})
			if _, err := v.Verify(ctx, str(m, "access_token")); !errors.Is(err, verify.ErrAudience) {
				t.Errorf("token for inventory: %v; want ErrAudience", err)
			}
			// After a rotation, tokens from the new key verify (unknown kid → refetch) and old ones still do.
			adminID := createUser(t, f.vars, "ops", "ops@example.org", "operations pass phrase 1", "admin")
			_ = adminID
			adminAT, _ := f.login(f.app, "ops", "operations pass phrase 1")
			if code, m := f.api("POST", "/api/v1/admin/keys/rotate", adminAT, nil); code != http.StatusOK {
				t.Fatalf("rotate: %d %v", code, m)
			}
			fresh, _ := f.login(f.app, "alice", userPassword)
			if _, err := v.Verify(ctx, fresh); err != nil {
				t.Errorf("token of the new key: %v", err)
			}
			if _, err := v.Verify(ctx, at); err != nil {
				t.Errorf("token of the retired key: %v", err)
			}
			// Online mode sees a logout at once; local verification cannot.
			if _, err := v.Introspect(ctx, fresh); err != nil {
				t.Fatalf("Introspect(active) = %v", err)
			}
			if code, _ := f.api("POST", "/api/v1/logout", fresh, nil); code != http.StatusNoContent {
				t.Fatalf("logout: %d", code)
			}
			time.Sleep(5 * time.Millisecond) // past the 1 ms introspection cache
			if _, err := v.Introspect(ctx, fresh); !errors.Is(err, verify.ErrRevoked) {
				t.Errorf("Introspect(revoked) = %v; want ErrRevoked", err)
			}
			if _, err := v.Verify(ctx, fresh); err != nil {
				t.Errorf("local Verify of a revoked, unexpired token = %v; want nil (by design)", err)
			}
		})
	}
}
