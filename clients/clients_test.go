package clients

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

// Store backends of newFixtureOn.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres" // a schema of its own in AUTHD_TEST_POSTGRES_URL; skipped without it
)

var backends = []string{backendSQLite, backendPostgres}

// grants stand for oauth.SupportedGrantTypes.
var grants = []string{"password", "refresh_token", "client_credentials"}

const (
	adminID  = "admin-1"
	metaIP   = "192.0.2.7"
	metaApp  = "console"
	cliAdmin = "cli"
)

var meta = Meta{ClientID: metaApp, IP: metaIP}

// hmacHasher keys SHA-256 as server/oauth's SecretHasher does; fail, when
// set, is its error.
type hmacHasher struct{ fail error }

func (h hmacHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	if h.fail != nil {
		return nil, h.fail
	}
	m := hmac.New(sha256.New, []byte("test key"))
	m.Write(secret)
	return m.Sum(nil), nil
}

// hookStore is a real store with faults that tests switch on.
type hookStore struct {
	storage.Store
	failOutbox error           // AppendOutbox returns it
	beforeAdd  func(id string) // called before CreateClient, in its transaction
}

func (h *hookStore) AppendOutbox(ctx context.Context, e storage.OutboxEvent) error {
	if h.failOutbox != nil {
		return h.failOutbox
	}
	return h.Store.AppendOutbox(ctx, e)
}

func (h *hookStore) CreateClient(ctx context.Context, c storage.Client) error {
	if h.beforeAdd != nil {
		h.beforeAdd(c.ID)
	}
	return h.Store.CreateClient(ctx, c)
}

// revoker stands for server/oauth's Provider: it writes a client mark to
// the denylist, in the caller's transaction.
type revoker struct {
	store storage.Store
	now   time.Time
	ids   []string
	fail  error
}

func (r *revoker) RevokeClient(ctx context.Context, id string) error {
	r.ids = append(r.ids, id)
	if r.fail != nil {
		return r.fail
	}
	return r.store.Revoke(ctx, storage.Revocation{Kind: storage.RevokedClient, Value: id, Cutoff: r.now, ExpiresAt: r.now.Add(time.Hour)})
}

type fixture struct {
	svc   *Service
	store *hookStore
	now   time.Time
}

func (f *fixture) clock() time.Time { return f.now }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, backendSQLite)
}

// newFixtureOn opens a migrated store of the backend and a service on it.
func newFixtureOn(t *testing.T, backend string) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	var st storage.Store
	switch backend {
	case backendSQLite:
		lite, err := sqlite.New(t.Context(), filepath.Join(t.TempDir(), "authd.db"), sqlite.WithClock(f.clock))
		if err != nil {
			t.Fatalf("sqlite.New: %v", err)
		}
		st = lite
	case backendPostgres:
		pg, err := postgres.New(t.Context(), storagetest.PostgresDSN(t), postgres.WithClock(f.clock))
		if err != nil {
			t.Fatalf("postgres.New: %v", err)
		}
		st = pg
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	f.store = &hookStore{Store: st}
	svc, err := NewService(f.store, events.NewRecorder(f.store, f.clock), Options{Hasher: hmacHasher{}, GrantTypes: grants})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	f.svc = svc
	return f
}

type auditEvent struct {
	storage.AuditEntry
	data map[string]any
}

// audit returns the audit entries of type typ, oldest first.
func (f *fixture) audit(t *testing.T, typ events.Type) []auditEvent {
	t.Helper()
	entries, err := f.store.ListAudit(t.Context(), storage.AuditFilter{Type: string(typ), Limit: 1000})
	if err != nil {
		t.Fatalf("ListAudit = %v", err)
	}
	slices.Reverse(entries)
	out := make([]auditEvent, 0, len(entries))
	for _, e := range entries {
		ev := auditEvent{AuditEntry: e}
		if err := json.Unmarshal(e.Data, &ev.data); err != nil {
			t.Fatalf("audit data %s: %v", e.Data, err)
		}
		out = append(out, ev)
	}
	return out
}

// outbox returns the types of the pending outbox events, oldest first.
func (f *fixture) outbox(t *testing.T) []string {
	t.Helper()
	evs, err := f.store.PendingOutbox(t.Context(), 1000)
	if err != nil {
		t.Fatalf("PendingOutbox = %v", err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	return types
}

// wantEvent checks that e reports admin's change to client id, from meta.
func wantEvent(t *testing.T, e auditEvent, id, admin string, m Meta) {
	t.Helper()
	if e.data["client"] != id || e.data["admin"] != admin || e.ClientID != m.ClientID || e.IP != m.IP || e.UserID != "" {
		t.Errorf("%s = %+v %v; want client %s, admin %s, from %+v", e.Type, e.AuditEntry, e.data, id, admin, m)
	}
	if len(e.data) != 2 {
		t.Errorf("%s data = %v; want only client and admin", e.Type, e.data)
	}
}

func TestNewServiceNeedsItsDependencies(t *testing.T) {
	f := newFixture(t)
	rec := events.NewRecorder(f.store, nil)
	for name, c := range map[string]struct {
		store Store
		rec   Recorder
		opts  Options
	}{
		"no store":       {nil, rec, Options{Hasher: hmacHasher{}, GrantTypes: grants}},
		"no recorder":    {f.store, nil, Options{Hasher: hmacHasher{}, GrantTypes: grants}},
		"no hasher":      {f.store, rec, Options{GrantTypes: grants}},
		"no grant types": {f.store, rec, Options{Hasher: hmacHasher{}}},
	} {
		if _, err := NewService(c.store, c.rec, c.opts); err == nil {
			t.Errorf("NewService(%s) = nil error", name)
		}
	}
}

func TestCreate(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			ctx := t.Context()

			// A confidential client without a secret gets a generated one;
			// only its hash is stored. Repeated values are kept once.
			c, secret, err := f.svc.Create(ctx, Spec{
				ID: "svc", Name: "Service", GrantTypes: []string{"client_credentials", "client_credentials"},
				Scopes: []string{"a", "b", "a"}, Audience: []string{"orders"}, Introspect: true, DPoPBound: true,
			}, adminID, meta)
			if err != nil {
				t.Fatalf("Create(svc) = %v", err)
			}
			svcSecret := secret
			if len(secret) != 43 || strings.ContainsAny(secret, "+/=") {
				t.Errorf("generated secret is %d bytes; want 43 of base64url", len(secret))
			}
			want, _ := hmacHasher{}.Hash(ctx, []byte(secret))
			stored, err := f.store.GetClient(ctx, "svc")
			if err != nil {
				t.Fatalf("GetClient(svc) = %v", err)
			}
			if !hmac.Equal(stored.SecretHash, want) || !hmac.Equal(c.SecretHash, want) {
				t.Errorf("stored secret hash is not the hasher's hash of the secret")
			}
			if !slices.Equal(c.GrantTypes, []string{"client_credentials"}) || !slices.Equal(c.Scopes, []string{"a", "b"}) ||
				!slices.Equal(c.Audience, []string{"orders"}) || c.Name != "Service" || !c.Introspect || !c.DPoPBound || c.Public {
				t.Errorf("Create(svc) = %+v", c)
			}
			if !c.CreatedAt.Equal(f.now) {
				t.Errorf("CreatedAt = %v; want the store's time %v (read back in the transaction)", c.CreatedAt, f.now)
			}

			// A given secret is kept; a public client has none.
			given := strings.Repeat("s", 40)
			if _, secret, err := f.svc.Create(ctx, Spec{ID: "web", Secret: given, GrantTypes: []string{"password"}}, cliAdmin, Meta{}); err != nil || secret != given {
				t.Errorf("Create(web, given secret) = %q, %v; want the given secret", secret, err)
			}
			pub, secret, err := f.svc.Create(ctx, Spec{ID: "spa", Public: true, GrantTypes: []string{"password", "refresh_token"}}, cliAdmin, Meta{})
			if err != nil || secret != "" || pub.SecretHash != nil || !pub.Public {
				t.Errorf("Create(spa, public) = %+v, %q, %v; want no secret and no hash", pub, secret, err)
			}

			created := f.audit(t, events.ClientCreated)
			if len(created) != 3 {
				t.Fatalf("auth.client_created entries = %d; want 3", len(created))
			}
			wantEvent(t, created[0], "svc", adminID, meta)
			wantEvent(t, created[2], "spa", cliAdmin, Meta{})
			if got := f.outbox(t); !slices.Equal(got, []string{"auth.client_created", "auth.client_created", "auth.client_created"}) {
				t.Errorf("outbox = %q; want three auth.client_created", got)
			}
			for _, e := range created {
				if strings.Contains(string(e.Data), svcSecret) || strings.Contains(string(e.Data), given) {
					t.Errorf("event data %s holds a secret", e.Data)
				}
			}
		})
	}
}

func TestCreateRefusesInvalidSpecs(t *testing.T) {
	f := newFixture(t)
	ok := Spec{ID: "ok", GrantTypes: []string{"password"}}
	with := func(change func(*Spec)) Spec {
		s := ok
		change(&s)
		return s
	}
	const badSecret = "short but secret"
	for _, c := range []struct {
		spec Spec
		want []string // the problems, in order
	}{
		{with(func(s *Spec) { s.ID = "" }), []string{"client id must be 1-128 printable ASCII characters without spaces"}},
		{with(func(s *Spec) { s.ID = "has space" }), []string{"client id must be"}},
		{with(func(s *Spec) { s.ID = strings.Repeat("i", MaxIDLen+1) }), []string{"client id must be"}},
		{with(func(s *Spec) { s.ID = "caf\u00e9" }), []string{"client id must be"}},
		{with(func(s *Spec) { s.Public, s.Secret = true, strings.Repeat("s", 40) }), []string{"a public client has no secret"}},
		{with(func(s *Spec) { s.Secret = badSecret }), []string{"a client secret must be 32 to 512 bytes of printable text"}},
		{with(func(s *Spec) { s.Secret = strings.Repeat("s", 40) + "\x00" }), []string{"a client secret must be"}},
		{with(func(s *Spec) { s.Secret = strings.Repeat("s", MaxSecretLen+1) }), []string{"a client secret must be"}},
		{with(func(s *Spec) { s.GrantTypes = nil }), []string{"at least one grant type is required"}},
		{with(func(s *Spec) { s.GrantTypes = []string{"implicit"} }), []string{`unsupported grant type "implicit"`}},
		{with(func(s *Spec) { s.Public, s.GrantTypes = true, []string{"client_credentials"} }), []string{"a public client cannot use client_credentials"}},
		{with(func(s *Spec) { s.Scopes = []string{"a b"} }), []string{`invalid scope or audience "a b"`}},
		{with(func(s *Spec) { s.Scopes = []string{""} }), []string{`invalid scope or audience ""`}},
		{with(func(s *Spec) { s.Audience = []string{`a"b`} }), []string{"invalid scope or audience"}},
		{with(func(s *Spec) { s.Audience = []string{strings.Repeat("a", 201)} }), []string{"invalid scope or audience"}},
		{with(func(s *Spec) { s.Name = "tab\there" }), []string{"name must be at most 200 bytes of printable text"}},
		{with(func(s *Spec) { s.Name = strings.Repeat("n", 201) }), []string{"name must be at most"}},
		// Every problem at once.
		{Spec{ID: " ", Public: true, GrantTypes: []string{"client_credentials", "implicit"}, Scopes: []string{"x y"}}, []string{
			"client id must be", `unsupported grant type "implicit"`, "a public client cannot use client_credentials", "invalid scope or audience",
		}},
	} {
		_, _, err := f.svc.Create(t.Context(), c.spec, adminID, meta)
		var se *SpecError
		if !errors.As(err, &se) || len(se.Problems) != len(c.want) {
			t.Errorf("Create(%+v) = %v; want %d problems %q", c.spec, err, len(c.want), c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(se.Problems[i], w) {
				t.Errorf("Create(%+v) problem %d = %q; want %q", c.spec, i, se.Problems[i], w)
			}
		}
		if strings.Contains(err.Error(), badSecret) {
			t.Errorf("error %q holds the secret", err)
		}
	}
	if cs, err := f.store.ListClients(t.Context()); err != nil || len(cs) != 0 {
		t.Errorf("ListClients after refused creates = %d clients, %v; want none", len(cs), err)
	}
	if got := f.audit(t, events.ClientCreated); len(got) != 0 {
		t.Errorf("refused creates recorded %d events", len(got))
	}
	// The grant types are the service's: a grant the token endpoint does not
	// offer is refused.
	narrow, err := NewService(f.store, events.NewRecorder(f.store, nil), Options{Hasher: hmacHasher{}, GrantTypes: []string{"client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	var se *SpecError
	if _, _, err := narrow.Create(t.Context(), ok, adminID, meta); !errors.As(err, &se) {
		t.Errorf("Create(password) on a service without it = %v; want a SpecError", err)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "dev-client": true, "a.b_c~d!": true, strings.Repeat("x", MaxIDLen): true,
		"": false, " ": false, "a b": false, "a\x7f": false, "\u00e9": false, strings.Repeat("x", MaxIDLen+1): false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v; want %v", id, got, want)
		}
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := GenerateSecret(), GenerateSecret()
	if a == b || len(a) != 43 || !ValidID(a) {
		t.Errorf("GenerateSecret() = %q, %q; want two different 43-byte base64url strings", a, b)
	}
}

func TestCreateHashFailure(t *testing.T) {
	f := newFixture(t)
	svc, err := NewService(f.store, events.NewRecorder(f.store, nil), Options{Hasher: hmacHasher{fail: errors.New("hasher down")}, GrantTypes: grants})
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("k", 40)
	_, _, err = svc.Create(t.Context(), Spec{ID: "svc", Secret: secret, GrantTypes: []string{"password"}}, adminID, meta)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Create with a failing hasher = %v; want an error without the secret", err)
	}
	if _, err := f.store.GetClient(t.Context(), "svc"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetClient after a failed hash = %v; want ErrNotFound", err)
	}
}

func TestCreateConflict(t *testing.T) {
	f := newFixture(t)
	spec := Spec{ID: "svc", GrantTypes: []string{"client_credentials"}}
	first, _, err := f.svc.Create(t.Context(), spec, adminID, meta)
	if err != nil {
		t.Fatalf("Create = %v", err)
	}
	_, secret, err := f.svc.Create(t.Context(), spec, adminID, meta)
	if !errors.Is(err, ErrIDTaken) || !errors.Is(err, storage.ErrConflict) || secret != "" {
		t.Errorf("Create(same id) = %q, %v; want ErrIDTaken wrapping storage.ErrConflict", secret, err)
	}
	if c, err := f.store.GetClient(t.Context(), "svc"); err != nil || !hmac.Equal(c.SecretHash, first.SecretHash) {
		t.Errorf("the first client's secret was replaced (%v)", err)
	}
	if got := f.audit(t, events.ClientCreated); len(got) != 1 {
		t.Errorf("auth.client_created entries = %d; want 1", len(got))
	}
}

func TestCreateIsOneTransaction(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			f.store.failOutbox = errors.New("outbox down")
			if _, _, err := f.svc.Create(t.Context(), Spec{ID: "svc", GrantTypes: []string{"password"}}, adminID, meta); err == nil {
				t.Fatal("Create with a failing outbox succeeded")
			}
			if _, err := f.store.GetClient(t.Context(), "svc"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetClient after a failed event = %v; want ErrNotFound (rolled back)", err)
			}
			if got := f.audit(t, events.ClientCreated); len(got) != 0 {
				t.Errorf("the audit entry of a rolled-back create stays: %d", len(got))
			}
		})
	}
}

// Two creates of one id whose transactions overlap on PostgreSQL: exactly
// one wins, the other is ErrIDTaken, and one event is recorded.
func TestConcurrentCreatesOneWins(t *testing.T) {
	f := newFixtureOn(t, backendPostgres)
	const racers = 2
	for round := range 5 {
		id := fmt.Sprintf("racer-%d", round)
		// Both creates are inside their transactions before either inserts.
		var arrived atomic.Int32
		all := make(chan struct{})
		f.store.beforeAdd = func(string) {
			if arrived.Add(1) == racers {
				close(all)
			}
			select {
			case <-all:
			case <-time.After(10 * time.Second): // a racer never came: the test fails below
			}
		}
		type result struct {
			secret string
			err    error
		}
		results := make(chan result, racers)
		for range racers {
			go func() {
				_, secret, err := f.svc.Create(t.Context(), Spec{ID: id, GrantTypes: []string{"client_credentials"}}, adminID, meta)
				results <- result{secret, err}
			}()
		}
		var won []string
		for range racers {
			r := <-results
			switch {
			case r.err == nil:
				won = append(won, r.secret)
			case !errors.Is(r.err, ErrIDTaken):
				t.Errorf("round %d: Create = %v; want success or ErrIDTaken", round, r.err)
			}
		}
		if n := arrived.Load(); n != racers {
			t.Fatalf("round %d: %d creates reached the insert; want %d", round, n, racers)
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d creates of %s won; want exactly 1", round, len(won), id)
		}
		c, err := f.store.GetClient(t.Context(), id)
		want, _ := hmacHasher{}.Hash(t.Context(), []byte(won[0]))
		if err != nil || !hmac.Equal(c.SecretHash, want) {
			t.Errorf("round %d: the stored client is not the winner's (%v)", round, err)
		}
	}
	f.store.beforeAdd = nil
	if got := f.audit(t, events.ClientCreated); len(got) != 5 {
		t.Errorf("auth.client_created entries = %d; want one per round (5)", len(got))
	}
}

func TestGetAndList(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"b", "a"} {
		if _, _, err := f.svc.Create(t.Context(), Spec{ID: id, GrantTypes: []string{"password"}}, adminID, meta); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := f.svc.Get(t.Context(), "a"); err != nil || c.ID != "a" {
		t.Errorf("Get(a) = %+v, %v", c, err)
	}
	if _, err := f.svc.Get(t.Context(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(nobody) = %v; want ErrNotFound", err)
	}
	cs, err := f.svc.List(t.Context())
	if err != nil || len(cs) != 2 || cs[0].ID != "a" || cs[1].ID != "b" {
		t.Errorf("List = %+v, %v; want a, b", cs, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdate(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			ctx := t.Context()
			orig, _, err := f.svc.Create(ctx, Spec{ID: "svc", Name: "Service", GrantTypes: []string{"client_credentials"}, Scopes: []string{"a"}}, adminID, meta)
			if err != nil {
				t.Fatal(err)
			}
			pub, _, err := f.svc.Create(ctx, Spec{ID: "spa", Public: true, GrantTypes: []string{"password"}}, adminID, meta)
			if err != nil {
				t.Fatal(err)
			}

			c, err := f.svc.Update(ctx, "svc", Change{Scopes: &[]string{"a", "b"}, Audience: &[]string{"orders"}, DPoPBound: ptr(true)}, adminID, meta)
			if err != nil {
				t.Fatalf("Update = %v", err)
			}
			if !slices.Equal(c.Scopes, []string{"a", "b"}) || !slices.Equal(c.Audience, []string{"orders"}) || !c.DPoPBound ||
				c.Name != "Service" || !slices.Equal(c.GrantTypes, []string{"client_credentials"}) || !hmac.Equal(c.SecretHash, orig.SecretHash) {
				t.Errorf("Update = %+v; want scopes, audience and dpop_bound changed, the rest kept", c)
			}
			if c, err = f.svc.Update(ctx, "svc", Change{Name: ptr("Renamed"), Introspect: ptr(true), GrantTypes: &[]string{"password"}}, cliAdmin, Meta{}); err != nil ||
				c.Name != "Renamed" || !c.Introspect || !slices.Equal(c.GrantTypes, []string{"password"}) {
				t.Errorf("Update(name, introspect, grants) = %+v, %v", c, err)
			}

			// The changed client must be valid: nothing is written otherwise.
			var se *SpecError
			for name, bad := range map[string]struct {
				id string
				ch Change
			}{
				"unsupported grant":              {"svc", Change{GrantTypes: &[]string{"implicit"}}},
				"no grant":                       {"svc", Change{GrantTypes: &[]string{}}},
				"bad scope":                      {"svc", Change{Scopes: &[]string{"a b"}}},
				"bad name":                       {"svc", Change{Name: ptr("nul\x00")}},
				"public with client_credentials": {pub.ID, Change{GrantTypes: &[]string{"client_credentials"}}},
			} {
				if _, err := f.svc.Update(ctx, bad.id, bad.ch, adminID, meta); !errors.As(err, &se) {
					t.Errorf("Update(%s) = %v; want a SpecError", name, err)
				}
			}
			if got, err := f.store.GetClient(ctx, "svc"); err != nil || got.Name != "Renamed" || !slices.Equal(got.GrantTypes, []string{"password"}) {
				t.Errorf("svc after refused updates = %+v, %v; want unchanged", got, err)
			}
			if _, err := f.svc.Update(ctx, "nobody", Change{Name: ptr("x")}, adminID, meta); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Update(nobody) = %v; want ErrNotFound", err)
			}

			updated := f.audit(t, events.ClientUpdated)
			if len(updated) != 2 {
				t.Fatalf("auth.client_updated entries = %d; want 2", len(updated))
			}
			wantEvent(t, updated[0], "svc", adminID, meta)
			wantEvent(t, updated[1], "svc", cliAdmin, Meta{})

			f.store.failOutbox = errors.New("outbox down")
			if _, err := f.svc.Update(ctx, "svc", Change{Name: ptr("Lost")}, adminID, meta); err == nil {
				t.Fatal("Update with a failing outbox succeeded")
			}
			if got, _ := f.store.GetClient(ctx, "svc"); got.Name != "Renamed" {
				t.Errorf("name after a failed event = %q; want Renamed (rolled back)", got.Name)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			ctx := t.Context()
			if _, _, err := f.svc.Create(ctx, Spec{ID: "svc", GrantTypes: []string{"client_credentials"}}, adminID, meta); err != nil {
				t.Fatal(err)
			}
			marks := func() int {
				t.Helper()
				rs, err := f.store.ActiveRevocations(ctx, f.now)
				if err != nil {
					t.Fatalf("ActiveRevocations = %v", err)
				}
				n := 0
				for _, r := range rs {
					if r.Kind == storage.RevokedClient && r.Value == "svc" {
						n++
					}
				}
				return n
			}
			rv := &revoker{store: f.store, now: f.now}

			if err := f.svc.Delete(ctx, "svc", adminID, meta, nil); err == nil {
				t.Error("Delete without a Revoker succeeded")
			}
			// The event fails: the deletion and the revocation roll back.
			f.store.failOutbox = errors.New("outbox down")
			if err := f.svc.Delete(ctx, "svc", adminID, meta, rv); err == nil {
				t.Fatal("Delete with a failing outbox succeeded")
			}
			f.store.failOutbox = nil
			if _, err := f.store.GetClient(ctx, "svc"); err != nil || marks() != 0 {
				t.Errorf("after a failed event: GetClient = %v, client marks %d; want the client and no mark", err, marks())
			}
			rv.fail = errors.New("denylist down")
			if err := f.svc.Delete(ctx, "svc", adminID, meta, rv); !errors.Is(err, rv.fail) {
				t.Errorf("Delete with a failing revocation = %v; want its error", err)
			}
			rv.fail = nil

			if err := f.svc.Delete(ctx, "svc", cliAdmin, Meta{}, rv); err != nil {
				t.Fatalf("Delete = %v", err)
			}
			if _, err := f.store.GetClient(ctx, "svc"); !errors.Is(err, storage.ErrNotFound) || marks() != 1 {
				t.Errorf("after Delete: GetClient = %v, client marks %d; want ErrNotFound and one mark", err, marks())
			}
			if err := f.svc.Delete(ctx, "svc", cliAdmin, Meta{}, rv); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Delete(deleted) = %v; want ErrNotFound", err)
			}
			deleted := f.audit(t, events.ClientDeleted)
			if len(deleted) != 1 {
				t.Fatalf("auth.client_deleted entries = %d; want 1", len(deleted))
			}
			wantEvent(t, deleted[0], "svc", cliAdmin, Meta{})
		})
	}
}
