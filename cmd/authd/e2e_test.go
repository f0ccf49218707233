package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authd/authd/storage/storagetest"
)

const testSecret = "e2e-test-secret-0123456789abcdef0123456789"

// backend is a store the end-to-end tests run against.
type backend struct {
	name  string
	dsn   func(t testing.TB) string
	extra func(t testing.TB) map[string]string // more environment, e.g. Redis
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "authd.db") }, nil},
		{"postgres", storagetest.PostgresDSN, nil},
		{"postgres+redis", storagetest.PostgresDSN, func(t testing.TB) map[string]string {
			u, prefix := storagetest.RedisURL(t)
			return map[string]string{"AUTHD_REDIS_URL": u, "AUTHD_REDIS_KEY_PREFIX": prefix}
		}},
	}
}

// instance is a running authd serve, seen from one (sub)test: its helpers
// report failures to t.
type instance struct {
	t *testing.T
	*process
}

// process is the serve itself, shared by the subtests.
type process struct {
	base   string
	vars   map[string]string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer // stderr: the JSON log stream
	out    *syncBuffer // stdout: dev mode's banner
	once   sync.Once
	t      *testing.T // the test that started it
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// envFor returns the environment of an authd on dsn; extra overrides.
func envFor(t *testing.T, dsn string, extra map[string]string) map[string]string {
	addr := freeAddr(t)
	vars := map[string]string{
		"AUTHD_ISSUER": "http://" + addr, "AUTHD_HTTP_ADDR": addr, "AUTHD_DATABASE_URL": dsn,
		"AUTHD_DEV": "true", "AUTHD_SECRET": testSecret, "AUTHD_DATA_DIR": t.TempDir(),
		"AUTHD_RATE_LIMIT_TOKEN_PER_MIN": "0", "AUTHD_LOG_LEVEL": "warn",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// cli runs one authd CLI verb against vars and returns its stdout.
func cli(t *testing.T, vars map[string]string, stdin string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(stdin), &out, &errb, lookup(vars))
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("authd %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// start runs `authd serve` in-process and waits until it listens.
func start(t *testing.T, vars map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs, out := &syncBuffer{}, &syncBuffer{}
	ready := make(chan string, 1)
	inst := &instance{t: t, process: &process{t: t, vars: vars, cancel: cancel, done: make(chan error, 1), logs: logs, out: out}}
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: logs, lookupEnv: lookup(vars),
		onReady: func(addr string) { ready <- addr }}
	root := e.rootCommand()
	root.SetArgs([]string{"serve"})
	go func() { inst.done <- root.ExecuteContext(ctx) }()
	select {
	case addr := <-ready:
		inst.base = "http://" + addr
	case err := <-inst.done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not start\n%s", logs.String())
	}
	t.Cleanup(inst.stop)
	return inst
}

func (in *process) stop() { in.once.Do(in.doStop) }

func (in *process) doStop() {
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			in.t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		in.t.Errorf("serve did not stop")
	}
	// The keep-alive connections to this server are closed now; a server
	// started next on the same address must not get a request sent on one
	// of them before the transport notices (a POST is not retried: EOF).
	http.DefaultClient.CloseIdleConnections()
	if strings.Contains(in.logs.String(), testSecret) {
		in.t.Errorf("the secret appears in the logs")
	}
}

type client struct {
	ID, Secret string
}

func createClient(t *testing.T, vars map[string]string, args ...string) client {
	t.Helper()
	out := cli(t, vars, "", append([]string{"clients", "create"}, args...)...)
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("clients create output %q: %v", out, err)
	}
	return client{c.ID, c.Secret}
}

func createUser(t *testing.T, vars map[string]string, username, email, password string, roles ...string) string {
	t.Helper()
	args := []string{"users", "create", "--username", username, "--email", email, "--password-stdin"}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	out := cli(t, vars, password+"\n", args...)
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.ID == "" {
		t.Fatalf("users create output %q: %v", out, err)
	}
	return u.ID
}

// post sends a form (with HTTP Basic when c is set) and decodes the JSON answer.
func (in *instance) post(path string, c *client, form url.Values) (int, http.Header, map[string]any) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return in.do(req)
}

func (in *instance) do(req *http.Request) (int, http.Header, map[string]any) {
	in.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil && resp.StatusCode != http.StatusOK {
			in.t.Fatalf("%s %s: status %d, body not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, body)
		}
	}
	if resp.StatusCode >= 500 {
		in.t.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header, m
}

func (in *instance) passwordGrant(c client, username, password string, extra url.Values) (int, map[string]any) {
	in.t.Helper()
	f := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	for k, v := range extra {
		f[k] = v
	}
	code, _, m := in.post("/oauth2/token", &c, f)
	return code, m
}

func (in *instance) refresh(c client, rt string) (int, map[string]any) {
	in.t.Helper()
	code, _, m := in.post("/oauth2/token", &c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	return code, m
}

func (in *instance) introspect(c client, token string) map[string]any {
	in.t.Helper()
	code, _, m := in.post("/oauth2/introspect", &c, url.Values{"token": {token}})
	if code != http.StatusOK {
		in.t.Fatalf("introspect: status %d %v", code, m)
	}
	return m
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// fixture is a server with the clients and user most tests need.
type fixture struct {
	*instance
	app, rs, cc, nopw, public client
	userID                    string
}

const userPassword = "correct horse battery staple"

func newFixture(t *testing.T, b backend, extra map[string]string) *fixture {
	t.Helper()
	all := map[string]string{}
	if b.extra != nil {
		for k, v := range b.extra(t) {
			all[k] = v
		}
	}
	for k, v := range extra {
		all[k] = v
	}
	vars := envFor(t, b.dsn(t), all)
	cli(t, vars, "", "migrate", "up")
	f := &fixture{}
	f.app = createClient(t, vars, "--id", "app", "--grant-types", "password,refresh_token", "--scopes", "openid profile email offline_access", "--audience", "orders,inventory,"+vars["AUTHD_ISSUER"])
	f.rs = createClient(t, vars, "--id", "orders-rs", "--grant-types", "client_credentials", "--scopes", "orders.read", "--introspect")
	f.cc = createClient(t, vars, "--id", "svc", "--grant-types", "client_credentials", "--scopes", "inventory.write inventory.read")
	f.nopw = createClient(t, vars, "--id", "norefresh", "--grant-types", "password", "--scopes", "openid")
	f.public = createClient(t, vars, "--id", "cli-public", "--public", "--grant-types", "password,refresh_token", "--scopes", "openid")
	f.userID = createUser(t, vars, "Alice", "Alice@Example.com", userPassword)
	f.instance = start(t, vars)
	return f
}

// run runs fn as a subtest whose helpers report to the subtest.
func (f *fixture) run(t *testing.T, name string, fn func(*fixture, *testing.T)) {
	t.Run(name, func(t *testing.T) {
		g := *f
		g.instance = &instance{t: t, process: f.process}
		fn(&g, t)
	})
}

// jwks fetches the served key set.
func (in *instance) jwks() jose.JSONWebKeySet {
	in.t.Helper()
	resp, err := http.Get(in.base + "/.well-known/jwks.json")
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		in.t.Fatal(err)
	}
	return set
}

// verifyJWT checks token against the served JWKS with go-jose v4 and returns its header and claims.
func (in *instance) verifyJWT(token string) (jose.Header, map[string]any) {
	in.t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		in.t.Fatalf("parse access token: %v", err)
	}
	h := jws.Signatures[0].Header
	set := in.jwks()
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		in.t.Fatalf("kid %q: %d keys in JWKS", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		in.t.Fatalf("verify access token against JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		in.t.Fatal(err)
	}
	return h, claims
}

func TestEndToEnd(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b, nil)
			f.run(t, "discovery", (*fixture).testDiscovery)
			f.run(t, "password grant with x/oauth2", (*fixture).testPasswordGrant)
			f.run(t, "client credentials with x/oauth2", (*fixture).testClientCredentials)
			f.run(t, "refresh rotation and reuse", (*fixture).testRefreshReuse)
			f.run(t, "concurrent refresh", (*fixture).testConcurrentRefresh)
			f.run(t, "introspection", (*fixture).testIntrospection)
			f.run(t, "revocation", (*fixture).testRevocation)
			f.run(t, "userinfo", (*fixture).testUserinfo)
			f.run(t, "bad input", (*fixture).testBadInput)
		})
	}
}

func (f *fixture) testDiscovery(t *testing.T) {
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		req, _ := http.NewRequest(http.MethodGet, f.base+p, nil)
		code, h, m := f.do(req)
		if code != http.StatusOK || h.Get("ETag") == "" {
			t.Fatalf("GET %s: %d etag %q", p, code, h.Get("ETag"))
		}
		if str(m, "issuer") != f.vars["AUTHD_ISSUER"] || str(m, "token_endpoint") != f.vars["AUTHD_ISSUER"]+"/oauth2/token" {
			t.Errorf("%s: issuer/token_endpoint = %v", p, m)
		}
		methods := fmt.Sprint(m["token_endpoint_auth_methods_supported"])
		for _, want := range []string{"client_secret_basic", "client_secret_post", "none"} {
			if !strings.Contains(methods, want) {
				t.Errorf("%s: auth methods %s lack %s", p, methods, want)
			}
		}
		req.Header.Set("If-None-Match", h.Get("ETag"))
		if code, _, _ := f.do(req); code != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d; want 304", p, code)
		}
	}
	set := f.jwks()
	if len(set.Keys) < 2 {
		t.Fatalf("JWKS has %d keys; want current and next", len(set.Keys))
	}
	for _, k := range set.Keys {
		if k.KeyID == "" || k.Algorithm == "" || k.Use != "sig" || !k.IsPublic() {
			t.Errorf("JWKS key %+v: want kid, alg, use sig, public only", k)
		}
	}
}

func (f *fixture) testPasswordGrant(t *testing.T) {
	conf := &oauth2.Config{ClientID: f.app.ID, ClientSecret: f.app.Secret, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{TokenURL: f.base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	for _, login := range []string{"alice", "ALICE", "alice@example.com"} {
		tok, err := conf.PasswordCredentialsToken(t.Context(), login, userPassword)
		if err != nil {
			t.Fatalf("password grant as %q: %v", login, err)
		}
		if tok.RefreshToken == "" || tok.TokenType != "bearer" && tok.TokenType != "Bearer" {
			t.Fatalf("token response: refresh %q, type %q", tok.RefreshToken, tok.TokenType)
		}
		h, c := f.verifyJWT(tok.AccessToken)
		if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" || h.Algorithm != "ES256" {
			t.Errorf("header %+v: want typ at+jwt, kid, ES256", h)
		}
		var names []string
		for k := range c {
			names = append(names, k)
		}
		sort.Strings(names)
		want := []string{"aud", "client_id", "exp", "iat", "iss", "jti", "nbf", "preferred_username", "roles", "scope", "sid", "sub"}
		if !slices.Equal(names, want) {
			t.Errorf("claims %v; want exactly %v", names, want)
		}
		if c["sub"] != f.userID || c["preferred_username"] != "alice" || c["client_id"] != "app" || c["scope"] != "openid profile" ||
			c["iss"] != f.vars["AUTHD_ISSUER"] || fmt.Sprint(c["roles"]) != "[user]" || fmt.Sprint(c["aud"]) != "[orders inventory "+f.vars["AUTHD_ISSUER"]+"]" {
			t.Errorf("claims = %v", c)
		}
	}
	// Same answer, same shape, for every kind of bad credentials.
	for _, tc := range []struct{ user, pass string }{{"alice", "wrong password here!"}, {"nobody", userPassword}} {
		code, m := f.passwordGrant(f.app, tc.user, tc.pass, nil)
		if code != http.StatusBadRequest || str(m, "error") != "invalid_grant" {
			t.Errorf("password grant %s: %d %v; want 400 invalid_grant", tc.user, code, m)
		}
	}
	// Audience parameter narrows aud; one the client may not use is refused.
	code, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"audience": {"orders"}})
	if code != http.StatusOK {
		t.Fatalf("audience=orders: %d %v", code, m)
	}
	if _, c := f.verifyJWT(str(m, "access_token")); fmt.Sprint(c["aud"]) != "[orders]" {
		t.Errorf("aud = %v; want [orders]", c["aud"])
	}
	if code, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"audience": {"payments"}}); code != http.StatusBadRequest {
		t.Errorf("audience=payments: %d %v; want 400", code, m)
	}
	// A client without refresh_token gets no refresh token.
	code, m = f.passwordGrant(f.nopw, "alice", userPassword, nil)
	if code != http.StatusOK || m["refresh_token"] != nil {
		t.Errorf("client without refresh_token grant: %d %v; want 200 without refresh_token", code, m)
	}
	// A public client authenticates with its id alone.
	code, _, m = f.post("/oauth2/token", nil, url.Values{"grant_type": {"password"}, "client_id": {f.public.ID}, "username": {"alice"}, "password": {userPassword}})
	if code != http.StatusOK || str(m, "refresh_token") == "" {
		t.Errorf("public client password grant: %d %v", code, m)
	}
	// A client not registered for the password grant.
	if code, m := f.passwordGrant(f.cc, "alice", userPassword, nil); code != http.StatusBadRequest || str(m, "error") != "unauthorized_client" {
		t.Errorf("password grant by client_credentials client: %d %v; want 400 unauthorized_client", code, m)
	}
}

func (f *fixture) testClientCredentials(t *testing.T) {
	conf := clientcredentials.Config{ClientID: f.cc.ID, ClientSecret: f.cc.Secret, TokenURL: f.base + "/oauth2/token", Scopes: []string{"inventory.read"}}
	tok, err := conf.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("client_credentials returned a refresh token")
	}
	_, c := f.verifyJWT(tok.AccessToken)
	if c["sub"] != "svc" || c["client_id"] != "svc" || c["scope"] != "inventory.read" || fmt.Sprint(c["aud"]) != "[svc]" || c["preferred_username"] != nil {
		t.Errorf("client_credentials claims = %v", c)
	}
	// client_secret_post works too.
	code, _, m := f.post("/oauth2/token", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.cc.ID}, "client_secret": {f.cc.Secret}})
	if code != http.StatusOK {
		t.Errorf("client_secret_post: %d %v", code, m)
	}
	conf.Scopes = []string{"admin"}
	if _, err := conf.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Errorf("scope not allowed: %v; want invalid_scope", err)
	}
}

func (f *fixture) testRefreshReuse(t *testing.T) {
	_, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"scope": {"openid"}})
	rt1 := str(m, "refresh_token")
	code, m2 := f.refresh(f.app, rt1)
	if code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, m2)
	}
	rt2, at2 := str(m2, "refresh_token"), str(m2, "access_token")
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh did not rotate: %q", rt2)
	}
	if _, c := f.verifyJWT(at2); c["scope"] != "openid" || c["preferred_username"] != "alice" {
		t.Errorf("refreshed claims = %v", c)
	}
	// Another client may not use it.
	if code, m := f.refresh(f.public, rt2); code != http.StatusBadRequest && code != http.StatusUnauthorized {
		t.Errorf("refresh by another client: %d %v", code, m)
	}
	// Presented again before rt2 is used (a lost response), rt1 answers rt2
	// again, with a fresh access token.
	code, again := f.refresh(f.app, rt1)
	if code != http.StatusOK || str(again, "refresh_token") != rt2 || str(again, "access_token") == at2 {
		t.Fatalf("retry of rt1 within the reuse interval: %d, same successor %v; want 200 and rt2 again", code, str(again, "refresh_token") == rt2)
	}
	// Once rt2 is used, rt1 is reuse: it fails and kills the family, the
	// newest refresh token included, and its access tokens.
	code, m3 := f.refresh(f.app, rt2)
	if code != http.StatusOK {
		t.Fatalf("refresh of rt2: %d %v", code, m3)
	}
	rt3, at3 := str(m3, "refresh_token"), str(m3, "access_token")
	if code, m := f.refresh(f.app, rt1); code != http.StatusBadRequest || str(m, "error") != "invalid_grant" {
		t.Errorf("reuse: %d %v; want 400 invalid_grant", code, m)
	}
	if code, m := f.refresh(f.app, rt3); code != http.StatusBadRequest || str(m, "error") != "invalid_grant" {
		t.Errorf("newest token after reuse: %d %v; want 400 invalid_grant", code, m)
	}
	for _, at := range []string{at2, at3} {
		if f.introspect(f.rs, at)["active"] != false {
			t.Errorf("access token of a revoked family is still active")
		}
	}
}

// Concurrent refreshes of one token (two tabs, a retrying app) all answer
// 200 with one and the same successor, which works: the family never forks
// and survives (idempotent rotation, AUTHD_REFRESH_REUSE_INTERVAL).
func (f *fixture) testConcurrentRefresh(t *testing.T) {
	_, m := f.passwordGrant(f.app, "alice", userPassword, nil)
	checkConcurrentRefresh(t, []*instance{f.instance}, f.app, str(m, "refresh_token"), 50)
}

// checkConcurrentRefresh refreshes rt n times at once, spread over the
// instances, and checks the outcome: n × 200, one successor, which refreshes.
func checkConcurrentRefresh(t *testing.T, ins []*instance, c client, rt string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	codes := make([]int, n)
	tokens := make([]string, n)
	access := make([]string, n)
	for i := range n {
		in := ins[i%len(ins)]
		wg.Go(func() {
			code, _, m := in.post("/oauth2/token", &c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			codes[i], tokens[i], access[i] = code, str(m, "refresh_token"), str(m, "access_token")
		})
	}
	wg.Wait()
	successors := map[string]int{}
	ats := map[string]bool{}
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("concurrent refresh #%d answered %d; want 200", i, code)
			continue
		}
		successors[tokens[i]]++
		ats[access[i]] = true
	}
	if len(successors) != 1 || len(ats) != n {
		t.Fatalf("%d concurrent refreshes gave %d distinct successors and %d distinct access tokens; want 1 and %d", n, len(successors), len(ats), n)
	}
	for next := range successors {
		if code, m := ins[0].refresh(c, next); code != http.StatusOK {
			t.Errorf("the one successor: %d %v; want 200 (the family alive)", code, m)
		}
	}
}

func (f *fixture) testIntrospection(t *testing.T) {
	_, m := f.passwordGrant(f.app, "alice", userPassword, nil)
	at, rt := str(m, "access_token"), str(m, "refresh_token")
	got := f.introspect(f.rs, at)
	if got["active"] != true || got["sub"] != f.userID || got["client_id"] != "app" || got["username"] != "alice" || fmt.Sprint(got["roles"]) != "[user]" {
		t.Errorf("introspect access token = %v", got)
	}
	if got := f.introspect(f.rs, rt); got["active"] != true || got["token_type"] != "refresh_token" {
		t.Errorf("introspect refresh token = %v", got)
	}
	// The issuing client may introspect its own token; another may not see it.
	if got := f.introspect(f.app, at); got["active"] != true {
		t.Errorf("own token: %v", got)
	}
	if got := f.introspect(f.cc, at); got["active"] != false || len(got) != 1 {
		t.Errorf("other client's token: %v; want only active false", got)
	}
	for _, garbage := range []string{"garbage", "a.b.c", at + "x", strings.Repeat("A", 5000), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		if got := f.introspect(f.rs, garbage); got["active"] != false {
			t.Errorf("introspect %.20q = %v; want inactive", garbage, got)
		}
	}
	// Without client authentication: 401 invalid_client.
	code, _, m := f.post("/oauth2/introspect", nil, url.Values{"token": {at}})
	if code != http.StatusUnauthorized || str(m, "error") != "invalid_client" {
		t.Errorf("unauthenticated introspection: %d %v", code, m)
	}
}

func (f *fixture) testRevocation(t *testing.T) {
	// Unknown tokens: 200.
	for _, tok := range []string{"unknown", "a.b.c"} {
		if code, _, m := f.post("/oauth2/revoke", &f.app, url.Values{"token": {tok}}); code != http.StatusOK {
			t.Errorf("revoke unknown %q: %d %v", tok, code, m)
		}
	}
	// Revoking a refresh token kills the family and its access tokens.
	_, m := f.passwordGrant(f.app, "alice", userPassword, nil)
	at, rt := str(m, "access_token"), str(m, "refresh_token")
	if code, _, m := f.post("/oauth2/revoke", &f.app, url.Values{"token": {rt}}); code != http.StatusOK {
		t.Fatalf("revoke refresh: %d %v", code, m)
	}
	if code, _ := f.refresh(f.app, rt); code != http.StatusBadRequest {
		t.Errorf("refresh after revoke: %d", code)
	}
	if got := f.introspect(f.rs, at); got["active"] != false {
		t.Errorf("access token after its refresh token was revoked: %v", got)
	}
	// Revoking an access token: introspection says inactive at once.
	_, m = f.passwordGrant(f.app, "alice", userPassword, nil)
	at = str(m, "access_token")
	if code, _, m := f.post("/oauth2/revoke", &f.app, url.Values{"token": {at}, "token_type_hint": {"access_token"}}); code != http.StatusOK {
		t.Fatalf("revoke access: %d %v", code, m)
	}
	if got := f.introspect(f.rs, at); got["active"] != false {
		t.Errorf("revoked access token: %v", got)
	}
	// Another client may not revoke it.
	_, m = f.passwordGrant(f.app, "alice", userPassword, nil)
	if code, _, _ := f.post("/oauth2/revoke", &f.cc, url.Values{"token": {str(m, "refresh_token")}}); code == http.StatusOK {
		t.Errorf("another client revoked the token")
	}
	if got := f.introspect(f.rs, str(m, "access_token")); got["active"] != true {
		t.Errorf("token revoked by a stranger: %v", got)
	}
}

func (f *fixture) testUserinfo(t *testing.T) {
	_, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"scope": {"openid profile email"}})
	req, _ := http.NewRequest(http.MethodGet, f.base+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+str(m, "access_token"))
	code, _, u := f.do(req)
	if code != http.StatusOK || u["sub"] != f.userID || u["email"] != "Alice@Example.com" || u["preferred_username"] != "alice" {
		t.Errorf("userinfo: %d %v", code, u)
	}
	req.Header.Set("Authorization", "Bearer nope")
	if code, h, _ := f.do(req); code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("userinfo with a bad token: %d %q", code, h.Get("WWW-Authenticate"))
	}
}

func (f *fixture) testBadInput(t *testing.T) {
	type tc struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		basic  *client
		header map[string]string
		status int
		errc   string
	}
	form := "grant_type=client_credentials"
	cases := []tc{
		{"json body", "POST", "/oauth2/token", "application/json", `{"grant_type":"client_credentials"}`, &f.cc, nil, 400, "invalid_request"},
		{"no content type", "POST", "/oauth2/token", "", form, &f.cc, nil, 400, "invalid_request"},
		{"duplicated param", "POST", "/oauth2/token", "", form + "&grant_type=password", &f.cc, nil, 400, "invalid_request"},
		{"param in query and body", "POST", "/oauth2/token?grant_type=password", "", form, &f.cc, nil, 400, "invalid_request"},
		{"missing grant_type", "POST", "/oauth2/token", "", "scope=openid", &f.cc, nil, 400, "invalid_request"},
		{"unknown grant_type", "POST", "/oauth2/token", "", "grant_type=urn:x", &f.cc, nil, 400, "unsupported_grant_type"},
		{"authorization_code to a client without it", "POST", "/oauth2/token", "", "grant_type=authorization_code&code=x", &f.cc, nil, 400, "unauthorized_client"},
		{"authorization_code without a code", "POST", "/oauth2/token", "", "grant_type=authorization_code", &f.cc, nil, 400, "invalid_request"},
		{"huge body", "POST", "/oauth2/token", "", form + "&x=" + strings.Repeat("a", 100<<10), &f.cc, nil, 413, "invalid_request"},
		{"bad secret", "POST", "/oauth2/token", "", form, &client{f.cc.ID, "wrong"}, nil, 401, "invalid_client"},
		{"unknown client", "POST", "/oauth2/token", "", form, &client{"ghost", "wrong"}, nil, 401, "invalid_client"},
		{"two auth methods", "POST", "/oauth2/token", "", form + "&client_id=svc&client_secret=" + url.QueryEscape(f.cc.Secret), &f.cc, nil, 400, "invalid_request"},
		{"no client auth", "POST", "/oauth2/token", "", form, nil, nil, 401, "invalid_client"},
		{"client assertion", "POST", "/oauth2/token", "", form + "&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=x.y.z", nil, nil, 400, "invalid_request"},
		{"GET token", "GET", "/oauth2/token", "", "", nil, nil, 405, "invalid_request"},
		{"refresh without token", "POST", "/oauth2/token", "", "grant_type=refresh_token", &f.app, nil, 400, "invalid_request"},
		{"password without password", "POST", "/oauth2/token", "", "grant_type=password&username=alice", &f.app, nil, 400, "invalid_request"},
		{"scope wrong type", "POST", "/oauth2/token", "", form + "&scope=%00%01", &f.cc, nil, 400, "invalid_scope"},
		{"bad percent encoding", "POST", "/oauth2/token", "", "grant_type=%zz", &f.cc, nil, 400, "invalid_request"},
		{"introspect without token", "POST", "/oauth2/introspect", "", "token_type_hint=access_token", &f.rs, nil, 400, "invalid_request"},
		{"introspect json", "POST", "/oauth2/introspect", "application/json", `{"token":"x"}`, &f.rs, nil, 400, "invalid_request"},
		{"introspect bad client", "POST", "/oauth2/introspect", "", "token=x", &client{"orders-rs", "nope"}, nil, 401, "invalid_client"},
		{"revoke without token", "POST", "/oauth2/revoke", "", "token_type_hint=refresh_token", &f.app, nil, 400, "invalid_request"},
		{"revoke no auth", "POST", "/oauth2/revoke", "", "token=x", nil, nil, 401, "invalid_client"},
		{"revoke huge", "POST", "/oauth2/revoke", "", "token=" + strings.Repeat("a", 70<<10), &f.app, nil, 413, "invalid_request"},
		{"two authorization headers", "POST", "/oauth2/token", "", form, &f.cc, map[string]string{"X-Dup": "1"}, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.base+c.path, strings.NewReader(c.body))
			ct := c.ctype
			if ct == "" && c.body != "" && c.name != "no content type" {
				ct = "application/x-www-form-urlencoded"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			if c.basic != nil {
				req.SetBasicAuth(url.QueryEscape(c.basic.ID), url.QueryEscape(c.basic.Secret))
			}
			if c.header["X-Dup"] != "" {
				req.Header.Add("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("a:b")))
			}
			code, h, m := f.do(req)
			if code != c.status || str(m, "error") != c.errc {
				t.Errorf("%s: %d %v; want %d %s", c.name, code, m, c.status, c.errc)
			}
			if code == http.StatusUnauthorized && c.basic != nil && h.Get("WWW-Authenticate") == "" {
				t.Errorf("401 to a Basic-authenticated request without WWW-Authenticate")
			}
			if c.path == "/oauth2/token" && (h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache") {
				t.Errorf("token endpoint error without Cache-Control no-store / Pragma no-cache: %q %q", h.Get("Cache-Control"), h.Get("Pragma"))
			}
		})
	}
}

// TestKeyRotationKeepsTokensValid: a token signed before a rotation keeps
// verifying and introspecting as active; new tokens use the new key.
func TestKeyRotationKeepsTokensValid(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b, nil)
			_, m := f.passwordGrant(f.app, "alice", userPassword, nil)
			oldAT, rt := str(m, "access_token"), str(m, "refresh_token")
			oldHeader, _ := f.verifyJWT(oldAT)
			f.process.stop()
			cli(t, f.vars, "", "keys", "rotate")
			in := start(t, f.vars)
			f.instance = in
			if got := f.introspect(f.rs, oldAT); got["active"] != true {
				t.Fatalf("token signed before rotation: %v", got)
			}
			f.verifyJWT(oldAT) // the retired key is still in the JWKS
			code, m := f.refresh(f.app, rt)
			if code != http.StatusOK {
				t.Fatalf("refresh after rotation: %d %v", code, m)
			}
			newHeader, _ := f.verifyJWT(str(m, "access_token"))
			if newHeader.KeyID == oldHeader.KeyID {
				t.Errorf("new token signed with the retired key %s", oldHeader.KeyID)
			}
			out := cli(t, f.vars, "", "keys", "list")
			if !strings.Contains(out, oldHeader.KeyID) || !strings.Contains(out, newHeader.KeyID) {
				t.Errorf("keys list lacks a key: %s", out)
			}
		})
	}
}

// TestExpiredAccessToken uses a one-second access-token lifetime.
func TestExpiredAccessToken(t *testing.T) {
	b := backends()[0]
	f := newFixture(t, b, map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "1s"})
	_, m := f.passwordGrant(f.app, "alice", userPassword, nil)
	at := str(m, "access_token")
	if got := f.introspect(f.rs, at); got["active"] != true {
		t.Fatalf("fresh token: %v", got)
	}
	time.Sleep(2100 * time.Millisecond)
	if got := f.introspect(f.rs, at); got["active"] != false {
		t.Errorf("expired token: %v", got)
	}
}

// TestRateLimit: past AUTHD_RATE_LIMIT_TOKEN_PER_MIN requests a minute from
// one IP, the token and signup endpoints answer 429 with Retry-After.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, backends()[0], map[string]string{"AUTHD_RATE_LIMIT_TOKEN_PER_MIN": "3"})
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := range 3 {
		if code, _, m := f.post("/oauth2/token", &f.cc, form); code != http.StatusOK {
			t.Fatalf("request %d within the limit: %d %v", i+1, code, m)
		}
	}
	code, h, m := f.post("/oauth2/token", &f.cc, form)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || str(m, "error") == "" {
		t.Errorf("4th token request: %d, Retry-After %q, %v; want 429 with Retry-After and an error", code, h.Get("Retry-After"), m)
	}
	if code, m := f.api("POST", "/api/v1/signup", "", map[string]any{"username": "zed", "email": "zed@example.org", "password": "purple monkey dishwasher"}); code != http.StatusTooManyRequests {
		t.Errorf("signup past the limit: %d %v", code, m)
	}
	// Other endpoints are not limited.
	if got := f.introspect(f.rs, "x"); got["active"] != false {
		t.Errorf("introspection: %v", got)
	}
}

// assertJSONLogs fails unless every line authd wrote is one JSON object, and
// returns how many lines there were.
func assertJSONLogs(t *testing.T, logs string) int {
	t.Helper()
	n := 0
	for line := range strings.Lines(logs) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n++
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("a log line is not a JSON object: %q", line)
		}
	}
	return n
}
