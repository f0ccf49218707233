package keys

import (
	"bytes"
	"strings"
)

const (
	// MaxTokenSize is the longest token Verify parses; longer ones are
	// rejected before any decoding.
	MaxTokenSize = 8 << 10
	// maxHeaderLen bounds the encoded protected header. authd's headers hold
	// alg, a 43-character kid and typ: about 100 characters.
	maxHeaderLen = 512
	// maxHeaderDecoded is the decoded size of a maxHeaderLen header.
	maxHeaderDecoded = maxHeaderLen * 3 / 4
)

// splitCompact checks the shape of a compact JWS before anything is decoded:
// exactly three non-empty segments of canonical unpadded base64url. Canonical
// means the unused low bits of the last character are zero, so no two token
// strings decode to the same bytes. It returns the encoded protected header.
func splitCompact(token string) (header string, reason string) {
	dots := 0
	first := -1
	start := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			continue
		case c == '.':
			if !canonicalSegment(token[start:i]) {
				return "", "segment is not canonical base64url"
			}
			dots++
			if dots == 1 {
				first = i
			}
			start = i + 1
		default:
			return "", "not a compact JWS"
		}
	}
	if dots != 2 {
		return "", "not a compact JWS"
	}
	if !canonicalSegment(token[start:]) {
		return "", "segment is not canonical base64url"
	}
	if first > maxHeaderLen {
		return "", "header too large"
	}
	return token[:first], ""
}

// canonicalSegment reports whether s, made of base64url characters only, is a
// non-empty canonical unpadded encoding.
func canonicalSegment(s string) bool {
	if s == "" {
		return false
	}
	var unused uint
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		return true
	}
	return b64value(s[len(s)-1])&(1<<unused-1) == 0
}

func b64value(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	default: // '_'
		return 63
	}
}

// joseHeader is the protected header as scanHeader sees it; the fields point
// into the decoded header.
type joseHeader struct {
	alg, kid, typ []byte
}

// scanHeader parses a protected header strictly: a flat JSON object with
// exactly the members alg, kid and typ, each once, each a string of printable
// ASCII without escapes, and no other member. Any other header parameter
// (jku, x5u, x5c, jwk, crit, b64, zip, ...) is refused, since authd never
// writes one. Being stricter than JSON means no two parsers can read the
// header differently.
func scanHeader(b []byte) (h joseHeader, reason string) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return h, "header is not a JSON object"
	}
	i = skipWS(b, i+1)
	seen := 0
	for {
		if i >= len(b) {
			return h, "header is not a JSON object"
		}
		if b[i] == '}' && seen == 0 {
			break
		}
		var name, value []byte
		var ok bool
		if name, i, ok = scanString(b, i); !ok {
			return h, "malformed header"
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return h, "malformed header"
		}
		i = skipWS(b, i+1)
		if value, i, ok = scanString(b, i); !ok {
			return h, "malformed header or non-string header value"
		}
		var dup bool
		switch string(name) {
		case "alg":
			dup, h.alg = h.alg != nil, value
		case "kid":
			dup, h.kid = h.kid != nil, value
		case "typ":
			dup, h.typ = h.typ != nil, value
		default:
			return h, "unsupported header parameter"
		}
		if dup {
			return h, "duplicate header parameter"
		}
		seen++
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			break
		}
		return h, "malformed header"
	}
	if skipWS(b, i+1) != len(b) {
		return h, "trailing data after header"
	}
	switch {
	case len(h.alg) == 0:
		return h, "missing alg"
	case len(h.kid) == 0:
		return h, "missing kid"
	case h.typ == nil:
		return h, "missing typ"
	}
	return h, ""
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string of printable ASCII without escapes at b[i];
// it returns the contents (non-nil, possibly empty) and the index after it.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[start:j:j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

// typOK reports whether typ names an RFC 9068 access token: "at+jwt" or
// "application/at+jwt", compared case-insensitively as media types are.
func typOK(typ []byte) bool {
	if len(typ) > len("application/") && bytes.EqualFold(typ[:len("application/")], []byte("application/")) {
		typ = typ[len("application/"):]
	}
	return bytes.EqualFold(typ, []byte(tokenType))
}

// typStringOK is typOK for go-jose's view of the header.
func typStringOK(typ string) bool {
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") {
		typ = typ[len("application/"):]
	}
	return strings.EqualFold(typ, tokenType)
}

// decodeSegment decodes s, a segment splitCompact accepted, into buf and
// returns the decoded bytes; it fails when buf is too small.
func decodeSegment(buf []byte, s string) ([]byte, bool) {
	n := len(s) / 4 * 3
	switch len(s) % 4 {
	case 2:
		n++
	case 3:
		n += 2
	}
	if n > len(buf) {
		return nil, false
	}
	out := buf[:n]
	j := 0
	for len(s) >= 4 {
		v := uint32(b64value(s[0]))<<18 | uint32(b64value(s[1]))<<12 | uint32(b64value(s[2]))<<6 | uint32(b64value(s[3]))
		out[j], out[j+1], out[j+2] = byte(v>>16), byte(v>>8), byte(v)
		s, j = s[4:], j+3
	}
	switch len(s) {
	case 2:
		v := uint32(b64value(s[0]))<<18 | uint32(b64value(s[1]))<<12
		out[j] = byte(v >> 16)
	case 3:
		v := uint32(b64value(s[0]))<<18 | uint32(b64value(s[1]))<<12 | uint32(b64value(s[2]))<<6
		out[j], out[j+1] = byte(v>>16), byte(v>>8)
	}
	return out, true
}
