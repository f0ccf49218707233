package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/dpop/dpoptest"
	"github.com/authd/authd/internal/proctest"
)

// TestWithRealAuthd runs authd and this service as real processes: sign up,
// log in, create an order, a user's DELETE is 403 and an admin's 204, in
// online mode a token revoked by logout is refused at once, and with -dpop
// only a DPoP-bound token with a fresh proof of its key is taken.
func TestWithRealAuthd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	dir := t.TempDir()
	authd := filepath.Join(dir, "authd")
	orders := filepath.Join(dir, "orders")
	proctest.Build(t, authd, "github.com/authd/authd/cmd/authd")
	proctest.Build(t, orders, "github.com/authd/authd/examples/orders")

	authAddr := proctest.FreeAddr(t)
	issuer := "http://" + authAddr
	env := append(os.Environ(),
		"AUTHD_DEV=true", "AUTHD_ISSUER="+issuer, "AUTHD_HTTP_ADDR="+authAddr,
		"AUTHD_DATABASE_URL=sqlite://"+filepath.Join(dir, "authd.db"), "AUTHD_DATA_DIR="+filepath.Join(dir, "data"),
		"AUTHD_SECRET=orders-e2e-secret-0123456789abcdef0123456789", "AUTHD_RATE_LIMIT_TOKEN_PER_MIN=0", "AUTHD_LOG_LEVEL=warn",
	)
	proctest.Run(t, env, "", authd, "migrate", "up")
	proctest.Run(t, env, "", authd, "clients", "create", "--id", "orders-cli", "--secret", "orders-cli-secret-0123456789abcdef0123",
		"--grant-types", "password,refresh_token", "--scopes", "openid profile", "--audience", "orders,"+issuer) // the issuer: its tokens also call authd's API (logout)
	proctest.Run(t, env, "", authd, "clients", "create", "--id", "orders-rs", "--secret", "orders-rs-secret-0123456789abcdef01234",
		"--grant-types", "client_credentials", "--introspect")
	proctest.Run(t, env, "chief of everything 42\n", authd, "users", "create", "--username", "boss", "--email", "boss@example.org", "--password-stdin", "--role", "admin")
	proctest.Start(t, env, issuer+"/readyz", authd, "serve")

	local, online := proctest.FreeAddr(t), proctest.FreeAddr(t)
	oenv := append(os.Environ(), "ORDERS_CLIENT_SECRET=orders-rs-secret-0123456789abcdef01234")
	proctest.Start(t, oenv, "http://"+local+"/healthz", orders, "-addr", local, "-issuer", issuer, "-audience", "orders")
	proctest.Start(t, oenv, "http://"+online+"/healthz", orders, "-addr", online, "-issuer", issuer, "-audience", "orders", "-online", "-client-id", "orders-rs")

	code, body := call(t, "POST", issuer+"/api/v1/signup", "", `{"username":"alice","email":"alice@example.org","password":"purple otter wanders at dawn"}`)
	if code != http.StatusCreated {
		t.Fatalf("signup: %d %s", code, body)
	}
	alice := login(t, issuer, "alice", "purple otter wanders at dawn")
	boss := login(t, issuer, "boss", "chief of everything 42")

	code, body = call(t, "POST", "http://"+local+"/orders", alice, `{"item":"book","quantity":2}`)
	if code != http.StatusCreated {
		t.Fatalf("create order: %d %s", code, body)
	}
	var order struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &order)
	if code, body := call(t, "GET", "http://"+local+"/orders/"+order.ID, alice, ""); code != http.StatusOK {
		t.Errorf("get own order: %d %s", code, body)
	}
	if code, _ := call(t, "DELETE", "http://"+local+"/orders/"+order.ID, alice, ""); code != http.StatusForbidden {
		t.Errorf("user's DELETE: %d; want 403", code)
	}
	if code, _ := call(t, "DELETE", "http://"+local+"/orders/"+order.ID, boss, ""); code != http.StatusNoContent {
		t.Errorf("admin's DELETE: %d; want 204", code)
	}
	if code, _ := call(t, "GET", "http://"+local+"/orders", "not-a-token", ""); code != http.StatusUnauthorized {
		t.Errorf("garbage token: %d; want 401", code)
	}

	// Online mode sees revocation at once; local mode, by design, not until expiry.
	if code, body := call(t, "POST", "http://"+online+"/orders", alice, `{"item":"pen","quantity":1}`); code != http.StatusCreated {
		t.Fatalf("online create: %d %s", code, body)
	}
	if code, body := call(t, "POST", issuer+"/api/v1/logout", alice, ""); code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second) // the online cache keeps answers a few seconds
	for {
		code, _ := call(t, "GET", "http://"+online+"/orders", alice, "")
		if code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online mode still accepts a revoked token: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := call(t, "GET", "http://"+local+"/orders", alice, ""); code != http.StatusOK {
		t.Errorf("local mode with a revoked, unexpired token: %d; want 200 (local checks cannot see revocation)", code)
	}

	// DPoP mode: authd binds the token to the client's key (proofs built
	// here with go-jose), and the -dpop service takes it only with a fresh
	// proof of that key for each request.
	bound := proctest.FreeAddr(t)
	proctest.Start(t, oenv, "http://"+bound+"/healthz", orders, "-addr", bound, "-issuer", issuer, "-audience", "orders", "-dpop")
	key := dpoptest.NewKey(t)
	dpopTok := loginDPoP(t, issuer, "alice", "purple otter wanders at dawn", key)
	ordersURL := "http://" + bound + "/orders"
	proof := key.Proof("POST", ordersURL, dpopTok, nil)
	if code, body := callDPoP(t, "POST", ordersURL, "DPoP", dpopTok, proof, `{"item":"lamp","quantity":1}`); code != http.StatusCreated {
		t.Fatalf("DPoP create: %d %s", code, body)
	}
	if code, _ := callDPoP(t, "GET", ordersURL, "DPoP", dpopTok, key.Proof("GET", ordersURL, dpopTok, nil), ""); code != http.StatusOK {
		t.Errorf("DPoP list: %d; want 200", code)
	}
	thief := dpoptest.NewKey(t)
	for name, c := range map[string]struct{ scheme, token, proof string }{
		"replayed proof":          {"DPoP", dpopTok, proof},
		"no proof":                {"DPoP", dpopTok, ""},
		"proof of another key":    {"DPoP", dpopTok, thief.Proof("POST", ordersURL, dpopTok, nil)},
		"proof for another URL":   {"DPoP", dpopTok, key.Proof("POST", "http://"+local+"/orders", dpopTok, nil)},
		"bound token as Bearer":   {"Bearer", dpopTok, ""},
		"unbound token as Bearer": {"Bearer", boss, ""},
	} {
		if code, body := callDPoP(t, "POST", ordersURL, c.scheme, c.token, c.proof, `{"item":"pen","quantity":1}`); code != http.StatusUnauthorized {
			t.Errorf("-dpop service, %s: %d %s; want 401", name, code, body)
		}
	}
	if code, _ := call(t, "GET", "http://"+local+"/orders", dpopTok, ""); code != http.StatusUnauthorized {
		t.Errorf("Bearer-only service, bound token as Bearer: %d; want 401 (RFC 9449 §7.2)", code)
	}
}

func callDPoP(t *testing.T, method, u, scheme, token, proof, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// loginDPoP is login with a DPoP proof: the token must come back DPoP-bound.
func loginDPoP(t *testing.T, issuer, user, pass string, key *dpoptest.Key) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}, "audience": {"orders"}}
	req, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", key.Proof("POST", issuer+"/oauth2/token", "", nil))
	req.SetBasicAuth("orders-cli", "orders-cli-secret-0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	at, _ := m["access_token"].(string)
	if resp.StatusCode != http.StatusOK || at == "" || m["token_type"] != "DPoP" {
		t.Fatalf("login %s with DPoP: %d %v; want a DPoP token", user, resp.StatusCode, m)
	}
	return at
}

func call(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func login(t *testing.T, issuer, user, pass string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}, "audience": {"orders " + issuer}} // for orders, and for authd (logout)
	req, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("orders-cli", "orders-cli-secret-0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	at, _ := m["access_token"].(string)
	if resp.StatusCode != http.StatusOK || at == "" {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, m)
	}
	return at
}
