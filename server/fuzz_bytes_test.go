package server

import (
	"encoding/json"
	"mime"
	"net/http"
	"testing"
)

// FuzzAPIJSON throws arbitrary bodies at the JSON API's writing routes
// (signup, password change, admin PATCH and POST of users and clients), on
// PostgreSQL when AUTHD_TEST_POSTGRES_URL is set, else SQLite: never a 5xx,
// never an error logged; a failure is a problem+json document.
//
//	go test -run '^$' -fuzz FuzzAPIJSON -fuzztime 1m ./server/
func FuzzAPIJSON(f *testing.F) {
	ts := newTestServer(f, openFuzzStore(f))
	routes := []struct{ method, target, token string }{
		{"POST", "/api/v1/signup", ""},
		{"POST", "/api/v1/me/password", ts.user},
		{"PATCH", "/api/v1/admin/users/" + ts.userID, ts.admin},
		{"POST", "/api/v1/admin/clients", ts.admin},
		{"PATCH", "/api/v1/admin/clients/app", ts.admin},
	}
	for i, body := range []string{
		`{"username":"bob","email":"bob@example.com","password":"correct horse battery staple 2"}`,
		`{"current_password":"x","new_password":"another fine passphrase"}`,
		`{"roles":["user","auditor"],"disabled":false}`,
		`{"client_id":"c1","name":"n","grant_types":["client_credentials"],"scopes":["read"],"audience":["a"]}`,
		`{"name":"renamed","introspect":true}`,
		`{"username":"a\u0000b"}`,
		"{\"username\":\"\xff\"}",
		`{"username":"a","username":"b"}`,
		`{"roles":["user"],"Roles":["admin"]}`,
		`{"a":{"b":{"c":[1,{"d":1,"d":2}]}}}`,
		`{"name":"\u0001"}`,
		`{"disabled":"yes"}`,
		`[{"a":1}]`,
		`{} {}`,
		`{"username":"x"`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		rec := ts.json(rt.method, rt.target, rt.token, string(body))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.target, body, rec.Code, rec.Body)
		}
		if errs := ts.errs.take(); len(errs) > 0 {
			t.Fatalf("%s %s %q: the server logged errors: %q", rt.method, rt.target, body, errs)
		}
		mt, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		if rec.Code == http.StatusNoContent {
			return
		}
		if params["charset"] != "utf-8" {
			t.Fatalf("%s %s: Content-Type %q", rt.method, rt.target, rec.Header().Get("Content-Type"))
		}
		if rec.Code >= 400 {
			var p struct {
				Status int `json:"status"`
			}
			if mt != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != rec.Code {
				t.Fatalf("%s %s %q: %d %q %s; want a problem document", rt.method, rt.target, body, rec.Code, mt, rec.Body)
			}
		}
	})
}
