package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/sqlite"
)

// api sends a JSON request with an optional Bearer token.
func (in *instance) api(method, path, token string, body any) (int, map[string]any) {
	in.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, in.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	code, h, m := in.do(req)
	if code >= 400 && !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
		in.t.Errorf("%s %s: %d with Content-Type %q; want application/problem+json", method, path, code, h.Get("Content-Type"))
	}
	return code, m
}

func (in *instance) login(c client, user, pass string) (at, rt string) {
	in.t.Helper()
	code, m := in.passwordGrant(c, user, pass, nil)
	if code != http.StatusOK {
		in.t.Fatalf("login %s: %d %v", user, code, m)
	}
	return str(m, "access_token"), str(m, "refresh_token")
}

var signupSeq atomic.Int64

// signup creates a user through the API and returns its name and password.
func (in *instance) signup(prefix string) (string, string, string) {
	in.t.Helper()
	n := signupSeq.Add(1)
	user := fmt.Sprintf("%s%d", prefix, n)
	pass := fmt.Sprintf("a long enough pass phrase %d!", n*7919)
	code, m := in.api("POST", "/api/v1/signup", "", map[string]any{"username": user, "email": user + "@example.com", "password": pass})
	if code != http.StatusCreated {
		in.t.Fatalf("signup %s: %d %v", user, code, m)
	}
	return str(m, "id"), user, pass
}

// openStoreFor opens the store an instance runs on, to look behind the API.
func openStoreFor(t *testing.T, vars map[string]string) storage.Store {
	t.Helper()
	dsn := vars["AUTHD_DATABASE_URL"]
	var st storage.Store
	var err error
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		st, err = sqlite.New(t.Context(), p)
	} else {
		st, err = postgres.New(t.Context(), dsn)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestAccounts(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b, map[string]string{"AUTHD_LOCKOUT_THRESHOLD": "3"})
			f.run(t, "signup", (*fixture).testSignup)
			f.run(t, "bcrypt import", (*fixture).testImport)
			f.run(t, "password change", (*fixture).testPasswordChange)
			f.run(t, "logout", (*fixture).testLogout)
			f.run(t, "admin", (*fixture).testAdmin)
		})
	}
}

func (f *fixture) testSignup(t *testing.T) {
	code, m := f.api("POST", "/api/v1/signup", "", map[string]any{
		"username": "Bob.Smith", "email": "Bob@Example.org", "password": "purple monkey dishwasher", "roles": []string{"admin"},
	})
	if code != http.StatusCreated || m["username"] != "bob.smith" || m["email"] != "Bob@Example.org" || fmt.Sprint(m["roles"]) != "[user]" || str(m, "id") == "" || str(m, "created_at") == "" {
		t.Fatalf("signup: %d %v", code, m)
	}
	for k := range m {
		if strings.Contains(k, "hash") || strings.Contains(k, "password") {
			t.Errorf("signup answer carries %q", k)
		}
	}
	// Sign in with the username and with the email; roles field was ignored.
	for _, login := range []string{"BOB.SMITH", "bob@example.org"} {
		at, _ := f.login(f.app, login, "purple monkey dishwasher")
		if _, c := f.verifyJWT(at); fmt.Sprint(c["roles"]) != "[user]" {
			t.Errorf("roles after signup with roles admin: %v", c["roles"])
		}
	}
	type tc struct {
		name   string
		body   any
		status int
		field  string
	}
	ok := map[string]any{"username": "carol", "email": "carol@example.org", "password": "purple monkey dishwasher"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range ok {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	cases := []tc{
		{"username taken in other case", with("username", "BOB.smith"), 409, "username"},
		{"email taken in other case", with("email", "bob@EXAMPLE.org"), 409, "email"},
		{"username short", with("username", "ab"), 400, "username"},
		{"username long", with("username", strings.Repeat("a", 65)), 400, "username"},
		{"username chars", with("username", "carol smith"), 400, "username"},
		{"username unicode", with("username", "çarol"), 400, "username"},
		{"email syntax", with("email", "carol@"), 400, "email"},
		{"email display name", with("email", "Carol <carol@example.org>"), 400, "email"},
		{"password short", with("password", "short pass"), 400, "password"},
		{"password long", with("password", strings.Repeat("xy", 65)), 400, "password"},
		{"password repeated", with("password", strings.Repeat("z", 20)), 400, "password"},
		{"password sequential", with("password", "abcdefghijklmnopq"), 400, "password"},
		{"password has username", with("password", "my name is carol, hello"), 400, "password"},
		{"password has email", with("password", "carol@example.org!!"), 400, "password"},
		{"password common", with("password", "iloveyou1234567"), 400, "password"},
		{"username number", with("username", 5), 400, "username"},
		{"password array", with("password", []string{"x"}), 400, "password"},
		{"missing fields", map[string]any{}, 400, "username"},
		{"not json", "username=carol", 400, ""},
		{"json array", `["carol"]`, 400, ""},
		{"two values", `{"username":"carol"} {}`, 400, ""},
	}
	for _, c := range cases {
		code, m := f.api("POST", "/api/v1/signup", "", c.body)
		if code != c.status || (c.field != "" && m["field"] != c.field) {
			t.Errorf("%s: %d %v; want %d naming %q", c.name, code, m, c.status, c.field)
		}
	}
	// Wrong media type and oversized bodies.
	req, _ := http.NewRequest("POST", f.base+"/api/v1/signup", strings.NewReader(url.Values{"username": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _, _ := f.do(req); code != http.StatusUnsupportedMediaType {
		t.Errorf("form signup: %d; want 415", code)
	}
	if code, _ := f.api("POST", "/api/v1/signup", "", with("password", strings.Repeat("p", 70<<10))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge signup: %d; want 413", code)
	}
	// Nothing was created by the refused requests.
	if code, m := f.passwordGrant(f.app, "carol", "purple monkey dishwasher", nil); code != http.StatusBadRequest {
		t.Errorf("a refused signup created a user: %d %v", code, m)
	}
}

func (f *fixture) testImport(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("imported pass phrase 42"), 4)
	if err != nil {
		t.Fatal(err)
	}
	lines := fmt.Sprintf("{\"username\":\"dave\",\"email\":\"dave@example.org\",\"password_hash\":%q,\"roles\":[\"user\"]}\n", hash)
	out := cli(t, f.vars, lines, "users", "import")
	if !strings.Contains(out, `"imported": 1`) {
		t.Fatalf("users import: %s", out)
	}
	// A 72-byte prefix of a longer password must not let a different one in.
	if code, _ := f.passwordGrant(f.app, "dave", "imported pass phrase 4", nil); code != http.StatusBadRequest {
		t.Errorf("wrong password accepted for a bcrypt user")
	}
	f.login(f.app, "dave", "imported pass phrase 42")
	st := openStoreFor(t, f.vars)
	u, err := st.GetUserByLogin(t.Context(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash after login = %.20s…; want argon2id", u.PasswordHash)
	}
	f.login(f.app, "dave@example.org", "imported pass phrase 42")
}

func (f *fixture) testPasswordChange(t *testing.T) {
	_, user, pass := f.signup("erin")
	atA, rtA := f.login(f.app, user, pass)
	_, rtB := f.login(f.app, user, pass)
	if code, m := f.api("POST", "/api/v1/me/password", atA, map[string]any{"current_password": "not it at all!!", "new_password": "another long pass phrase"}); code != 400 || m["field"] != "current_password" {
		t.Errorf("wrong current password: %d %v", code, m)
	}
	if code, m := f.api("POST", "/api/v1/me/password", atA, map[string]any{"current_password": pass, "new_password": "short"}); code != 400 || m["field"] != "new_password" {
		t.Errorf("weak new password: %d %v", code, m)
	}
	newPass := "another long pass phrase 77"
	if code, m := f.api("POST", "/api/v1/me/password", atA, map[string]any{"current_password": pass, "new_password": newPass}); code != http.StatusNoContent {
		t.Fatalf("change password: %d %v", code, m)
	}
	if code, _ := f.refresh(f.app, rtB); code != http.StatusBadRequest {
		t.Errorf("other session's refresh after password change: %d; want 400", code)
	}
	if code, m := f.refresh(f.app, rtA); code != http.StatusOK {
		t.Errorf("caller's own session after password change: %d %v", code, m)
	}
	if code, _ := f.passwordGrant(f.app, user, pass, nil); code != http.StatusBadRequest {
		t.Errorf("old password still works")
	}
	f.login(f.app, user, newPass)
}

func (f *fixture) testLogout(t *testing.T) {
	_, u1, p1 := f.signup("frank")
	_, u2, p2 := f.signup("grace")
	at1, rt1 := f.login(f.app, u1, p1)
	at1b, rt1b := f.login(f.app, u1, p1)
	at2, rt2 := f.login(f.app, u2, p2)
	if code, _ := f.api("POST", "/api/v1/logout", "", nil); code != http.StatusUnauthorized {
		t.Errorf("logout without token: %d", code)
	}
	if code, m := f.api("POST", "/api/v1/logout", at1, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d %v", code, m)
	}
	for _, rt := range []string{rt1, rt1b} {
		if code, _ := f.refresh(f.app, rt); code != http.StatusBadRequest {
			t.Errorf("refresh after logout: %d", code)
		}
	}
	for _, at := range []string{at1, at1b} {
		if got := f.introspect(f.rs, at); got["active"] != false {
			t.Errorf("access token after logout: %v", got)
		}
	}
	if code, _ := f.api("GET", "/api/v1/me", at1, nil); code != http.StatusUnauthorized {
		t.Errorf("/me with a logged-out token: %d", code)
	}
	if got := f.introspect(f.rs, at2); got["active"] != true {
		t.Errorf("another user's token after logout: %v", got)
	}
	if code, m := f.refresh(f.app, rt2); code != http.StatusOK {
		t.Errorf("another user's refresh after logout: %d %v", code, m)
	}
	if code, m := f.api("GET", "/api/v1/me", at2, nil); code != http.StatusOK || m["username"] != u2 {
		t.Errorf("/me: %d %v", code, m)
	}
}

func (f *fixture) testAdmin(t *testing.T) {
	createUser(t, f.vars, "root", "root@example.org", "the admin pass phrase 99", "admin")
	adminAT, _ := f.login(f.app, "root", "the admin pass phrase 99")
	userID, user, pass := f.signup("henry")
	userAT, userRT := f.login(f.app, user, pass)
	_, cc := f.login(f.app, "alice", userPassword)
	_ = cc

	routes := []struct{ method, path string }{
		{"GET", "/api/v1/admin/users"}, {"GET", "/api/v1/admin/users/" + userID}, {"PATCH", "/api/v1/admin/users/" + userID},
		{"DELETE", "/api/v1/admin/users/" + userID}, {"POST", "/api/v1/admin/users/" + userID + "/unlock"},
		{"GET", "/api/v1/admin/clients"}, {"POST", "/api/v1/admin/clients"}, {"GET", "/api/v1/admin/clients/svc"},
		{"PATCH", "/api/v1/admin/clients/svc"}, {"DELETE", "/api/v1/admin/clients/svc"},
		{"POST", "/api/v1/admin/keys/rotate"}, {"GET", "/api/v1/admin/keys"}, {"GET", "/api/v1/admin/audit"},
	}
	ccTok := func() string {
		code, _, m := f.post("/oauth2/token", &f.cc, url.Values{"grant_type": {"client_credentials"}})
		if code != 200 {
			t.Fatalf("client_credentials: %d", code)
		}
		return str(m, "access_token")
	}()
	for _, rt := range routes {
		if code, _ := f.api(rt.method, rt.path, "", `{}`); code != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %d; want 401", rt.method, rt.path, code)
		}
		if code, _ := f.api(rt.method, rt.path, "garbage.token.here", `{}`); code != http.StatusUnauthorized {
			t.Errorf("%s %s with a bad token: %d; want 401", rt.method, rt.path, code)
		}
		if code, _ := f.api(rt.method, rt.path, ccTok, `{}`); code != http.StatusForbidden {
			t.Errorf("%s %s with a client token: %d; want 403", rt.method, rt.path, code)
		}
		if code, _ := f.api(rt.method, rt.path, userAT, `{}`); code != http.StatusForbidden {
			t.Errorf("%s %s as a user: %d; want 403", rt.method, rt.path, code)
		}
	}

	// Users: list with search and paging, get.
	code, m := f.api("GET", "/api/v1/admin/users?limit=1", adminAT, nil)
	if code != 200 || len(m["users"].([]any)) != 1 || str(m, "next_cursor") == "" {
		t.Fatalf("list users: %d %v", code, m)
	}
	code, m2 := f.api("GET", "/api/v1/admin/users?limit=1&cursor="+url.QueryEscape(str(m, "next_cursor")), adminAT, nil)
	if code != 200 || len(m2["users"].([]any)) != 1 || m2["users"].([]any)[0].(map[string]any)["id"] == m["users"].([]any)[0].(map[string]any)["id"] {
		t.Errorf("second page: %d %v", code, m2)
	}
	code, m = f.api("GET", "/api/v1/admin/users?q="+url.QueryEscape(strings.ToUpper(user)), adminAT, nil)
	if code != 200 || len(m["users"].([]any)) != 1 {
		t.Errorf("search %s: %d %v", user, code, m)
	}
	if code, _ := f.api("GET", "/api/v1/admin/users?limit=0", adminAT, nil); code != 400 {
		t.Errorf("limit=0: %d", code)
	}
	if code, m := f.api("GET", "/api/v1/admin/users/"+userID, adminAT, nil); code != 200 || m["username"] != user || m["password_hash"] != nil {
		t.Errorf("get user: %d %v", code, m)
	}
	if code, _ := f.api("GET", "/api/v1/admin/users/nope", adminAT, nil); code != 404 {
		t.Errorf("get unknown user: %d", code)
	}

	// PATCH roles: the next refresh carries them.
	if code, m := f.api("PATCH", "/api/v1/admin/users/"+userID, adminAT, map[string]any{"roles": []string{"user", "auditor"}}); code != 200 || fmt.Sprint(m["roles"]) != "[user auditor]" {
		t.Fatalf("patch roles: %d %v", code, m)
	}
	code, rm := f.refresh(f.app, userRT)
	if code != 200 {
		t.Fatalf("refresh after role change: %d %v", code, rm)
	}
	if _, c := f.verifyJWT(str(rm, "access_token")); fmt.Sprint(c["roles"]) != "[user auditor]" {
		t.Errorf("roles after refresh = %v", c["roles"])
	}
	if code, _ := f.api("PATCH", "/api/v1/admin/users/"+userID, adminAT, map[string]any{"roles": []string{"Bad Role"}}); code != 400 {
		t.Errorf("invalid role: %d", code)
	}
	if code, _ := f.api("PATCH", "/api/v1/admin/users/"+userID, adminAT, map[string]any{"disabled": "yes"}); code != 400 {
		t.Errorf("disabled as string: %d", code)
	}

	// Disable: the refresh fails, the access token dies, login fails.
	userRT = str(rm, "refresh_token")
	at := str(rm, "access_token")
	if code, m := f.api("PATCH", "/api/v1/admin/users/"+userID, adminAT, map[string]any{"disabled": true}); code != 200 || m["disabled"] != true {
		t.Fatalf("disable: %d %v", code, m)
	}
	if code, _ := f.refresh(f.app, userRT); code != 400 {
		t.Errorf("disabled user's refresh: %d", code)
	}
	if got := f.introspect(f.rs, at); got["active"] != false {
		t.Errorf("disabled user's access token: %v", got)
	}
	if code, m := f.passwordGrant(f.app, user, pass, nil); code != 400 || str(m, "error") != "invalid_grant" {
		t.Errorf("disabled user's login: %d %v", code, m)
	}
	f.api("PATCH", "/api/v1/admin/users/"+userID, adminAT, map[string]any{"disabled": false})
	f.login(f.app, user, pass)

	// Lockout and unlock.
	for range 3 {
		f.passwordGrant(f.app, user, "definitely the wrong one", nil)
	}
	if code, _ := f.passwordGrant(f.app, user, pass, nil); code != 400 {
		t.Errorf("locked user logged in")
	}
	if code, m := f.api("GET", "/api/v1/admin/users/"+userID, adminAT, nil); code != 200 || m["locked_until"] == nil {
		t.Errorf("locked user shows no lock: %v", m)
	}
	if code, m := f.api("POST", "/api/v1/admin/users/"+userID+"/unlock", adminAT, nil); code != 200 {
		t.Errorf("unlock: %d %v", code, m)
	}
	f.login(f.app, user, pass)

	// Audit.
	code, m = f.api("GET", "/api/v1/admin/audit?type=auth.user_locked&user_id="+userID, adminAT, nil)
	if code != 200 || len(m["entries"].([]any)) != 1 {
		t.Errorf("audit user_locked: %d %v", code, m)
	}
	code, m = f.api("GET", "/api/v1/admin/audit?limit=5", adminAT, nil)
	if code != 200 || len(m["entries"].([]any)) != 5 {
		t.Errorf("audit limit: %d %v", code, m)
	}
	if code, _ := f.api("GET", "/api/v1/admin/audit?since=yesterday", adminAT, nil); code != 400 {
		t.Errorf("audit since=yesterday: %d", code)
	}

	// Clients CRUD: the secret is shown once and works.
	code, m = f.api("POST", "/api/v1/admin/clients", adminAT, map[string]any{"client_id": "inventory", "grant_types": []string{"client_credentials"}, "scopes": []string{"stock.read"}})
	secret := str(m, "client_secret")
	if code != 201 || len(secret) < 43 {
		t.Fatalf("create client: %d %v", code, m)
	}
	inv := client{"inventory", secret}
	if code, _, m := f.post("/oauth2/token", &inv, url.Values{"grant_type": {"client_credentials"}}); code != 200 {
		t.Errorf("new client's token: %d %v", code, m)
	}
	if code, _ := f.api("POST", "/api/v1/admin/clients", adminAT, map[string]any{"client_id": "inventory", "grant_types": []string{"client_credentials"}}); code != 409 {
		t.Errorf("duplicate client: %d", code)
	}
	if code, _ := f.api("POST", "/api/v1/admin/clients", adminAT, map[string]any{"client_id": "x", "grant_types": []string{"implicit"}}); code != 400 {
		t.Errorf("bad grant type: %d", code)
	}
	if code, m := f.api("GET", "/api/v1/admin/clients/inventory", adminAT, nil); code != 200 || m["client_secret"] != nil {
		t.Errorf("get client: %d %v", code, m)
	}
	if code, m := f.api("PATCH", "/api/v1/admin/clients/inventory", adminAT, map[string]any{"scopes": []string{"stock.read", "stock.write"}}); code != 200 || fmt.Sprint(m["scopes"]) != "[stock.read stock.write]" {
		t.Errorf("patch client: %d %v", code, m)
	}
	if code, m := f.api("GET", "/api/v1/admin/clients", adminAT, nil); code != 200 || len(m["clients"].([]any)) < 6 {
		t.Errorf("list clients: %d %v", code, m)
	}
	if code, _ := f.api("DELETE", "/api/v1/admin/clients/inventory", adminAT, nil); code != 204 {
		t.Errorf("delete client: %d", code)
	}
	if code, _, _ := f.post("/oauth2/token", &inv, url.Values{"grant_type": {"client_credentials"}}); code != 401 {
		t.Errorf("deleted client's token: %d; want 401", code)
	}

	// Keys.
	code, m = f.api("GET", "/api/v1/admin/keys", adminAT, nil)
	if code != 200 || len(m["keys"].([]any)) < 2 {
		t.Errorf("list keys: %d %v", code, m)
	}
	if code, m := f.api("POST", "/api/v1/admin/keys/rotate", adminAT, nil); code != 200 || str(m, "kid") == "" {
		t.Errorf("rotate keys: %d %v", code, m)
	}
	if got := f.introspect(f.rs, adminAT); got["active"] != true {
		t.Errorf("token signed before rotation: %v", got)
	}

	// Delete: the user's tokens die with it; an admin cannot delete themself.
	at, _ = f.login(f.app, user, pass)
	if code, _ := f.api("DELETE", "/api/v1/admin/users/"+userID, adminAT, nil); code != 204 {
		t.Errorf("delete user: %d", code)
	}
	if got := f.introspect(f.rs, at); got["active"] != false {
		t.Errorf("deleted user's token: %v", got)
	}
	if code, _ := f.api("GET", "/api/v1/admin/users/"+userID, adminAT, nil); code != 404 {
		t.Errorf("deleted user still there: %d", code)
	}
	// Demotion takes effect at once, before the token expires.
	rootID := func() string {
		_, m := f.api("GET", "/api/v1/me", adminAT, nil)
		return str(m, "id")
	}()
	if code, _ := f.api("DELETE", "/api/v1/admin/users/"+rootID, adminAT, nil); code != 409 {
		t.Errorf("self-delete: %d; want 409", code)
	}
	if code, _ := f.api("PATCH", "/api/v1/admin/users/"+rootID, adminAT, map[string]any{"roles": []string{"user"}}); code != 200 {
		t.Errorf("self-demotion: %d", code)
	}
	if code, _ := f.api("GET", "/api/v1/admin/users", adminAT, nil); code != 403 {
		t.Errorf("demoted admin with an admin token: %d; want 403", code)
	}
}
