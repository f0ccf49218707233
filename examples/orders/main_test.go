package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

const (
	testIssuer = "https://auth.example.com"
	publicURL  = "https://shop.example/api" // where clients call the service (a proxy removes /api)
)

// fixture is the orders service over a static key set, and a way to mint
// access tokens as authd would.
type fixture struct {
	t       *testing.T
	handler http.Handler
	signer  jose.Signer
	now     time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureMode(t, verify.DPoPOff)
}

// newFixtureMode is newFixture with the orders service in a DPoP mode, as
// -dpop runs it (DPoPRequire), seen by clients at publicURL.
func newFixtureMode(t *testing.T, mode verify.DPoPMode) *fixture {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	v, err := verify.NewStatic(verify.Config{
		Issuer:    testIssuer,
		Audience:  "orders",
		Now:       func() time.Time { return now },
		DPoP:      mode,
		PublicURL: publicURL,
	}, set)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	a := &app{store: newStore(func() time.Time { return now }), log: slog.New(slog.DiscardHandler)}
	return &fixture{t: t, handler: a.routes(v.Middleware), signer: signer, now: now}
}

// token mints an access token for sub with roles; a client_credentials
// token when username is empty.
func (f *fixture) token(sub, username string, roles ...string) string {
	f.t.Helper()
	return f.boundToken("", sub, username, roles...)
}

// boundToken is token bound to the DPoP key of thumbprint jkt (unbound when
// jkt is empty), as authd mints it for a token request with a DPoP proof.
func (f *fixture) boundToken(jkt, sub, username string, roles ...string) string {
	f.t.Helper()
	c := map[string]any{
		"iss": testIssuer, "sub": sub, "aud": []string{"orders"},
		"exp": f.now.Add(15 * time.Minute).Unix(), "iat": f.now.Unix(), "nbf": f.now.Unix(),
		"jti": "jti-" + sub, "client_id": "cli", "scope": "openid", "roles": roles,
	}
	if username != "" {
		c["preferred_username"] = username
	}
	if jkt != "" {
		c["cnf"] = map[string]string{"jkt": jkt}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		f.t.Fatal(err)
	}
	jws, err := f.signer.Sign(payload)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// do sends a request and returns the status, headers and body.
func (f *fixture) do(method, path, token, body string) (int, http.Header, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(f.t.Context(), method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

func (f *fixture) create(token, item string) Order {
	f.t.Helper()
	status, h, body := f.do(http.MethodPost, "/orders", token, `{"item":"`+item+`","quantity":2}`)
	if status != http.StatusCreated {
		f.t.Fatalf("POST /orders = %d %s; want 201", status, body)
	}
	var o Order
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		f.t.Fatal(err)
	}
	if loc := h.Get("Location"); loc != "/orders/"+o.ID {
		f.t.Errorf("Location = %q; want /orders/%s", loc, o.ID)
	}
	return o
}

func (f *fixture) list(token string) []Order {
	f.t.Helper()
	status, _, body := f.do(http.MethodGet, "/orders", token, "")
	if status != http.StatusOK {
		f.t.Fatalf("GET /orders = %d %s; want 200", status, body)
	}
	var out struct{ Orders []Order }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		f.t.Fatal(err)
	}
	return out.Orders
}

func TestOrdersFlow(t *testing.T) {
	f := newFixture(t)
	alice := f.token("u-alice", "alice", "user")
	bob := f.token("u-bob", "bob", "user")
	root := f.token("u-root", "root", "user", "admin")

	a1 := f.create(alice, "book")
	if a1.Owner != "u-alice" || a1.OwnerName != "alice" || a1.Item != "book" || a1.Quantity != 2 {
		t.Errorf("created order = %+v", a1)
	}
	a2 := f.create(alice, "pen")
	b1 := f.create(bob, "lamp")

	if got := f.list(alice); len(got) != 2 || got[0].ID != a1.ID || got[1].ID != a2.ID {
		t.Errorf("alice lists %+v; want her 2 orders", got)
	}
	if got := f.list(bob); len(got) != 1 || got[0].ID != b1.ID {
		t.Errorf("bob lists %+v; want his 1 order", got)
	}
	if got := f.list(root); len(got) != 3 {
		t.Errorf("admin lists %d orders; want all 3", len(got))
	}

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		status int
	}{
		{"owner reads own order", http.MethodGet, "/orders/" + a1.ID, alice, 200},
		{"another user's order is hidden", http.MethodGet, "/orders/" + a1.ID, bob, 404},
		{"admin reads any order", http.MethodGet, "/orders/" + b1.ID, root, 200},
		{"unknown order", http.MethodGet, "/orders/ord_nope", alice, 404},
		{"user may not delete, even own", http.MethodDelete, "/orders/" + a1.ID, alice, 403},
		{"admin deletes", http.MethodDelete, "/orders/" + a1.ID, root, 204},
		{"deleted order is gone", http.MethodGet, "/orders/" + a1.ID, alice, 404},
		{"admin deletes unknown", http.MethodDelete, "/orders/" + a1.ID, root, 404},
		{"no token", http.MethodGet, "/orders", "", 401},
		{"bad token", http.MethodGet, "/orders", "not.a.token", 401},
		{"client_credentials token without roles", http.MethodGet, "/orders", f.token("svc", ""), 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := f.do(tc.method, tc.path, tc.token, "")
			if status != tc.status {
				t.Fatalf("%s %s = %d %s; want %d", tc.method, tc.path, status, body, tc.status)
			}
			switch status {
			case 401:
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="orders"`) {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			case 403:
				if !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if got := f.list(alice); len(got) != 1 || got[0].ID != a2.ID {
		t.Errorf("after delete alice lists %+v; want only %s", got, a2.ID)
	}
}

func TestCreateOrderValidation(t *testing.T) {
	f := newFixture(t)
	alice := f.token("u-alice", "alice", "user")
	for _, body := range []string{
		``,
		`not json`,
		`{"item":"","quantity":1}`,
		`{"item":"   ","quantity":1}`,
		`{"item":"book","quantity":0}`,
		`{"item":"book","quantity":1001}`,
		`{"item":"` + strings.Repeat("x", 201) + `","quantity":1}`,
		`{"item":"book","quantity":1,"owner":"u-bob"}`,
		`{"item":"book","quantity":"2"}`,
		`{"item":"` + strings.Repeat("x", maxBodyBytes) + `","quantity":1}`,
	} {
		status, _, resp := f.do(http.MethodPost, "/orders", alice, body)
		if status != http.StatusBadRequest {
			t.Errorf("POST /orders %.40q = %d %s; want 400", body, status, resp)
		}
	}
	if got := f.list(alice); len(got) != 0 {
		t.Errorf("invalid requests created %d orders", len(got))
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"ORDERS_ADDR":          ":9000",
		"AUTHD_ISSUER":         "https://auth.example.com",
		"ORDERS_AUDIENCE":      "shop",
		"ORDERS_ONLINE":        "true",
		"ORDERS_CLIENT_ID":     "orders-api",
		"ORDERS_CLIENT_SECRET": "s3cret",
		"ORDERS_DPOP":          "1",
		"ORDERS_PUBLIC_URL":    "https://shop.example/api",
	}
	getenv := func(k string) string { return env[k] }
	c, err := loadConfig(nil, getenv)
	if err != nil {
		t.Fatalf("loadConfig(env) = %v", err)
	}
	want := config{addr: ":9000", issuer: "https://auth.example.com", audience: "shop", online: true, clientID: "orders-api", clientSecret: "s3cret",
		dpop: true, publicURL: "https://shop.example/api"}
	if c != want {
		t.Errorf("loadConfig(env) = %+v; want %+v", c, want)
	}
	c, err = loadConfig([]string{"-addr", ":7000", "-audience", "a2", "-online=false", "-dpop=false", "-public-url", "https://x.example"}, getenv)
	if err != nil || c.addr != ":7000" || c.audience != "a2" || c.online || c.dpop || c.publicURL != "https://x.example" {
		t.Errorf("loadConfig(flags) = %+v, %v; flags must win over the environment", c, err)
	}
	c, err = loadConfig(nil, func(string) string { return "" })
	if err != nil || c.addr != ":8081" || c.issuer != "http://localhost:8080" || c.audience != "orders" || c.online || c.dpop || c.publicURL != "" {
		t.Errorf("loadConfig(defaults) = %+v, %v", c, err)
	}
	if c, err := loadConfig([]string{"-dpop"}, func(string) string { return "" }); err != nil || !c.dpop {
		t.Errorf("loadConfig(-dpop) = %+v, %v", c, err)
	}
	if _, err := loadConfig(nil, func(k string) string { return map[string]string{"ORDERS_DPOP": "sometimes"}[k] }); err == nil {
		t.Error("loadConfig(ORDERS_DPOP=sometimes) = nil error")
	}
	if _, err := loadConfig([]string{"-online"}, func(string) string { return "" }); err == nil {
		t.Error("loadConfig(-online without client credentials) = nil error")
	}
	if _, err := loadConfig(nil, func(k string) string { return map[string]string{"ORDERS_ONLINE": "maybe"}[k] }); err == nil {
		t.Error("loadConfig(ORDERS_ONLINE=maybe) = nil error")
	}
}

// TestRunStartsAndStops runs the whole command against a fake authd that
// serves metadata and keys, then stops it through its context.
func TestRunStartsAndStops(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-issuer", srv.URL}, func(string) string { return "" }, &syncWriter{w: &logs})
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v; want nil after its context ended", err)
		}
		if !strings.Contains(logs.String(), `"msg":"orders listening"`) {
			t.Errorf("logs = %s; want the listening line", logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}

	err = run(t.Context(), []string{"-issuer", "https://evil.example/not-reachable", "-audience", ""}, func(string) string { return "" }, io.Discard)
	if err == nil {
		t.Error("run(empty audience) = nil; want an error")
	}
	err = run(t.Context(), []string{"-dpop", "-public-url", "ftp://shop.example", "-issuer", srv.URL}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PublicURL") {
		t.Errorf("run(-dpop -public-url ftp://…) = %v; want a PublicURL error", err)
	}
}

// syncWriter lets the test read logs written by another goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
