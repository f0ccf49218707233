package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/config"
	"github.com/authd/authd/storage"
)

// TestCLIUsers runs the operator's account verbs against a running server:
// what they change is what the server then enforces, and a disable or a
// password reset revokes the user's tokens as the admin API does.
func TestCLIUsers(t *testing.T) {
	f := newFixture(t, backends()[0], map[string]string{"AUTHD_LOCKOUT_THRESHOLD": "3"})
	vars := f.vars
	user := func(out string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("not a JSON user: %q", out)
		}
		if strings.Contains(out, "argon2") || strings.Contains(out, "hash") {
			t.Errorf("the CLI shows a hash: %s", out)
		}
		return m
	}

	// list: the admin API's page, filtered.
	out := cli(t, vars, "", "users", "list", "--query", "ALICE")
	var page struct {
		Users []map[string]any `json:"users"`
		Next  string           `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Users) != 1 || page.Users[0]["id"] != f.userID || page.Users[0]["disabled"] != false {
		t.Fatalf("users list --query ALICE = %s, %v", out, err)
	}
	createUser(t, vars, "bob", "bob@example.org", userPassword)
	if err := json.Unmarshal([]byte(cli(t, vars, "", "users", "list", "--limit", "1")), &page); err != nil || len(page.Users) != 1 || page.Next == "" {
		t.Errorf("users list --limit 1: %v, next %q", page.Users, page.Next)
	}

	// disable (by username): the user's tokens die at once, the password grant fails.
	at, rt := f.login(f.app, "alice", userPassword)
	if m := user(cli(t, vars, "", "users", "disable", "alice")); m["disabled"] != true || m["id"] != f.userID {
		t.Errorf("users disable = %v", m)
	}
	if m := f.introspect(f.rs, at); m["active"] != false {
		t.Errorf("access token after users disable: %v", m)
	}
	if code, m := f.refresh(f.app, rt); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("refresh after users disable: %d %v", code, m)
	}
	if code, _ := f.passwordGrant(f.app, "alice", userPassword, nil); code != http.StatusBadRequest {
		t.Errorf("login while disabled: %d", code)
	}
	// enable (by email).
	if m := user(cli(t, vars, "", "users", "enable", "Alice@Example.com")); m["disabled"] != false {
		t.Errorf("users enable = %v", m)
	}
	at, _ = f.login(f.app, "alice", userPassword)
	if code, _ := f.api("GET", "/api/v1/admin/users", at, nil); code != http.StatusForbidden {
		t.Errorf("admin API before set-roles: %d; want 403", code)
	}

	// set-roles (by id): a token issued afterwards carries the role, and the
	// admin API (which also checks the user's current roles) lets it in.
	if _, _, err := runCLI(t, vars, "", "users", "set-roles", f.userID); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("set-roles without --role = %v", err)
	}
	if _, _, err := runCLI(t, vars, "", "users", "set-roles", f.userID, "--role", "Not A Role"); err == nil || !strings.Contains(err.Error(), "roles") {
		t.Errorf("set-roles with a bad role = %v", err)
	}
	if m := user(cli(t, vars, "", "users", "set-roles", f.userID, "--role", "admin")); fmt.Sprint(m["roles"]) != "[user admin]" {
		t.Errorf("users set-roles = %v", m)
	}
	at, _ = f.login(f.app, "alice", userPassword)
	if code, m := f.api("GET", "/api/v1/admin/users", at, nil); code != http.StatusOK {
		t.Errorf("admin API after set-roles: %d %v", code, m)
	}
	// Demoted by the CLI: the same token is refused at once.
	cli(t, vars, "", "users", "set-roles", f.userID, "--role", "user")
	if code, _ := f.api("GET", "/api/v1/admin/users", at, nil); code != http.StatusForbidden {
		t.Errorf("admin API after a demotion: %d; want 403", code)
	}
	cli(t, vars, "", "users", "set-roles", "alice", "--role", "admin")

	// unlock: three failures lock the account; unlock lets the password in again.
	for range 3 {
		f.passwordGrant(f.app, "alice", "wrong password, three times", nil)
	}
	if code, _ := f.passwordGrant(f.app, "alice", userPassword, nil); code != http.StatusBadRequest {
		t.Fatalf("login while locked: %d; want 400", code)
	}
	if m := user(cli(t, vars, "", "users", "unlock", "alice")); m["locked_until"] != nil || m["failed_logins"] != float64(0) {
		t.Errorf("users unlock = %v", m)
	}
	_, rt = f.login(f.app, "alice", userPassword)

	// set-password: the policy applies, stdin only; every token of the user dies.
	const next = "a fresh operator-set pass phrase"
	if _, _, err := runCLI(t, vars, next+"\n", "users", "set-password", "alice"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("set-password without --password-stdin = %v", err)
	}
	if _, _, err := runCLI(t, vars, "short\n", "users", "set-password", "alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("set-password with a short password = %v", err)
	}
	if _, _, err := runCLI(t, vars, next+"\n", "users", "set-password", "nobody", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("set-password of an unknown user = %v", err)
	}
	if code, _ := f.refresh(f.app, rt); code != http.StatusOK {
		t.Fatalf("refused set-password calls revoked the refresh token: %d", code)
	}
	_, rt = f.login(f.app, "alice", userPassword)
	user(cli(t, vars, next+"\n", "users", "set-password", "alice", "--password-stdin"))
	if code, _ := f.refresh(f.app, rt); code != http.StatusBadRequest {
		t.Errorf("refresh after set-password: %d; want 400", code)
	}
	if code, _ := f.passwordGrant(f.app, "alice", userPassword, nil); code != http.StatusBadRequest {
		t.Errorf("old password after set-password: %d; want 400", code)
	}
	f.login(f.app, "alice", next)

	// The audit trail names the CLI as the admin.
	at, _ = f.login(f.app, "alice", next)
	code, m := f.api("GET", "/api/v1/admin/audit?type=auth.user_updated", at, nil)
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(m), "admin:cli") {
		t.Errorf("audit of the CLI's changes: %d %v", code, m)
	}

	for _, verb := range []string{"disable", "enable", "unlock"} {
		if _, _, err := runCLI(t, vars, "", "users", verb, "nobody"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("users %s nobody = %v", verb, err)
		}
	}
}

func TestCLIHealthcheck(t *testing.T) {
	f := newFixture(t, backends()[0], nil)
	// Only the listen address is read: no secret, no TLS, no data folder needed.
	vars := map[string]string{"AUTHD_HTTP_ADDR": f.vars["AUTHD_HTTP_ADDR"], "AUTHD_DATA_DIR": "/nonexistent/authd"}
	if _, _, err := runCLI(t, vars, "", "healthcheck"); err != nil {
		t.Errorf("healthcheck of a running server = %v", err)
	}
	f.stop()
	if _, _, err := runCLI(t, vars, "", "healthcheck", "--timeout", "2s"); err == nil {
		t.Error("healthcheck of a stopped server succeeded")
	}
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			t.Errorf("healthcheck asked for %s", r.URL.Path)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	if _, _, err := runCLI(t, nil, "", "healthcheck", "--url", sick.URL+"/healthz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck of a 503 = %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) }))
	defer slow.Close()
	if _, _, err := runCLI(t, nil, "", "healthcheck", "--url", slow.URL+"/healthz", "--timeout", "100ms"); err == nil {
		t.Error("healthcheck of a server that does not answer succeeded")
	}
}

func TestHealthURL(t *testing.T) {
	for _, tt := range []struct {
		addr string
		tls  bool
		want string
	}{
		{":8080", false, "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9090", false, "http://127.0.0.1:9090/healthz"},
		{"[::]:9090", false, "http://127.0.0.1:9090/healthz"},
		{"10.1.2.3:80", false, "http://10.1.2.3:80/healthz"},
		{"[::1]:8443", true, "https://[::1]:8443/healthz"},
		{"localhost:8443", true, "https://localhost:8443/healthz"},
	} {
		cfg := config.Defaults()
		cfg.HTTPAddr = tt.addr
		if tt.tls {
			cfg.TLSCert, cfg.TLSKey = "c.pem", "k.pem"
		}
		if got, err := healthURL(cfg); err != nil || got != tt.want {
			t.Errorf("healthURL(%q, tls %v) = %q, %v; want %q", tt.addr, tt.tls, got, err, tt.want)
		}
	}
}

// TestCLIUserLinks: `users links` prints a user's links to upstream
// identities as the admin API does; `users unlink` removes one, recorded
// with admin "cli", and fails when there is no such link.
func TestCLIUserLinks(t *testing.T) {
	for _, b := range backends()[:2] {
		t.Run(b.name, func(t *testing.T) {
			vars := envFor(t, b.dsn(t), nil)
			cli(t, vars, "", "migrate", "up")
			aliceID := createUser(t, vars, "alice", "alice@example.com", userPassword)
			bobID := createUser(t, vars, "bob", "bob@example.com", userPassword)
			st := openStoreFor(t, vars)

			type linkDoc struct {
				ConnectorID string  `json:"connector_id"`
				Subject     string  `json:"subject"`
				Email       *string `json:"email"`
				CreatedAt   string  `json:"created_at"`
				LastLoginAt string  `json:"last_login_at"`
			}
			links := func(ref string) []linkDoc {
				t.Helper()
				out := cli(t, vars, "", "users", "links", ref)
				var doc struct {
					Links []linkDoc `json:"links"`
				}
				if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Links == nil {
					t.Fatalf("users links %s = %q, %v; want {\"links\":[...]}", ref, out, err)
				}
				return doc.Links
			}
			if ls := links("alice"); len(ls) != 0 {
				t.Errorf("users links of a user without links = %+v; want []", ls)
			}

			at := time.Date(2025, 4, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200))
			for _, l := range []storage.Link{
				{ConnectorID: "google", Subject: "g-1", UserID: aliceID, Email: "alice@gmail.example", CreatedAt: at, LastLoginAt: at},
				{ConnectorID: "github", Subject: "11", UserID: aliceID, CreatedAt: at, LastLoginAt: at},
				{ConnectorID: "google", Subject: "g-2", UserID: bobID, CreatedAt: at, LastLoginAt: at},
			} {
				if err := st.CreateLink(t.Context(), l); err != nil {
					t.Fatalf("CreateLink(%+v): %v", l, err)
				}
			}
			email := "alice@gmail.example"
			want := []linkDoc{
				{ConnectorID: "github", Subject: "11", CreatedAt: "2025-04-01T10:00:00Z", LastLoginAt: "2025-04-01T10:00:00Z"},
				{ConnectorID: "google", Subject: "g-1", Email: &email, CreatedAt: "2025-04-01T10:00:00Z", LastLoginAt: "2025-04-01T10:00:00Z"},
			}
			// USER by username, by email and by id.
			for _, ref := range []string{"alice", "ALICE@example.com", aliceID} {
				if ls := links(ref); !reflect.DeepEqual(ls, want) {
					t.Errorf("users links %s = %+v; want %+v", ref, ls, want)
				}
			}

			if out := cli(t, vars, "", "users", "unlink", "alice", "google"); !strings.Contains(out, "unlinked") {
				t.Errorf("users unlink alice google = %q", out)
			}
			if ls := links("alice"); len(ls) != 1 || ls[0].ConnectorID != "github" {
				t.Errorf("users links alice after unlink google = %+v; want github only", ls)
			}
			if _, err := st.GetLink(t.Context(), "google", "g-2"); err != nil {
				t.Errorf("bob's google link after alice's unlink: %v; want kept", err)
			}
			_, _, err := runCLI(t, vars, "", "users", "unlink", "alice", "google")
			if err == nil || !strings.Contains(err.Error(), `no link to connector "google"`) {
				t.Errorf("users unlink alice google again = %v; want a no-such-link error", err)
			}
			for _, args := range [][]string{{"links", "nobody"}, {"unlink", "nobody", "google"}} {
				if _, _, err := runCLI(t, vars, "", append([]string{"users"}, args...)...); err == nil || !strings.Contains(err.Error(), "not found") {
					t.Errorf("users %s = %v; want not found", strings.Join(args, " "), err)
				}
			}

			es, err := st.ListAudit(t.Context(), storage.AuditFilter{Type: "auth.link.removed", Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 {
				t.Fatalf("auth.link.removed events = %d; want exactly 1", len(es))
			}
			var d map[string]any
			if err := json.Unmarshal(es[0].Data, &d); err != nil || es[0].UserID != aliceID || d["connector_id"] != "google" || d["admin"] != "cli" {
				t.Errorf("auth.link.removed = %+v %v; want alice, google, admin cli", es[0], d)
			}
		})
	}
}
