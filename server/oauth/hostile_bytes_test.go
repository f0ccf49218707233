package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/storage"
)

// hostile is text an attacker may put into any parameter.
var hostile = []struct{ name, raw string }{
	{"nul", "ab\x00cd"},
	{"invalid utf-8", "ab\xff\xfecd"},
	{"lone continuation byte", "ab\x80"},
	{"control character", "ab\x01cd"},
	{"delete", "ab\x7fcd"},
	{"c1 control", "ab\u0085cd"},
	{"overlong", strings.Repeat("a", 9000)},
}

var backends = []struct {
	name string
	open func(testing.TB) storage.Store
}{
	{"sqlite", func(tb testing.TB) storage.Store { return openSQLite(tb) }},
	{"postgres", openPostgres},
}

// postForm sends form (encoded as is, so that it may hold any bytes) with
// the given Authorization header.
func postForm(handler http.HandlerFunc, body, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	return rec
}

// basic is an Authorization header with id and secret form-encoded (RFC 6749 §2.3.1).
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func wantOAuthError(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	if rec.Code != status || m["error"] != code {
		t.Errorf("%s: %d %s; want %d %s", what, rec.Code, rec.Body, status, code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

// Every text of an OAuth request (form values, parameter names, the HTTP
// Basic credentials after percent-decoding) is checked before it reaches a
// store: on SQLite and PostgreSQL, bad bytes get a 4xx with the error a
// wrong value of that parameter gets, never a 5xx.
func TestOAuthHostileText(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			h := newHarness(t, be.open(t), fastParams)
			app, svc, rs := basic("app", h.secrets["app"]), basic("svc", h.secrets["svc"]), basic("rs", h.secrets["rs"])
			// The answer to a wrong password: a bad username or password must get exactly this.
			wrong := postForm(h.p.Token, "grant_type=password&username=alice&password=wrong+password+here", app)
			wantOAuthError(t, "wrong password", wrong, http.StatusBadRequest, "invalid_grant")
			for _, x := range hostile {
				v := url.QueryEscape(x.raw)
				for _, c := range []struct {
					what, body, auth string
					handler          http.HandlerFunc
					status           int
					code             string
				}{
					{"username", "grant_type=password&password=x&username=" + v, app, h.p.Token, 400, "invalid_grant"},
					{"username as email", "grant_type=password&password=x&username=" + v + "%40example.com", app, h.p.Token, 400, "invalid_grant"},
					{"client_id (post)", "grant_type=client_credentials&client_secret=s&client_id=" + v, "", h.p.Token, 401, "invalid_client"},
					{"client_id (public)", "grant_type=password&username=alice&password=x&client_id=" + v, "", h.p.Token, 401, "invalid_client"},
					{"client_secret (post)", "grant_type=client_credentials&client_id=svc&client_secret=" + v, "", h.p.Token, 401, "invalid_client"},
					{"Basic client id", "grant_type=client_credentials", basic(x.raw, h.secrets["svc"]), h.p.Token, 401, "invalid_client"},
					{"Basic client secret", "grant_type=client_credentials", basic("svc", x.raw), h.p.Token, 401, "invalid_client"},
					{"refresh_token", "grant_type=refresh_token&refresh_token=" + v, app, h.p.Token, 400, "invalid_request"},
					{"scope", "grant_type=client_credentials&scope=" + v, svc, h.p.Token, 400, "invalid_scope"},
					{"audience", "grant_type=client_credentials&audience=" + v, svc, h.p.Token, 400, "invalid_request"},
					{"grant_type", "grant_type=" + v, svc, h.p.Token, 400, "invalid_request"},
					{"parameter name", "grant_type=client_credentials&" + v + "=1", svc, h.p.Token, 400, "invalid_request"},
					{"unknown parameter", "grant_type=client_credentials&nonce=" + v, svc, h.p.Token, 400, "invalid_request"},
					{"introspect token", "token=" + v, rs, h.p.Introspect, 400, "invalid_request"},
					{"introspect token_type_hint", "token=abc&token_type_hint=" + v, rs, h.p.Introspect, 400, "invalid_request"},
					{"introspect Basic id", "token=abc", basic(x.raw, "s"), h.p.Introspect, 401, "invalid_client"},
					{"introspect client_id", "token=abc&client_secret=s&client_id=" + v, "", h.p.Introspect, 401, "invalid_client"},
					{"revoke token", "token=" + v, svc, h.p.Revoke, 400, "invalid_request"},
					{"revoke Basic secret", "token=abc", basic("svc", x.raw), h.p.Revoke, 401, "invalid_client"},
				} {
					rec := postForm(c.handler, c.body, c.auth)
					wantOAuthError(t, c.what+" with "+x.name, rec, c.status, c.code)
					if c.code == "invalid_grant" && rec.Body.String() != wrong.Body.String() {
						t.Errorf("%s with %s: %s; want the wrong-password answer %s", c.what, x.name, rec.Body, wrong.Body)
					}
					if c.status == 401 && strings.HasPrefix(c.auth, "Basic") && rec.Header().Get("WWW-Authenticate") == "" {
						t.Errorf("%s with %s: 401 without WWW-Authenticate", c.what, x.name)
					}
				}
			}
			// A password with bad bytes is a wrong password too.
			for _, pw := range []string{"ab\x00cd", "ab\xffcd", strings.Repeat("p", 5000)} {
				rec := postForm(h.p.Token, "grant_type=password&username=alice&password="+url.QueryEscape(pw), app)
				if rec.Code != 400 || rec.Body.String() != wrong.Body.String() {
					t.Errorf("password %q: %d %s; want %s", pw[:min(len(pw), 10)], rec.Code, rec.Body, wrong.Body)
				}
			}
			// Basic credentials that are not form-encoded are malformed.
			rec := postForm(h.p.Token, "grant_type=client_credentials", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc%zz:x")))
			wantOAuthError(t, "Basic with a bad escape", rec, 400, "invalid_request")
			// Raw bytes in Basic credentials (not percent-encoded) are refused alike.
			rec = postForm(h.p.Token, "grant_type=client_credentials", "Basic "+base64.StdEncoding.EncodeToString([]byte("s\xffc:x")))
			wantOAuthError(t, "Basic with raw invalid UTF-8", rec, 401, "invalid_client")
			// The account still works.
			ok := postForm(h.p.Token, "grant_type=password&username=alice&password="+url.QueryEscape(password), app)
			if ok.Code != http.StatusOK {
				t.Errorf("password grant after the attacks: %d %s", ok.Code, ok.Body)
			}
		})
	}
}
