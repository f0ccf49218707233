package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// dpopKey is a client's DPoP key; proofs are built here with go-jose alone,
// independently of authd's code.
type dpopKey struct {
	t   *testing.T
	key *ecdsa.PrivateKey
	jkt string
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, key: k, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proof signs a DPoP proof for method and url; accessToken, when set, is
// hashed into ath; extra claims override.
func (k *dpopKey) proof(method, url, accessToken string, extra map[string]any) string {
	k.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		k.t.Fatal(err)
	}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": method, "htu": url, "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for key, v := range extra {
		claims[key] = v
	}
	body, _ := json.Marshal(claims)
	jws, err := signer.Sign(body)
	if err != nil {
		k.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}

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
			key, other := newDPoPKey(t), newDPoPKey(t)
			pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}

			// Discovery advertises the proof algorithms.
			_, _, meta := f.do(f.request("GET", "/.well-known/oauth-authorization-server", ""))
			if algs, _ := meta["dpop_signing_alg_values_supported"].([]any); !slices.Contains(algs, any("ES256")) {
				t.Errorf("dpop_signing_alg_values_supported = %v", meta["dpop_signing_alg_values_supported"])
			}

			// A public client with a proof: DPoP tokens bound to the key.
			code, _, m := f.tokenRequest(nil, withClientID(pw, f.public.ID), key.proof("POST", tokenURL, "", nil))
			if code != http.StatusOK || m["token_type"] != "DPoP" {
				t.Fatalf("password grant with a proof: %d %v", code, m)
			}
			at, rt := str(m, "access_token"), str(m, "refresh_token")
			if _, c := f.verifyJWT(at); jktOf(c) != key.jkt {
				t.Errorf("cnf of the access token = %v; want jkt %s", c["cnf"], key.jkt)
			}
			if got := f.introspect(f.rs, at); got["active"] != true || jktOf(got) != key.jkt {
				t.Errorf("introspection of a bound token: %v", got)
			}

			// The same proof twice is a replay; a proof for another URL or
			// method, or without typ, is invalid.
			replayed := key.proof("POST", tokenURL, "", nil)
			if code, _, _ := f.tokenRequest(nil, withClientID(pw, f.public.ID), replayed); code != http.StatusOK {
				t.Fatalf("first use of a proof: %d", code)
			}
			for name, proof := range map[string]string{
				"replayed":   replayed,
				"wrong htu":  key.proof("POST", f.base+"/oauth2/introspect", "", nil),
				"wrong htm":  key.proof("GET", tokenURL, "", nil),
				"stale iat":  key.proof("POST", tokenURL, "", map[string]any{"iat": time.Now().Add(-10 * time.Minute).Unix()}),
				"not a JWS":  "garbage",
				"no jti":     key.proof("POST", tokenURL, "", map[string]any{"jti": ""}),
				"other host": key.proof("POST", "https://evil.example/oauth2/token", "", nil),
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
			if code, _, m := f.tokenRequest(nil, refresh, other.proof("POST", tokenURL, "", nil)); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Errorf("refresh of a bound token with another key: %d %v; want invalid_grant", code, m)
			}
			code, _, m = f.tokenRequest(nil, refresh, key.proof("POST", tokenURL, "", nil))
			if code != http.StatusOK || m["token_type"] != "DPoP" {
				t.Fatalf("refresh with the key: %d %v", code, m)
			}
			at = str(m, "access_token")

			// authd's API: DPoP scheme with a proof carrying ath.
			me := f.base + "/api/v1/me"
			if code, _ := f.resource("/api/v1/me", "DPoP", at, key.proof("GET", me, at, nil)); code != http.StatusOK {
				t.Errorf("/api/v1/me with DPoP: %d", code)
			}
			for name, c := range map[string]struct{ scheme, proof, wantErr string }{
				"as Bearer":     {"Bearer", "", "invalid_token"},
				"no proof":      {"DPoP", "", "invalid_dpop_proof"},
				"wrong ath":     {"DPoP", key.proof("GET", me, at+"x", nil), "invalid_dpop_proof"},
				"other key":     {"DPoP", other.proof("GET", me, at, nil), "invalid_dpop_proof"},
				"wrong htu":     {"DPoP", key.proof("GET", f.base+"/userinfo", at, nil), "invalid_dpop_proof"},
				"no ath at all": {"DPoP", key.proof("GET", me, "", nil), "invalid_dpop_proof"},
			} {
				code, h := f.resource("/api/v1/me", c.scheme, at, c.proof)
				if code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="`+c.wantErr+`"`) {
					t.Errorf("/api/v1/me %s: %d %q; want 401 %s", name, code, h.Get("WWW-Authenticate"), c.wantErr)
				}
			}
			proof := key.proof("GET", f.base+"/userinfo", at, nil)
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
			if code, _, m := f.tokenRequest(&bound, cc, key.proof("POST", tokenURL, "", nil)); code != http.StatusOK || m["token_type"] != "DPoP" {
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
	key := newDPoPKey(t)
	form := withClientID(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, f.public.ID)
	code, h, m := f.tokenRequest(nil, form, key.proof("POST", tokenURL, "", nil))
	nonce := h.Get("DPoP-Nonce")
	if code != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("proof without a nonce: %d %v, DPoP-Nonce %q; want 400 use_dpop_nonce with a nonce", code, m, nonce)
	}
	if code, _, m := f.tokenRequest(nil, form, key.proof("POST", tokenURL, "", map[string]any{"nonce": "made-up"})); code != http.StatusBadRequest || m["error"] != "use_dpop_nonce" {
		t.Errorf("proof with a wrong nonce: %d %v", code, m)
	}
	code, _, m = f.tokenRequest(nil, form, key.proof("POST", tokenURL, "", map[string]any{"nonce": nonce}))
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("proof with the nonce: %d %v", code, m)
	}
	// Resource requests to authd's API need no nonce (none is handed out there).
	at := str(m, "access_token")
	if code, _ := f.resource("/api/v1/me", "DPoP", at, key.proof("GET", f.base+"/api/v1/me", at, nil)); code != http.StatusOK {
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
