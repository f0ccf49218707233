package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func testAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	user, other := uid("user"), uid("user")
	base := now().Add(-time.Hour)
	entries := []storage.AuditEntry{
		{Time: base, Type: "auth.login.failed", UserID: user, ClientID: "cli", IP: "192.0.2.1", Data: []byte(`{"reason":"password"}`)},
		{Time: base.Add(time.Minute), Type: "auth.login.succeeded", UserID: user, IP: "2001:db8::1"},
		{Time: base.Add(2 * time.Minute), Type: "auth.login.failed", UserID: other, Data: []byte(`{"n": 2, "ok": false}`)},
		{Time: base.Add(3 * time.Minute), Type: "user.locked", UserID: user, Data: []byte(`{}`)},
		{Time: base.Add(3 * time.Minute), Type: "user.unlocked", UserID: user}, // same time: the later id first
	}
	for _, e := range entries {
		mustNil(t, "AppendAudit", s.AppendAudit(ctx, e))
	}
	all, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustNil(t, "ListAudit", err)
	if len(all) != len(entries) {
		t.Fatalf("ListAudit = %d entries; want %d", len(all), len(entries))
	}
	for i, got := range all {
		want := entries[len(entries)-1-i]
		if got.ID <= 0 || got.Type != want.Type || got.UserID != want.UserID || got.ClientID != want.ClientID ||
			got.IP != want.IP || !sameJSON(got.Data, want.Data) || !sameTime(got.Time, want.Time) || !isUTC(got.Time) {
			t.Errorf("ListAudit[%d] = %+v; want %+v with an id", i, got, want)
		}
		if i > 0 && got.ID >= all[i-1].ID {
			t.Errorf("ListAudit ids %d then %d; want newest (highest) first", all[i-1].ID, got.ID)
		}
	}

	types := func(es []storage.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Type)
		}
		return out
	}
	tests := []struct {
		name string
		f    storage.AuditFilter
		want []string
	}{
		{"user", storage.AuditFilter{UserID: user}, []string{"user.unlocked", "user.locked", "auth.login.succeeded", "auth.login.failed"}},
		{"type", storage.AuditFilter{Type: "auth.login.failed"}, []string{"auth.login.failed", "auth.login.failed"}},
		{"user and type", storage.AuditFilter{UserID: other, Type: "auth.login.failed"}, []string{"auth.login.failed"}},
		{"since", storage.AuditFilter{Since: base.Add(2 * time.Minute)}, []string{"user.unlocked", "user.locked", "auth.login.failed"}},
		{"limit", storage.AuditFilter{UserID: user, Limit: 2}, []string{"user.unlocked", "user.locked"}},
		{"no match", storage.AuditFilter{UserID: uid("nobody")}, nil},
	}
	for _, tc := range tests {
		got, err := s.ListAudit(ctx, tc.f)
		mustNil(t, "ListAudit("+tc.name+")", err)
		if !slices.Equal(types(got), tc.want) {
			t.Errorf("ListAudit(%s) = %v; want %v", tc.name, types(got), tc.want)
		}
	}

	// The store fills in the time.
	mustNil(t, "AppendAudit(no time)", s.AppendAudit(ctx, storage.AuditEntry{Type: "now", UserID: other}))
	got, err := s.ListAudit(ctx, storage.AuditFilter{UserID: other, Limit: 1})
	mustNil(t, "ListAudit", err)
	if len(got) != 1 || got[0].Type != "now" || time.Since(got[0].Time) > time.Minute {
		t.Errorf("ListAudit after an entry without time = %+v; want it first, stamped now", got)
	}
}
