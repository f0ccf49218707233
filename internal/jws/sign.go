package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Signer signs compact JWSs with one private key. Its protected header,
// {"alg":...,"kid":...,"typ":...}, is encoded once. It is safe for
// concurrent use.
type Signer struct {
	key     crypto.Signer
	header  string // base64url of the protected header, with the trailing '.'
	sigSize int    // the size of a signature
}

// NewSigner returns a Signer with key for alg, whose header names kid and
// typ: *ecdsa.PrivateKey on P-256 for ES256, *rsa.PrivateKey for RS256,
// ed25519.PrivateKey for EdDSA. kid and typ must be non-empty printable
// ASCII without '"' or '\', so that the header needs no escape and Parse
// reads it.
func NewSigner(alg Alg, kid, typ string, key crypto.Signer) (*Signer, error) {
	var size int
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			size = es256Size
		}
	case *rsa.PrivateKey:
		if alg == RS256 && k.N != nil {
			size = k.Size()
		}
	case ed25519.PrivateKey:
		if alg == EdDSA && len(k) == ed25519.PrivateKeySize {
			size = ed25519.SignatureSize
		}
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: key type %T does not fit %v", ErrAlgorithm, key, alg)
	}
	if !plainString(kid) || !plainString(typ) {
		return nil, errors.New("jws: kid and typ must be non-empty printable ASCII without quote or backslash")
	}
	h := `{"alg":"` + alg.String() + `","kid":"` + kid + `","typ":"` + typ + `"}`
	enc := b64.EncodeToString([]byte(h))
	if len(enc) > MaxHeaderLen {
		return nil, errors.New("jws: header too large")
	}
	return &Signer{key: key, header: enc + ".", sigSize: size}, nil
}

// plainString reports whether s can be written in a JSON string without an
// escape and read back by scanString.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// Sign returns header.payload.signature over payload, which must not be
// empty. The caller bounds its size: a token longer than MaxTokenSize is
// one Parse refuses.
func (s *Signer) Sign(payload []byte) (string, error) {
	if len(payload) == 0 {
		return "", errors.New("jws: empty payload")
	}
	buf := make([]byte, 0, len(s.header)+b64.EncodedLen(len(payload))+1+b64.EncodedLen(s.sigSize))
	buf = append(buf, s.header...)
	buf = b64.AppendEncode(buf, payload)
	var (
		sig []byte
		err error
	)
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(buf)
		var der []byte
		if der, err = ecdsa.SignASN1(rand.Reader, k, d[:]); err == nil {
			var raw [es256Size]byte
			if err = derToRaw(der, raw[:]); err == nil {
				sig = raw[:]
			}
		}
	case *rsa.PrivateKey:
		d := sha256.Sum256(buf)
		sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, buf)
	}
	if err != nil {
		return "", fmt.Errorf("jws: %w", err)
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

var errDER = errors.New("jws: malformed ECDSA signature")

// derToRaw turns the ASN.1 DER signature crypto/ecdsa writes,
// SEQUENCE { INTEGER r, INTEGER s }, into R || S in out, each left-padded
// with zeros to half of out; out must be zero. A P-256 signature has
// short-form lengths only.
func derToRaw(der, out []byte) error {
	if len(der) < 2 || der[0] != 0x30 || der[1] >= 0x80 || int(der[1]) != len(der)-2 {
		return errDER
	}
	body := der[2:]
	half := len(out) / 2
	for i := range 2 {
		if len(body) < 2 || body[0] != 0x02 || body[1] >= 0x80 || int(body[1]) > len(body)-2 {
			return errDER
		}
		v := body[2 : 2+int(body[1])]
		body = body[2+int(body[1]):]
		if len(v) == 0 || v[0]&0x80 != 0 { // empty or negative
			return errDER
		}
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > half {
			return errDER
		}
		copy(out[i*half+half-len(v):(i+1)*half], v)
	}
	if len(body) != 0 {
		return errDER
	}
	return nil
}
