package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/storage"
)

var b64 = base64.RawURLEncoding

// rawSign signs input the way JWS alg does, with key ([]byte for HS256).
func rawSign(t *testing.T, alg string, key any, input string) []byte {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	switch alg {
	case "none":
		return nil
	case "HS256":
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write([]byte(input))
		return mac.Sum(nil)
	case ES256:
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	case "ES256-DER":
		sig, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case RS256:
		sig, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case EdDSA:
		return ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	}
	t.Fatalf("rawSign: unknown alg %s", alg)
	return nil
}

// forge builds a compact JWS from a raw header and payload, signed by sign.
func forge(t *testing.T, header, payload string, sigAlg string, key any) string {
	t.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	return input + "." + b64.EncodeToString(rawSign(t, sigAlg, key, input))
}

// hostileSetup returns a manager whose set holds an ES256 current key (kES),
// an EdDSA next key (kEd) and a retired ES256 key, with their private keys.
func hostileSetup(t *testing.T) (m *Manager, kES, kEd string, privES *ecdsa.PrivateKey, privEd ed25519.PrivateKey, pubJWK []byte) {
	t.Helper()
	store := &memStore{}
	clock := newFakeClock()
	newTestManager(t, store, testOptions(ES256, clock))
	m = newTestManager(t, store, testOptions(EdDSA, clock))
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	cur := store.byState(storage.KeyCurrent)[0]
	next := store.byState(storage.KeyNext)[0]
	if cur.Alg != ES256 || next.Alg != EdDSA {
		t.Fatalf("setup: current %s next %s; want ES256 and EdDSA", cur.Alg, next.Alg)
	}
	return m, cur.ID, next.ID,
		privateKey(t, m, store, cur.ID).(*ecdsa.PrivateKey),
		privateKey(t, m, store, next.ID).(ed25519.PrivateKey),
		cur.PublicKey
}

func TestVerifyHostileTokens(t *testing.T) {
	m, kES, kEd, privES, privEd, pubJWK := hostileSetup(t)
	const payload = `{"sub":"attacker","roles":["admin"],"exp":4102444800}`
	hdr := func(alg, kid, typ string) string {
		return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":%q}`, alg, kid, typ)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&privES.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// Controls: the forging helper makes tokens Verify accepts, so the
	// rejections below are due to what each case changes.
	good := forge(t, hdr(ES256, kES, "at+jwt"), payload, ES256, privES)
	accepted := map[string]string{
		"control ES256":               good,
		"control EdDSA next key":      forge(t, hdr(EdDSA, kEd, "at+jwt"), payload, EdDSA, privEd),
		"typ uppercase":               forge(t, hdr(ES256, kES, "AT+JWT"), payload, ES256, privES),
		"typ application/at+jwt":      forge(t, hdr(ES256, kES, "application/at+jwt"), payload, ES256, privES),
		"typ Application/At+Jwt":      forge(t, hdr(ES256, kES, "Application/At+Jwt"), payload, ES256, privES),
		"header with JSON whitespace": forge(t, fmt.Sprintf("{ \"alg\" : %q,\n\t\"typ\":\"at+jwt\" , \"kid\":%q }", ES256, kES), payload, ES256, privES),
	}
	for name, tok := range accepted {
		if got, _, err := m.Verify(t.Context(), tok); err != nil || string(got) != payload {
			t.Errorf("%s: Verify = %s, %v; want accepted", name, got, err)
		}
	}

	goodParts := strings.Split(good, ".")
	big := `{"pad":"` + strings.Repeat("a", MaxTokenSize) + `"}`
	// A canonical signature encoding with an ES256 signature: 86 characters,
	// the last of which carries 4 unused bits.
	sigSeg := goodParts[2]
	last := sigSeg[len(sigSeg)-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	alt := b64.EncodeToString([]byte{0})[0] // 'A'
	for _, c := range []byte(alphabet) {
		if c != last && strings.IndexByte(alphabet, c)>>4 == strings.IndexByte(alphabet, last)>>4 {
			alt = c
			break
		}
	}
	nonCanonical := goodParts[0] + "." + goodParts[1] + "." + sigSeg[:len(sigSeg)-1] + string(alt)
	d1, _ := b64.DecodeString(sigSeg)
	if d2, err := b64.DecodeString(sigSeg[:len(sigSeg)-1] + string(alt)); err != nil || string(d1) != string(d2) {
		t.Fatalf("test setup: non-canonical variant decodes differently")
	}
	tamperedSig := []byte(sigSeg)
	tamperedSig[10] ^= 0x01
	if tamperedSig[10] == '.' || !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(tamperedSig[10])) {
		tamperedSig[10] = 'A'
	}
	otherSig := strings.Split(forge(t, hdr(ES256, kES, "JWT"), payload, ES256, privES), ".")[2]
	withJWK := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","jwk":%s}`, kES, pubJWK)

	tests := []struct {
		name  string
		token string
		want  error // besides ErrInvalidToken
	}{
		{"alg none, empty signature", forge(t, hdr("none", kES, "at+jwt"), payload, "none", nil), nil},
		{"alg none with a signature", forge(t, hdr("none", kES, "at+jwt"), payload, ES256, privES), nil},
		{"alg None", forge(t, hdr("None", kES, "at+jwt"), payload, ES256, privES), nil},
		{"HS256 keyed with the public JWK", forge(t, hdr("HS256", kES, "at+jwt"), payload, "HS256", pubJWK), nil},
		{"HS256 keyed with the public key DER", forge(t, hdr("HS256", kES, "at+jwt"), payload, "HS256", pubDER), nil},
		{"HS256 keyed with the public key PEM", forge(t, hdr("HS256", kES, "at+jwt"), payload, "HS256", pubPEM), nil},
		{"ES256 header naming the EdDSA key", forge(t, hdr(ES256, kEd, "at+jwt"), payload, ES256, privES), nil},
		{"EdDSA header naming the ES256 key", forge(t, hdr(EdDSA, kES, "at+jwt"), payload, EdDSA, privEd), nil},
		{"RS256 header naming the ES256 key", forge(t, hdr(RS256, kES, "at+jwt"), payload, ES256, privES), nil},
		{"typ JWT", forge(t, hdr(ES256, kES, "JWT"), payload, ES256, privES), nil},
		{"typ application/jwt", forge(t, hdr(ES256, kES, "application/jwt"), payload, ES256, privES), nil},
		{"typ at+jwt with suffix", forge(t, hdr(ES256, kES, "at+jwtx"), payload, ES256, privES), nil},
		{"typ empty", forge(t, hdr(ES256, kES, ""), payload, ES256, privES), nil},
		{"typ missing", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q}`, kES), payload, ES256, privES), nil},
		{"typ not a string", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":1}`, kES), payload, ES256, privES), nil},
		{"kid missing", forge(t, `{"alg":"ES256","typ":"at+jwt"}`, payload, ES256, privES), nil},
		{"kid empty", forge(t, hdr(ES256, "", "at+jwt"), payload, ES256, privES), nil},
		{"alg with trailing space", forge(t, hdr("ES256 ", kES, "at+jwt"), payload, ES256, privES), nil},
		{"jku header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","jku":"https://evil.example/jwks"}`, kES), payload, ES256, privES), nil},
		{"x5u header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","x5u":"https://evil.example/cert"}`, kES), payload, ES256, privES), nil},
		{"x5c header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","x5c":[]}`, kES), payload, ES256, privES), nil},
		{"jwk header with the right key", forge(t, withJWK, payload, ES256, privES), nil},
		{"crit header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","crit":["exp"],"exp":1}`, kES), payload, ES256, privES), nil},
		{"b64 false", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","b64":false,"crit":["b64"]}`, kES), payload, ES256, privES), nil},
		{"nonce header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","nonce":"n"}`, kES), payload, ES256, privES), nil},
		{"cty header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","cty":"JWT"}`, kES), payload, ES256, privES), nil},
		{"duplicate alg", forge(t, fmt.Sprintf(`{"alg":"none","alg":"ES256","kid":%q,"typ":"at+jwt"}`, kES), payload, ES256, privES), nil},
		{"duplicate kid", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"kid":%q,"typ":"at+jwt"}`, kEd, kES), payload, ES256, privES), nil},
		{"escaped member name", forge(t, fmt.Sprintf(`{"\u0061lg":"ES256","kid":%q,"typ":"at+jwt"}`, kES), payload, ES256, privES), nil},
		{"escaped typ value", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at\u002bjwt"}`, kES), payload, ES256, privES), nil},
		{"member name in other case", forge(t, fmt.Sprintf(`{"ALG":"ES256","alg":"ES256","kid":%q,"typ":"at+jwt"}`, kES), payload, ES256, privES), nil},
		{"trailing data after header", forge(t, hdr(ES256, kES, "at+jwt")+"{}", payload, ES256, privES), nil},
		{"header is an array", forge(t, `["ES256"]`, payload, ES256, privES), nil},
		{"header is empty object", forge(t, `{}`, payload, ES256, privES), nil},
		{"header not JSON", forge(t, `alg=ES256`, payload, ES256, privES), nil},
		{"non-ASCII kid", forge(t, hdr(ES256, kES+"é", "at+jwt"), payload, ES256, privES), nil},
		{"unknown kid", forge(t, hdr(ES256, "no-such-key", "at+jwt"), payload, ES256, privES), ErrUnknownKey},
		{"signed by a stranger's key", forge(t, hdr(ES256, kES, "at+jwt"), payload, ES256, stranger), ErrInvalidSignature},
		{"ES256 signature in DER", forge(t, hdr(ES256, kES, "at+jwt"), payload, "ES256-DER", privES), ErrInvalidSignature},
		{"tampered payload", goodParts[0] + "." + b64.EncodeToString([]byte(`{"sub":"root"}`)) + "." + goodParts[2], ErrInvalidSignature},
		{"tampered signature", goodParts[0] + "." + goodParts[1] + "." + string(tamperedSig), ErrInvalidSignature},
		{"signature of another header", goodParts[0] + "." + goodParts[1] + "." + otherSig, ErrInvalidSignature},
		{"non-canonical base64", nonCanonical, nil},
		{"padding", good + "==", nil},
		{"newline inside", goodParts[0] + "\n." + goodParts[1] + "." + goodParts[2], nil},
		{"leading space", " " + good, nil},
		{"empty signature", goodParts[0] + "." + goodParts[1] + ".", nil},
		{"empty payload", goodParts[0] + ".." + goodParts[2], nil},
		{"two segments", goodParts[0] + "." + goodParts[1], nil},
		{"four segments", good + "." + goodParts[2], nil},
		{"JWS JSON serialization", fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, goodParts[0], goodParts[1], goodParts[2]), nil},
		{"empty", "", nil},
		{"dots", "..", nil},
		{"oversized but validly signed", forge(t, hdr(ES256, kES, "at+jwt"), big, ES256, privES), ErrTokenTooLarge},
		{"huge header", forge(t, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","x":%q}`, kES, strings.Repeat("x", 2000)), payload, ES256, privES), nil},
	}
	for _, tt := range tests {
		claims, kid, err := m.Verify(t.Context(), tt.token)
		if err == nil || claims != nil || kid != "" {
			t.Errorf("%s: Verify = %q, %q, %v; want rejected", tt.name, claims, kid, err)
			continue
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify error = %v; want ErrInvalidToken", tt.name, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify error = %v; want %v", tt.name, err, tt.want)
		}
		if parts := strings.Split(tt.token, "."); len(parts) > 1 && len(parts[1]) > 8 && strings.Contains(err.Error(), parts[1]) {
			t.Errorf("%s: error %q quotes the token", tt.name, err)
		}
	}
}

// TestVerifyRejectsGoJoseExtraHeaders signs with go-jose itself, adding each
// refused header, so the tokens are exactly what a JOSE library produces.
func TestVerifyRejectsGoJoseExtraHeaders(t *testing.T) {
	m, kES, _, privES, _, _ := hostileSetup(t)
	for _, h := range []struct {
		name  string
		value any
	}{
		{"jku", "https://evil.example/jwks.json"},
		{"x5u", "https://evil.example/cert.pem"},
		{"crit", []string{"exp"}},
		{"kid2", "x"},
	} {
		opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kES).WithHeader(jose.HeaderKey(h.name), h.value)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: privES}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := signer.Sign([]byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Verify(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Verify(token with %s header) error = %v; want ErrInvalidToken", h.name, err)
		}
	}
	// go-jose's EmbedJWK puts the public key in the header instead of the kid.
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: privES, KeyID: kES}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Verify(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(token with embedded jwk) error = %v; want ErrInvalidToken", err)
	}
}
