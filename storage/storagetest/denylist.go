package storagetest

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// RunDenylist runs the denylist conformance suite. newDenylist must return
// an empty denylist, ready to use, and release it when the test ends.
func RunDenylist(t *testing.T, newDenylist func(t *testing.T) storage.Denylist) {
	d := newDenylist(t)
	ctx := t.Context()
	is := func(t *testing.T, jti, family string, want bool) {
		t.Helper()
		got, err := d.IsRevoked(ctx, jti, family)
		if err != nil || got != want {
			t.Errorf("IsRevoked(%q, %q) = %v, %v; want %v", jti, family, got, err, want)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		is(t, "", "", false)
		is(t, uid("jti"), uid("fam"), false)
	})

	t.Run("JTI", func(t *testing.T) {
		jti := uid("jti")
		mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: now().Add(time.Hour)}))
		is(t, jti, "", true)
		is(t, jti, uid("fam"), true)
		is(t, "", jti, false) // a family with the same value is not revoked
		is(t, uid("jti"), "", false)
		// Revoking again is fine.
		mustNil(t, "Revoke(again)", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: now().Add(2 * time.Hour)}))
		is(t, jti, "", true)
	})

	t.Run("Family", func(t *testing.T) {
		fam := uid("fam")
		mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedFamily, Value: fam, ExpiresAt: now().Add(time.Hour)}))
		is(t, uid("jti"), fam, true)
		is(t, "", fam, true)
		is(t, fam, "", false)
	})

	t.Run("Several", func(t *testing.T) {
		j1, j2, f := uid("jti"), uid("jti"), uid("fam")
		exp := now().Add(time.Hour)
		mustNil(t, "Revoke", d.Revoke(ctx,
			storage.Revocation{Kind: storage.RevokedJTI, Value: j1, ExpiresAt: exp},
			storage.Revocation{Kind: storage.RevokedJTI, Value: j2, ExpiresAt: exp},
			storage.Revocation{Kind: storage.RevokedFamily, Value: f, ExpiresAt: exp},
		))
		is(t, j1, "", true)
		is(t, j2, "", true)
		is(t, "", f, true)
		mustNil(t, "Revoke(nothing)", d.Revoke(ctx))
	})

	t.Run("Expired", func(t *testing.T) {
		jti := uid("jti")
		mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: now().Add(-time.Second)}))
		is(t, jti, "", false)
	})

	t.Run("Expires", func(t *testing.T) {
		t.Parallel()
		jti := uid("jti")
		mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: now().Add(1500 * time.Millisecond)}))
		is(t, jti, "", true)
		time.Sleep(2 * time.Second)
		is(t, jti, "", false)
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, r := range []storage.Revocation{
			{Kind: storage.RevokedJTI, ExpiresAt: now().Add(time.Hour)},
			{Value: uid("v"), ExpiresAt: now().Add(time.Hour)},
			{Kind: storage.RevokedJTI, Value: uid("v")},
		} {
			if err := d.Revoke(ctx, r); err == nil {
				t.Errorf("Revoke(%+v) = nil; want an error", r)
			}
		}
	})
}
