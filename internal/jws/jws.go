// Package jws signs, parses and verifies JSON Web Signatures in compact
// serialization (RFC 7515 §7.1), in the one shape authd writes: a protected
// header of exactly alg, kid and typ, signed with ES256, RS256 or EdDSA. It
// is the only JWS code of authd's signing (keys) and of resource servers'
// verification (verify), and it imports nothing of authd's.
//
// It is stricter than a general JOSE library on purpose, so that no two
// parsers can read one token differently and a token has one spelling:
// every segment is non-empty, canonical unpadded base64url with nothing else
// in it (no whitespace, no padding); the header is a flat JSON object of the
// string members alg, kid and typ, each once, each printable ASCII without
// escapes, and nothing else (no jku, x5u, x5c, jwk, crit, b64, ...). The
// differential fuzz target FuzzAgainstGoJose checks it against go-jose.
package jws

import (
	"encoding/base64"
	"errors"
	"strconv"
)

// Alg is a signature algorithm. Each is one bit, so that an OR of them is a
// set: Parse takes the set of algorithms it accepts.
type Alg uint8

// The supported algorithms (RFC 7518 §3.1, RFC 8037).
const (
	ES256 Alg = 1 << iota // ECDSA on P-256 with SHA-256; the signature is R || S
	RS256                 // RSASSA-PKCS1-v1_5 with SHA-256
	EdDSA                 // Ed25519
)

// ParseAlg returns the Alg named name ("ES256", "RS256" or "EdDSA").
func ParseAlg(name string) (Alg, bool) {
	switch name {
	case "ES256":
		return ES256, true
	case "RS256":
		return RS256, true
	case "EdDSA":
		return EdDSA, true
	}
	return 0, false
}

// String returns the JWS name of a; a set of several algorithms (or none)
// has none.
func (a Alg) String() string {
	switch a {
	case ES256:
		return "ES256"
	case RS256:
		return "RS256"
	case EdDSA:
		return "EdDSA"
	}
	return "alg(" + strconv.Itoa(int(a)) + ")"
}

const (
	// MaxTokenSize is the longest token Parse reads.
	MaxTokenSize = 8 << 10
	// MaxHeaderLen bounds the encoded protected header. authd's headers
	// hold alg, a 43-character kid and typ: about 100 characters.
	MaxHeaderLen = 512

	// maxHeaderDecoded is the decoded size of a MaxHeaderLen header.
	maxHeaderDecoded = MaxHeaderLen * 3 / 4
	// es256Size is the size of an ES256 signature: R and S, 32 bytes each
	// (RFC 7518 §3.4).
	es256Size = 64
)

// Errors. Every error of Parse and Token.Verify matches one of these with
// errors.Is; its text names the failed check, never a part of the token.
var (
	// ErrMalformed reports a token that is not a compact JWS of the shape
	// this package reads.
	ErrMalformed = errors.New("jws: malformed token")
	// ErrAlgorithm reports an alg outside the accepted set, or a key that
	// is not of the header's algorithm.
	ErrAlgorithm = errors.New("jws: algorithm not accepted")
	// ErrSignature reports a signature that the key does not verify.
	ErrSignature = errors.New("jws: invalid signature")
)

// reasonError is a fixed reason for refusing a token. The values are made
// once, so refusing a token allocates nothing.
type reasonError struct {
	kind error
	text string
}

func (e *reasonError) Error() string { return "jws: " + e.text }
func (e *reasonError) Unwrap() error { return e.kind }

func malformed(text string) error { return &reasonError{kind: ErrMalformed, text: text} }

var (
	errTooLarge       = malformed("token too large")
	errNotCompact     = malformed("not a compact JWS")
	errEmptySegment   = malformed("empty segment")
	errHeaderTooLarge = malformed("header too large")
	errBase64         = malformed("segment is not canonical base64url")
	errHeaderJSON     = malformed("header is not a JSON object")
	errHeaderSyntax   = malformed("malformed header or non-string header value")
	errHeaderMember   = malformed("unsupported header parameter")
	errHeaderDup      = malformed("duplicate header parameter")
	errNoKID          = malformed("missing kid")
	errNoTyp          = malformed("missing typ")
	errAlg            = &reasonError{kind: ErrAlgorithm, text: "alg not accepted"}
	errKeyAlg         = &reasonError{kind: ErrAlgorithm, text: "key does not fit alg"}
	errSignature      = &reasonError{kind: ErrSignature, text: "invalid signature"}
)

// b64 decodes canonical unpadded base64url only: the unused low bits of the
// last character must be zero. It still skips CR and LF, so Parse refuses
// every character outside the alphabet before anything is decoded.
var b64 = base64.RawURLEncoding.Strict()
