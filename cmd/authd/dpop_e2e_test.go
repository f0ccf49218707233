package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/dpop/dpoptest"
)

// tokenRequest posts a token request with an optional DPoP proof.
func (in *instance) tokenRequest(c *client, form url.Values, proof string) (int, http.Header, map[string]any) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return in.do(req)
}

// resource calls GET path with the token under scheme and an optional proof.
func (in *instance) resource(path, scheme, token, proof string) (int, http.Header) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, in.base+path, nil)
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	code, h, _ := in.do(req)
	return code, h
}

// TestDPoP: tokens bound to a client's key (RFC 9449), end to end.
func TestDPoP(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b, nil)
			tokenURL := f.base + "/oauth2/token"
			key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
			pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}

			// Discovery advertises the proof algorithms.
			_, _, meta := f.do(f.request("GET", "/.well-known/oauth-authorization-server", ""))
			if algs, _ := meta["dpop_signing_alg_values_supported"].([]any); !slices.Contains(algs, any("ES256")) {
				t.Errorf("dpop_signing_alg_values_supported = %v", meta["dpop_signing_alg_values_supported"])
			}

			// A public client with a proof: DPoP tokens bound to the key.
			code, _, m := f.tokenRequest(nil, withClientID(pw, f.public.ID), key.Proof("POST", tokenURL, "", nil))
			if code != http.StatusOK || m["token_type"] != "DPoP" {
				t.Fatalf("password grant with a proof: %d %v", code, m)
			}
			at, rt := str(m, "access_token"), str(m, "refresh_token")
			if _, c := f.verifyJWT(at); jktOf(c) != key.JKT {
				t.Errorf("cnf of the access token = %v; want jkt %s", c["cnf"], key.JKT)
			}
			if got := f.introspect(f.rs, at); got["active"] != true || jktOf(got) != key.JKT {
				t.Errorf("introspection of a bound token: %v", got)
			}

			// The same proof twice is a replay; a proof for another URL or
			// method, or without typ, is invalid.
			replayed := key.Proof("POST", tokenURL, "", nil)
			if code, _, _ := f.tokenRequest(nil, withClientID(pw, f.public.ID), replayed); code != http.StatusOK {
				t.Fatalf("first use of a proof: %d", code)
			}
			for name, proof := range map[string]string{
				"replayed":   replayed,
				"wrong htu":  key.Proof("POST", f.base+"/oauth2/introspect", "", nil),
				"wrong htm":  key.Proof("GET", tokenURL, "", nil),
				"stale iat":  key.Proof("POST", tokenURL, "", map[string]any{"iat": time.Now().Add(-10 * time.Minute).Unix()}),
				"not a JWS":  "garbage",
				"no jti":     key.Proof("POST", tokenURL, "", map[string]any{"jti": ""}),
				"other host": key.Proof("POST", "https://evil.example/oauth2/token", "", nil),
			} {
				code, _, m := f.tokenRequest(nil, withClientID(pw, f.public.ID), proof)
				if code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
					t.Errorf("%s proof: %d %v; want 400 invalid_dpop_proof", name, code, m)
				}
			}

			// The public client's refresh token is bound: a refresh needs a
			// proof of the same key.
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {f.public.ID}}
			if code, _, m := f.tokenRequest(nil, refresh, ""); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Errorf("refresh of a bound token without a proof: %d %v; want invalid_grant", code, m)
			}
			if code, _, m := f.tokenRequest(nil, refresh, other.Proof("POST", tokenURL, "", nil)); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Errorf("refresh of a bound token with another key: %d %v; want invalid_grant", code, m)
			}
			code, _, m = f.tokenRequest(nil, refresh, key.Proof("POST", tokenURL, "", nil))
			if code != http.StatusOK || m["token_type"] != "DPoP" {
				t.Fatalf("refresh with the key: %d %v", code, m)
			}
			at = str(m, "access_token")

			// authd's API: DPoP scheme with a proof carrying ath.
			me := f.base + "/api/v1/me"
			if code, _ := f.resource("/api/v1/me", "DPoP", at, key.Proof("GET", me, at, nil)); code != http.StatusOK {
				t.Errorf("/api/v1/me with DPoP: %d", code)
			}
			for name, c := range map[string]struct{ scheme, proof, wantErr string }{
				"as Bearer":     {"Bearer", "", "invalid_token"},
				"no proof":      {"DPoP", "", "invalid_dpop_proof"},
				"wrong ath":     {"DPoP", key.Proof("GET", me, at+"x", nil), "invalid_dpop_proof"},
				"other key":     {"DPoP", other.Proof("GET", me, at, nil), "invalid_dpop_proof"},
				"wrong htu":     {"DPoP", key.Proof("GET", f.base+"/userinfo", at, nil), "invalid_dpop_proof"},
				"no ath at all": {"DPoP", key.Proof("GET", me, "", nil), "invalid_dpop_proof"},
			} {
				code, h := f.resource("/api/v1/me", c.scheme, at, c.proof)
				if code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="`+c.wantErr+`"`) {
					t.Errorf("/api/v1/me %s: %d %q; want 401 %s", name, code, h.Get("WWW-Authenticate"), c.wantErr)
				}
			}
			proof := key.Proof("GET", f.base+"/userinfo", at, nil)
			if code, _ := f.resource("/userinfo", "DPoP", at, proof); code != http.StatusOK {
				t.Errorf("/userinfo with DPoP: %d", code)
			}
			if code, _ := f.resource("/userinfo", "DPoP", at, proof); code != http.StatusUnauthorized {
				t.Errorf("/userinfo with a replayed proof: %d; want 401", code)
			}

			// A client registered --dpop-bound must send a proof.
			bound := createClient(t, f.vars, "--id", "bound", "--dpop-bound", "--grant-types", "client_credentials", "--scopes", "x")
			cc := url.Values{"grant_type": {"client_credentials"}}
			if code, _, m := f.tokenRequest(&bound, cc, ""); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
				t.Errorf("dpop-bound client without a proof: %d %v", code, m)
			}
			if code, _, m := f.tokenRequest(&bound, cc, key.Proof("POST", tokenURL, "", nil)); code != http.StatusOK || m["token_type"] != "DPoP" {
				t.Errorf("dpop-bound client with a proof: %d %v", code, m)
			}
			// Other clients may still go without.
			if code, _, m := f.tokenRequest(&f.cc, cc, ""); code != http.StatusOK || !strings.EqualFold(str(m, "token_type"), "bearer") {
				t.Errorf("client_credentials without DPoP: %d %v", code, m)
			}
		})
	}
}

// With server nonces on, a proof without the current nonce gets
// use_dpop_nonce and the nonce in DPoP-Nonce; with it, the request passes.
func TestDPoPNonce(t *testing.T) {
	b := backends()[0]
	f := newFixture(t, b, map[string]string{"AUTHD_DPOP_NONCE": "true"})
	tokenURL := f.base + "/oauth2/token"
	key := dpoptest.NewKey(t)
	form := withClientID(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, f.public.ID)
	code, h, m := f.tokenRequest(nil, form, key.Proof("POST", tokenURL, "", nil))
	nonce := h.Get("DPoP-Nonce")
	if code != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("proof without a nonce: %d %v, DPoP-Nonce %q; want 400 use_dpop_nonce with a nonce", code, m, nonce)
	}
	if code, _, m := f.tokenRequest(nil, form, key.Proof("POST", tokenURL, "", map[string]any{"nonce": "made-up"})); code != http.StatusBadRequest || m["error"] != "use_dpop_nonce" {
		t.Errorf("proof with a wrong nonce: %d %v", code, m)
	}
	code, _, m = f.tokenRequest(nil, form, key.Proof("POST", tokenURL, "", map[string]any{"nonce": nonce}))
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("proof with the nonce: %d %v", code, m)
	}
	// Resource requests to authd's API need no nonce (none is handed out there).
	at := str(m, "access_token")
	if code, _ := f.resource("/api/v1/me", "DPoP", at, key.Proof("GET", f.base+"/api/v1/me", at, nil)); code != http.StatusOK {
		t.Errorf("/api/v1/me with DPoP while token nonces are on: %d", code)
	}
}

func withClientID(form url.Values, id string) url.Values {
	out := url.Values{"client_id": {id}}
	for k, v := range form {
		out[k] = v
	}
	return out
}

// jktOf returns cnf.jkt of a claims or introspection map.
func jktOf(m map[string]any) string {
	cnf, _ := m["cnf"].(map[string]any)
	s, _ := cnf["jkt"].(string)
	return s
}
