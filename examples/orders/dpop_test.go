package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authd/authd/internal/dpop/dpoptest"
	"github.com/authd/authd/verify"
)

// doDPoP sends a request with Authorization (scheme and token) and, when
// proof is set, a DPoP header.
func (f *fixture) doDPoP(method, path, scheme, token, proof, body string) (int, http.Header, string) {
	f.t.Helper()
	req := httptest.NewRequestWithContext(f.t.Context(), method, path, strings.NewReader(body))
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

// TestDPoPMode is the service run with -dpop: DPoP-bound tokens with a proof
// for each request, at the URL clients call (publicURL), nothing else.
func TestDPoPMode(t *testing.T) {
	f := newFixtureMode(t, verify.DPoPRequire)
	alice := dpoptest.NewKey(t)
	root := dpoptest.NewKey(t)
	aliceTok := f.boundToken(alice.JKT, "u-alice", "alice", "user")
	rootTok := f.boundToken(root.JKT, "u-root", "root", "user", "admin")
	unbound := f.token("u-bob", "bob", "user")
	orders := publicURL + "/orders"

	status, _, body := f.doDPoP(http.MethodPost, "/orders", "DPoP", aliceTok, alice.Proof("POST", orders, aliceTok, map[string]any{"iat": f.now.Unix()}), `{"item":"book","quantity":2}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /orders with DPoP = %d %s; want 201", status, body)
	}
	var o Order
	if err := json.Unmarshal([]byte(body), &o); err != nil || o.Owner != "u-alice" {
		t.Fatalf("created %s (%v)", body, err)
	}
	replayed := alice.Proof("GET", orders, aliceTok, map[string]any{"iat": f.now.Unix()})
	if status, _, body := f.doDPoP(http.MethodGet, "/orders", "DPoP", aliceTok, replayed, ""); status != 200 || !strings.Contains(body, o.ID) {
		t.Fatalf("GET /orders with DPoP = %d %s", status, body)
	}

	dpopChallenge := func(code string) string {
		return `DPoP realm="orders", error="` + code + `"`
	}
	cases := []struct {
		name      string
		method    string
		path      string
		scheme    string
		token     string
		proof     string
		status    int
		challenge string
	}{
		{"own order", "GET", "/orders/" + o.ID, "DPoP", aliceTok, alice.Proof("GET", orders+"/"+o.ID, aliceTok, map[string]any{"iat": f.now.Unix()}), 200, ""},
		{"user may not delete", "DELETE", "/orders/" + o.ID, "DPoP", aliceTok, alice.Proof("DELETE", orders+"/"+o.ID, aliceTok, map[string]any{"iat": f.now.Unix()}), 403, dpopChallenge("insufficient_scope")},
		{"bound token as Bearer", "GET", "/orders", "Bearer", aliceTok, "", 401, dpopChallenge("invalid_token")},
		{"unbound token as Bearer", "GET", "/orders", "Bearer", unbound, "", 401, dpopChallenge("invalid_token")},
		{"unbound token as DPoP", "GET", "/orders", "DPoP", unbound, alice.Proof("GET", orders, unbound, map[string]any{"iat": f.now.Unix()}), 401, dpopChallenge("invalid_token")},
		{"no proof", "GET", "/orders", "DPoP", aliceTok, "", 401, dpopChallenge("invalid_dpop_proof")},
		{"replayed proof", "GET", "/orders", "DPoP", aliceTok, replayed, 401, dpopChallenge("invalid_dpop_proof")},
		{"proof by another key (stolen token)", "GET", "/orders", "DPoP", aliceTok, root.Proof("GET", orders, aliceTok, map[string]any{"iat": f.now.Unix()}), 401, dpopChallenge("invalid_dpop_proof")},
		{"proof for the internal URL", "GET", "/orders", "DPoP", aliceTok, alice.Proof("GET", "http://example.com/orders", aliceTok, map[string]any{"iat": f.now.Unix()}), 401, dpopChallenge("invalid_dpop_proof")},
		{"proof for another method", "GET", "/orders", "DPoP", aliceTok, alice.Proof("POST", orders, aliceTok, map[string]any{"iat": f.now.Unix()}), 401, dpopChallenge("invalid_dpop_proof")},
		{"proof for another token", "GET", "/orders", "DPoP", aliceTok, alice.Proof("GET", orders, rootTok, map[string]any{"iat": f.now.Unix()}), 401, dpopChallenge("invalid_dpop_proof")},
		{"admin deletes", "DELETE", "/orders/" + o.ID, "DPoP", rootTok, root.Proof("DELETE", orders+"/"+o.ID, rootTok, map[string]any{"iat": f.now.Unix()}), 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := f.doDPoP(tc.method, tc.path, tc.scheme, tc.token, tc.proof, "")
			if status != tc.status {
				t.Fatalf("%s %s = %d %s; want %d", tc.method, tc.path, status, body, tc.status)
			}
			if got := h.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) {
				t.Errorf("WWW-Authenticate = %q; want it to start %q", got, tc.challenge)
			}
		})
	}
	status, h, _ := f.do(http.MethodGet, "/orders", "", "")
	if status != 401 || h.Get("WWW-Authenticate") != `DPoP realm="orders", algs="ES256 EdDSA RS256"` {
		t.Errorf("no token: %d %q; want 401 with a DPoP challenge", status, h.Get("WWW-Authenticate"))
	}
}

// Without -dpop the service takes Bearer tokens as before, and refuses
// DPoP-bound ones (it could not check their proofs).
func TestBearerModeRefusesBoundTokens(t *testing.T) {
	f := newFixture(t)
	alice := dpoptest.NewKey(t)
	bound := f.boundToken(alice.JKT, "u-alice", "alice", "user")
	if status, h, body := f.do(http.MethodGet, "/orders", bound, ""); status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="orders", error="invalid_token"`) {
		t.Errorf("bound token as Bearer: %d %q %s; want 401 invalid_token", status, h.Get("WWW-Authenticate"), body)
	}
	if got := f.list(f.token("u-alice", "alice", "user")); len(got) != 0 {
		t.Errorf("list = %v", got)
	}
}
