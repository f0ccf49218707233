package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

// hookStore is a real store (SQLite, or PostgreSQL for newFixtureOn) with
// faults that tests switch on.
type hookStore struct {
	storage.Store
	failOutbox error // AppendOutbox returns it
	failLookup error // GetUserByLogin returns it

	mu    sync.Mutex
	calls []string // the store methods called, when not nil
}

func (h *hookStore) called(method string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls != nil {
		h.calls = append(h.calls, method)
	}
}

func (h *hookStore) AppendOutbox(ctx context.Context, e storage.OutboxEvent) error {
	h.called("AppendOutbox")
	if h.failOutbox != nil {
		return h.failOutbox
	}
	return h.Store.AppendOutbox(ctx, e)
}

func (h *hookStore) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	h.called("GetUserByLogin")
	if h.failLookup != nil {
		return storage.User{}, h.failLookup
	}
	return h.Store.GetUserByLogin(ctx, login)
}

func (h *hookStore) UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	h.called("UpdateUser")
	return h.Store.UpdateUser(ctx, id, fn)
}

func (h *hookStore) UpdateUserAsyncCommit(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	h.called("UpdateUserAsyncCommit")
	return h.Store.UpdateUserAsyncCommit(ctx, id, fn)
}

func (h *hookStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	h.called("InTx")
	return h.Store.InTx(ctx, fn)
}

func (h *hookStore) AppendAudit(ctx context.Context, e storage.AuditEntry) error {
	h.called("AppendAudit")
	return h.Store.AppendAudit(ctx, e)
}

type fixture struct {
	svc   *Service
	store *hookStore
	now   time.Time // the clock of the service, the store and the recorder
	logs  *bytes.Buffer
}

func (f *fixture) clock() time.Time { return f.now }

const (
	alicePassword = "tr0ub4dor&3 is not enough"
	meClient      = "web"
	meIP          = "192.0.2.7"
)

var meta = Meta{ClientID: meClient, IP: meIP}

// newFixture opens a migrated SQLite store in a temporary folder and a
// service on it with cheap hashing (unless opts.Params is set), lockout after
// 3 failures for 15 minutes, and a debug logger writing to f.logs.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	return newFixtureOn(t, backendSQLite, opts)
}

// Store backends of newFixtureOn.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres" // a schema of its own in AUTHD_TEST_POSTGRES_URL; skipped without it
)

// newFixtureOn is newFixture on the given backend.
func newFixtureOn(t *testing.T, backend string, opts Options) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), logs: &bytes.Buffer{}}
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
	if opts.Params == (Params{}) {
		opts.Params = cheap
	}
	if opts.LockoutThreshold == 0 && opts.LockoutDuration == 0 {
		opts.LockoutThreshold, opts.LockoutDuration = 3, 15*time.Minute
	}
	opts.Now = f.clock
	opts.Logger = slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.svc = NewService(f.store, events.NewRecorder(f.store, f.clock), opts)
	return f
}

func (f *fixture) createAlice(t *testing.T) storage.User {
	t.Helper()
	u, err := f.svc.CreateUser(t.Context(), NewUser{Username: "Alice", Email: "Alice@Example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatalf("CreateUser(alice) = %v", err)
	}
	return u
}

func (f *fixture) user(t *testing.T, id string) storage.User {
	t.Helper()
	u, err := f.store.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("GetUser(%s) = %v", id, err)
	}
	return u
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

func TestCreateUser(t *testing.T) {
	f := newFixture(t, Options{})
	u, err := f.svc.CreateUser(t.Context(), NewUser{
		Username: "Alice", Email: "Alice@Example.com", Password: alicePassword, Roles: []string{"admin", "user"},
	}, meta)
	if err != nil {
		t.Fatalf("CreateUser = %v", err)
	}
	if u.ID == "" || u.Username != "alice" || u.Email != "Alice@Example.com" {
		t.Errorf("CreateUser = %+v; want an id, username alice, email as given", u)
	}
	if !slices.Equal(u.Roles, []string{"user", "admin"}) {
		t.Errorf("Roles = %q; want [user admin]", u.Roles)
	}
	stored := f.user(t, u.ID)
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("stored hash = %.30q...; want argon2id with the service's params", stored.PasswordHash)
	}
	if ok, _, err := f.svc.Hasher().Verify(alicePassword, stored.PasswordHash); !ok || err != nil {
		t.Errorf("Verify(stored hash) = %v, %v; want true", ok, err)
	}
	created := f.audit(t, events.UserCreated)
	if len(created) != 1 || created[0].UserID != u.ID || created[0].ClientID != meClient || created[0].IP != meIP {
		t.Fatalf("auth.user_created entries = %+v; want one for %s", created, u.ID)
	}
	if created[0].data["username"] != "alice" {
		t.Errorf("auth.user_created data = %v; want the username", created[0].data)
	}
	pending, err := f.store.PendingOutbox(t.Context(), 10)
	if err != nil || len(pending) != 1 || pending[0].Type != string(events.UserCreated) || pending[0].Key != u.ID {
		t.Errorf("outbox = %+v, %v; want one auth.user_created keyed %s", pending, err, u.ID)
	}
	if bytes.Contains(pending[0].Payload, []byte(alicePassword)) || bytes.Contains(pending[0].Payload, []byte("argon2id")) {
		t.Errorf("outbox payload %s carries the password or its hash", pending[0].Payload)
	}

	// Every user has the user role, even with none given.
	b, err := f.svc.CreateUser(t.Context(), NewUser{Username: "bob", Email: "bob@example.com", Password: "a long enough passphrase"}, meta)
	if err != nil || !slices.Equal(b.Roles, []string{"user"}) {
		t.Errorf("CreateUser(bob) = %q, %v; want roles [user]", b.Roles, err)
	}
}

func TestCreateUserRefusesInvalidInput(t *testing.T) {
	f := newFixture(t, Options{Blocklist: listBlocklist{"correcthorsebatterystaple": true}})
	tests := []struct {
		nu    NewUser
		field string
	}{
		{NewUser{Username: "al", Email: "al@example.com", Password: alicePassword}, FieldUsername},
		{NewUser{Username: "alice", Email: "Alice <alice@example.com>", Password: alicePassword}, FieldEmail},
		{NewUser{Username: "alice", Email: "alice@example.com", Password: "short"}, FieldPassword},
		{NewUser{Username: "alice", Email: "alice@example.com", Password: "alice-in-wonderland!"}, FieldPassword},
		{NewUser{Username: "alice", Email: "alice@example.com", Password: "CorrectHorseBatteryStaple"}, FieldPassword},
		{NewUser{Username: "alice", Email: "alice@example.com", Password: alicePassword, Roles: []string{"Admin"}}, FieldRoles},
	}
	for _, tt := range tests {
		_, err := f.svc.CreateUser(t.Context(), tt.nu, meta)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("CreateUser(%q, %q) = %v; want a %s ValidationError", tt.nu.Username, tt.nu.Email, err, tt.field)
		}
	}
	if users, _, err := f.store.ListUsers(t.Context(), storage.UserQuery{Limit: 10}); err != nil || len(users) != 0 {
		t.Errorf("users after refusals = %d, %v; want none", len(users), err)
	}
	if got := f.audit(t, events.UserCreated); len(got) != 0 {
		t.Errorf("auth.user_created entries = %d; want none", len(got))
	}
}

func TestCreateUserConflict(t *testing.T) {
	f := newFixture(t, Options{})
	f.createAlice(t)
	for _, nu := range []NewUser{
		{Username: "ALICE", Email: "other@example.com", Password: alicePassword},
		{Username: "alice2", Email: "alice@EXAMPLE.com", Password: alicePassword},
	} {
		_, err := f.svc.CreateUser(t.Context(), nu, meta)
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateUser(%q, %q) = %v; want ErrConflict", nu.Username, nu.Email, err)
		}
	}
	if got := f.audit(t, events.UserCreated); len(got) != 1 {
		t.Errorf("auth.user_created entries = %d; want 1", len(got))
	}
}

func TestCreateUserIsOneTransaction(t *testing.T) {
	f := newFixture(t, Options{})
	f.store.failOutbox = errors.New("outbox down")
	_, err := f.svc.CreateUser(t.Context(), NewUser{Username: "alice", Email: "alice@example.com", Password: alicePassword}, meta)
	if err == nil || !strings.Contains(err.Error(), "outbox down") {
		t.Fatalf("CreateUser with a failing outbox = %v; want that failure", err)
	}
	if _, err := f.store.GetUserByLogin(t.Context(), "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByLogin(alice) after a failed event = %v; want ErrNotFound (rolled back)", err)
	}
	if got := f.audit(t, events.UserCreated); len(got) != 0 {
		t.Errorf("audit after a failed event = %d entries; want none (rolled back)", len(got))
	}
}

func TestAuthenticateSuccess(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	for i, login := range []string{"alice", "ALICE", "alice@example.com", "Alice@Example.COM"} {
		u, err := f.svc.Authenticate(t.Context(), login, alicePassword, meta)
		if err != nil || u.ID != alice.ID {
			t.Errorf("Authenticate(%q) = %s, %v; want %s, nil", login, u.ID, err, alice.ID)
		}
		if got := f.audit(t, events.LoginSuccess); len(got) != i+1 || got[i].UserID != alice.ID || got[i].ClientID != meClient || got[i].IP != meIP {
			t.Errorf("auth.login.success entries = %+v; want %d, the last for alice", got, i+1)
		}
	}
	// A login in another Unicode form of the same password works (NFKC).
	if _, err := f.svc.Authenticate(t.Context(), "alice", "ｔｒ０ｕｂ４ｄｏｒ&3 is not enough", meta); err != nil {
		t.Errorf("Authenticate(fullwidth form) = %v; want nil", err)
	}
}

func TestAuthenticateFailuresLookAlike(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	locked, err := f.svc.CreateUser(t.Context(), NewUser{Username: "lena", Email: "lena@example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := f.svc.CreateUser(t.Context(), NewUser{Username: "dora", Email: "dora@example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateUser(t.Context(), locked.ID, func(u *storage.User) error {
		u.LockedUntil = f.now.Add(time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateUser(t.Context(), disabled.ID, func(u *storage.User) error {
		u.Disabled = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, login, password string
		subject, reason       string
	}{
		{"unknown user", "mallory", alicePassword, "", ReasonUnknownUser},
		{"unknown email", "mallory@example.com", alicePassword, "", ReasonUnknownUser},
		{"empty login", "", alicePassword, "", ReasonUnknownUser},
		{"absurd login", strings.Repeat("m", 4096), alicePassword, "", ReasonUnknownUser},
		{"wrong password", "alice", "not the password at all", alice.ID, ReasonBadPassword},
		{"over-long password", "alice", strings.Repeat("x", 2000), alice.ID, ReasonBadPassword},
		{"locked, right password", "lena", alicePassword, locked.ID, ReasonLocked},
		{"disabled, right password", "dora", alicePassword, disabled.ID, ReasonDisabled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := f.svc.Authenticate(t.Context(), tt.login, tt.password, meta)
			if !errors.Is(err, ErrInvalidCredentials) || err.Error() != ErrInvalidCredentials.Error() {
				t.Errorf("Authenticate = %v; want exactly ErrInvalidCredentials", err)
			}
			if u.ID != "" {
				t.Errorf("Authenticate returned user %s on failure", u.ID)
			}
			failed := f.audit(t, events.LoginFailed)
			if len(failed) != i+1 {
				t.Fatalf("auth.login.failed entries = %d; want %d", len(failed), i+1)
			}
			last := failed[i]
			if last.UserID != tt.subject || last.data["reason"] != tt.reason || last.ClientID != meClient || last.IP != meIP {
				t.Errorf("auth.login.failed = subject %q data %v; want subject %q reason %q", last.UserID, last.data, tt.subject, tt.reason)
			}
			if tt.subject == "" && len(last.data) != 1 {
				t.Errorf("auth.login.failed for an unknown user carries %v; want only the reason", last.data)
			}
		})
	}
	// Locked and disabled attempts do not touch the counter.
	if u := f.user(t, locked.ID); u.FailedLogins != 0 || !u.LockedUntil.Equal(f.now.Add(time.Minute)) {
		t.Errorf("locked user after an attempt: failed=%d until=%v; want unchanged", u.FailedLogins, u.LockedUntil)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 2 {
		t.Errorf("alice FailedLogins = %d; want 2", u.FailedLogins)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 3, LockoutDuration: 10 * time.Minute})
	alice := f.createAlice(t)
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		if _, err := f.svc.Authenticate(ctx, "alice", "wrong password number x", meta); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
		u := f.user(t, alice.ID)
		if u.FailedLogins != i {
			t.Errorf("after %d failures FailedLogins = %d", i, u.FailedLogins)
		}
		if wantLocked := i == 3; wantLocked != !u.LockedUntil.IsZero() {
			t.Errorf("after %d failures LockedUntil = %v; locked want %v", i, u.LockedUntil, wantLocked)
		}
	}
	u := f.user(t, alice.ID)
	if want := f.now.Add(10 * time.Minute); !u.LockedUntil.Equal(want) {
		t.Errorf("LockedUntil = %v; want %v", u.LockedUntil, want)
	}
	lockedEvents := f.audit(t, events.UserLocked)
	if len(lockedEvents) != 1 || lockedEvents[0].UserID != alice.ID {
		t.Fatalf("auth.user_locked entries = %+v; want one for alice", lockedEvents)
	}

	// While locked, the right password fails too, and nothing is extended.
	f.now = f.now.Add(9 * time.Minute)
	if _, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(locked, right password) = %v; want ErrInvalidCredentials", err)
	}
	if _, err := f.svc.Authenticate(ctx, "alice", "wrong password number y", meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(locked, wrong password) = %v; want ErrInvalidCredentials", err)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 3 || !u.LockedUntil.Equal(lockedEvents[0].Time.Add(10*time.Minute)) {
		t.Errorf("locked user after attempts: failed=%d until=%v; want 3, unchanged", u.FailedLogins, u.LockedUntil)
	}
	if got := f.audit(t, events.UserLocked); len(got) != 1 {
		t.Errorf("auth.user_locked entries = %d; want still 1", len(got))
	}

	// The lock expires; the right password then works and clears everything.
	f.now = f.now.Add(time.Minute)
	got, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	if err != nil {
		t.Fatalf("Authenticate(after the lock) = %v; want success", err)
	}
	if got.FailedLogins != 0 || !got.LockedUntil.IsZero() {
		t.Errorf("returned user failed=%d until=%v; want cleared", got.FailedLogins, got.LockedUntil)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("stored user failed=%d until=%v; want cleared", u.FailedLogins, u.LockedUntil)
	}
}

func TestLockoutExpiredCountsAfresh(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 3, LockoutDuration: 10 * time.Minute})
	alice := f.createAlice(t)
	for range 3 {
		_, _ = f.svc.Authenticate(t.Context(), "alice", "wrong password number x", meta)
	}
	f.now = f.now.Add(11 * time.Minute)
	if _, err := f.svc.Authenticate(t.Context(), "alice", "wrong password number y", meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Authenticate = %v", err)
	}
	u := f.user(t, alice.ID)
	if u.FailedLogins != 1 || !u.LockedUntil.IsZero() {
		t.Errorf("after an expired lock and one failure: failed=%d until=%v; want 1, unlocked", u.FailedLogins, u.LockedUntil)
	}
	if got := f.audit(t, events.UserLocked); len(got) != 1 {
		t.Errorf("auth.user_locked entries = %d; want 1", len(got))
	}
	if got := f.audit(t, events.LoginFailed); len(got) != 4 || got[3].data["reason"] != ReasonBadPassword {
		t.Errorf("last auth.login.failed = %+v; want the fourth, bad_password", got)
	}
}

func TestLockoutOff(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 0, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	for range 6 {
		_, _ = f.svc.Authenticate(t.Context(), "alice", "wrong password number x", meta)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 6 || !u.LockedUntil.IsZero() {
		t.Errorf("lockout off: failed=%d until=%v; want 6, unlocked", u.FailedLogins, u.LockedUntil)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Errorf("Authenticate = %v; want success", err)
	}
	if u := f.user(t, alice.ID); u.FailedLogins != 0 {
		t.Errorf("FailedLogins after success = %d; want 0", u.FailedLogins)
	}
}

func TestFailureRecordingIsOneTransaction(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	f.store.failOutbox = errors.New("outbox down")
	_, err := f.svc.Authenticate(t.Context(), "alice", "wrong password number x", meta)
	if err == nil || errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "outbox down") {
		t.Errorf("Authenticate with a failing outbox = %v; want the store failure", err)
	}
	// The failure is rolled back with its event and the reservation given
	// back: the caller got a store error, which tells nothing of the password.
	if u := f.user(t, alice.ID); u.FailedLogins != 0 || u.PendingLogins != 0 {
		t.Errorf("failed=%d pending=%d; want 0 (rolled back), 0 (released)", u.FailedLogins, u.PendingLogins)
	}
	f.store.failOutbox = nil
	if got := f.audit(t, events.LoginFailed); len(got) != 0 {
		t.Errorf("auth.login.failed entries = %d; want none (rolled back)", len(got))
	}
}

func TestAuthenticateStoreError(t *testing.T) {
	f := newFixture(t, Options{})
	boom := errors.New("database gone")
	f.store.failLookup = boom
	_, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate with a failing store = %v; want the store error, not ErrInvalidCredentials", err)
	}
}

func TestRehashBcrypt(t *testing.T) {
	f := newFixture(t, Options{})
	const pw = "imported from the old system"
	legacy, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{ID: "legacy-1", Username: "olduser", Email: "old@example.com", PasswordHash: string(legacy), Roles: []string{"user"}}
	if err := f.store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "olduser", "not the imported password", meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(bcrypt, wrong) = %v; want ErrInvalidCredentials", err)
	}
	if got := f.user(t, u.ID).PasswordHash; got != string(legacy) {
		t.Error("a failed login replaced the bcrypt hash")
	}
	got, err := f.svc.Authenticate(t.Context(), "olduser", pw, meta)
	if err != nil {
		t.Fatalf("Authenticate(bcrypt, right) = %v", err)
	}
	stored := f.user(t, u.ID).PasswordHash
	if !strings.HasPrefix(stored, "$argon2id$") || got.PasswordHash != stored {
		t.Fatalf("hash after login = %.12q...; want argon2id, returned and stored", stored)
	}
	if ok, rehash, err := f.svc.Hasher().Verify(pw, stored); !ok || rehash || err != nil {
		t.Errorf("Verify(new hash) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	success := f.audit(t, events.LoginSuccess)
	if len(success) != 1 || success[0].data["rehashed"] != true {
		t.Errorf("auth.login.success = %+v; want one with rehashed=true", success)
	}
	// The next login finds nothing to rehash.
	if _, err := f.svc.Authenticate(t.Context(), "olduser", pw, meta); err != nil {
		t.Fatal(err)
	}
	if again := f.user(t, u.ID).PasswordHash; again != stored {
		t.Error("a second login rehashed a current hash")
	}
}

func TestRehashOutdatedArgon2id(t *testing.T) {
	f := newFixture(t, Options{})
	old := NewHasher(Params{Memory: 512, Time: 1, Threads: 1})
	alice := f.createAlice(t)
	oldHash, err := old.Hash(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateUser(t.Context(), alice.ID, func(u *storage.User) error {
		u.PasswordHash = oldHash
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	if got := f.user(t, alice.ID).PasswordHash; !strings.Contains(got, "$m=1024,t=1,p=1$") {
		t.Errorf("hash after login = %.40q...; want the service's params m=1024,t=1,p=1", got)
	}
}

func TestAuthenticateWaitsForAHashingSlot(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrentHashes: 1})
	f.createAlice(t)
	if err := f.svc.acquire(t.Context()); err != nil { // take the only slot
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := f.svc.Authenticate(ctx, "alice", alicePassword, meta)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authenticate with no free slot = %v; want DeadlineExceeded", err)
	}
	f.svc.release()
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); err != nil {
		t.Errorf("Authenticate after release = %v; want success", err)
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 2, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	hash := f.user(t, alice.ID).PasswordHash
	// Break a second user's hash so the "unusable hash" path logs too.
	broken, err := f.svc.CreateUser(t.Context(), NewUser{Username: "bert", Email: "bert@example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatal(err)
	}
	const badHash = "$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	if _, err := f.store.UpdateUser(t.Context(), broken.ID, func(u *storage.User) error {
		u.PasswordHash = badHash
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const wrong = "a wrong guess of a password"
	var errs []error
	for _, a := range [][2]string{{"alice", wrong}, {"alice", wrong}, {"alice", alicePassword}, {"bert", alicePassword}, {"nobody", wrong}} {
		_, err := f.svc.Authenticate(t.Context(), a[0], a[1], meta)
		errs = append(errs, err)
	}
	if !strings.Contains(f.logs.String(), "account locked") || !strings.Contains(f.logs.String(), "unusable") {
		t.Errorf("logs = %s; want the lock and the unusable hash reported", f.logs)
	}
	for _, s := range []string{alicePassword, wrong, hash[strings.LastIndexByte(hash, '$')+1:], "YfwJSVjtjSU0zzV"} {
		if strings.Contains(f.logs.String(), s) {
			t.Errorf("logs contain a password or hash: %s", f.logs)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a password or hash", err)
			}
		}
	}
	entries, err := f.store.ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if bytes.Contains(e.Data, []byte(alicePassword)) || bytes.Contains(e.Data, []byte(wrong)) || bytes.Contains(e.Data, []byte("argon2")) {
			t.Errorf("audit %s data %s carries a secret", e.Type, e.Data)
		}
	}
}

func TestDummyHashMatchesCurrentParams(t *testing.T) {
	f := newFixture(t, Options{})
	p, _, _, err := decodeArgon2id(f.svc.dummy)
	if err != nil || p != f.svc.Hasher().Params() {
		t.Errorf("dummy hash params = %+v, %v; want %+v", p, err, f.svc.Hasher().Params())
	}
}

func TestConcurrentFailuresLockOnce(t *testing.T) {
	f := newFixture(t, Options{LockoutThreshold: 5, LockoutDuration: time.Minute})
	alice := f.createAlice(t)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.svc.Authenticate(t.Context(), "alice", "wrong password number x", meta)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("concurrent Authenticate = %v; want ErrInvalidCredentials", err)
		}
	}
	u := f.user(t, alice.ID)
	if u.FailedLogins < 5 || u.LockedUntil.IsZero() {
		t.Errorf("after %d concurrent failures: failed=%d until=%v; want >= 5 and locked", n, u.FailedLogins, u.LockedUntil)
	}
	if got := f.audit(t, events.UserLocked); len(got) != 1 {
		t.Errorf("auth.user_locked entries = %d; want exactly 1", len(got))
	}
	if got := f.audit(t, events.LoginFailed); len(got) != n {
		t.Errorf("auth.login.failed entries = %d; want %d", len(got), n)
	}
}
