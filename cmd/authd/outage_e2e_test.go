package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/storage/storagetest"
)

// outageProxy forwards TCP to a target until down, when it closes every
// connection and stops listening (connections are refused, as when
// PostgreSQL restarts); up listens on the same address again.
type outageProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	p := &outageProxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.down)
	return p
}

func (p *outageProxy) listen(addr string) {
	var (
		ln  net.Listener
		err error
	)
	for range 50 { // the port may linger for a moment after down
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *outageProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *outageProxy) up() { p.listen(p.addr) }

// TestPostgresOutage: with PostgreSQL unreachable every endpoint answers as
// an outage (503 with Retry-After; temporarily_unavailable on the OAuth
// endpoints) or, when it needs no database, succeeds; never a 500. When
// PostgreSQL is back, authd serves again and nothing written before is lost.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	dsn := storagetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newOutageProxy(t, u.Host)
	u.Host = proxy.addr
	b := backend{name: "postgres via a proxy", dsn: func(testing.TB) string { return u.String() }}
	f := newFixture(t, b, nil)
	at, rt := f.login(f.app, "alice", userPassword)
	_, user, pass := f.signup("before")

	type call struct {
		name, method, path, auth, contentType, body string
		needsDB                                     bool // must answer 503: it cannot be served without the store
	}
	form := func(v url.Values) string { return v.Encode() }
	basic := func(c client) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		return req.Header.Get("Authorization")
	}
	calls := []call{
		{"password grant", "POST", "/oauth2/token", basic(f.app), "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}), true},
		{"refresh", "POST", "/oauth2/token", basic(f.app), "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), true},
		{"client_credentials", "POST", "/oauth2/token", basic(f.cc), "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"client_credentials"}}), false},
		{"introspection", "POST", "/oauth2/introspect", basic(f.rs), "application/x-www-form-urlencoded", form(url.Values{"token": {at}}), false},
		{"revocation", "POST", "/oauth2/revoke", basic(f.app), "application/x-www-form-urlencoded", form(url.Values{"token": {rt}}), true},
		{"userinfo", "GET", "/userinfo", "Bearer " + at, "", "", true},
		{"me", "GET", "/api/v1/me", "Bearer " + at, "", "", true},
		{"logout", "POST", "/api/v1/logout", "Bearer " + at, "", "", true},
		{"signup", "POST", "/api/v1/signup", "", "application/json", `{"username":"latecomer","email":"latecomer@example.org","password":"purple monkeys dance at noon"}`, true},
		{"readyz", "GET", "/readyz", "", "", "", true},
	}
	send := func(c call) (int, http.Header, map[string]any) {
		req, _ := http.NewRequest(c.method, f.base+c.path, strings.NewReader(c.body))
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		client := &http.Client{Timeout: 20 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, resp.Header, m
	}

	proxy.down()
	for _, c := range calls {
		code, h, m := send(c)
		switch {
		case code == http.StatusServiceUnavailable:
			if h.Get("Retry-After") == "" && c.path != "/readyz" {
				t.Errorf("%s during the outage: 503 without Retry-After", c.name)
			}
			if strings.HasPrefix(c.path, "/oauth2/") && m["error"] != "temporarily_unavailable" {
				t.Errorf("%s during the outage: 503 %v; want error temporarily_unavailable", c.name, m)
			}
		case c.needsDB || code >= 500:
			t.Errorf("%s during the outage: %d %v; want 503", c.name, code, m)
		}
	}

	proxy.up()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := send(calls[len(calls)-1])
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("authd not ready 30 s after PostgreSQL came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Served again, with what was written before the outage.
	f.login(f.app, user, pass)
	if code, m := f.refresh(f.app, rt); code != http.StatusOK {
		t.Errorf("refresh token issued before the outage: %d %v", code, m)
	}
	if n := assertJSONLogs(t, f.logs.String()); n == 0 {
		t.Errorf("no log line about the PostgreSQL outage")
	}
}
