package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// The admin API's client routes answer as before the rules moved to
// clients.Service, and each change is recorded naming the admin and the
// client and address of the admin's request.
func TestAdminClientRoutes(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	body := func(rr interface{ Result() *http.Response }) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.NewDecoder(rr.Result().Body).Decode(&m); err != nil {
			t.Fatalf("decode: %v", err)
		}
		return m
	}

	rr := ts.json(http.MethodPost, "/api/v1/admin/clients", ts.admin, `{"client_id":"svc","grant_types":["client_credentials"],"scopes":["a","a"]}`)
	m := body(rr)
	secret, _ := m["client_secret"].(string)
	if rr.Code != http.StatusCreated || rr.Header().Get("Location") != "/api/v1/admin/clients/svc" || len(secret) != 43 ||
		m["token_endpoint_auth_method"] != "client_secret_basic" || len(m["scopes"].([]any)) != 1 {
		t.Fatalf("POST client = %d %q %v", rr.Code, rr.Header().Get("Location"), m)
	}
	// The secret was hashed as client authentication compares it.
	if rr := ts.form(http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "svc", secret); rr.Code != http.StatusOK {
		t.Errorf("token with the new client's secret = %d %s", rr.Code, rr.Body)
	}

	for _, c := range []struct {
		method, target, body string
		status               int
		detail, field        string
	}{
		{http.MethodPost, "/api/v1/admin/clients", `{"client_id":"svc","grant_types":["client_credentials"]}`, http.StatusConflict, "client_id is already taken.", "client_id"},
		{http.MethodPost, "/api/v1/admin/clients", `{"client_id":"x","grant_types":["implicit"]}`, http.StatusBadRequest, `Invalid client: unsupported grant type "implicit".`, ""},
		{http.MethodPatch, "/api/v1/admin/clients/svc", `{"scopes":["a b"]}`, http.StatusBadRequest, `Invalid client: invalid scope or audience "a b".`, ""},
		{http.MethodPatch, "/api/v1/admin/clients/nobody", `{"name":"n"}`, http.StatusNotFound, "No such resource.", ""},
		{http.MethodGet, "/api/v1/admin/clients/nobody", ``, http.StatusNotFound, "No such resource.", ""},
		{http.MethodDelete, "/api/v1/admin/clients/nobody", ``, http.StatusNotFound, "No such resource.", ""},
	} {
		rr := ts.json(c.method, c.target, ts.admin, c.body)
		if m := body(rr); rr.Code != c.status || m["detail"] != c.detail || (m["field"] != nil || c.field != "") && m["field"] != c.field {
			t.Errorf("%s %s %s = %d %v; want %d %q field %q", c.method, c.target, c.body, rr.Code, m, c.status, c.detail, c.field)
		}
	}

	rr = ts.json(http.MethodPatch, "/api/v1/admin/clients/svc", ts.admin, `{"name":"Service","client_secret":"ignored-ignored-ignored-ignored-ignored"}`)
	if m := body(rr); rr.Code != http.StatusOK || m["name"] != "Service" || m["client_secret"] != nil {
		t.Errorf("PATCH client = %d %v", rr.Code, m)
	}
	if rr := ts.json(http.MethodGet, "/api/v1/admin/clients", ts.admin, ""); rr.Code != http.StatusOK || len(body(rr)["clients"].([]any)) != 2 {
		t.Errorf("GET clients = %d; want app and svc", rr.Code)
	}
	if rr := ts.json(http.MethodDelete, "/api/v1/admin/clients/svc", ts.admin, ""); rr.Code != http.StatusNoContent {
		t.Errorf("DELETE client = %d %s", rr.Code, rr.Body)
	}
	if rr := ts.form(http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "svc", secret); rr.Code != http.StatusUnauthorized {
		t.Errorf("token of a deleted client = %d; want 401", rr.Code)
	}

	var types []string
	for _, typ := range []events.Type{events.ClientCreated, events.ClientUpdated, events.ClientDeleted} {
		es, err := ts.store.ListAudit(t.Context(), storage.AuditFilter{Type: string(typ), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			var d map[string]any
			if err := json.Unmarshal(e.Data, &d); err != nil || d["client"] != "svc" || d["admin"] != ts.adminID || e.ClientID != "app" || e.UserID != "" {
				t.Errorf("%s = %+v %v; want client svc, admin %s, from app", e.Type, e, d, ts.adminID)
			}
			types = append(types, e.Type)
		}
	}
	if !slices.Equal(types, []string{"auth.client_created", "auth.client_updated", "auth.client_deleted"}) {
		t.Errorf("client events = %q; want one of each", types)
	}
}

// The admin API registers and changes where a client's browser responses
// may go and whether it is first-party; a bad redirect URI is a 400 that
// names it.
func TestAdminClientRedirectURIs(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	body := func(rr interface{ Result() *http.Response }) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.NewDecoder(rr.Result().Body).Decode(&m); err != nil {
			t.Fatalf("decode: %v", err)
		}
		return m
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}

	rr := ts.json(http.MethodPost, "/api/v1/admin/clients", ts.admin, `{"client_id":"web","public":true,"grant_types":["refresh_token"],
"redirect_uris":["https://app.example/cb","http://127.0.0.1/cb","https://app.example/cb"],
"post_logout_redirect_uris":["https://app.example/"],"first_party":true}`)
	m := body(rr)
	if rr.Code != http.StatusCreated || !slices.Equal(strs(m["redirect_uris"]), []string{"https://app.example/cb", "http://127.0.0.1/cb"}) ||
		!slices.Equal(strs(m["post_logout_redirect_uris"]), []string{"https://app.example/"}) || m["first_party"] != true {
		t.Fatalf("POST client with redirect URIs = %d %v", rr.Code, m)
	}
	// A client registered without them shows empty lists.
	rr = ts.json(http.MethodPost, "/api/v1/admin/clients", ts.admin, `{"client_id":"svc","grant_types":["client_credentials"]}`)
	if m := body(rr); rr.Code != http.StatusCreated || len(m["redirect_uris"].([]any)) != 0 ||
		len(m["post_logout_redirect_uris"].([]any)) != 0 || m["first_party"] != false {
		t.Errorf("POST client without redirect URIs = %d %v; want [] and first_party false", rr.Code, m)
	}

	for _, c := range []struct {
		method, target, body string
		detail               string
	}{
		{http.MethodPost, "/api/v1/admin/clients", `{"client_id":"x","grant_types":["password"],"redirect_uris":["http://app.example/cb"]}`,
			`Invalid client: redirect URI "http://app.example/cb" may use http only with a loopback host (127.0.0.1, [::1], localhost); use https.`},
		{http.MethodPatch, "/api/v1/admin/clients/web", `{"post_logout_redirect_uris":["https://app.example/#top"]}`,
			`Invalid client: post-logout redirect URI "https://app.example/#top" must not have a fragment.`},
		{http.MethodPatch, "/api/v1/admin/clients/web", `{"redirect_uris":["/cb"]}`,
			`Invalid client: redirect URI "/cb" must be absolute.`},
	} {
		rr := ts.json(c.method, c.target, ts.admin, c.body)
		if m := body(rr); rr.Code != http.StatusBadRequest || m["detail"] != c.detail {
			t.Errorf("%s %s %s = %d %v; want 400 %q", c.method, c.target, c.body, rr.Code, m, c.detail)
		}
	}

	rr = ts.json(http.MethodPatch, "/api/v1/admin/clients/web", ts.admin, `{"redirect_uris":["com.example.app:/cb"],"first_party":false}`)
	if m := body(rr); rr.Code != http.StatusOK || !slices.Equal(strs(m["redirect_uris"]), []string{"com.example.app:/cb"}) ||
		!slices.Equal(strs(m["post_logout_redirect_uris"]), []string{"https://app.example/"}) || m["first_party"] != false {
		t.Errorf("PATCH redirect_uris, first_party = %d %v; want them changed, the logout URIs kept", rr.Code, m)
	}
	rr = ts.json(http.MethodGet, "/api/v1/admin/clients/web", ts.admin, "")
	if m := body(rr); rr.Code != http.StatusOK || !slices.Equal(strs(m["redirect_uris"]), []string{"com.example.app:/cb"}) || m["first_party"] != false {
		t.Errorf("GET client after PATCH = %d %v", rr.Code, m)
	}
}
