package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

const (
	secret   = "oauth-test-secret-0123456789abcdef01234567"
	issuer   = "https://authd.test"
	password = "correct horse battery staple"
)

// harness is a provider on a real store with one user and a few clients.
type harness struct {
	p       *oauth.Provider
	store   storage.Store
	secrets map[string]string
	userID  string
}

func openSQLite(tb testing.TB) storage.Store {
	tb.Helper()
	st, err := sqlite.New(context.Background(), filepath.Join(tb.TempDir(), "authd.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t testing.TB) storage.Store {
	t.Helper()
	st, err := postgres.New(context.Background(), storagetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newHarness(tb testing.TB, st storage.Store, params identity.Params) *harness {
	return newHarnessWith(tb, st, params, nil)
}

// newHarnessWith is newHarness with the provider's options adjusted by opt.
func newHarnessWith(tb testing.TB, st storage.Store, params identity.Params, opt func(*oauth.Options)) *harness {
	tb.Helper()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	km, err := keys.NewManager(ctx, st, keys.Options{Secret: []byte(secret), TokenTTL: 15 * time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := oauth.NewSecretHasher([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	ids := identity.NewService(st, rec, identity.Options{LockoutThreshold: 1000, LockoutDuration: time.Minute, Params: params})
	o := oauth.Options{
		Issuer: issuer, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		Secret: []byte(secret), Store: st, Denylist: st, ProofReplay: st, Signer: km, Auth: ids, Recorder: rec, Hasher: hasher,
	}
	if opt != nil {
		opt(&o)
	}
	p, err := oauth.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{p: p, store: st, secrets: map[string]string{}}
	for _, spec := range []clients.Spec{
		{ID: "app", GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile"}},
		{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}},
		{ID: "rs", GrantTypes: []string{"client_credentials"}, Introspect: true},
	} {
		c, sec, err := spec.Record(ctx, hasher, oauth.SupportedGrantTypes())
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
		h.secrets[spec.ID] = sec
	}
	u, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice", Email: "alice@example.com", Password: password}, identity.Meta{})
	if err != nil {
		tb.Fatal(err)
	}
	h.userID = u.ID
	return h
}

// call runs handler on a form request authenticated as client with HTTP Basic.
func (h *harness) call(handler http.HandlerFunc, clientID string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(clientID, h.secrets[clientID])
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	return rec
}

// fastParams keep argon2id cheap in tests that are not about hashing.
var fastParams = identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
