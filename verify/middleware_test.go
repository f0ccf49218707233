package verify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authd/authd/verify"
)

// echoSubject answers 200 with the verified subject.
var echoSubject = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := verify.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, c.Subject)
})

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func serve(t *testing.T, h http.Handler, authorization ...string) (*http.Response, errorBody, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/orders", nil)
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	raw, _ := io.ReadAll(resp.Body)
	var body errorBody
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("status %d body %q is not JSON: %v", resp.StatusCode, raw, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("status %d Content-Type = %q; want application/json", resp.StatusCode, ct)
		}
	}
	return resp, body, string(raw)
}

func TestMiddleware(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	v := newStatic(t, iss, key.jwk())
	h := v.Middleware(echoSubject)
	good := key.sign(t, claims(iss))

	cases := []struct {
		name      string
		auth      []string
		status    int
		challenge string
		code      string
	}{
		{"valid", []string{"Bearer " + good}, 200, "", ""},
		{"scheme is case-insensitive", []string{"bearer " + good}, 200, "", ""},
		{"no Authorization", nil, 401, `Bearer realm="orders"`, "unauthorized"},
		{"Basic scheme", []string{"Basic dXNlcjpwYXNz"}, 401, `Bearer realm="orders"`, "unauthorized"},
		{"Bearer without token", []string{"Bearer "}, 400,
			`Bearer realm="orders", error="invalid_request", error_description="the Authorization header is not Bearer followed by a token"`, "invalid_request"},
		{"Bearer with two tokens", []string{"Bearer a b"}, 400,
			`Bearer realm="orders", error="invalid_request", error_description="the Authorization header is not Bearer followed by a token"`, "invalid_request"},
		{"two Authorization headers", []string{"Bearer " + good, "Bearer " + good}, 400,
			`Bearer realm="orders", error="invalid_request", error_description="more than one Authorization header"`, "invalid_request"},
		{"garbage token", []string{"Bearer abc.def.ghi"}, 401,
			`Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"`, "invalid_token"},
		{"expired token", []string{"Bearer " + key.sign(t, with(claims(iss), "exp", testNow.Add(-time.Hour).Unix()))}, 401,
			`Bearer realm="orders", error="invalid_token", error_description="the access token expired"`, "invalid_token"},
		{"wrong audience", []string{"Bearer " + key.sign(t, with(claims(iss), "aud", "payments"))}, 401,
			`Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"`, "invalid_token"},
		{"unknown kid", []string{"Bearer " + newKey(t, "ES256", "zz").sign(t, claims(iss))}, 401,
			`Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"`, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, raw := serve(t, h, tc.auth...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d (%s); want %d", resp.StatusCode, raw, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tc.challenge)
			}
			if tc.status == 200 {
				if raw != "user-1" {
					t.Errorf("handler saw subject %q; want user-1", raw)
				}
				return
			}
			if body.Error != tc.code || body.Description == "" {
				t.Errorf("body = %+v; want error %q and a description", body, tc.code)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestRequireRoleAndScope(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow, Realm: `orders "api"`}, jwks(t, key.jwk()))
	if err != nil {
		t.Fatal(err)
	}
	user := "Bearer " + key.sign(t, claims(iss))
	admin := "Bearer " + key.sign(t, with(claims(iss), "roles", []string{"user", "admin"}))
	service := "Bearer " + key.sign(t, with(claims(iss), "roles", nil, "scope", "orders:read"))

	adminOnly := v.Middleware(verify.RequireRole("admin")(echoSubject))
	anyRole := v.Middleware(verify.RequireRole("admin", "user")(echoSubject))
	readWrite := v.Middleware(verify.RequireScope("orders:read", "orders:write")(echoSubject))
	both := v.Middleware(verify.RequireRole("user")(verify.RequireScope("orders:write")(echoSubject)))

	roleChallenge := `Bearer realm="orders \"api\"", error="insufficient_scope", error_description="requires the role admin"`
	scopeChallenge := `Bearer realm="orders \"api\"", error="insufficient_scope", error_description="requires the scope orders:read orders:write", scope="orders:read orders:write"`
	cases := []struct {
		name      string
		h         http.Handler
		auth      string
		status    int
		challenge string
	}{
		{"admin route, user", adminOnly, user, 403, roleChallenge},
		{"admin route, admin", adminOnly, admin, 200, ""},
		{"admin route, service token without roles", adminOnly, service, 403, roleChallenge},
		{"any of admin/user, user", anyRole, user, 200, ""},
		{"any of admin/user, service", anyRole, service, 403,
			`Bearer realm="orders \"api\"", error="insufficient_scope", error_description="requires the role admin or user"`},
		{"all scopes present", readWrite, user, 200, ""},
		{"one scope missing", readWrite, service, 403, scopeChallenge},
		{"role and scope chained", both, user, 200, ""},
		{"no token before the role check", adminOnly, "", 401, `Bearer realm="orders \"api\""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var auth []string
			if tc.auth != "" {
				auth = append(auth, tc.auth)
			}
			resp, body, raw := serve(t, tc.h, auth...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d (%s); want %d", resp.StatusCode, raw, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tc.challenge)
			}
			if tc.status == 403 && body.Error != "insufficient_scope" {
				t.Errorf("body error = %q; want insufficient_scope", body.Error)
			}
		})
	}

	t.Run("without Middleware", func(t *testing.T) {
		resp, _, _ := serve(t, verify.RequireRole("admin")(echoSubject), admin)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("RequireRole without Middleware: status %d; want 500 (fail closed)", resp.StatusCode)
		}
	})
	t.Run("no roles given", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("RequireRole() did not panic")
			}
		}()
		verify.RequireRole()
	})
}

func TestClaimsFromContextEmpty(t *testing.T) {
	if c, ok := verify.ClaimsFromContext(t.Context()); ok || c != nil {
		t.Errorf("ClaimsFromContext(empty) = %v, %v; want nil, false", c, ok)
	}
}
