package verify_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

const iss = "https://auth.example.com"

func TestVerifyValidPerAlg(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			key := newKey(t, alg, "k-"+alg)
			v := newStatic(t, iss, key.jwk())
			token := key.sign(t, claims(iss))
			c, err := v.Verify(t.Context(), token)
			if err != nil {
				t.Fatalf("Verify(valid %s token) = %v; want nil", alg, err)
			}
			want := verify.Claims{
				Issuer:    iss,
				Subject:   "user-1",
				Audience:  []string{audience, "billing"},
				ExpiresAt: testNow.Add(15 * time.Minute),
				IssuedAt:  testNow,
				NotBefore: testNow,
				ID:        "jti-1",
				ClientID:  "web",
				Username:  "alice",
				Scopes:    []string{"openid", "orders:read", "orders:write"},
				Roles:     []string{"user"},
			}
			if c.Issuer != want.Issuer || c.Subject != want.Subject || !slices.Equal(c.Audience, want.Audience) ||
				!c.ExpiresAt.Equal(want.ExpiresAt) || !c.IssuedAt.Equal(want.IssuedAt) || !c.NotBefore.Equal(want.NotBefore) ||
				c.ID != want.ID || c.ClientID != want.ClientID || c.Username != want.Username ||
				!slices.Equal(c.Scopes, want.Scopes) || !slices.Equal(c.Roles, want.Roles) {
				t.Errorf("Verify claims = %+v; want %+v", *c, want)
			}
			if !c.HasRole("user") || c.HasRole("admin") || !c.HasScope("orders:read") || c.HasScope("orders") {
				t.Errorf("HasRole/HasScope wrong for %+v", *c)
			}
			var extra struct {
				SID string `json:"sid"`
			}
			if err := c.Decode(&extra); err != nil || extra.SID != "family-1" {
				t.Errorf("Decode = %v, sid %q; want nil, family-1", err, extra.SID)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	v := newStatic(t, iss, key.jwk())
	cases := []struct {
		name  string
		token string
	}{
		{"typ application/at+jwt", key.rawSign(t, map[string]any{"alg": "ES256", "kid": "k1", "typ": "application/at+jwt"}, claims(iss))},
		{"typ AT+JWT", key.rawSign(t, map[string]any{"alg": "ES256", "kid": "k1", "typ": "AT+JWT"}, claims(iss))},
		{"aud as a string", key.sign(t, with(claims(iss), "aud", audience))},
		{"expired within leeway", key.sign(t, with(claims(iss), "exp", testNow.Add(-20*time.Second).Unix()))},
		{"nbf within leeway", key.sign(t, with(claims(iss), "nbf", testNow.Add(20*time.Second).Unix()))},
		{"iat within leeway", key.sign(t, with(claims(iss), "iat", testNow.Add(20*time.Second).Unix()))},
		{"no nbf", key.sign(t, with(claims(iss), "nbf", nil))},
		{"fractional exp", key.sign(t, with(claims(iss), "exp", float64(testNow.Unix())+600.5))},
		{"client_credentials (no username, no roles)", key.sign(t, with(claims(iss), "preferred_username", nil, "roles", nil, "sub", "web"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), tc.token); err != nil {
				t.Errorf("Verify(%s) = %v; want nil", tc.name, err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	rsaKey := newKey(t, "RS256", "r1")
	other := newKey(t, "ES256", "k1") // same kid, different key
	// A JWK without alg: the algorithm is inferred from its type (ES256).
	noAlg := newKey(t, "ES256", "noalg")
	noAlgJWK := noAlg.jwk()
	noAlgJWK.Algorithm = ""
	v := newStatic(t, iss, key.jwk(), rsaKey.jwk(), noAlgJWK)

	good := key.sign(t, claims(iss))
	parts := strings.Split(good, ".")
	hdr := func(kv ...any) map[string]any {
		h := map[string]any{"alg": "ES256", "kid": "k1", "typ": "at+jwt"}
		return with(h, kv...)
	}
	unsigned := func(h, c map[string]any) string {
		return b64JSON(t, h) + "." + b64JSON(t, c) + "."
	}
	jwkJSON, err := json.Marshal(key.jwk())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(secret []byte, kid string) string {
		input := b64JSON(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}) + "." + b64JSON(t, claims(iss))
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	big := key.sign(t, with(claims(iss), "pad", strings.Repeat("x", verify.MaxTokenSize)))

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none, no signature", unsigned(hdr("alg", "none"), claims(iss)), verify.ErrInvalid},
		{"alg none, with the good signature", b64JSON(t, hdr("alg", "none")) + "." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"alg None", unsigned(hdr("alg", "None"), claims(iss)), verify.ErrInvalid},
		{"HS256 keyed with the JWK", hs256(jwkJSON, "k1"), verify.ErrInvalid},
		{"HS256 keyed with the PEM public key", hs256(pemKey, "k1"), verify.ErrInvalid},
		{"HS256 keyed with the DER public key", hs256(der, "k1"), verify.ErrInvalid},
		// Each signed by the named key with the key's own algorithm, so only
		// the header's alg is wrong.
		{"alg ES256 on an RS256 key", rsaKey.rawSign(t, hdr("alg", "ES256", "kid", "r1"), claims(iss)), verify.ErrInvalid},
		{"alg RS256 on an ES256 key", key.rawSign(t, hdr("alg", "RS256"), claims(iss)), verify.ErrInvalid},
		{"alg EdDSA on a key without alg (inferred ES256)", noAlg.rawSign(t, hdr("alg", "EdDSA", "kid", "noalg"), claims(iss)), verify.ErrInvalid},
		{"typ JWT", key.rawSign(t, hdr("typ", "JWT"), claims(iss)), verify.ErrInvalid},
		{"typ missing", key.rawSign(t, hdr("typ", nil), claims(iss)), verify.ErrInvalid},
		{"typ at+jwt with garbage", key.rawSign(t, hdr("typ", "at+jwt; x"), claims(iss)), verify.ErrInvalid},
		{"no kid", key.rawSign(t, hdr("kid", nil), claims(iss)), verify.ErrInvalid},
		{"crit header", key.sign(t, claims(iss), "crit", []string{"exp"}, "exp", 1), verify.ErrInvalid},
		{"crit empty", key.rawSign(t, hdr("crit", []string{}), claims(iss)), verify.ErrInvalid},
		// The header holds alg, kid and typ only, as authd writes it (package
		// internal/jws): headers naming other keys are refused, not ignored.
		{"jku, x5u and jwk headers", key.sign(t, claims(iss), "jku", "https://evil.example/jwks", "x5u", "https://evil.example/cert", "jwk", map[string]any{"kty": "oct", "k": "AAAA"}), verify.ErrInvalid},
		{"cty header", key.sign(t, claims(iss), "cty", "JWT"), verify.ErrInvalid},
		{"member name in another case", key.rawSign(t, hdr("ALG", "ES256"), claims(iss)), verify.ErrInvalid},
		{"wrong issuer", key.sign(t, with(claims(iss), "iss", "https://evil.example")), verify.ErrIssuer},
		{"issuer with trailing slash", key.sign(t, with(claims(iss), "iss", iss+"/")), verify.ErrIssuer},
		{"no issuer", key.sign(t, with(claims(iss), "iss", nil)), verify.ErrIssuer},
		{"wrong audience", key.sign(t, with(claims(iss), "aud", []string{"payments"})), verify.ErrAudience},
		{"audience as another string", key.sign(t, with(claims(iss), "aud", "payments")), verify.ErrAudience},
		{"no audience", key.sign(t, with(claims(iss), "aud", nil)), verify.ErrAudience},
		{"expired", key.sign(t, with(claims(iss), "exp", testNow.Add(-time.Hour).Unix())), verify.ErrExpired},
		{"expired just past leeway", key.sign(t, with(claims(iss), "exp", testNow.Add(-30*time.Second).Unix())), verify.ErrExpired},
		{"not yet valid", key.sign(t, with(claims(iss), "nbf", testNow.Add(2*time.Minute).Unix())), verify.ErrNotYetValid},
		{"issued in the future", key.sign(t, with(claims(iss), "iat", testNow.Add(2*time.Minute).Unix())), verify.ErrNotYetValid},
		{"no exp", key.sign(t, with(claims(iss), "exp", nil)), verify.ErrInvalid},
		{"no iat", key.sign(t, with(claims(iss), "iat", nil)), verify.ErrInvalid},
		{"no sub", key.sign(t, with(claims(iss), "sub", nil)), verify.ErrInvalid},
		{"exp as a string", key.sign(t, with(claims(iss), "exp", "1800000900")), verify.ErrInvalid},
		{"exp absurdly far", key.sign(t, with(claims(iss), "exp", 1e300)), verify.ErrInvalid},
		{"roles as a string", key.sign(t, with(claims(iss), "roles", "admin")), verify.ErrInvalid},
		{"signed by another key with the same kid", other.sign(t, claims(iss)), verify.ErrInvalid},
		{"payload swapped", parts[0] + "." + b64JSON(t, with(claims(iss), "roles", []string{"admin"})) + "." + parts[2], verify.ErrInvalid},
		{"signature stripped", parts[0] + "." + parts[1] + ".", verify.ErrInvalid},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:40], verify.ErrInvalid},
		{"signature in ASN.1 form", key.asn1Token(t, claims(iss)), verify.ErrInvalid},
		{"unknown kid", key.rawSign(t, hdr("kid", "nope"), claims(iss)), verify.ErrUnknownKey},
		{"oversized, though validly signed", big, verify.ErrInvalid},
		{"empty", "", verify.ErrInvalid},
		{"one part", "abc", verify.ErrInvalid},
		{"two parts", parts[0] + "." + parts[1], verify.ErrInvalid},
		{"four parts", good + ".x", verify.ErrInvalid},
		{"dots only", "..", verify.ErrInvalid},
		{"empty header", "." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"newline inside", parts[0][:4] + "\n" + parts[0][4:] + "." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"standard base64 alphabet", strings.ReplaceAll(good, "_", "/") + "+", verify.ErrInvalid},
		{"leading space", " " + good, verify.ErrInvalid},
		{"Bearer prefix", "Bearer " + good, verify.ErrInvalid},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"header a JSON array", base64.RawURLEncoding.EncodeToString([]byte(`["alg"]`)) + "." + parts[1] + "." + parts[2], verify.ErrInvalid},
		{"claims not JSON", key.rawSignBytes(t, hdr(), []byte("{nope")), verify.ErrInvalid},
		{"claims JSON null", key.rawSignBytes(t, hdr(), []byte("null")), verify.ErrInvalid},
		{"JWE (five parts)", "a.b.c.d.e", verify.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify(%s) = %v; want error %v", tc.name, err, tc.want)
			}
			if c != nil {
				t.Errorf("Verify(%s) returned claims with an error", tc.name)
			}
			if !strings.HasPrefix(err.Error(), "verify: ") {
				t.Errorf("error %q lacks the verify: prefix", err)
			}
		})
	}
	// A non-canonical last base64 character must not make a second valid
	// encoding of the same signature.
	t.Run("non-canonical signature encoding", func(t *testing.T) {
		sig := parts[2] // 64 bytes: 86 characters, the last carrying 4 unused bits
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		alt := alphabet[strings.IndexByte(alphabet, sig[len(sig)-1])|1]
		tampered := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string(alt)
		if _, err := v.Verify(t.Context(), tampered); !errors.Is(err, verify.ErrInvalid) {
			t.Errorf("Verify(non-canonical signature) = %v; want ErrInvalid", err)
		}
	})
}

// asn1Token signs like rawSign but puts the signature in ASN.1 DER, which
// JWS forbids for ES256.
func (k *testKey) asn1Token(t *testing.T, c map[string]any) string {
	t.Helper()
	input := b64JSON(t, map[string]any{"alg": "ES256", "kid": k.kid, "typ": "at+jwt"}) + "." + b64JSON(t, c)
	digest := sha256.Sum256([]byte(input))
	sig, err := k.priv.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawSignBytes signs an arbitrary payload.
func (k *testKey) rawSignBytes(t *testing.T, header map[string]any, payload []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: k.priv},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", header["kid"]))
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

func TestAlgorithmAllowlist(t *testing.T) {
	es := newKey(t, "ES256", "es")
	ed := newKey(t, "EdDSA", "ed")
	v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow, Algorithms: []string{"EdDSA"}},
		jwks(t, es.jwk(), ed.jwk()))
	if err != nil {
		t.Fatalf("NewStatic: %v", err)
	}
	if _, err := v.Verify(t.Context(), ed.sign(t, claims(iss))); err != nil {
		t.Errorf("Verify(EdDSA, allowed) = %v; want nil", err)
	}
	if _, err := v.Verify(t.Context(), es.sign(t, claims(iss))); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("Verify(ES256, not allowed) = %v; want ErrInvalid", err)
	}
}

func TestConfigErrors(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	doc := jwks(t, key.jwk())
	cases := []struct {
		name string
		cfg  verify.Config
	}{
		{"no issuer", verify.Config{Audience: audience}},
		{"no audience", verify.Config{Issuer: iss}},
		{"HS256 allowed", verify.Config{Issuer: iss, Audience: audience, Algorithms: []string{"ES256", "HS256"}}},
		{"none allowed", verify.Config{Issuer: iss, Audience: audience, Algorithms: []string{"none"}}},
		{"negative leeway", verify.Config{Issuer: iss, Audience: audience, Leeway: -time.Second}},
		{"introspection id without secret", verify.Config{Issuer: iss, Audience: audience, IntrospectionClientID: "rs", IntrospectionEndpoint: iss + "/introspect"}},
		{"online mode without endpoint", verify.Config{Issuer: iss, Audience: audience, IntrospectionClientID: "rs", IntrospectionClientSecret: "s"}},
		{"introspection endpoint downgrades to http", verify.Config{Issuer: iss, Audience: audience, IntrospectionClientID: "rs", IntrospectionClientSecret: "s", IntrospectionEndpoint: "http://auth.example.com/introspect"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := verify.NewStatic(tc.cfg, doc); err == nil {
				t.Errorf("NewStatic(%s) = %v, nil; want an error", tc.name, v)
			} else if !strings.HasPrefix(err.Error(), "verify: ") {
				t.Errorf("NewStatic(%s) error %q lacks the verify: prefix", tc.name, err)
			}
		})
	}
}

func TestLeewayCappedAt60s(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow, Leeway: time.Hour}, jwks(t, key.jwk()))
	if err != nil {
		t.Fatalf("NewStatic: %v", err)
	}
	if _, err := v.Verify(t.Context(), key.sign(t, with(claims(iss), "exp", testNow.Add(-50*time.Second).Unix()))); err != nil {
		t.Errorf("Verify(expired 50s ago, leeway capped at 60s) = %v; want nil", err)
	}
	if _, err := v.Verify(t.Context(), key.sign(t, with(claims(iss), "exp", testNow.Add(-61*time.Second).Unix()))); !errors.Is(err, verify.ErrExpired) {
		t.Errorf("Verify(expired 61s ago, leeway 1h asked) = %v; want ErrExpired", err)
	}
}

func TestKeySetFiltering(t *testing.T) {
	good := newKey(t, "ES256", "good")
	enc := newKey(t, "ES256", "enc")
	encJWK := enc.jwk()
	encJWK.Use = "enc"
	priv := newKey(t, "EdDSA", "private")
	privJWK := jose.JSONWebKey{Key: priv.priv, KeyID: "private", Algorithm: "EdDSA", Use: "sig"}
	liar := newKey(t, "ES256", "liar")
	liarJWK := liar.jwk()
	liarJWK.Algorithm = "RS256" // an EC key that claims RS256
	hmacJWK := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256", Use: "sig"}

	doc := jwks(t, good.jwk(), encJWK, privJWK, liarJWK, hmacJWK)
	// Add a key of a type nobody knows, and one without kid: skipped, not fatal.
	var set map[string][]json.RawMessage
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	set["keys"] = append(set["keys"], json.RawMessage(`{"kty":"XYZ","kid":"future","use":"sig"}`))
	noKid := good.jwk()
	noKid.KeyID = ""
	b, _ := json.Marshal(noKid)
	set["keys"] = append(set["keys"], b)
	doc, _ = json.Marshal(set)

	v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow}, doc)
	if err != nil {
		t.Fatalf("NewStatic: %v", err)
	}
	if _, err := v.Verify(t.Context(), good.sign(t, claims(iss))); err != nil {
		t.Errorf("Verify(good key) = %v; want nil", err)
	}
	for _, k := range []*testKey{enc, priv, liar} {
		if _, err := v.Verify(t.Context(), k.sign(t, claims(iss))); !errors.Is(err, verify.ErrUnknownKey) {
			t.Errorf("Verify(key %q, which the set must skip) = %v; want ErrUnknownKey", k.kid, err)
		}
	}

	if _, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience}, jwks(t, encJWK, hmacJWK)); err == nil {
		t.Error("NewStatic(set with no usable key) = nil error; want an error")
	}
	if _, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience}, []byte("not json")); err == nil {
		t.Error("NewStatic(not JSON) = nil error; want an error")
	}
}

func TestSmallRSAKeyRefused(t *testing.T) {
	small := newKey(t, "ES256", "small") // replaced below by a 1024-bit RSA key
	rsaSmall, err := rsaKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	small.alg, small.priv = "RS256", rsaSmall
	good := newKey(t, "ES256", "good")
	v := newStatic(t, iss, good.jwk(), small.jwk())
	if _, err := v.Verify(t.Context(), small.sign(t, claims(iss))); !errors.Is(err, verify.ErrUnknownKey) {
		t.Errorf("Verify(1024-bit RSA) = %v; want ErrUnknownKey", err)
	}
}
