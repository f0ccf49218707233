package server

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// hostile is text an attacker may put anywhere: each must be refused with a
// 4xx before it reaches a store, never answered with a 5xx.
var hostile = []struct{ name, raw string }{
	{"nul", "ab\x00cd"},
	{"invalid utf-8", "ab\xff\xfecd"},
	{"lone continuation byte", "ab\x80"},
	{"control character", "ab\x01cd"},
	{"delete", "ab\x7fcd"},
	{"c1 control", "ab\u0085cd"},
	{"newline", "ab\ncd"},
	{"overlong", strings.Repeat("a", 5000)},
}

// jsonString quotes raw as a JSON string without touching invalid UTF-8
// (encoding/json would replace it): control characters become \u escapes,
// other bytes are kept.
func jsonString(raw string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// wantProblem checks a 400 problem+json answer (or, with code set, that status).
func wantProblem(t *testing.T, ts *testServer, what string, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("%s: %d %s; want %d", what, rec.Code, rec.Body, status)
		return
	}
	mt, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if mt != "application/problem+json" || params["charset"] != "utf-8" {
		t.Errorf("%s: Content-Type %q; want application/problem+json; charset=utf-8", what, rec.Header().Get("Content-Type"))
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["status"] != float64(status) {
		t.Errorf("%s: body %s is not a problem with status %d", what, rec.Body, status)
	}
	if errs := ts.errs.take(); len(errs) > 0 {
		t.Errorf("%s: the server logged errors: %q", what, errs)
	}
}

// Every text of a request to the account and admin APIs (JSON members,
// path ids, query parameters) is checked before it reaches the store: bad
// bytes are 400 problem+json on SQLite and PostgreSQL, never a 5xx.
func TestAPIHostileText(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ts := newTestServer(t, be.open(t))
			admin := ts.admin
			for _, h := range hostile {
				esc := url.PathEscape(h.raw)
				q := url.QueryEscape(h.raw)
				js := jsonString(h.raw)
				pw := h.name != "control character" && h.name != "delete" && h.name != "c1 control" && h.name != "newline"
				cases := []struct {
					method, target, token, body string
				}{
					{"POST", "/api/v1/signup", "", `{"username":` + js + `,"email":"x@example.com","password":"` + testPassword + ` 2"}`},
					{"POST", "/api/v1/signup", "", `{"username":"newuser","email":` + js + `,"password":"` + testPassword + ` 2"}`},
					{"GET", "/api/v1/admin/users/" + esc, admin, ""},
					{"PATCH", "/api/v1/admin/users/" + esc, admin, `{"disabled":false}`},
					{"DELETE", "/api/v1/admin/users/" + esc, admin, ""},
					{"POST", "/api/v1/admin/users/" + esc + "/unlock", admin, ""},
					{"PATCH", "/api/v1/admin/users/" + ts.userID, admin, `{"roles":[` + js + `]}`},
					{"GET", "/api/v1/admin/clients/" + esc, admin, ""},
					{"PATCH", "/api/v1/admin/clients/" + esc, admin, `{"name":"n"}`},
					{"DELETE", "/api/v1/admin/clients/" + esc, admin, ""},
					{"PATCH", "/api/v1/admin/clients/app", admin, `{"name":` + js + `}`},
					{"PATCH", "/api/v1/admin/clients/app", admin, `{"scopes":[` + js + `]}`},
					{"POST", "/api/v1/admin/clients", admin, `{"client_id":` + js + `,"grant_types":["client_credentials"]}`},
					{"POST", "/api/v1/admin/clients", admin, `{"client_id":"c-` + h.name[:3] + `","name":` + js + `,"grant_types":["client_credentials"]}`},
					{"GET", "/api/v1/admin/users?q=" + q, admin, ""},
					{"GET", "/api/v1/admin/users?cursor=" + q, admin, ""},
					{"GET", "/api/v1/admin/users?limit=" + q, admin, ""},
					{"GET", "/api/v1/admin/audit?user_id=" + q, admin, ""},
					{"GET", "/api/v1/admin/audit?type=" + q, admin, ""},
					{"GET", "/api/v1/me?" + q + "=1", ts.user, ""},
				}
				if pw {
					cases = append(cases,
						struct{ method, target, token, body string }{"POST", "/api/v1/signup", "", `{"username":"newuser","email":"n@example.com","password":` + js + `}`},
						struct{ method, target, token, body string }{"POST", "/api/v1/me/password", ts.user, `{"current_password":` + js + `,"new_password":"another fine passphrase"}`},
					)
				}
				for _, c := range cases {
					what := fmt.Sprintf("%s %s %s with %s", c.method, c.target[:min(len(c.target), 60)], c.body[:min(len(c.body), 60)], h.name)
					wantProblem(t, ts, what, ts.json(c.method, c.target, c.token, c.body), http.StatusBadRequest)
				}
			}
			// The user and the client are untouched.
			if rec := ts.json("GET", "/api/v1/admin/users/"+ts.userID, admin, ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"roles":["user"]`) {
				t.Errorf("user after the attacks: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// Raw control characters are not JSON (RFC 8259 §7); a Bearer token with
// bad bytes is an invalid token, not a server error.
func TestAPIHostileSyntaxAndHeaders(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ts := newTestServer(t, be.open(t))
			for _, body := range []string{
				"{\"username\":\"a\x00b\",\"email\":\"x@example.com\",\"password\":\"p\"}",
				"{\"username\":\"a\x01b\"}",
				"\xef\xbb\xbf{}", // a byte-order mark
			} {
				wantProblem(t, ts, fmt.Sprintf("signup %q", body), ts.json("POST", "/api/v1/signup", "", body), http.StatusBadRequest)
			}
			for _, h := range hostile {
				rec := ts.json("GET", "/api/v1/me", h.raw, "")
				wantProblem(t, ts, "Bearer "+h.name, rec, http.StatusUnauthorized)
				rec = ts.json("GET", "/userinfo", h.raw, "")
				wantProblem(t, ts, "userinfo Bearer "+h.name, rec, http.StatusUnauthorized)
			}
		})
	}
}

// JSON bodies with a member given twice, at any depth, are refused as
// duplicated form parameters are; encoding/json matches member names
// case-insensitively, so a case variant is a duplicate too.
func TestAPIDuplicateMembers(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	for _, c := range []struct {
		method, target, token, body, field string
	}{
		{"POST", "/api/v1/signup", "", `{"username":"eve","username":"mallory","email":"e@example.com","password":"` + testPassword + ` 2"}`, "username"},
		{"POST", "/api/v1/signup", "", `{"username":"eve","Username":"mallory","email":"e@example.com","password":"` + testPassword + ` 2"}`, "Username"},
		{"POST", "/api/v1/signup", "", `{"username":"eve","email":"e@example.com","password":"` + testPassword + ` 2","extra":{"a":1,"b":[{"c":1,"c":2}]}}`, "c"},
		{"PATCH", "/api/v1/admin/users/" + ts.userID, ts.admin, `{"disabled":false,"disabled":true}`, "disabled"},
		{"PATCH", "/api/v1/admin/users/" + ts.userID, ts.admin, "{\"roles\":[\"user\"],\"ro\\u006ces\":[\"admin\"]}", "roles"},
		{"PATCH", "/api/v1/admin/clients/app", ts.admin, `{"scopes":["openid"],"scopes":["openid","admin"]}`, "scopes"},
		{"POST", "/api/v1/admin/clients", ts.admin, `{"client_id":"c1","client_id":"c2","grant_types":["client_credentials"]}`, "client_id"},
		{"POST", "/api/v1/me/password", ts.user, `{"current_password":"x","current_password":"` + testPassword + `","new_password":"another fine passphrase"}`, "current_password"},
	} {
		rec := ts.json(c.method, c.target, c.token, c.body)
		wantProblem(t, ts, c.method+" "+c.body, rec, http.StatusBadRequest)
		if !strings.Contains(rec.Body.String(), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %s does not name the member %q", c.body, rec.Body, c.field)
		}
	}
	// The same members once each, and equal names in different objects, are fine.
	rec := ts.json("POST", "/api/v1/signup", "", `{"username":"eve","email":"e@example.com","password":"`+testPassword+` 2","x":{"username":1},"y":[{"a":1},{"a":2}]}`)
	if rec.Code != http.StatusCreated {
		t.Errorf("signup without duplicates: %d %s", rec.Code, rec.Body)
	}
	// Nesting is bounded.
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	wantProblem(t, ts, "deep nesting", ts.json("POST", "/api/v1/signup", "", `{"x":`+deep+`}`), http.StatusBadRequest)
	// The body limit still holds.
	big := `{"username":"` + strings.Repeat("a", 70<<10) + `"}`
	wantProblem(t, ts, "oversized body", ts.json("POST", "/api/v1/signup", "", big), http.StatusRequestEntityTooLarge)
}
