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
	isRef := func(t *testing.T, ref storage.TokenRef, want bool) {
		t.Helper()
		got, err := d.IsRevoked(ctx, ref)
		if err != nil || got != want {
			t.Errorf("IsRevoked(%+v) = %v, %v; want %v", ref, got, err, want)
		}
	}
	is := func(t *testing.T, jti, family string, want bool) {
		t.Helper()
		isRef(t, storage.TokenRef{JTI: jti, Family: family}, want)
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

	// A subject or client mark revokes the tokens of that user or client
	// issued at or before its cutoff, and no later one.
	for _, kind := range []storage.RevocationKind{storage.RevokedSubject, storage.RevokedClient} {
		t.Run("Mark/"+string(kind), func(t *testing.T) {
			id, other := uid(string(kind)), uid(string(kind))
			cutoff := now().Truncate(time.Millisecond)
			ref := func(id string, issued time.Time) storage.TokenRef {
				r := storage.TokenRef{JTI: uid("jti"), Family: uid("fam"), IssuedAt: issued}
				if kind == storage.RevokedSubject {
					r.Subject, r.ClientID = id, uid("client")
				} else {
					r.Subject, r.ClientID = uid("user"), id
				}
				return r
			}
			isRef(t, ref(id, cutoff.Add(-time.Minute)), false)
			mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: kind, Value: id, Cutoff: cutoff, ExpiresAt: now().Add(time.Hour)}))
			isRef(t, ref(id, cutoff.Add(-time.Minute)), true)
			isRef(t, ref(id, cutoff), true)
			isRef(t, ref(id, cutoff.Add(time.Millisecond)), false)
			isRef(t, ref(other, cutoff.Add(-time.Minute)), false)
			// A later mark widens the cutoff; an earlier one never narrows it.
			later := cutoff.Add(time.Second)
			mustNil(t, "Revoke(later)", d.Revoke(ctx, storage.Revocation{Kind: kind, Value: id, Cutoff: later, ExpiresAt: now().Add(time.Hour)}))
			mustNil(t, "Revoke(earlier)", d.Revoke(ctx, storage.Revocation{Kind: kind, Value: id, Cutoff: cutoff.Add(-time.Hour), ExpiresAt: now().Add(time.Hour)}))
			isRef(t, ref(id, cutoff.Add(500*time.Millisecond)), true)
			isRef(t, ref(id, later.Add(time.Millisecond)), false)
			// The mark names the value under its own kind only.
			isRef(t, storage.TokenRef{JTI: id, Family: id, IssuedAt: cutoff}, false)
		})
	}

	t.Run("ExpiredMark", func(t *testing.T) {
		sub := uid("user")
		mustNil(t, "Revoke", d.Revoke(ctx, storage.Revocation{Kind: storage.RevokedSubject, Value: sub, Cutoff: now(), ExpiresAt: now().Add(-time.Second)}))
		isRef(t, storage.TokenRef{Subject: sub, IssuedAt: now().Add(-time.Hour)}, false)
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, r := range []storage.Revocation{
			{Kind: storage.RevokedJTI, ExpiresAt: now().Add(time.Hour)},
			{Value: uid("v"), ExpiresAt: now().Add(time.Hour)},
			{Kind: storage.RevokedJTI, Value: uid("v")},
			{Kind: "bogus", Value: uid("v"), ExpiresAt: now().Add(time.Hour)},
			{Kind: storage.RevokedSubject, Value: uid("v"), ExpiresAt: now().Add(time.Hour)},            // no cutoff
			{Kind: storage.RevokedJTI, Value: uid("v"), Cutoff: now(), ExpiresAt: now().Add(time.Hour)}, // cutoff on a jti
		} {
			if err := d.Revoke(ctx, r); err == nil {
				t.Errorf("Revoke(%+v) = nil; want an error", r)
			}
		}
	})
}
