package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// token is a JWS in compact serialization, split but not yet trusted.
type token struct {
	raw  []byte // the whole token; raw[:dot2] is the signing input
	dot1 int
	dot2 int
	buf  []byte // room for the decoded parts
}

// splitToken checks the token's alphabet and shape: three base64url parts.
// It is strict on purpose: the base64 decoder would skip CR and LF, and
// nothing outside [A-Za-z0-9_-.] belongs in a compact JWS.
func splitToken(s string) (token, error) {
	if s == "" {
		return token{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return token{}, fmt.Errorf("%w: not a compact JWS (more than three parts)", ErrInvalid)
			}
		default:
			return token{}, fmt.Errorf("%w: character %#x at %d", ErrInvalid, c, i)
		}
	}
	if dot2 < 0 {
		return token{}, fmt.Errorf("%w: not a compact JWS (fewer than three parts)", ErrInvalid)
	}
	if dot1 == 0 || dot2 == dot1+1 || dot2 == len(s)-1 {
		return token{}, fmt.Errorf("%w: empty part", ErrInvalid)
	}
	// One allocation: the token's bytes, then room for its decoded parts
	// (never longer than the encoded ones).
	mem := make([]byte, 2*len(s))
	raw := mem[:copy(mem, s):len(s)]
	return token{raw: raw, dot1: dot1, dot2: dot2, buf: mem[len(s):len(s)]}, nil
}

// decode appends the decoded base64url part to t.buf and returns it.
func (t *token) decode(part []byte, what string) ([]byte, error) {
	enc := base64.RawURLEncoding
	if !canonicalTail(part) {
		return nil, fmt.Errorf("%w: %s is not canonical base64url", ErrInvalid, what)
	}
	start := len(t.buf)
	out := t.buf[start : start+enc.DecodedLen(len(part))]
	n, err := enc.Decode(out, part)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64url", ErrInvalid, what)
	}
	t.buf = t.buf[:start+n]
	return t.buf[start : start+n : start+n], nil
}

// canonicalTail reports whether the unused low bits of the last character of
// unpadded base64 are zero, so that one byte string has one encoding (what
// base64.Encoding.Strict checks, without its allocation).
func canonicalTail(part []byte) bool {
	var unused uint
	switch len(part) % 4 {
	case 0:
		return true
	case 1:
		return false
	case 2:
		unused = 4
	case 3:
		unused = 2
	}
	c := part[len(part)-1]
	var v byte
	switch {
	case 'A' <= c && c <= 'Z':
		v = c - 'A'
	case 'a' <= c && c <= 'z':
		v = c - 'a' + 26
	case '0' <= c && c <= '9':
		v = c - '0' + 52
	case c == '-':
		v = 62
	case c == '_':
		v = 63
	default:
		return false
	}
	return v&(1<<unused-1) == 0
}

// header is the JOSE header. jku, x5u, jwk and x5c are never read: keys come
// only from the issuer's key set.
type header struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

func (t *token) header() (header, error) {
	var h header
	b, err := t.decode(t.raw[:t.dot1], "header")
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrInvalid)
	}
	if h.Crit != nil {
		return h, fmt.Errorf("%w: crit header not supported", ErrInvalid)
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return h, fmt.Errorf("%w: typ %q is not at+jwt", ErrInvalid, short(h.Typ))
	}
	return h, nil
}

func (t *token) verifySignature(key *publicKey) error {
	sig, err := t.decode(t.raw[t.dot2+1:], "signature")
	if err != nil {
		return err
	}
	signed := t.raw[:t.dot2]
	var ok bool
	switch key.alg {
	case algES256:
		if len(sig) != 64 {
			return fmt.Errorf("%w: ES256 signature of %d bytes", ErrInvalid, len(sig))
		}
		digest := sha256.Sum256(signed)
		var der [72]byte
		ok = ecdsa.VerifyASN1(key.ec, digest[:], rawToDER(&der, sig))
	case algRS256:
		digest := sha256.Sum256(signed)
		ok = rsa.VerifyPKCS1v15(key.rsa, crypto.SHA256, digest[:], sig) == nil
	case algEdDSA:
		ok = ed25519.Verify(key.ed, signed, sig)
	}
	if !ok {
		return fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	return nil
}

// rawToDER turns the JWS form of an ECDSA P-256 signature (r || s, 32 bytes
// each) into the ASN.1 DER that crypto/ecdsa reads, in dst.
func rawToDER(dst *[72]byte, sig []byte) []byte {
	out := append(dst[:0], 0x30, 0)
	out = appendDERInt(out, sig[:32])
	out = appendDERInt(out, sig[32:])
	out[1] = byte(len(out) - 2)
	return out
}

// appendDERInt appends the DER INTEGER of the unsigned big-endian n.
func appendDERInt(out, n []byte) []byte {
	for len(n) > 1 && n[0] == 0 {
		n = n[1:]
	}
	if n[0]&0x80 != 0 {
		out = append(out, 0x02, byte(len(n)+1), 0)
	} else {
		out = append(out, 0x02, byte(len(n)))
	}
	return append(out, n...)
}

// payload is the claims set as authd writes it (RFC 9068, RFC 7519).
type payload struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      audience `json:"aud"`
	Exp      float64  `json:"exp"`
	Iat      float64  `json:"iat"`
	Nbf      float64  `json:"nbf"`
	Jti      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Scp      []string `json:"scp"`
	Roles    []string `json:"roles"`
	Username string   `json:"preferred_username"`
	Cnf      *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// audience reads aud as a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

func (t *token) claims() (*Claims, error) {
	b, err := t.decode(t.raw[t.dot1+1:t.dot2], "payload")
	if err != nil {
		return nil, err
	}
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrInvalid)
	}
	if p.Sub == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	c := &Claims{
		Issuer:   p.Iss,
		Subject:  p.Sub,
		Audience: p.Aud,
		ID:       p.Jti,
		ClientID: p.ClientID,
		Username: p.Username,
		Scopes:   p.Scp,
		Roles:    p.Roles,
		raw:      b,
	}
	if p.Cnf != nil {
		c.bound = true
		c.Confirmation.JKT = p.Cnf.JKT
	}
	if p.Scope != "" {
		c.Scopes = strings.Fields(p.Scope)
	}
	if c.ExpiresAt, err = numericDate(p.Exp, "exp", true); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = numericDate(p.Iat, "iat", true); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate(p.Nbf, "nbf", false); err != nil {
		return nil, err
	}
	return c, nil
}

// numericDate converts a JWT NumericDate; zero means absent.
func numericDate(f float64, name string, required bool) (time.Time, error) {
	if f == 0 {
		if required {
			return time.Time{}, fmt.Errorf("%w: no %s", ErrInvalid, name)
		}
		return time.Time{}, nil
	}
	// Past year 9999 (or before 1970) is not a date authd writes.
	if f < 0 || f > 253402300799 {
		return time.Time{}, fmt.Errorf("%w: %s out of range", ErrInvalid, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
