package jws

import "strings"

// Token is a compact JWS whose shape and protected header Parse checked. Its
// signature, and the encoding of its payload and signature segments, are
// checked by Verify, which alone returns the payload.
type Token struct {
	s          string // the whole token
	dot1, dot2 int    // the two dots
	alg        Alg
	kid, typ   span // into hdr
	hdr        [maxHeaderDecoded]byte
}

// span is a part of Token.hdr.
type span struct{ start, end int }

// Alg returns the header's algorithm: one of the set Parse accepted.
func (t *Token) Alg() Alg { return t.alg }

// Kid returns the header's kid, never empty. It points into t: it is valid
// as long as t is, and must not be modified.
func (t *Token) Kid() []byte { return t.hdr[t.kid.start:t.kid.end:t.kid.end] }

// Typ returns the header's typ, possibly empty, as Kid does.
func (t *Token) Typ() []byte { return t.hdr[t.typ.start:t.typ.end:t.typ.end] }

// TypIs reports whether the header's typ names mediaType, which is given
// without "application/" (RFC 7515 §4.1.9): compared case-insensitively, as
// media types are, with or without the "application/" prefix.
func (t *Token) TypIs(mediaType string) bool {
	typ := t.Typ()
	const app = "application/"
	if len(typ) > len(app) && strings.EqualFold(string(typ[:len(app)]), app) {
		typ = typ[len(app):]
	}
	return strings.EqualFold(string(typ), mediaType)
}

// Parse checks the shape of a compact JWS and reads its protected header.
// token must be at most MaxTokenSize bytes: three non-empty segments of the
// base64url alphabet and nothing else, the header at most MaxHeaderLen
// characters of canonical base64url. The header must be a JSON object with
// exactly the members alg, kid and typ, each once, each a string of printable
// ASCII without escapes (JSON whitespace between tokens is allowed); alg must
// be in accept, kid must not be empty. Nothing is trusted until Verify.
func Parse(token string, accept Alg) (Token, error) {
	var t Token
	if err := t.parse(token, accept); err != nil {
		return Token{}, err
	}
	return t, nil
}

func (t *Token) parse(s string, accept Alg) error {
	if len(s) > MaxTokenSize {
		return errTooLarge
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return errNotCompact
			}
		default:
			return errNotCompact
		}
	}
	if dot2 < 0 {
		return errNotCompact
	}
	if dot1 == 0 || dot2 == dot1+1 || dot2 == len(s)-1 {
		return errEmptySegment
	}
	if dot1 > MaxHeaderLen {
		return errHeaderTooLarge
	}
	var enc [MaxHeaderLen]byte
	n, err := b64.Decode(t.hdr[:], enc[:copy(enc[:], s[:dot1])])
	if err != nil {
		return errBase64
	}
	if err := t.scanHeader(n); err != nil {
		return err
	}
	if t.alg&accept == 0 {
		return errAlg
	}
	t.s, t.dot1, t.dot2 = s, dot1, dot2
	return nil
}

// scanHeader reads the decoded header t.hdr[:n] into t.alg, t.kid and t.typ.
// It is stricter than JSON: a flat object of the three string members and
// nothing else, so that no two parsers can read a header differently.
func (t *Token) scanHeader(n int) error {
	b := t.hdr[:n]
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errHeaderJSON
	}
	i = skipWS(b, i+1)
	var hasAlg, hasKID, hasTyp bool
	for {
		if i >= len(b) {
			return errHeaderJSON
		}
		if b[i] == '}' && !hasAlg && !hasKID && !hasTyp {
			break // {}: refused below for its missing members
		}
		name, next, ok := scanString(b, i)
		if !ok {
			return errHeaderSyntax
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return errHeaderSyntax
		}
		value, next, ok := scanString(b, skipWS(b, i+1))
		if !ok {
			return errHeaderSyntax
		}
		var dup bool
		switch string(b[name.start:name.end]) {
		case "alg":
			dup, hasAlg = hasAlg, true
			t.alg = algOf(b[value.start:value.end])
		case "kid":
			dup, hasKID = hasKID, true
			t.kid = value
		case "typ":
			dup, hasTyp = hasTyp, true
			t.typ = value
		default:
			return errHeaderMember
		}
		if dup {
			return errHeaderDup
		}
		i = skipWS(b, next)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			break
		}
		return errHeaderSyntax
	}
	if skipWS(b, i+1) != len(b) {
		return errHeaderJSON // trailing data
	}
	switch {
	case !hasAlg:
		return errAlg
	case t.kid.start == t.kid.end:
		return errNoKID
	case !hasTyp:
		return errNoTyp
	}
	return nil
}

// algOf is ParseAlg on bytes; 0 for an unknown name.
func algOf(name []byte) Alg {
	switch string(name) {
	case "ES256":
		return ES256
	case "RS256":
		return RS256
	case "EdDSA":
		return EdDSA
	}
	return 0
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string of printable ASCII without escapes at b[i]:
// it returns its contents' span and the index after its closing quote.
func scanString(b []byte, i int) (span, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return span{}, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return span{i + 1, j}, j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return span{}, j, false
		}
	}
	return span{}, len(b), false
}
