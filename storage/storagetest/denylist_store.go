package storagetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func testStoreDenylist(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	live := []storage.Revocation{
		{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(time.Hour)},
		{Kind: storage.RevokedFamily, Value: uid("fam"), ExpiresAt: at.Add(2 * time.Hour)},
		{Kind: storage.RevokedSubject, Value: uid("user"), Cutoff: at.Add(-time.Second), ExpiresAt: at.Add(30 * time.Minute)},
	}
	dead := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(-time.Minute)}
	mustNil(t, "Revoke", s.Revoke(ctx, append(slices.Clone(live), dead)...))
	got, err := s.ActiveRevocations(ctx, at)
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations", got, live)
	got, err = s.ActiveRevocations(ctx, at.Add(90*time.Minute))
	mustNil(t, "ActiveRevocations(later)", err)
	checkRevocations(t, "ActiveRevocations(later)", got, live[1:2])

	// Revoking again keeps the later expiry.
	shorter := live[0]
	shorter.ExpiresAt = at.Add(time.Minute)
	mustNil(t, "Revoke(shorter)", s.Revoke(ctx, shorter))
	longer := live[1]
	longer.ExpiresAt = at.Add(3 * time.Hour)
	mustNil(t, "Revoke(longer)", s.Revoke(ctx, longer))
	// A mark keeps the later cutoff and the later expiry.
	mark := live[2]
	mark.Cutoff, mark.ExpiresAt = at, at.Add(40*time.Minute)
	mustNil(t, "Revoke(later mark)", s.Revoke(ctx, mark))
	mustNil(t, "Revoke(earlier mark)", s.Revoke(ctx, live[2]))
	got, err = s.ActiveRevocations(ctx, at)
	mustNil(t, "ActiveRevocations", err)
	checkRevocations(t, "ActiveRevocations after re-revoking", got, []storage.Revocation{live[0], longer, mark})

	// Revoke in a transaction that rolls back leaves nothing.
	gone := storage.Revocation{Kind: storage.RevokedJTI, Value: uid("jti"), ExpiresAt: at.Add(time.Hour)}
	inRolledBackTx(t, s, func(ctx context.Context) {
		mustNil(t, "Revoke(in tx)", s.Revoke(ctx, gone))
	})
	if revoked, err := s.IsRevoked(ctx, storage.TokenRef{JTI: gone.Value}); err != nil || revoked {
		t.Errorf("IsRevoked(rolled back) = %v, %v; want false", revoked, err)
	}
}

func checkRevocations(t *testing.T, what string, got, want []storage.Revocation) {
	t.Helper()
	key := func(a, b storage.Revocation) int {
		return strings.Compare(string(a.Kind)+":"+a.Value, string(b.Kind)+":"+b.Value)
	}
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, key)
	slices.SortFunc(want, key)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Kind == want[i].Kind && got[i].Value == want[i].Value &&
			sameTime(got[i].ExpiresAt, want[i].ExpiresAt) && isUTC(got[i].ExpiresAt) &&
			sameTime(got[i].Cutoff, want[i].Cutoff) && isUTC(got[i].Cutoff)
	}
	if !ok {
		t.Errorf("%s = %+v; want %+v", what, got, want)
	}
}
