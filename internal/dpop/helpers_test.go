package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Everything here builds and checks proofs without package dpop: proofs
// with go-jose or by hand, thumbprints and signatures with the standard
// library directly.

const (
	testMethod = "POST"
	testURL    = "https://auth.example.com/oauth2/token"
)

var testNow = time.Unix(1_800_000_000, 0)

// clientKey is a key a DPoP client holds.
type clientKey struct {
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newClientKey(t testing.TB, alg jose.SignatureAlgorithm) *clientKey {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("newClientKey: %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &clientKey{alg: alg, priv: priv}
}

// claims are a valid proof's claims for testMethod and testURL at testNow.
func claims() map[string]any {
	return map[string]any{
		"jti": "e1j3V_bKic8-LAEB",
		"htm": testMethod,
		"htu": testURL,
		"iat": testNow.Unix(),
	}
}

// with returns a copy of c with changes; a nil value deletes the claim.
func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// proof signs c with go-jose as RFC 9449 §4.2 says: typ dpop+jwt and the
// public key embedded as jwk. extra headers are added (a nil typ removes
// typ).
func (k *clientKey) proof(t testing.TB, c map[string]any, extra ...any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}}
	for i := 0; i+1 < len(extra); i += 2 {
		name := jose.HeaderKey(extra[i].(string))
		if extra[i+1] == nil {
			delete(opts.ExtraHeaders, name)
		} else {
			opts.ExtraHeaders[name] = extra[i+1]
		}
	}
	return k.signWith(t, c, opts)
}

func (k *clientKey) signWith(t testing.TB, c map[string]any, opts *jose.SignerOptions) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
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

// publicJWK is the key's public JWK as a JSON object.
func (k *clientKey) publicJWK(t testing.TB) map[string]any {
	t.Helper()
	return jwkObject(t, jose.JSONWebKey{Key: k.priv.Public()})
}

// privateJWK is the key's JWK with its private members.
func (k *clientKey) privateJWK(t testing.TB) map[string]any {
	t.Helper()
	return jwkObject(t, jose.JSONWebKey{Key: k.priv})
}

func jwkObject(t testing.TB, k jose.JSONWebKey) map[string]any {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// rawProof builds a proof from a header and claims of the test's choosing,
// signed with k's own algorithm whatever the header says.
func (k *clientKey) rawProof(t testing.TB, header, c map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, c)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.rawSign(t, []byte(input)))
}

// rawProofPayload is rawProof with payload bytes of the test's choosing.
func (k *clientKey) rawProofPayload(t testing.TB, header map[string]any, payload []byte) string {
	t.Helper()
	input := b64JSON(t, header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.rawSign(t, []byte(input)))
}

func (k *clientKey) rawSign(t testing.TB, input []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(input)
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, p, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case ed25519.PrivateKey:
		return ed25519.Sign(p, input)
	}
	t.Fatalf("rawSign: %T", k.priv)
	return nil
}

// header is what go-jose would write for k: typ, alg and the public jwk.
func (k *clientKey) header(t testing.TB, kv ...any) map[string]any {
	t.Helper()
	h := map[string]any{"typ": "dpop+jwt", "alg": string(k.alg), "jwk": k.publicJWK(t)}
	return with(h, kv...)
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// thumbprint is RFC 7638 by hand: the required members of the JWK in
// lexicographic order, no whitespace, SHA-256, base64url.
func thumbprint(jwk map[string]any) (string, error) {
	str := func(name string) (string, error) {
		v, ok := jwk[name].(string)
		if !ok || v == "" {
			return "", fmt.Errorf("jwk has no %s", name)
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	var members []string
	switch jwk["kty"] {
	case "EC":
		members = []string{"crv", "kty", "x", "y"}
	case "OKP":
		members = []string{"crv", "kty", "x"}
	case "RSA":
		members = []string{"e", "kty", "n"}
	default:
		return "", fmt.Errorf("kty %v", jwk["kty"])
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range members {
		v, err := str(m)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", m, v)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// verifyIndependently checks a compact JWS with the standard library only:
// the key is the header's jwk, the signature must verify over the proof's
// first two parts exactly as they are written. It returns the header's jwk
// and the claims.
func verifyIndependently(proof string) (map[string]any, map[string]any, error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not three parts")
	}
	dec := base64.RawURLEncoding.Strict()
	hb, err1 := dec.DecodeString(parts[0])
	pb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, nil, err
	}
	var h struct {
		Alg string         `json:"alg"`
		JWK map[string]any `json:"jwk"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, err
	}
	var c map[string]any
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, nil, err
	}
	bytesOf := func(name string) []byte {
		s, _ := h.JWK[name].(string)
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return b
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(input)
	ok := false
	switch {
	case h.Alg == "ES256" && h.JWK["kty"] == "EC" && h.JWK["crv"] == "P-256":
		x, y := bytesOf("x"), bytesOf("y")
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil || len(sig) != 64 {
			return nil, nil, errors.New("bad EC key or signature size")
		}
		ok = ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case h.Alg == "EdDSA" && h.JWK["kty"] == "OKP" && h.JWK["crv"] == "Ed25519":
		x := bytesOf("x")
		if len(x) != ed25519.PublicKeySize {
			return nil, nil, errors.New("bad Ed25519 key")
		}
		ok = ed25519.Verify(ed25519.PublicKey(x), input, sig)
	case h.Alg == "RS256" && h.JWK["kty"] == "RSA":
		e := new(big.Int).SetBytes(bytesOf("e"))
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, nil, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(bytesOf("n")), E: int(e.Int64())}
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	default:
		return nil, nil, fmt.Errorf("alg %q with key %v", h.Alg, h.JWK["kty"])
	}
	if !ok {
		return nil, nil, errors.New("signature does not verify")
	}
	return h.JWK, c, nil
}
