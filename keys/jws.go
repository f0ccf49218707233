package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Compact JWS (RFC 7515 §7.1) signing and signature checking, done directly
// with crypto/ecdsa, crypto/rsa and crypto/ed25519 on keys parsed once.
// go-jose still parses and renders the JWKs; on the per-token path it cost
// about a hundred allocations per token for nothing the strict header scan
// and the checks below do not already do.

// es256Size is the size of an ES256 signature: R and S, 32 bytes each (RFC 7518 §3.4).
const es256Size = 64

// tokenSigner signs access tokens with the current key. Its protected header
// ({"alg":...,"kid":...,"typ":"at+jwt"}) is encoded once.
type tokenSigner struct {
	kid    string
	alg    string
	key    crypto.Signer
	header string // base64url of the protected header, with the trailing '.'
}

func newTokenSigner(kid, alg string, key crypto.Signer) (*tokenSigner, error) {
	if err := checkKeyType(alg, key.Public()); err != nil {
		return nil, fmt.Errorf("keys: key %q: %w", kid, err)
	}
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, tokenType})
	if err != nil {
		return nil, fmt.Errorf("keys: key %q: header: %w", kid, err)
	}
	return &tokenSigner{kid: kid, alg: alg, key: key, header: base64.RawURLEncoding.EncodeToString(h) + "."}, nil
}

// sigSize is the size of a signature by s's key.
func (s *tokenSigner) sigSize() int {
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		return k.Size()
	case ed25519.PrivateKey:
		return ed25519.SignatureSize
	default:
		return es256Size
	}
}

// sign returns header.payload.signature over payload.
func (s *tokenSigner) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.header)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(s.sigSize()))
	buf = append(buf, s.header...)
	buf = enc.AppendEncode(buf, payload)
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
	default:
		err = fmt.Errorf("%w: key type %T", ErrUnsupportedAlg, s.key)
	}
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// derToRaw turns an ASN.1 ECDSA signature into R || S, each left-padded to
// half of out.
func derToRaw(der, out []byte) error {
	var r, s cryptobyte.String
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() {
		return errors.New("keys: malformed ECDSA signature")
	}
	half := len(out) / 2
	for i, v := range [][]byte{r, s} {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > half {
			return errors.New("keys: ECDSA signature too large")
		}
		copy(out[i*half+half-len(v):(i+1)*half], v)
	}
	return nil
}

// rawToDER turns R || S into the ASN.1 form crypto/ecdsa verifies, in buf.
// It returns nil when R or S is zero.
func rawToDER(raw []byte, buf []byte) []byte {
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
			body++
		}
	}
	if body > 127 { // short-form lengths only: P-256 needs at most 70
		return nil
	}
	out := append(buf[:0], 0x30, byte(body))
	for _, v := range ints {
		n := len(v)
		if v[0]&0x80 != 0 {
			out = append(out, 0x02, byte(n+1), 0)
		} else {
			out = append(out, 0x02, byte(n))
		}
		out = append(out, v...)
	}
	return out
}

// checkSignature verifies sig (still base64url) over signingInput with k.
func checkSignature(k *verifyKey, signingInput, sigEnc string) bool {
	var sbuf [512]byte
	sig, ok := decodeSegment(sbuf[:], sigEnc)
	if !ok {
		big := make([]byte, base64.RawURLEncoding.DecodedLen(len(sigEnc)))
		if sig, ok = decodeSegment(big, sigEnc); !ok {
			return false
		}
	}
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != es256Size {
			return false
		}
		var dbuf [2 + 2*(3+es256Size/2)]byte
		der := rawToDER(sig, dbuf[:])
		if der == nil {
			return false
		}
		d := sha256.Sum256([]byte(signingInput))
		return ecdsa.VerifyASN1(pub, d[:], der)
	case *rsa.PublicKey:
		d := sha256.Sum256([]byte(signingInput))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, []byte(signingInput), sig)
	}
	return false
}
