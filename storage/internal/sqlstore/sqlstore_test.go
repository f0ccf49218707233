package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// numbered and positional are dialects shaped like the backends'; times
// are marked so that a test sees they went through Time.
func numbered() sqlstore.Dialect {
	return sqlstore.Dialect{
		Placeholder: sqlstore.Numbered,
		Time:        func(t time.Time) any { return "t:" + t.UTC().Format(time.RFC3339) },
		UserSearch:  `username ILIKE ? OR email ILIKE ?`,
	}
}

func positional() sqlstore.Dialect {
	return sqlstore.Dialect{
		Placeholder: sqlstore.Positional,
		Time:        func(t time.Time) any { return t.Unix() },
		UserSearch:  `username LIKE ? OR email_lower LIKE ?`,
		FoldSearch:  true,
	}
}

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		d          sqlstore.Dialect
		query, out string
	}{
		{numbered(), `a = ? AND b > ?`, `a = $1 AND b > $2`},
		{numbered(), `no parameters`, `no parameters`},
		{numbered(), `?`, `$1`},
		{positional(), `a = ? AND b > ?`, `a = ? AND b > ?`},
	} {
		if got := tc.d.Bind(tc.query); got != tc.out {
			t.Errorf("Bind(%q) = %q; want %q", tc.query, got, tc.out)
		}
	}
}

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{
		"ann":       "%ann%",
		`50%_off\x`: `%50\%\_off\\x%`,
		"":          "%%",
	} {
		if got := sqlstore.LikePattern(in); got != want {
			t.Errorf("LikePattern(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestUserPage(t *testing.T) {
	const head = `SELECT ` + sqlstore.UserColumns + ` FROM users`
	for _, tc := range []struct {
		name  string
		d     sqlstore.Dialect
		q     storage.UserQuery
		query string
		args  []any
	}{
		{"first page", numbered(), storage.UserQuery{}, head + ` ORDER BY id LIMIT $1`, []any{101}},
		{"over the cap", numbered(), storage.UserQuery{Limit: 1001}, head + ` ORDER BY id LIMIT $1`, []any{101}},
		{"at the cap", numbered(), storage.UserQuery{Limit: 1000}, head + ` ORDER BY id LIMIT $1`, []any{1001}},
		{"cursor", numbered(), storage.UserQuery{Cursor: "u5", Limit: 3},
			head + ` WHERE id > $1 ORDER BY id LIMIT $2`, []any{"u5", 4}},
		{"search", numbered(), storage.UserQuery{Query: "A_n", Limit: 3},
			head + ` WHERE (username ILIKE $1 OR email ILIKE $2) ORDER BY id LIMIT $3`, []any{`%A\_n%`, `%A\_n%`, 4}},
		{"cursor and search", numbered(), storage.UserQuery{Query: "Ann", Cursor: "u5", Limit: 3},
			head + ` WHERE id > $1 AND (username ILIKE $2 OR email ILIKE $3) ORDER BY id LIMIT $4`,
			[]any{"u5", "%Ann%", "%Ann%", 4}},
		{"folded search", positional(), storage.UserQuery{Query: "ÉVE%", Cursor: "u5"},
			head + ` WHERE id > ? AND (username LIKE ? OR email_lower LIKE ?) ORDER BY id LIMIT ?`,
			[]any{"u5", `%éve\%%`, `%éve\%%`, 101}},
	} {
		p := tc.d.UserPage(tc.q)
		if p.Query != tc.query || !reflect.DeepEqual(p.Args, tc.args) {
			t.Errorf("UserPage(%s) = %q %v; want %q %v", tc.name, p.Query, p.Args, tc.query, tc.args)
		}
	}
}

func TestUserPageCut(t *testing.T) {
	users := func(n int) []storage.User {
		out := make([]storage.User, n)
		for i := range out {
			out[i].ID = fmt.Sprintf("u%d", i+1)
		}
		return out
	}
	p := numbered().UserPage(storage.UserQuery{Limit: 3})
	for _, tc := range []struct {
		read     int
		wantLen  int
		wantNext string
	}{
		{0, 0, ""},
		{2, 2, ""},
		{3, 3, ""},
		{4, 3, "u3"}, // the extra row says there is a next page, which starts after u3
	} {
		got, next := p.Cut(users(tc.read))
		if len(got) != tc.wantLen || next != tc.wantNext {
			t.Errorf("Cut(%d users) = %d users, next %q; want %d, %q", tc.read, len(got), next, tc.wantLen, tc.wantNext)
		}
	}
}

func TestAuditQuery(t *testing.T) {
	const head = `SELECT id, time, type, user_id, client_id, ip, data FROM audit`
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name  string
		d     sqlstore.Dialect
		f     storage.AuditFilter
		query string
		args  []any
	}{
		{"all", numbered(), storage.AuditFilter{}, head + ` ORDER BY time DESC, id DESC LIMIT $1`, []any{100}},
		{"no cap", numbered(), storage.AuditFilter{Limit: 5000}, head + ` ORDER BY time DESC, id DESC LIMIT $1`, []any{5000}},
		{"every filter", numbered(), storage.AuditFilter{UserID: "u1", Type: "login", Since: since, Limit: 7},
			head + ` WHERE user_id = $1 AND type = $2 AND time >= $3 ORDER BY time DESC, id DESC LIMIT $4`,
			[]any{"u1", "login", "t:2025-03-01T11:00:00Z", 7}},
		{"since", positional(), storage.AuditFilter{Since: since},
			head + ` WHERE time >= ? ORDER BY time DESC, id DESC LIMIT ?`, []any{since.Unix(), 100}},
	} {
		query, args := tc.d.AuditQuery(tc.f)
		if query != tc.query || !reflect.DeepEqual(args, tc.args) {
			t.Errorf("AuditQuery(%s) = %q %v; want %q %v", tc.name, query, args, tc.query, tc.args)
		}
	}
}

func TestPurge(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := storage.Retention{Audit: 90 * 24 * time.Hour, SentOutbox: time.Hour}
	type call struct {
		query string
		arg   any
	}
	var calls []call
	exec := func(_ context.Context, query string, args ...any) (int64, error) {
		if len(args) != 1 {
			t.Fatalf("exec(%q, %v): want one argument", query, args)
		}
		calls = append(calls, call{query, args[0]})
		return int64(len(calls)), nil
	}
	n, err := numbered().Purge(t.Context(), exec, now, r)
	if err != nil || n != 1+2+3+4+5+6+7+8+9+10 {
		t.Fatalf("Purge = %d, %v; want 55, nil", n, err)
	}
	at := func(t time.Time) any { return numbered().Time(t) }
	want := []call{
		{`DELETE FROM refresh_tokens WHERE expires_at < $1`, at(now)},
		{`DELETE FROM authorization_codes WHERE expires_at < $1`, at(now)},
		{`DELETE FROM browser_sessions WHERE expires_at < $1`, at(now)},
		{`DELETE FROM revocations WHERE expires_at < $1`, at(now)},
		{`DELETE FROM signing_keys WHERE state = 'retired' AND expires_at < $1`, at(now)},
		{`DELETE FROM dpop_proofs WHERE expires_at < $1`, at(now)},
		{`DELETE FROM upstream_logins WHERE expires_at <= $1`, at(now)},
		{`DELETE FROM outbox WHERE sent_at < $1`, at(now.Add(-time.Hour))},
		{`DELETE FROM outbox WHERE sent_at IS NULL AND created_at < $1`, at(time.Time{})}, // kept for ever
		{`DELETE FROM audit WHERE time < $1`, at(now.Add(-90 * 24 * time.Hour))},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("Purge ran\n%v\nwant\n%v", calls, want)
	}

	calls = nil
	boom := errors.New("boom")
	failing := func(ctx context.Context, query string, args ...any) (int64, error) {
		if len(calls) == 2 {
			return 0, boom
		}
		return exec(ctx, query, args...)
	}
	if n, err := positional().Purge(t.Context(), failing, now, r); !errors.Is(err, boom) || n != 0 || len(calls) != 2 {
		t.Errorf("Purge with the third statement failing = %d, %v after %d statements; want 0, boom after 2", n, err, len(calls))
	}
}

// fakeRows yields its values one a row, then err.
type fakeRows struct {
	vals []string
	i    int
	err  error
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= len(r.vals) }
func (r *fakeRows) Err() error { return r.err }
func (r *fakeRows) Scan(dest ...any) error {
	if r.vals[r.i-1] == "bad" {
		return errors.New("bad row")
	}
	*dest[0].(*string) = r.vals[r.i-1]
	return nil
}

func TestCollect(t *testing.T) {
	scan := func(row sqlstore.Scanner) (string, error) {
		var s string
		err := row.Scan(&s)
		return s, err
	}
	got, err := sqlstore.Collect(&fakeRows{vals: []string{"a", "b"}}, scan)
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Collect = %v, %v; want [a b], nil", got, err)
	}
	rows := &fakeRows{vals: []string{"a", "bad", "c"}}
	if got, err := sqlstore.Collect(rows, scan); err == nil || got != nil || rows.i != 2 {
		t.Errorf("Collect over a bad row = %v, %v after %d rows; want the scan error at row 2", got, err, rows.i)
	}
	lost := errors.New("connection lost")
	if got, err := sqlstore.Collect(&fakeRows{vals: []string{"a"}, err: lost}, scan); !errors.Is(err, lost) {
		t.Errorf("Collect with a failing result set = %v, %v; want its error", got, err)
	}
}

func TestTx(t *testing.T) {
	type tx struct{ name string }
	storeA, storeB := new(int), new(int)
	a := &tx{"a"}
	ctx := sqlstore.WithTx(t.Context(), storeA, a)
	if got, ok := sqlstore.TxFrom[*tx](ctx, storeA); !ok || got != a {
		t.Errorf("TxFrom(its store) = %v, %v; want a, true", got, ok)
	}
	if got, ok := sqlstore.TxFrom[*tx](ctx, storeB); ok || got != nil {
		t.Errorf("TxFrom(another store) = %v, %v; want nil, false", got, ok)
	}
	if got, ok := sqlstore.TxFrom[*int](ctx, storeA); ok || got != nil {
		t.Errorf("TxFrom(another kind of transaction) = %v, %v; want nil, false", got, ok)
	}
	if _, ok := sqlstore.TxFrom[*tx](t.Context(), storeA); ok {
		t.Error("TxFrom(a context without one) = true; want false")
	}
}

func TestMigrationStates(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	got := sqlstore.MigrationStates([]*goose.MigrationStatus{
		{Source: &goose.Source{Path: "postgres/0001_init.sql", Version: 1}, State: goose.StateApplied, AppliedAt: at},
		{Source: &goose.Source{Path: "postgres/0002_more.sql", Version: 2}, State: goose.StatePending},
	})
	want := []storage.MigrationState{
		{Version: 1, Name: "0001_init.sql", Applied: true, AppliedAt: at.UTC()},
		{Version: 2, Name: "0002_more.sql"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MigrationStates = %+v; want %+v", got, want)
	}
}
