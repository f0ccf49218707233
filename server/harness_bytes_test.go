package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
	"github.com/authd/authd/storage/storagetest"
)

// A whole server (router, middleware, OAuth provider, account and admin
// APIs) on a real store, for tests that go through every layer.

const (
	testSecret   = "server-test-secret-0123456789abcdef012345"
	testIssuer   = "https://authd.test"
	testPassword = "correct horse battery staple"
)

type backend struct {
	name string
	open func(testing.TB) storage.Store
}

// backends are SQLite, and PostgreSQL when AUTHD_TEST_POSTGRES_URL is set
// (skipped otherwise, failed in CI).
func backends() []backend {
	return []backend{{"sqlite", openSQLite}, {"postgres", openPostgres}}
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

func openPostgres(tb testing.TB) storage.Store {
	tb.Helper()
	st, err := postgres.New(context.Background(), storagetest.PostgresDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// openFuzzStore is PostgreSQL when AUTHD_TEST_POSTGRES_URL is set, else SQLite.
func openFuzzStore(tb testing.TB) storage.Store {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		return openPostgres(tb)
	}
	return openSQLite(tb)
}

// errorLog counts records at error level: a request with bad bytes must
// never make the server log an error (a store refusing text did).
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	l.msgs = append(l.msgs, msg)
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs
	l.msgs = nil
	return m
}

type testServer struct {
	srv     *Server
	store   storage.Store
	errs    *errorLog
	secret  string // client "app"'s secret
	admin   string // an admin's access token
	user    string // a plain user's access token
	adminID string
	userID  string
}

func newTestServer(tb testing.TB, st storage.Store) *testServer {
	tb.Helper()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	st = clientcache.New(st, 0, nil) // as cmd/authd wires it
	errs := &errorLog{}
	log := slog.New(errs)
	km, err := keys.NewManager(ctx, st, keys.Options{Secret: []byte(testSecret), TokenTTL: 15 * time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := oauth.NewSecretHasher([]byte(testSecret))
	if err != nil {
		tb.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	ids := identity.NewService(st, rec, identity.Options{
		LockoutThreshold: 1000, LockoutDuration: time.Minute, Logger: log,
		Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	p, err := oauth.New(oauth.Options{
		Issuer: testIssuer, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		Secret: []byte(testSecret), Store: st, Denylist: st, ProofReplay: st, Signer: km, Auth: ids, Recorder: rec, Hasher: hasher, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := clients.NewService(st, rec, clients.Options{Hasher: hasher, GrantTypes: oauth.SupportedGrantTypes()})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := New(Config{
		Issuer: testIssuer, OAuth: p, Keys: km, Store: st, Identity: ids, Recorder: rec, Clients: cs, Logger: log,
		Checks: []Check{{Name: "store", Required: true, Probe: func(context.Context) error { return nil }}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{srv: srv, store: st, errs: errs}
	c, sec, err := clients.Spec{
		ID: "app", GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile", "email"},
	}.Record(ctx, hasher, oauth.SupportedGrantTypes())
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.CreateClient(ctx, c); err != nil {
		tb.Fatal(err)
	}
	ts.secret = sec
	for _, u := range []struct {
		name  string
		roles []string
		id    *string
		tok   *string
	}{{"root", []string{storage.RoleAdmin}, &ts.adminID, &ts.admin}, {"alice", nil, &ts.userID, &ts.user}} {
		created, err := ids.CreateUser(ctx, identity.NewUser{Username: u.name, Email: u.name + "@example.com", Password: testPassword, Roles: u.roles}, identity.Meta{})
		if err != nil {
			tb.Fatal(err)
		}
		*u.id = created.ID
		rr := ts.form(http.MethodPost, "/oauth2/token", url.Values{
			"grant_type": {"password"}, "username": {u.name}, "password": {testPassword}, "scope": {"openid profile email"},
		}, "app", sec)
		if rr.Code != http.StatusOK {
			tb.Fatalf("password grant for %s: %d %s", u.name, rr.Code, rr.Body)
		}
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
			tb.Fatalf("token response %s: %v", rr.Body, err)
		}
		*u.tok = tr.AccessToken
	}
	return ts
}

// do sends a request through the whole handler. target is used as is (it
// may hold escapes such as %00); body is sent with ctype when not empty.
func (ts *testServer) do(method, target, ctype string, body io.Reader, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", body)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	req.URL = u
	req.RequestURI = target
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	ts.srv.ServeHTTP(rec, req)
	return rec
}

// json sends a JSON body (raw, so that it may hold any bytes) with a Bearer token.
func (ts *testServer) json(method, target, token, body string) *httptest.ResponseRecorder {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	var rd io.Reader
	ctype := ""
	if body != "" {
		rd, ctype = strings.NewReader(body), "application/json"
	}
	return ts.do(method, target, ctype, rd, h)
}

// form posts a form, authenticated with HTTP Basic when clientID is set.
func (ts *testServer) form(method, target string, form url.Values, clientID, secret string) *httptest.ResponseRecorder {
	h := http.Header{}
	if clientID != "" {
		r := &http.Request{Header: h}
		r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return ts.do(method, target, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), h)
}
