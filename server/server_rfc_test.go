package server

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// RFC 9110 §15.5.6: a 405 carries Allow with the methods the target
// resource supports, on every route (gorilla/mux's default handler does not
// set it). The expected sets come from the router's own routes.
func TestMethodNotAllowedAllow(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	want := map[string][]string{} // path template -> methods
	var order []string
	if err := ts.srv.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		ms, err := route.GetMethods()
		if err != nil {
			return nil // a subrouter's prefix
		}
		if _, ok := want[tpl]; !ok {
			order = append(order, tpl)
		}
		want[tpl] = append(want[tpl], ms...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(order) < 20 {
		t.Fatalf("walked only %d routes: %v", len(order), order)
	}
	for _, tpl := range order {
		path := strings.NewReplacer("{id}", "some-id").Replace(tpl)
		allowed := want[tpl]
		slices.Sort(allowed)
		tried := 0
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
			if slices.Contains(allowed, m) {
				continue
			}
			tried++
			rec := ts.do(m, path, "", nil, nil)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d; want 405", m, path, rec.Code)
				continue
			}
			got := strings.Split(rec.Header().Get("Allow"), ", ")
			slices.Sort(got)
			if !slices.Equal(got, allowed) {
				t.Errorf("%s %s: Allow %q; want %q", m, path, rec.Header().Get("Allow"), strings.Join(allowed, ", "))
			}
			wantType := "application/problem+json"
			if strings.HasPrefix(path, "/oauth2/") {
				wantType = "application/json"
			}
			if mt, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != wantType || params["charset"] != "utf-8" {
				t.Errorf("%s %s: Content-Type %q", m, path, rec.Header().Get("Content-Type"))
			}
		}
		if tried == 0 {
			t.Errorf("%s: no method left to try", tpl)
		}
	}
	// A path no route has is 404, without Allow.
	if rec := ts.do("PUT", "/nowhere", "", nil, nil); rec.Code != http.StatusNotFound || rec.Header().Get("Allow") != "" {
		t.Errorf("PUT /nowhere: %d, Allow %q; want 404 without Allow", rec.Code, rec.Header().Get("Allow"))
	}
}

// Every JSON answer names its charset: documents, API results, problems,
// OAuth answers and errors, health.
func TestJSONCharset(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cases := []struct {
		method, target string
		header         http.Header
		status         int
		mediaType      string
	}{
		{"GET", "/.well-known/oauth-authorization-server", nil, 200, "application/json"},
		{"GET", "/.well-known/openid-configuration", nil, 200, "application/json"},
		{"GET", "/.well-known/jwks.json", nil, 200, "application/json"},
		{"HEAD", "/.well-known/jwks.json", nil, 200, "application/json"},
		{"GET", "/healthz", nil, 200, "application/json"},
		{"GET", "/readyz", nil, 200, "application/json"},
		{"GET", "/userinfo", bearer(ts.user), 200, "application/json"},
		{"GET", "/userinfo", nil, 401, "application/problem+json"},
		{"GET", "/api/v1/me", bearer(ts.user), 200, "application/json"},
		{"GET", "/api/v1/admin/users", bearer(ts.admin), 200, "application/json"},
		{"GET", "/api/v1/admin/users", bearer(ts.user), 403, "application/problem+json"},
		{"GET", "/api/v1/admin/users/nobody", bearer(ts.admin), 404, "application/problem+json"},
		{"GET", "/nowhere", nil, 404, "application/problem+json"},
		{"GET", "/oauth2/nowhere", nil, 404, "application/json"},
		{"POST", "/api/v1/signup", nil, 415, "application/problem+json"},
	}
	for _, c := range cases {
		rec := ts.do(c.method, c.target, "", nil, c.header)
		mt, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		if rec.Code != c.status || mt != c.mediaType || params["charset"] != "utf-8" {
			t.Errorf("%s %s: %d %q; want %d %s; charset=utf-8", c.method, c.target, rec.Code, rec.Header().Get("Content-Type"), c.status, c.mediaType)
		}
	}
	for _, c := range []struct {
		form   url.Values
		status int
	}{
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {testPassword}}, 200},
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}, 400},
	} {
		rec := ts.form("POST", "/oauth2/token", c.form, "app", ts.secret)
		if rec.Code != c.status || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("token %v: %d %q", c.form.Get("password"), rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// Discovery names no service_documentation: authd serves no such page
// (RFC 8414 §2 makes it optional), so a link would be dead.
func TestDiscoveryServiceDocumentation(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		rec := ts.do("GET", path, "", nil, nil)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc, ok := m["service_documentation"].(string); ok {
			u, _ := url.Parse(doc)
			if r := ts.do("GET", u.RequestURI(), "", nil, nil); r.Code != http.StatusOK {
				t.Errorf("%s: service_documentation %q answers %d", path, doc, r.Code)
			}
		}
	}
}

// Bad bytes in the path or the query string of an OAuth route are refused
// as the OAuth endpoints refuse anything: 400 invalid_request in RFC 6749
// JSON, before the handler reads the form (ParseForm merges the query).
func TestOAuthRouteHostileQuery(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	for _, h := range hostile {
		q := url.QueryEscape(h.raw)
		for _, target := range []string{"/oauth2/token?username=" + q, "/oauth2/introspect?" + q + "=1", "/oauth2/revoke?token=" + q} {
			rec := ts.form("POST", target, url.Values{"grant_type": {"password"}, "token": {"x"}}, "app", ts.secret)
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			if rec.Code != http.StatusBadRequest || m["error"] != "invalid_request" {
				t.Errorf("POST %s with %s: %d %s; want 400 invalid_request", target[:min(len(target), 40)], h.name, rec.Code, rec.Body)
			}
		}
	}
	if rec := ts.do("GET", "/.well-known/jwks.json?x=%zz", "", nil, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("malformed query: %d; want 400", rec.Code)
	}
}
