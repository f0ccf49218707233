package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

// The DPoP proofs of these tests are built with go-jose, independently of
// the code under test.

const resourceURL = "https://api.example.com/orders"

// clientKey is a DPoP client's key.
type clientKey struct {
	priv *ecdsa.PrivateKey
	jkt  string
}

func newClientKey(t testing.TB) *clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &clientKey{priv: priv, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

var jtiSeq atomic.Int64

// proofClaims are a proof's claims for GET resourceURL at testNow, for
// token, with a new jti.
func proofClaims(token string) map[string]any {
	sum := sha256.Sum256([]byte(token))
	return map[string]any{
		"jti": "jti-" + strconv.FormatInt(jtiSeq.Add(1), 10),
		"htm": http.MethodGet,
		"htu": resourceURL,
		"iat": testNow.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}

// proof signs c as RFC 9449 §4.2 says; extra headers replace the defaults.
func (k *clientKey) proof(t testing.TB, c map[string]any, extra ...any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}}
	for i := 0; i+1 < len(extra); i += 2 {
		opts.ExtraHeaders[jose.HeaderKey(extra[i].(string))] = extra[i+1]
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bound is an access token's claims bound to k.
func bound(k *clientKey) map[string]any {
	return with(claims(iss), "cnf", map[string]any{"jkt": k.jkt})
}

func newDPoPVerifier(t testing.TB, mode verify.DPoPMode, key *testKey, extra ...func(*verify.Config)) *verify.Verifier {
	t.Helper()
	cfg := verify.Config{Issuer: iss, Audience: audience, Now: fixedNow, DPoP: mode}
	for _, f := range extra {
		f(&cfg)
	}
	v, err := verify.NewStatic(cfg, jwks(t, key.jwk()))
	if err != nil {
		t.Fatalf("NewStatic: %v", err)
	}
	return v
}

// request is a request to serve: method, URL, Authorization and DPoP headers.
type request struct {
	method string
	url    string
	auth   []string
	proofs []string
}

func serveRequest(t *testing.T, h http.Handler, rq request) (*http.Response, errorBody, string) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	if rq.url == "" {
		rq.url = resourceURL
	}
	req := httptest.NewRequestWithContext(t.Context(), rq.method, rq.url, nil)
	for _, a := range rq.auth {
		req.Header.Add("Authorization", a)
	}
	for _, p := range rq.proofs {
		req.Header.Add("DPoP", p)
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
	}
	return resp, body, string(raw)
}

// echoJKT answers 200 with the subject and the token's cnf.jkt.
var echoJKT = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := verify.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, c.Subject+" "+c.Confirmation.JKT)
})

const algs = `algs="ES256 EdDSA RS256"`

// TestDPoPMiddleware is the table of hostile and good requests, in each mode.
func TestDPoPMiddleware(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	mallory := newClientKey(t)
	tok := key.sign(t, bound(alice))
	other := key.sign(t, with(bound(alice), "jti", "jti-2")) // bound to alice too, another token
	unbound := key.sign(t, claims(iss))
	expired := key.sign(t, with(bound(alice), "exp", testNow.Add(-time.Hour).Unix()))
	emptyCnf := key.sign(t, with(claims(iss), "cnf", map[string]any{}))
	stringCnf := key.sign(t, with(claims(iss), "cnf", "x"))
	good := func() string { return alice.proof(t, proofClaims(tok)) }
	for1 := func(token string, kv ...any) string { return alice.proof(t, with(proofClaims(token), kv...)) }

	bearerInvalid := `Bearer realm="orders", error="invalid_token", error_description=`
	dpopInvalidToken := `DPoP realm="orders", error="invalid_token", error_description=`
	dpopInvalidProof := `DPoP realm="orders", error="invalid_dpop_proof", error_description=`
	type want struct {
		status     int
		challenges []string // prefixes, in order
		code       string
	}
	ok := want{status: 200}
	badProof := want{401, []string{dpopInvalidProof, `Bearer realm="orders"`}, "invalid_dpop_proof"}
	badToken := want{401, []string{dpopInvalidToken, `Bearer realm="orders"`}, "invalid_token"}
	cases := []struct {
		name string
		rq   request
		want want
	}{
		{"bound token with its proof", request{auth: []string{"DPoP " + tok}, proofs: []string{good()}}, ok},
		{"scheme is case-insensitive", request{auth: []string{"dpop " + tok}, proofs: []string{good()}}, ok},
		{"unbound token as Bearer", request{auth: []string{"Bearer " + unbound}}, ok},
		{"unbound token as Bearer, a stray proof ignored", request{auth: []string{"Bearer " + unbound}, proofs: []string{"junk"}}, ok},
		{"htu with a query", request{url: resourceURL + "?page=2", auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htu", resourceURL+"?page=1")}}, ok},
		{"htu with the default port", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htu", "https://api.example.com:443/orders")}}, ok},
		{"POST with a POST proof", request{method: http.MethodPost, auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htm", "POST")}}, ok},

		{"bound token as Bearer", request{auth: []string{"Bearer " + tok}},
			want{401, []string{bearerInvalid + `"the access token is bound to a key: present it with the DPoP scheme and a proof"`, `DPoP realm="orders", ` + algs}, "invalid_token"}},
		{"bound token as Bearer with its proof", request{auth: []string{"Bearer " + tok}, proofs: []string{good()}},
			want{401, []string{bearerInvalid, `DPoP realm="orders", ` + algs}, "invalid_token"}},
		{"unbound token as DPoP", request{auth: []string{"DPoP " + unbound}, proofs: []string{alice.proof(t, proofClaims(unbound))}},
			want{401, []string{dpopInvalidToken + `"the access token is not bound to a DPoP key", ` + algs}, "invalid_token"}},
		{"cnf without jkt as DPoP", request{auth: []string{"DPoP " + emptyCnf}, proofs: []string{alice.proof(t, proofClaims(emptyCnf))}}, badToken},
		{"cnf without jkt as Bearer", request{auth: []string{"Bearer " + emptyCnf}},
			want{401, []string{bearerInvalid}, "invalid_token"}},
		{"cnf a string", request{auth: []string{"DPoP " + stringCnf}, proofs: []string{alice.proof(t, proofClaims(stringCnf))}}, badToken},
		{"expired bound token", request{auth: []string{"DPoP " + expired}, proofs: []string{alice.proof(t, proofClaims(expired))}},
			want{401, []string{dpopInvalidToken + `"the access token expired"`}, "invalid_token"}},
		{"garbage token", request{auth: []string{"DPoP abc.def.ghi"}, proofs: []string{good()}}, badToken},
		{"no proof", request{auth: []string{"DPoP " + tok}},
			want{401, []string{dpopInvalidProof + `"a DPoP proof is required (the DPoP header)", ` + algs}, "invalid_dpop_proof"}},
		{"empty proof", request{auth: []string{"DPoP " + tok}, proofs: []string{""}}, badProof},
		{"two proofs", request{auth: []string{"DPoP " + tok}, proofs: []string{good(), good()}}, badProof},
		{"proof of another key (a thief's)", request{auth: []string{"DPoP " + tok}, proofs: []string{mallory.proof(t, proofClaims(tok))}},
			want{401, []string{dpopInvalidProof + `"the DPoP proof is invalid: the proof is signed by another key than the token's"`}, "invalid_dpop_proof"}},
		{"proof for another token (ath)", request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(other))}},
			want{401, []string{dpopInvalidProof + `"the DPoP proof is invalid: ath does not match the access token"`}, "invalid_dpop_proof"}},
		{"proof without ath", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "ath", nil)}}, badProof},
		{"proof for POST", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htm", "POST")}},
			want{401, []string{dpopInvalidProof + `"the DPoP proof is invalid: htm does not match the request"`}, "invalid_dpop_proof"}},
		{"proof for another host", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htu", "https://evil.example/orders")}}, badProof},
		{"proof for another path", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htu", "https://api.example.com/orders/1")}}, badProof},
		{"proof over http", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "htu", "http://api.example.com/orders")}}, badProof},
		{"proof too old", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "iat", testNow.Add(-61*time.Second).Unix())}},
			want{401, []string{dpopInvalidProof + `"the DPoP proof is invalid: iat is outside the accepted window"`}, "invalid_dpop_proof"}},
		{"proof from the future", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "iat", testNow.Add(61*time.Second).Unix())}}, badProof},
		{"proof without jti", request{auth: []string{"DPoP " + tok}, proofs: []string{for1(tok, "jti", nil)}}, badProof},
		{"proof typ JWT", request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok), "typ", "JWT")}}, badProof},
		{"proof with crit", request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok), "crit", []string{"b64"}, "b64", true)}}, badProof},
		{"proof with a bad signature", request{auth: []string{"DPoP " + tok}, proofs: []string{flipSignature(good())}}, badProof},
		{"proof not a JWS", request{auth: []string{"DPoP " + tok}, proofs: []string{"a.b.c"}}, badProof},
		{"the token as its own proof", request{auth: []string{"DPoP " + tok}, proofs: []string{tok}}, badProof},
		{"DPoP without token", request{auth: []string{"DPoP "}, proofs: []string{good()}},
			want{400, []string{`DPoP realm="orders", error="invalid_request", error_description="the Authorization header is not DPoP followed by a token"`}, "invalid_request"}},
		{"DPoP with two tokens", request{auth: []string{"DPoP " + tok + " " + tok}, proofs: []string{good()}},
			want{400, []string{`DPoP realm="orders", error="invalid_request"`}, "invalid_request"}},
		{"no Authorization", request{},
			want{401, []string{`Bearer realm="orders"`, `DPoP realm="orders", ` + algs}, "unauthorized"}},
	}
	v := newDPoPVerifier(t, verify.DPoPAccept, key)
	h := v.Middleware(echoJKT)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResponse(t, h, tc.rq, tc.want.status, tc.want.challenges, tc.want.code)
		})
	}

	t.Run("claims carry the binding", func(t *testing.T) {
		_, _, raw := serveRequest(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{good()}})
		if raw != "user-1 "+alice.jkt {
			t.Errorf("handler saw %q; want the subject and alice's thumbprint", raw)
		}
		_, _, raw = serveRequest(t, h, request{auth: []string{"Bearer " + unbound}})
		if raw != "user-1 " {
			t.Errorf("handler saw %q for an unbound token; want no thumbprint", raw)
		}
	})
}

func checkResponse(t *testing.T, h http.Handler, rq request, status int, challenges []string, code string) {
	t.Helper()
	resp, body, raw := serveRequest(t, h, rq)
	if resp.StatusCode != status {
		t.Fatalf("status = %d (%s); want %d", resp.StatusCode, raw, status)
	}
	got := resp.Header.Values("WWW-Authenticate")
	if status == 200 {
		if len(got) != 0 {
			t.Errorf("WWW-Authenticate on 200: %q", got)
		}
		return
	}
	if len(got) < len(challenges) {
		t.Fatalf("WWW-Authenticate = %q; want %d challenges starting %q", got, len(challenges), challenges)
	}
	for i, want := range challenges {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("WWW-Authenticate[%d] = %q; want it to start %q", i, got[i], want)
		}
		if strings.HasPrefix(got[i], "DPoP") && !strings.HasSuffix(got[i], algs) {
			t.Errorf("DPoP challenge %q does not end with %s", got[i], algs)
		}
	}
	if body.Error != code || body.Description == "" {
		t.Errorf("body = %+v; want error %q and a description", body, code)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q; want no-store", resp.Header.Get("Cache-Control"))
	}
}

func flipSignature(jws string) string {
	dot := strings.LastIndexByte(jws, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(jws[dot+1:])
	sig[10] ^= 1
	return jws[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func TestDPoPReplay(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	v := newDPoPVerifier(t, verify.DPoPAccept, key)
	h := v.Middleware(echoJKT)
	proof := alice.proof(t, proofClaims(tok))
	rq := request{auth: []string{"DPoP " + tok}, proofs: []string{proof}}
	checkResponse(t, h, rq, 200, nil, "")
	checkResponse(t, h, rq, 401, []string{`DPoP realm="orders", error="invalid_dpop_proof", error_description="the DPoP proof is invalid: jti already used"`}, "invalid_dpop_proof")
	// Through VerifyDPoP (same cache) too, and for a proof refused once for
	// another reason, then presented right.
	if _, err := v.VerifyDPoP(t.Context(), tok, proof, http.MethodGet, resourceURL); !errors.Is(err, verify.ErrDPoPProof) {
		t.Errorf("VerifyDPoP(replayed proof) = %v; want ErrDPoPProof", err)
	}
	fresh := alice.proof(t, proofClaims(tok))
	checkResponse(t, h, request{method: http.MethodPost, auth: []string{"DPoP " + tok}, proofs: []string{fresh}}, 401, nil, "invalid_dpop_proof")
	checkResponse(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{fresh}}, 200, nil, "")
}

func TestDPoPRequire(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	unbound := key.sign(t, claims(iss))
	h := newDPoPVerifier(t, verify.DPoPRequire, key).Middleware(echoJKT)
	only := func(prefix string) []string { return []string{prefix} }
	cases := []struct {
		name       string
		rq         request
		status     int
		challenges []string
		code       string
	}{
		{"bound token with its proof", request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok))}}, 200, nil, ""},
		{"unbound token as DPoP", request{auth: []string{"DPoP " + unbound}, proofs: []string{alice.proof(t, proofClaims(unbound))}}, 401,
			only(`DPoP realm="orders", error="invalid_token", error_description="the access token is not bound to a DPoP key", ` + algs), "invalid_token"},
		{"unbound token as Bearer", request{auth: []string{"Bearer " + unbound}}, 401,
			only(`DPoP realm="orders", error="invalid_token", error_description="a DPoP-bound access token presented with the DPoP scheme and a proof is required", ` + algs), "invalid_token"},
		{"bound token as Bearer", request{auth: []string{"Bearer " + tok}, proofs: []string{alice.proof(t, proofClaims(tok))}}, 401,
			only(`DPoP realm="orders", error="invalid_token"`), "invalid_token"},
		{"no proof", request{auth: []string{"DPoP " + tok}}, 401, only(`DPoP realm="orders", error="invalid_dpop_proof"`), "invalid_dpop_proof"},
		{"no Authorization", request{}, 401, only(`DPoP realm="orders", ` + algs), "unauthorized"},
		{"Basic", request{auth: []string{"Basic dXNlcjpwYXNz"}}, 401, only(`DPoP realm="orders", ` + algs), "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResponse(t, h, tc.rq, tc.status, tc.challenges, tc.code)
			if tc.status != 200 {
				resp, _, _ := serveRequest(t, h, tc.rq)
				if n := len(resp.Header.Values("WWW-Authenticate")); n != 1 {
					t.Errorf("%d challenges; want only DPoP's", n)
				}
			}
		})
	}
}

// TestDPoPOff: the default keeps Bearer as it was, and refuses bound tokens.
func TestDPoPOff(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	h := newStatic(t, iss, key.jwk()).Middleware(echoJKT)
	checkResponse(t, h, request{auth: []string{"Bearer " + key.sign(t, claims(iss))}}, 200, nil, "")
	checkResponse(t, h, request{auth: []string{"Bearer " + tok}}, 401,
		[]string{`Bearer realm="orders", error="invalid_token", error_description="the access token is bound to a key: present it with the DPoP scheme and a proof"`}, "invalid_token")
	// The DPoP scheme is an unknown scheme here, as before.
	resp, body, _ := serveRequest(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok))}})
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || !slices.Equal(got, []string{`Bearer realm="orders"`}) || body.Error != "unauthorized" {
		t.Errorf("DPoP scheme with DPoP off: %d %q %+v; want 401, a bare Bearer challenge", resp.StatusCode, got, body)
	}
}

// TestDPoPPublicURL: behind a proxy the htu is the public URL; in-process
// prefix stripping does not change it.
func TestDPoPPublicURL(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	proofFor := func(htu string) string { return alice.proof(t, with(proofClaims(tok), "htu", htu)) }

	v := newDPoPVerifier(t, verify.DPoPAccept, key, func(c *verify.Config) { c.PublicURL = "https://shop.example/api/" })
	h := v.Middleware(echoJKT)
	internal := "http://10.0.0.7:8081/orders" // as the proxy forwards it, /api removed
	checkResponse(t, h, request{url: internal, auth: []string{"DPoP " + tok}, proofs: []string{proofFor("https://shop.example/api/orders")}}, 200, nil, "")
	checkResponse(t, h, request{url: internal, auth: []string{"DPoP " + tok}, proofs: []string{proofFor(internal)}}, 401, nil, "invalid_dpop_proof")
	checkResponse(t, h, request{url: internal, auth: []string{"DPoP " + tok}, proofs: []string{proofFor("https://shop.example/orders")}}, 401, nil, "invalid_dpop_proof")

	// Without PublicURL: the request's own scheme and Host. A Host header
	// the client chose does not help a thief: the proof is still needed.
	plain := newDPoPVerifier(t, verify.DPoPAccept, key).Middleware(echoJKT)
	checkResponse(t, plain, request{url: internal, auth: []string{"DPoP " + tok}, proofs: []string{proofFor(internal)}}, 200, nil, "")
	checkResponse(t, plain, request{url: internal, auth: []string{"DPoP " + tok}, proofs: []string{proofFor("https://10.0.0.7:8081/orders")}}, 401, nil, "invalid_dpop_proof")

	// Mounted under http.StripPrefix: the path the client sent counts.
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.StripPrefix("/v1", plain))
	checkResponse(t, mux, request{url: "https://api.example.com/v1/orders", auth: []string{"DPoP " + tok}, proofs: []string{proofFor("https://api.example.com/v1/orders")}}, 200, nil, "")

	for _, bad := range []string{"api.example.com", "ftp://x.example", "https://x.example/?q=1", "https://u@x.example", "https://x.example/#f", "https://"} {
		if _, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, DPoP: verify.DPoPAccept, PublicURL: bad}, jwks(t, key.jwk())); err == nil {
			t.Errorf("PublicURL %q accepted", bad)
		}
	}
}

func TestDPoPConfig(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	for _, c := range []verify.Config{
		{DPoP: verify.DPoPMode(7)},
		{DPoP: verify.DPoPAccept, DPoPWindow: -time.Second},
	} {
		c.Issuer, c.Audience = iss, audience
		if _, err := verify.NewStatic(c, jwks(t, key.jwk())); err == nil {
			t.Errorf("NewStatic(%+v) = nil error", c)
		}
	}
	if s := verify.DPoPRequire.String(); s != "require" {
		t.Errorf("DPoPRequire.String() = %q", s)
	}

	// A wider window takes older proofs; at most 5 minutes.
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	for _, tc := range []struct {
		window time.Duration
		age    time.Duration
		ok     bool
	}{
		{0, 60 * time.Second, true},
		{0, 61 * time.Second, false},
		{3 * time.Minute, 170 * time.Second, true},
		{time.Hour, 299 * time.Second, true},
		{time.Hour, 301 * time.Second, false},
	} {
		v := newDPoPVerifier(t, verify.DPoPAccept, key, func(c *verify.Config) { c.DPoPWindow = tc.window })
		_, err := v.VerifyDPoP(t.Context(), tok, alice.proof(t, with(proofClaims(tok), "iat", testNow.Add(-tc.age).Unix())), http.MethodGet, resourceURL)
		if (err == nil) != tc.ok {
			t.Errorf("window %v, proof %v old: %v; want accepted %v", tc.window, tc.age, err, tc.ok)
		}
	}
}

// TestVerifyDPoP is the function behind the middleware, and Verify's and
// Introspect's refusal of bound tokens.
func TestVerifyDPoP(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	v := newStatic(t, iss, key.jwk()) // DPoPOff: VerifyDPoP still works
	c, err := v.VerifyDPoP(t.Context(), tok, alice.proof(t, proofClaims(tok)), http.MethodGet, resourceURL)
	if err != nil {
		t.Fatalf("VerifyDPoP = %v", err)
	}
	if c.Confirmation.JKT != alice.jkt || c.Subject != "user-1" {
		t.Errorf("claims = %+v; want cnf.jkt %s", c, alice.jkt)
	}
	_, err = v.Verify(t.Context(), tok)
	if !errors.Is(err, verify.ErrDPoPBinding) || !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("Verify(bound token) = %v; want ErrDPoPBinding, an ErrInvalid", err)
	}
	unbound := key.sign(t, claims(iss))
	if _, err := v.VerifyDPoP(t.Context(), unbound, alice.proof(t, proofClaims(unbound)), http.MethodGet, resourceURL); !errors.Is(err, verify.ErrDPoPBinding) {
		t.Errorf("VerifyDPoP(unbound token) = %v; want ErrDPoPBinding", err)
	}
	if _, err := v.VerifyDPoP(t.Context(), tok, "", http.MethodGet, resourceURL); !errors.Is(err, verify.ErrDPoPProof) {
		t.Errorf("VerifyDPoP(no proof) = %v; want ErrDPoPProof", err)
	}
	if _, err := v.VerifyDPoP(t.Context(), tok, alice.proof(t, proofClaims(tok)), http.MethodDelete, resourceURL); !errors.Is(err, verify.ErrDPoPProof) || errors.Is(err, verify.ErrInvalid) {
		t.Errorf("VerifyDPoP(proof for GET, DELETE) = %v; want ErrDPoPProof, not ErrInvalid", err)
	}
	if _, err := v.VerifyDPoP(t.Context(), "x.y.z", alice.proof(t, proofClaims("x.y.z")), http.MethodGet, resourceURL); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("VerifyDPoP(bad token) = %v; want ErrInvalid", err)
	}
}

// failingCache fails every call; countingCache counts them and says fresh.
type failingCache struct{}

func (failingCache) Remember(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("redis: connection refused")
}

type countingCache struct {
	keys  []string
	until []time.Time
}

func (c *countingCache) Remember(_ context.Context, key string, until time.Time) (bool, error) {
	c.keys = append(c.keys, key)
	c.until = append(c.until, until)
	return true, nil
}

func TestDPoPReplayCacheOption(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	pc := proofClaims(tok)
	proof := alice.proof(t, pc)
	rq := request{auth: []string{"DPoP " + tok}, proofs: []string{proof}}

	cc := &countingCache{}
	h := newDPoPVerifier(t, verify.DPoPAccept, key, func(c *verify.Config) { c.DPoPReplayCache = cc }).Middleware(echoJKT)
	checkResponse(t, h, rq, 200, nil, "")
	checkResponse(t, h, rq, 200, nil, "") // this cache forgets everything
	if len(cc.keys) != 2 || cc.keys[0] != alice.jkt+":"+pc["jti"].(string) || !cc.until[0].Equal(testNow.Add(61*time.Second)) {
		t.Errorf("cache saw %q until %v; want <jkt>:<jti> until iat+61s", cc.keys, cc.until)
	}
	// Proofs refused for other reasons are not remembered.
	checkResponse(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{flipSignature(proof)}}, 401, nil, "invalid_dpop_proof")
	if len(cc.keys) != 2 {
		t.Errorf("a refused proof reached the cache")
	}

	// A cache that fails: closed, 503.
	h = newDPoPVerifier(t, verify.DPoPAccept, key, func(c *verify.Config) { c.DPoPReplayCache = failingCache{} }).Middleware(echoJKT)
	resp, body, _ := serveRequest(t, h, rq)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error != "temporarily_unavailable" {
		t.Errorf("failing replay cache: %d %+v; want 503 temporarily_unavailable", resp.StatusCode, body)
	}

	// The exported in-memory cache.
	mc := verify.NewMemoryReplayCache(1, fixedNow)
	if f, err := mc.Remember(t.Context(), "a", testNow.Add(time.Second)); !f || err != nil {
		t.Fatalf("first = %v, %v", f, err)
	}
	if f, err := mc.Remember(t.Context(), "b", testNow.Add(time.Second)); f || err == nil {
		t.Errorf("full cache = %v, %v; want an error (fail closed)", f, err)
	}
}

// TestDPoPOnline: OnlineMiddleware checks the proof, then asks authd.
func TestDPoPOnline(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	f := &introspection{id: "orders:api", secret: "s3cret", revoked: map[string]bool{}}
	hf := f.handler(t)
	is.introspect.Store(&hf)
	v, _ := newVerifierClock(t, is, verify.Config{
		IntrospectionClientID: f.id, IntrospectionClientSecret: f.secret, DPoP: verify.DPoPAccept,
	})
	h := v.OnlineMiddleware(echoJKT)
	alice := newClientKey(t)
	tok := key.sign(t, with(claims(is.url()), "cnf", map[string]any{"jkt": alice.jkt}))
	revoked := key.sign(t, with(claims(is.url()), "cnf", map[string]any{"jkt": alice.jkt}, "jti", "r"))
	f.revoke(revoked)

	checkResponse(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok))}}, 200, nil, "")
	if f.calls.Load() != 1 {
		t.Errorf("introspection asked %d times; want 1", f.calls.Load())
	}
	checkResponse(t, h, request{auth: []string{"DPoP " + revoked}, proofs: []string{alice.proof(t, proofClaims(revoked))}}, 401,
		[]string{`DPoP realm="orders", error="invalid_token", error_description="the access token is not active"`}, "invalid_token")
	calls := f.calls.Load()
	// Refused before authd is asked: a bad proof, and the bound token as Bearer.
	checkResponse(t, h, request{auth: []string{"DPoP " + tok}}, 401, nil, "invalid_dpop_proof")
	checkResponse(t, h, request{auth: []string{"Bearer " + tok}}, 401, nil, "invalid_token")
	if f.calls.Load() != calls {
		t.Errorf("introspection asked about requests already refused")
	}
	if _, err := v.Introspect(t.Context(), tok); !errors.Is(err, verify.ErrDPoPBinding) {
		t.Errorf("Introspect(bound token) = %v; want ErrDPoPBinding", err)
	}
}

// TestDPoPRequireRole: a 403 after DPoP names the DPoP scheme.
func TestDPoPRequireRole(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	alice := newClientKey(t)
	tok := key.sign(t, bound(alice))
	v := newDPoPVerifier(t, verify.DPoPAccept, key)
	h := v.Middleware(verify.RequireRole("admin")(echoJKT))
	checkResponse(t, h, request{auth: []string{"DPoP " + tok}, proofs: []string{alice.proof(t, proofClaims(tok))}}, 403,
		[]string{`DPoP realm="orders", error="insufficient_scope", error_description="requires the role admin", ` + algs}, "insufficient_scope")
	checkResponse(t, h, request{auth: []string{"Bearer " + key.sign(t, claims(iss))}}, 403,
		[]string{`Bearer realm="orders", error="insufficient_scope", error_description="requires the role admin"`}, "insufficient_scope")
}
