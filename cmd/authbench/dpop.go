package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// dpopKey is a simulated client's DPoP key (RFC 9449): ES256, with the
// proofs' protected header (typ dpop+jwt, alg, the public jwk) encoded once.
// Proofs are written by hand, as the lean HTTP client writes requests: the
// load generator shares the machine with the server, and go-jose would cost
// about twice the CPU per proof.
type dpopKey struct {
	priv   *ecdsa.PrivateKey
	header string // base64url of the protected header
}

func newDPoPKey() (*dpopKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	h, err := json.Marshal(map[string]any{
		"typ": "dpop+jwt",
		"alg": "ES256",
		"jwk": map[string]string{"kty": "EC", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:65])},
	})
	if err != nil {
		return nil, err
	}
	return &dpopKey{priv: priv, header: b64(h)}, nil
}

// dpopTarget is the htm and htu members of the proofs for one endpoint,
// JSON-encoded once: `"htm":"POST","htu":"https://…"`.
func dpopTarget(htm, htu string) string {
	m, _ := json.Marshal(htm) // strings always marshal
	u, _ := json.Marshal(htu)
	return `"htm":` + string(m) + `,"htu":` + string(u)
}

// proof signs a fresh proof for a request to target (dpopTarget): a random
// jti, iat, and the server's nonce when it gave one. buf is scratch space,
// returned grown.
func (k *dpopKey) proof(buf []byte, target, nonce string, now time.Time) (string, []byte, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", buf, err
	}
	claims := buf[:0]
	claims = append(claims, `{"jti":"`...)
	claims = base64.RawURLEncoding.AppendEncode(claims, jti[:])
	claims = append(claims, `",`...)
	claims = append(claims, target...)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	if nonce != "" {
		q, _ := json.Marshal(nonce)
		claims = append(claims, `,"nonce":`...)
		claims = append(claims, q...)
	}
	claims = append(claims, '}')

	n := len(claims)
	out := append(claims, k.header...)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, claims[:n])
	input := out[n:]
	digest := sha256.Sum256(input)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", out, fmt.Errorf("dpop proof: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sig[:])
	return string(out[n:]), out, nil
}
