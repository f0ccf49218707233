package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
)

// Verify checks t's signature with key, which must be of t's algorithm:
// *ecdsa.PublicKey on P-256 for ES256, *rsa.PublicKey for RS256,
// ed25519.PublicKey for EdDSA. It returns the decoded payload. The payload
// and signature segments must be canonical base64url.
//
// An ECDSA signature (r, s) has a twin (r, n-s) that verifies too: identify
// tokens by a claim such as jti, never by their string or signature.
func (t *Token) Verify(key crypto.PublicKey) ([]byte, error) {
	if !keyFits(t.alg, key) {
		return nil, errKeyAlg
	}
	// One allocation: the token's bytes, whose first part is the signing
	// input, then room for the decoded payload.
	payloadEnc := t.dot2 - t.dot1 - 1
	buf := make([]byte, len(t.s), len(t.s)+b64.DecodedLen(payloadEnc))
	copy(buf, t.s)

	var sbuf [512]byte // an RSA-4096 signature; larger ones go to the heap
	sigEnc := buf[t.dot2+1:]
	sig := sbuf[:]
	if n := b64.DecodedLen(len(sigEnc)); n > len(sbuf) {
		sig = make([]byte, n)
	}
	n, err := b64.Decode(sig, sigEnc)
	if err != nil {
		return nil, errBase64
	}
	if !checkSignature(key, buf[:t.dot2], sig[:n]) {
		return nil, errSignature
	}
	payload := buf[len(buf):cap(buf)]
	n, err = b64.Decode(payload, buf[t.dot1+1:t.dot2])
	if err != nil {
		return nil, errBase64
	}
	return payload[:n:n], nil
}

// keyFits reports whether key verifies signatures of alg.
func keyFits(alg Alg, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == ES256 && k != nil && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == RS256 && k != nil && k.N != nil
	case ed25519.PublicKey:
		return alg == EdDSA && len(k) == ed25519.PublicKeySize
	}
	return false
}

// checkSignature verifies sig over input with key, which keyFits accepted.
func checkSignature(key crypto.PublicKey, input, sig []byte) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != es256Size {
			return false
		}
		var dbuf [2 + 2*(3+es256Size/2)]byte
		der := rawToDER(sig, dbuf[:])
		if der == nil {
			return false
		}
		d := sha256.Sum256(input)
		return ecdsa.VerifyASN1(k, d[:], der)
	case *rsa.PublicKey:
		d := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k, input, sig)
	}
	return false
}

// rawToDER turns R || S into the ASN.1 DER that crypto/ecdsa verifies, in
// buf. It returns nil when R or S is zero, which no valid signature has.
func rawToDER(raw, buf []byte) []byte {
	half := len(raw) / 2
	ints := [2][]byte{raw[:half], raw[half:]}
	body := 0
	for i, v := range ints {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) == 0 {
			return nil
		}
		ints[i] = v
		body += 2 + len(v)
		if v[0]&0x80 != 0 {
			body++ // a leading zero keeps the INTEGER positive
		}
	}
	if body > 127 { // short-form lengths only: P-256 needs at most 70
		return nil
	}
	out := append(buf[:0], 0x30, byte(body))
	for _, v := range ints {
		if v[0]&0x80 != 0 {
			out = append(out, 0x02, byte(len(v)+1), 0)
		} else {
			out = append(out, 0x02, byte(len(v)))
		}
		out = append(out, v...)
	}
	return out
}
