package dpop_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/internal/dpop"
)

func params() dpop.Params {
	return dpop.Params{Method: testMethod, URL: testURL, Now: testNow}
}

var algs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// TestRFC7638Example checks the test's own thumbprint against the example of
// RFC 7638 §3.1, and go-jose's.
func TestRFC7638Example(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	jwk := map[string]any{"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
	got, err := thumbprint(jwk)
	if err != nil || got != want {
		t.Fatalf("thumbprint(RFC 7638 §3.1) = %q, %v; want %q", got, err, want)
	}
	raw, _ := json.Marshal(jwk)
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil || base64.RawURLEncoding.EncodeToString(tp) != want {
		t.Fatalf("go-jose thumbprint = %x, %v", tp, err)
	}
}

func TestGoodProof(t *testing.T) {
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := newClientKey(t, alg)
			proof := k.proof(t, claims())
			got, err := dpop.Check(proof, params())
			if err != nil {
				t.Fatalf("Check(good proof) = %v", err)
			}
			want, err := thumbprint(k.publicJWK(t))
			if err != nil {
				t.Fatal(err)
			}
			tp, err := (&jose.JSONWebKey{Key: k.priv.Public()}).Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got.JKT != want || got.JKT != base64.RawURLEncoding.EncodeToString(tp) {
				t.Errorf("JKT = %q; want %q (by hand) = %x (go-jose)", got.JKT, want, tp)
			}
			if len(got.JKT) != 43 {
				t.Errorf("JKT %q is not 43 characters of base64url", got.JKT)
			}
			if got.JTI != "e1j3V_bKic8-LAEB" || !got.IssuedAt.Equal(testNow) {
				t.Errorf("Proof = %+v", got)
			}
			if _, _, err := verifyIndependently(proof); err != nil {
				t.Errorf("the test's own verification refuses a good proof: %v", err)
			}
		})
	}
}

// TestAcceptedVariants are proofs that differ from the request in ways RFC
// 9449 §4.3 says do not matter, or carry what the server asked for.
func TestAcceptedVariants(t *testing.T) {
	k := newClientKey(t, jose.ES256)
	token := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	cases := []struct {
		name  string
		proof string
		p     func(*dpop.Params)
	}{
		{"htu with a query", k.proof(t, with(claims(), "htu", testURL+"?a=b")), nil},
		{"htu with a fragment", k.proof(t, with(claims(), "htu", testURL+"#frag")), nil},
		{"request URL with a query", k.proof(t, claims()), func(p *dpop.Params) { p.URL = testURL + "?x=1" }},
		{"htu with the default port", k.proof(t, with(claims(), "htu", "https://auth.example.com:443/oauth2/token")), nil},
		{"request with the default port", k.proof(t, claims()), func(p *dpop.Params) { p.URL = "https://auth.example.com:443/oauth2/token" }},
		{"http default port", k.proof(t, with(claims(), "htu", "http://rs.example:80/x")), func(p *dpop.Params) { p.URL = "http://rs.example/x" }},
		{"scheme and host case", k.proof(t, with(claims(), "htu", "HTTPS://Auth.Example.COM/oauth2/token")), nil},
		{"iat at the edge of the window, past", k.proof(t, with(claims(), "iat", testNow.Add(-60*time.Second).Unix())), nil},
		{"iat at the edge of the window, future", k.proof(t, with(claims(), "iat", testNow.Add(60*time.Second).Unix())), nil},
		{"wider window", k.proof(t, with(claims(), "iat", testNow.Add(-4*time.Minute).Unix())), func(p *dpop.Params) { p.Window = 5 * time.Minute }},
		{"fractional iat", k.proof(t, with(claims(), "iat", float64(testNow.Unix())+0.5)), nil},
		{"ath of the token", k.proof(t, with(claims(), "ath", ath(token))), func(p *dpop.Params) { p.AccessToken = token }},
		{"the server's nonce", k.proof(t, with(claims(), "nonce", "n-1")), func(p *dpop.Params) { p.Nonce = "n-1" }},
		{"ath present, none asked (token endpoint)", k.proof(t, with(claims(), "ath", ath(token))), nil},
		{"extra header and claims", k.proof(t, with(claims(), "foo", "bar"), "kid", "k1"), nil},
		{"algs restricted to its own", k.proof(t, claims()), func(p *dpop.Params) { p.Algs = []string{"ES256"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.p != nil {
				tc.p(&p)
			}
			if _, err := dpop.Check(tc.proof, p); err != nil {
				t.Errorf("Check = %v; want accepted", err)
			}
		})
	}
}

// TestEachCheckAlone changes one thing of a good proof at a time; each must
// be refused as ErrInvalidProof (or ErrUseNonce).
func TestEachCheckAlone(t *testing.T) {
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) { testEachCheckAlone(t, alg) })
	}
}

func testEachCheckAlone(t *testing.T, alg jose.SignatureAlgorithm) {
	k := newClientKey(t, alg)
	other := newClientKey(t, jose.ES256)
	token := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	good := k.proof(t, claims())
	parts := strings.Split(good, ".")

	// Signature bytes flipped in the middle (the last character may carry
	// unused bits).
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	// HS256 over the input, keyed with the public key's bytes: the
	// algorithm-confusion attack.
	hsInput := b64JSON(t, k.header(t, "alg", "HS256")) + "." + b64JSON(t, claims())
	mac := hmac.New(sha256.New, []byte(b64JSON(t, k.publicJWK(t))))
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	noneInput := b64JSON(t, k.header(t, "alg", "none")) + "." + b64JSON(t, claims())

	// Two signatures, JSON serialization; and one, flattened JSON.
	multi, err := jose.NewMultiSigner([]jose.SigningKey{
		{Algorithm: k.alg, Key: k.priv}, {Algorithm: other.alg, Key: other.priv},
	}, &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims())
	mjws, err := multi.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	twoSigs := mjws.FullSerialize()
	single, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}})
	if err != nil {
		t.Fatal(err)
	}
	sjws, err := single.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	flattened := sjws.FullSerialize()

	// The last character of a part with unused bits set: the same bytes,
	// another string.
	malleable := ""
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		cand := good[:len(good)-1] + string(c)
		if cand == good {
			continue
		}
		if b, err := base64.RawURLEncoding.DecodeString(cand[strings.LastIndexByte(cand, '.')+1:]); err == nil && string(b) == string(mustDecode(t, parts[2])) {
			malleable = cand
			break
		}
	}

	cases := []struct {
		name  string
		proof string
		p     func(*dpop.Params)
		want  error
		why   string // in the error
	}{
		{"empty", "", nil, dpop.ErrInvalidProof, "missing or too long"},
		{"typ JWT", k.proof(t, claims(), "typ", "JWT"), nil, dpop.ErrInvalidProof, "typ"},
		{"typ DPOP+JWT", k.proof(t, claims(), "typ", "DPOP+JWT"), nil, dpop.ErrInvalidProof, "typ"},
		{"no typ", k.proof(t, claims(), "typ", nil), nil, dpop.ErrInvalidProof, "typ"},
		{"typ not a string", k.rawProof(t, k.header(t, "typ", 1), claims()), nil, dpop.ErrInvalidProof, "typ"},
		{"alg none", noneInput + ".", nil, dpop.ErrInvalidProof, "canonical"},
		{"alg none with a signature", noneInput + "." + parts[2], nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"alg HS256", hs256, nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"alg ES384 (not allowed)", k.rawProof(t, k.header(t, "alg", "ES384"), claims()), nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"alg of another key type", k.rawProof(t, with(k.header(t), "jwk", other.publicJWK(t)), claims()), nil, dpop.ErrInvalidProof, "bad signature"},
		{"alg outside Params.Algs", good, func(p *dpop.Params) { p.Algs = []string{"PS256"} }, dpop.ErrInvalidProof, "accepted algorithm"},
		{"private key embedded", k.rawProof(t, k.header(t, "jwk", k.privateJWK(t)), claims()), nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"symmetric key embedded", k.rawProof(t, k.header(t, "jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"}), claims()), nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"no jwk", k.signWith(t, claims(), &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}}), nil, dpop.ErrInvalidProof, "jwk is missing"},
		{"jwk of another key", k.rawProof(t, k.header(t, "jwk", newClientKey(t, alg).publicJWK(t)), claims()), nil, dpop.ErrInvalidProof, "bad signature"},
		{"jwk not an object", k.rawProof(t, k.header(t, "jwk", "x"), claims()), nil, dpop.ErrInvalidProof, "accepted algorithm"},
		{"bad signature", badSig, nil, dpop.ErrInvalidProof, "bad signature"},
		{"signature cut", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2], nil, dpop.ErrInvalidProof, ""},
		{"signature of other claims", parts[0] + "." + b64JSON(t, with(claims(), "htm", "GET")) + "." + parts[2], nil, dpop.ErrInvalidProof, "bad signature"},
		{"wrong htm", k.proof(t, with(claims(), "htm", "GET")), nil, dpop.ErrInvalidProof, "htm"},
		{"htm lower case", k.proof(t, with(claims(), "htm", "post")), nil, dpop.ErrInvalidProof, "htm"},
		{"no htm", k.proof(t, with(claims(), "htm", nil)), nil, dpop.ErrInvalidProof, "htm"},
		{"htu of another host", k.proof(t, with(claims(), "htu", "https://evil.example.com/oauth2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu of another path", k.proof(t, with(claims(), "htu", "https://auth.example.com/api/v1/me")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu path case", k.proof(t, with(claims(), "htu", "https://auth.example.com/OAUTH2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu over http", k.proof(t, with(claims(), "htu", "http://auth.example.com/oauth2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu of another port", k.proof(t, with(claims(), "htu", "https://auth.example.com:8443/oauth2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu with userinfo", k.proof(t, with(claims(), "htu", "https://u:p@auth.example.com/oauth2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"htu relative", k.proof(t, with(claims(), "htu", "/oauth2/token")), nil, dpop.ErrInvalidProof, "htu"},
		{"no htu", k.proof(t, with(claims(), "htu", nil)), nil, dpop.ErrInvalidProof, "htu"},
		{"iat too old", k.proof(t, with(claims(), "iat", testNow.Add(-61*time.Second).Unix())), nil, dpop.ErrInvalidProof, "iat is outside"},
		{"iat in the future", k.proof(t, with(claims(), "iat", testNow.Add(61*time.Second).Unix())), nil, dpop.ErrInvalidProof, "iat is outside"},
		{"iat far in the future", k.proof(t, with(claims(), "iat", 1e300)), nil, dpop.ErrInvalidProof, "iat is outside"},
		{"iat negative", k.proof(t, with(claims(), "iat", -1)), nil, dpop.ErrInvalidProof, "iat is missing"},
		{"iat a string", k.proof(t, with(claims(), "iat", "1800000000")), nil, dpop.ErrInvalidProof, "iat is missing"},
		{"no iat", k.proof(t, with(claims(), "iat", nil)), nil, dpop.ErrInvalidProof, "iat is missing"},
		{"no jti", k.proof(t, with(claims(), "jti", nil)), nil, dpop.ErrInvalidProof, "jti"},
		{"empty jti", k.proof(t, with(claims(), "jti", "")), nil, dpop.ErrInvalidProof, "jti"},
		{"jti too long", k.proof(t, with(claims(), "jti", strings.Repeat("j", 257))), nil, dpop.ErrInvalidProof, "jti"},
		{"jti not a string", k.proof(t, with(claims(), "jti", 7)), nil, dpop.ErrInvalidProof, "not a JSON object"},
		{"wrong ath", k.proof(t, with(claims(), "ath", ath("another token"))), func(p *dpop.Params) { p.AccessToken = token }, dpop.ErrInvalidProof, "ath"},
		{"ath not base64url of the hash", k.proof(t, with(claims(), "ath", ath(token)+"=")), func(p *dpop.Params) { p.AccessToken = token }, dpop.ErrInvalidProof, "ath"},
		{"no ath with a token", good, func(p *dpop.Params) { p.AccessToken = token }, dpop.ErrInvalidProof, "ath"},
		{"missing nonce", good, func(p *dpop.Params) { p.Nonce = "n-1" }, dpop.ErrUseNonce, "nonce"},
		{"stale nonce", k.proof(t, with(claims(), "nonce", "n-0")), func(p *dpop.Params) { p.Nonce = "n-1" }, dpop.ErrUseNonce, "nonce"},
		{"crit header", k.proof(t, with(claims(), "exp", 1), "crit", []string{"exp"}), nil, dpop.ErrInvalidProof, "crit"},
		{"crit b64 (go-jose understands it)", k.proof(t, claims(), "crit", []string{"b64"}, "b64", true), nil, dpop.ErrInvalidProof, "crit"},
		{"claims an array", k.rawProofPayload(t, k.header(t), []byte(`["jti","htm"]`)), nil, dpop.ErrInvalidProof, "not a JSON object"},
		{"two signatures (JSON serialization)", twoSigs, nil, dpop.ErrInvalidProof, "canonical"},
		{"one signature, flattened JSON serialization", flattened, nil, dpop.ErrInvalidProof, "canonical"},
		{"over-long proof", k.proof(t, with(claims(), "pad", strings.Repeat("p", dpop.MaxProofLen))), nil, dpop.ErrInvalidProof, "too long"},
		{"padded part", parts[0] + "=." + parts[1] + "." + parts[2], nil, dpop.ErrInvalidProof, "canonical"},
		{"line break in a part", parts[0][:5] + "\n" + parts[0][5:] + "." + parts[1] + "." + parts[2], nil, dpop.ErrInvalidProof, "canonical"},
		{"four parts", good + ".AA", nil, dpop.ErrInvalidProof, "canonical"},
		{"two parts", parts[0] + "." + parts[1], nil, dpop.ErrInvalidProof, "canonical"},
		{"empty payload", parts[0] + ".." + parts[2], nil, dpop.ErrInvalidProof, "canonical"},
	}
	if malleable != "" {
		cases = append(cases, struct {
			name  string
			proof string
			p     func(*dpop.Params)
			want  error
			why   string
		}{"non-canonical base64 (same bytes, other string)", malleable, nil, dpop.ErrInvalidProof, "canonical"})
	}
	// Sanity: the proof each case starts from passes.
	if _, err := dpop.Check(good, params()); err != nil {
		t.Fatalf("Check(good) = %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.p != nil {
				tc.p(&p)
			}
			got, err := dpop.Check(tc.proof, p)
			if err == nil {
				t.Fatalf("Check accepted it: %+v", got)
			}
			if got != nil {
				t.Errorf("Check returned a proof with error %v", err)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Check = %v; want %v about %q", err, tc.want, tc.why)
			}
			if tc.want == dpop.ErrInvalidProof && errors.Is(err, dpop.ErrUseNonce) {
				t.Errorf("Check = %v: asks for a nonce for a proof that is wrong anyway", err)
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrReplayedIsInvalidProof(t *testing.T) {
	if !errors.Is(dpop.ErrReplayed, dpop.ErrInvalidProof) {
		t.Error("ErrReplayed does not match ErrInvalidProof")
	}
	if errors.Is(dpop.ErrUseNonce, dpop.ErrInvalidProof) {
		t.Error("ErrUseNonce matches ErrInvalidProof: a client could not tell it apart")
	}
}

func TestSameURL(t *testing.T) {
	cases := []struct {
		htu, url string
		want     bool
	}{
		{"https://a.example/p", "https://a.example/p", true},
		{"https://a.example/p?q=1#f", "https://a.example/p", true},
		{"https://a.example:443/p", "https://a.example/p", true},
		{"https://a.example/p", "https://a.example:443/p", true},
		{"http://a.example:80/p", "http://a.example/p", true},
		{"https://a.example", "https://a.example/", true},
		{"HTTPS://A.EXAMPLE/p", "https://a.example/p", true},
		{"https://[::1]:443/p", "https://[::1]/p", true},
		{"https://a.example:80/p", "https://a.example/p", false},
		{"http://a.example:443/p", "http://a.example/p", false},
		{"https://a.example/P", "https://a.example/p", false},
		{"https://a.example/p/", "https://a.example/p", false},
		{"https://b.example/p", "https://a.example/p", false},
		{"https://a.example.evil/p", "https://a.example/p", false},
		{"http://a.example/p", "https://a.example/p", false},
		{"//a.example/p", "https://a.example/p", false},
		{"/p", "https://a.example/p", false},
		{"", "https://a.example/p", false},
		{"mailto:x@a.example", "https://a.example/p", false},
		{"https://user@a.example/p", "https://a.example/p", false},
		{"https://a.example/%zz", "https://a.example/%zz", false},
	}
	for _, c := range cases {
		if got := dpop.SameURL(c.htu, c.url); got != c.want {
			t.Errorf("SameURL(%q, %q) = %v; want %v", c.htu, c.url, got, c.want)
		}
	}
}

func TestProofCarriesNonce(t *testing.T) {
	k := newClientKey(t, jose.ES256)
	got, err := dpop.Check(k.proof(t, with(claims(), "nonce", "n-2")), params()) // no nonce asked: passed on
	if err != nil || got.Nonce != "n-2" {
		t.Fatalf("Check = %+v, %v; want Nonce n-2", got, err)
	}
	p := params()
	p.Nonce = "n-2"
	if got, err := dpop.Check(k.proof(t, with(claims(), "nonce", "n-2")), p); err != nil || got.Nonce != "n-2" {
		t.Fatalf("Check(nonce asked) = %+v, %v", got, err)
	}
}
