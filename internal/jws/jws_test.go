package jws

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

const allAlgs = ES256 | RS256 | EdDSA

var enc = base64.RawURLEncoding.EncodeToString

// testKeys are fresh keys of every algorithm.
type testKeys struct {
	es  *ecdsa.PrivateKey
	rs  *rsa.PrivateKey
	ed  ed25519.PrivateKey
	byA map[Alg]crypto.Signer
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKeys{es: es, rs: rs, ed: ed, byA: map[Alg]crypto.Signer{ES256: es, RS256: rs, EdDSA: ed}}
}

// rawSign signs input as alg does, with key.
func rawSign(t testing.TB, alg Alg, key crypto.Signer, input string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(input))
	switch alg {
	case ES256:
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	case RS256:
		sig, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case EdDSA:
		return ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	}
	t.Fatalf("rawSign: alg %v", alg)
	return nil
}

// forge builds a token from a raw header and payload, signed by key as alg.
func forge(t testing.TB, alg Alg, key crypto.Signer, header, payload string) string {
	t.Helper()
	input := enc([]byte(header)) + "." + enc([]byte(payload))
	return input + "." + enc(rawSign(t, alg, key, input))
}

func TestSignParseVerify(t *testing.T) {
	keys := newTestKeys(t)
	payload := []byte(`{"sub":"alice","n":1}`)
	for _, alg := range []Alg{ES256, RS256, EdDSA} {
		t.Run(alg.String(), func(t *testing.T) {
			key := keys.byA[alg]
			s, err := NewSigner(alg, "kid-1", "at+jwt", key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			wantHeader := fmt.Sprintf(`{"alg":%q,"kid":"kid-1","typ":"at+jwt"}`, alg)
			if h, _, _ := strings.Cut(tok, "."); h != enc([]byte(wantHeader)) {
				t.Errorf("header = %s; want %s", h, wantHeader)
			}
			tt, err := Parse(tok, alg)
			if err != nil {
				t.Fatalf("Parse(Sign's token) = %v", err)
			}
			if tt.Alg() != alg || string(tt.Kid()) != "kid-1" || string(tt.Typ()) != "at+jwt" {
				t.Errorf("header = %v %q %q; want %v kid-1 at+jwt", tt.Alg(), tt.Kid(), tt.Typ(), alg)
			}
			got, err := tt.Verify(key.Public())
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("Verify = %q, %v; want the payload", got, err)
			}
			if _, err := Parse(tok, allAlgs&^alg); !errors.Is(err, ErrAlgorithm) {
				t.Errorf("Parse(token, without %v) = %v; want ErrAlgorithm", alg, err)
			}

			// go-jose reads Sign's token, and Verify reads go-jose's.
			obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg.String())})
			if err != nil {
				t.Fatalf("go-jose cannot parse Sign's token: %v", err)
			}
			if got, err := obj.Verify(key.Public()); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("go-jose Verify(Sign's token) = %q, %v", got, err)
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg.String()), Key: key},
				(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "kid-1"))
			if err != nil {
				t.Fatal(err)
			}
			jobj, err := js.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			jtok, err := jobj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			jt, err := Parse(jtok, alg)
			if err != nil {
				t.Fatalf("Parse(go-jose token) = %v", err)
			}
			if got, err := jt.Verify(key.Public()); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("Verify(go-jose token) = %q, %v", got, err)
			}

			// Every key of another algorithm is refused before any crypto.
			for other, k := range keys.byA {
				if other == alg {
					continue
				}
				if _, err := tt.Verify(k.Public()); !errors.Is(err, ErrAlgorithm) {
					t.Errorf("Verify(%v token, %v key) = %v; want ErrAlgorithm", alg, other, err)
				}
			}
			stranger := newTestKeys(t).byA[alg]
			if _, err := tt.Verify(stranger.Public()); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify(another %v key) = %v; want ErrSignature", alg, err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	const payload = `{"sub":"x"}`
	tok := func(header string) string { return enc([]byte(header)) + "." + enc([]byte(payload)) + ".c2ln" }
	accepted := []struct {
		header     string
		alg        Alg
		kid, typ   string
		typIsAtJWT bool
		typIsDPoP  bool
	}{
		{`{"alg":"ES256","kid":"k","typ":"at+jwt"}`, ES256, "k", "at+jwt", true, false},
		{`{"typ":"dpop+jwt","kid":"k 1","alg":"EdDSA"}`, EdDSA, "k 1", "dpop+jwt", false, true},
		{" {\t\"alg\" : \"RS256\" ,\n\"kid\":\"~\",\r\"typ\":\"\"} ", RS256, "~", "", false, false},
		{`{"alg":"ES256","kid":"k","typ":"Application/AT+JWT"}`, ES256, "k", "Application/AT+JWT", true, false},
	}
	for _, tc := range accepted {
		tt, err := Parse(tok(tc.header), allAlgs)
		if err != nil {
			t.Errorf("Parse(%s) = %v; want accepted", tc.header, err)
			continue
		}
		if tt.Alg() != tc.alg || string(tt.Kid()) != tc.kid || string(tt.Typ()) != tc.typ {
			t.Errorf("Parse(%s) = %v %q %q; want %v %q %q", tc.header, tt.Alg(), tt.Kid(), tt.Typ(), tc.alg, tc.kid, tc.typ)
		}
		if got := tt.TypIs("at+jwt"); got != tc.typIsAtJWT {
			t.Errorf("Parse(%s).TypIs(at+jwt) = %v", tc.header, got)
		}
		if got := tt.TypIs("dpop+jwt"); got != tc.typIsDPoP {
			t.Errorf("Parse(%s).TypIs(dpop+jwt) = %v", tc.header, got)
		}
	}

	hdr := func(members string) string { return `{"alg":"ES256","kid":"k","typ":"at+jwt"` + members + `}` }
	good := tok(hdr(""))
	parts := strings.Split(good, ".")
	rejected := []struct {
		name, token string
		want        error
	}{
		{"empty", "", ErrMalformed},
		{"dots", "..", ErrMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"four segments", good + ".c2ln", ErrMalformed},
		{"empty header", "." + parts[1] + "." + parts[2], ErrMalformed},
		{"empty payload", parts[0] + ".." + parts[2], ErrMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrMalformed},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"padded signature", good + "==", ErrMalformed},
		{"newline", parts[0][:3] + "\n" + parts[0][3:] + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"CR", good[:5] + "\r" + good[5:], ErrMalformed},
		{"leading space", " " + good, ErrMalformed},
		{"standard alphabet", tok(`{"alg":"ES256","kid":"k>>>","typ":"at+jwt"}`)[:10] + "+/" + good[12:], ErrMalformed},
		{"JSON serialization", `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"c2ln"}`, ErrMalformed},
		{"header length 1 mod 4", "A" + good, ErrMalformed},
		{"non-canonical header", nonCanonical(t, parts[0]) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"too large", good + strings.Repeat("A", MaxTokenSize), ErrMalformed},
		{"header too large", tok(hdr(strings.Repeat(" ", MaxHeaderLen))), ErrMalformed},
		{"header not JSON", tok(`alg=ES256`), ErrMalformed},
		{"header an array", tok(`["ES256"]`), ErrMalformed},
		{"header empty object", tok(`{}`), ErrAlgorithm},
		{"trailing data", tok(hdr("") + "{}"), ErrMalformed},
		{"trailing comma", tok(hdr(",")), ErrMalformed},
		{"unclosed", tok(`{"alg":"ES256","kid":"k","typ":"at+jwt"`), ErrMalformed},
		{"jku", tok(hdr(`,"jku":"https://evil.example"`)), ErrMalformed},
		{"x5u", tok(hdr(`,"x5u":"https://evil.example"`)), ErrMalformed},
		{"x5c", tok(hdr(`,"x5c":[]`)), ErrMalformed},
		{"jwk", tok(hdr(`,"jwk":{"kty":"oct","k":"AAAA"}`)), ErrMalformed},
		{"crit", tok(hdr(`,"crit":["exp"],"exp":1`)), ErrMalformed},
		{"b64", tok(hdr(`,"b64":false,"crit":["b64"]`)), ErrMalformed},
		{"cty", tok(hdr(`,"cty":"JWT"`)), ErrMalformed},
		{"duplicate alg", tok(`{"alg":"none","alg":"ES256","kid":"k","typ":"at+jwt"}`), ErrMalformed},
		{"duplicate kid", tok(hdr(`,"kid":"j"`)), ErrMalformed},
		{"duplicate typ", tok(hdr(`,"typ":"JWT"`)), ErrMalformed},
		{"member name in another case", tok(`{"ALG":"ES256","kid":"k","typ":"at+jwt"}`), ErrMalformed},
		{"escaped member name", tok(`{"\u0061lg":"ES256","kid":"k","typ":"at+jwt"}`), ErrMalformed},
		{"escaped value", tok(`{"alg":"ES256","kid":"k","typ":"at\u002bjwt"}`), ErrMalformed},
		{"escaped quote", tok(`{"alg":"ES256","kid":"k\"","typ":"at+jwt"}`), ErrMalformed},
		{"non-ASCII kid", tok(`{"alg":"ES256","kid":"ké","typ":"at+jwt"}`), ErrMalformed},
		{"control character in kid", tok("{\"alg\":\"ES256\",\"kid\":\"k\x01\",\"typ\":\"at+jwt\"}"), ErrMalformed},
		{"typ a number", tok(`{"alg":"ES256","kid":"k","typ":1}`), ErrMalformed},
		{"kid null", tok(`{"alg":"ES256","kid":null,"typ":"at+jwt"}`), ErrMalformed},
		{"no kid", tok(`{"alg":"ES256","typ":"at+jwt"}`), ErrMalformed},
		{"empty kid", tok(`{"alg":"ES256","kid":"","typ":"at+jwt"}`), ErrMalformed},
		{"no typ", tok(`{"alg":"ES256","kid":"k"}`), ErrMalformed},
		{"no alg", tok(`{"kid":"k","typ":"at+jwt"}`), ErrAlgorithm},
		{"alg none", tok(`{"alg":"none","kid":"k","typ":"at+jwt"}`), ErrAlgorithm},
		{"alg HS256", tok(`{"alg":"HS256","kid":"k","typ":"at+jwt"}`), ErrAlgorithm},
		{"alg es256", tok(`{"alg":"es256","kid":"k","typ":"at+jwt"}`), ErrAlgorithm},
		{"alg with a space", tok(`{"alg":"ES256 ","kid":"k","typ":"at+jwt"}`), ErrAlgorithm},
		{"alg not accepted", tok(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`), nil}, // see below
	}
	for _, tc := range rejected {
		accept := allAlgs
		if tc.want == nil {
			accept, tc.want = ES256|EdDSA, ErrAlgorithm
		}
		tt, err := Parse(tc.token, accept)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse = %v; want %v", tc.name, err, tc.want)
		}
		if tt != (Token{}) {
			t.Errorf("%s: Parse returned a token with its error", tc.name)
		}
		if p := parts[1]; strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "k\"") {
			t.Errorf("%s: error %q quotes the token", tc.name, err)
		}
	}
}

// nonCanonical returns seg with an unused low bit of its last character set:
// the same bytes to a lenient decoder, another string.
func nonCanonical(t *testing.T, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		t.Fatalf("nonCanonical(%q): no unused bits", seg)
	}
	out := seg[:len(seg)-1] + string(alphabet[strings.IndexByte(alphabet, seg[len(seg)-1])|1])
	a, err1 := base64.RawURLEncoding.DecodeString(seg)
	b, err2 := base64.RawURLEncoding.DecodeString(out)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) || out == seg {
		t.Fatalf("nonCanonical(%q) = %q does not decode to the same bytes", seg, out)
	}
	return out
}

// Every segment has one spelling: the canonical encoding of n bytes is
// accepted, the same bytes with an unused bit set are not, wherever the
// segment is, even when the signature covers the non-canonical string.
func TestCanonicalSegments(t *testing.T) {
	keys := newTestKeys(t)
	for n := 1; n <= 12; n++ {
		payload := `{"p":"` + strings.Repeat("x", n) + `"}`
		for _, header := range []string{`{"alg":"EdDSA","kid":"k","typ":"at+jwt"}`, `{"alg":"EdDSA","kid":"k","typ":"at+jwt"}` + strings.Repeat(" ", n)} {
			h, p := enc([]byte(header)), enc([]byte(payload))
			sign := func(h, p string) string {
				return h + "." + p + "." + enc(ed25519.Sign(keys.ed, []byte(h+"."+p)))
			}
			good := sign(h, p)
			tt, err := Parse(good, EdDSA)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", good, err)
			}
			if got, err := tt.Verify(keys.ed.Public()); err != nil || string(got) != payload {
				t.Fatalf("Verify(%q) = %q, %v", good, got, err)
			}
			var bad []string
			if len(h)%4 != 0 {
				bad = append(bad, sign(nonCanonical(t, h), p))
			}
			if len(p)%4 != 0 {
				bad = append(bad, sign(h, nonCanonical(t, p)))
			}
			dot := strings.LastIndexByte(good, '.')
			bad = append(bad, good[:dot+1]+nonCanonical(t, good[dot+1:])) // 64 bytes: 86 characters
			for _, b := range bad {
				tt, err := Parse(b, EdDSA)
				if err == nil {
					_, err = tt.Verify(keys.ed.Public())
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Parse+Verify(%q) = %v; want ErrMalformed", b, err)
				}
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	keys := newTestKeys(t)
	const header = `{"alg":"ES256","kid":"k","typ":"at+jwt"}`
	const payload = `{"sub":"x"}`
	good := forge(t, ES256, keys.es, header, payload)
	parts := strings.Split(good, ".")
	input := parts[0] + "." + parts[1]
	d := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, keys.es, d[:])
	if err != nil {
		t.Fatal(err)
	}
	r, s := make([]byte, 32), make([]byte, 32)
	copy(r, mustRS(t, der)[:32])
	copy(s, mustRS(t, der)[32:])
	cases := map[string]string{
		"tampered payload":          parts[0] + "." + enc([]byte(`{"sub":"y"}`)) + "." + parts[2],
		"signature of a DER form":   input + "." + enc(der),
		"signature truncated":       input + "." + enc(mustRS(t, der)[:63]),
		"signature too long":        input + "." + enc(append(mustRS(t, der), 0)),
		"zero R":                    input + "." + enc(append(make([]byte, 32), s...)),
		"zero S":                    input + "." + enc(append(r, make([]byte, 32)...)),
		"R and S swapped":           input + "." + enc(append(s, r...)),
		"signature of other header": parts[0] + "." + parts[1] + "." + strings.Split(forge(t, ES256, keys.es, header+" ", payload), ".")[2],
	}
	for name, tok := range cases {
		tt, err := Parse(tok, ES256)
		if err != nil {
			t.Fatalf("%s: Parse = %v", name, err)
		}
		if got, err := tt.Verify(keys.es.Public()); !errors.Is(err, ErrSignature) || got != nil {
			t.Errorf("%s: Verify = %q, %v; want ErrSignature", name, got, err)
		}
	}
	tt, err := Parse(good, ES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.Verify(keys.es.Public()); err != nil {
		t.Fatalf("control: Verify = %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.PublicKey{
		"P-384 key":          p384.Public(),
		"nil ECDSA key":      (*ecdsa.PublicKey)(nil),
		"nil":                nil,
		"private key":        keys.es,
		"short Ed25519 key":  ed25519.PublicKey(make([]byte, 31)),
		"RSA key, not ECDSA": keys.rs.Public(),
	} {
		if _, err := tt.Verify(key); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("Verify(%s) = %v; want ErrAlgorithm", name, err)
		}
	}
}

// mustRS returns R || S of an ASN.1 signature.
func mustRS(t *testing.T, der []byte) []byte {
	t.Helper()
	out := make([]byte, 64)
	if err := derToRaw(der, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewSignerRejects(t *testing.T) {
	keys := newTestKeys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		alg      Alg
		kid, typ string
		key      crypto.Signer
	}{
		{"ES256 with an RSA key", ES256, "k", "at+jwt", keys.rs},
		{"RS256 with an Ed25519 key", RS256, "k", "at+jwt", keys.ed},
		{"EdDSA with an ECDSA key", EdDSA, "k", "at+jwt", keys.es},
		{"ES256 on P-384", ES256, "k", "at+jwt", p384},
		{"no algorithm", 0, "k", "at+jwt", keys.es},
		{"several algorithms", ES256 | EdDSA, "k", "at+jwt", keys.es},
		{"empty kid", ES256, "", "at+jwt", keys.es},
		{"empty typ", ES256, "k", "", keys.es},
		{"kid with a quote", ES256, `k"`, "at+jwt", keys.es},
		{"kid with a backslash", ES256, `k\`, "at+jwt", keys.es},
		{"non-ASCII kid", ES256, "ké", "at+jwt", keys.es},
		{"kid with a newline", ES256, "k\n", "at+jwt", keys.es},
		{"header too large", ES256, strings.Repeat("k", MaxHeaderLen), "at+jwt", keys.es},
	}
	for _, tc := range cases {
		if s, err := NewSigner(tc.alg, tc.kid, tc.typ, tc.key); err == nil || s != nil {
			t.Errorf("NewSigner(%s) = %v, %v; want an error", tc.name, s, err)
		}
	}
	s, err := NewSigner(EdDSA, "k", "at+jwt", keys.ed)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Sign(nil); err == nil {
		t.Errorf("Sign(empty payload) = %q; want an error", tok)
	}
}

// R and S shorter than 32 bytes (leading zeros) and with the high bit set
// survive the round trip between the JWS and the ASN.1 forms, and rawToDER
// writes what encoding/asn1 writes.
func TestECDSASignatureForms(t *testing.T) {
	cases := [][]byte{
		append(append(make([]byte, 3), bytes.Repeat([]byte{0x11}, 29)...), append([]byte{0, 0x7f}, bytes.Repeat([]byte{0x22}, 30)...)...),
		bytes.Repeat([]byte{0xff}, 64),
		append(bytes.Repeat([]byte{0x80}, 32), bytes.Repeat([]byte{0x01}, 32)...),
		append(append(make([]byte, 31), 5), append([]byte{0x7f}, make([]byte, 31)...)...),
	}
	for range 50 {
		sig := make([]byte, 64)
		_, _ = rand.Read(sig)
		cases = append(cases, sig)
	}
	for _, raw := range cases {
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
		if err != nil {
			t.Fatal(err)
		}
		var buf [72]byte
		der := rawToDER(raw, buf[:])
		if !bytes.Equal(der, want) {
			t.Errorf("rawToDER(%x) = %x; want %x", raw, der, want)
		}
		back := make([]byte, 64)
		if err := derToRaw(der, back); err != nil || !bytes.Equal(back, raw) {
			t.Errorf("derToRaw(rawToDER(%x)) = %x, %v", raw, back, err)
		}
	}
	var buf [72]byte
	for _, raw := range [][]byte{make([]byte, 64), append(make([]byte, 32), bytes.Repeat([]byte{1}, 32)...), append(bytes.Repeat([]byte{1}, 32), make([]byte, 32)...)} {
		if der := rawToDER(raw, buf[:]); der != nil {
			t.Errorf("rawToDER(%x) = %x; want nil (a zero integer)", raw, der)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("payload"))
	der, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := mustRS(t, der)
	if !ecdsa.VerifyASN1(&key.PublicKey, d[:], rawToDER(raw, buf[:])) {
		t.Error("a signature converted to R || S and back does not verify")
	}
	for name, bad := range map[string][]byte{
		"empty":             {},
		"truncated":         der[:len(der)-1],
		"trailing byte":     append(append([]byte(nil), der...), 0),
		"not a SEQUENCE":    append([]byte{0x31}, der[1:]...),
		"one INTEGER":       {0x30, 0x03, 0x02, 0x01, 0x01},
		"three INTEGERs":    {0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"negative INTEGER":  {0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01},
		"empty INTEGER":     {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01},
		"INTEGER too large": append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, append(make([]byte, 32), 0x02, 0x01, 0x01)...),
		"long-form length":  {0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"OCTET STRING":      {0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01},
	} {
		if err := derToRaw(bad, make([]byte, 64)); err == nil {
			t.Errorf("derToRaw(%s: %x) accepted it", name, bad)
		}
	}
}

func TestAlg(t *testing.T) {
	for _, a := range []Alg{ES256, RS256, EdDSA} {
		if got, ok := ParseAlg(a.String()); !ok || got != a {
			t.Errorf("ParseAlg(%q) = %v, %v; want %v", a.String(), got, ok, a)
		}
	}
	for _, name := range []string{"", "none", "HS256", "ES384", "es256", "EdDSA "} {
		if a, ok := ParseAlg(name); ok {
			t.Errorf("ParseAlg(%q) = %v; want not ok", name, a)
		}
	}
	if s := (ES256 | RS256).String(); s != "alg(3)" {
		t.Errorf("(ES256|RS256).String() = %q", s)
	}
}

// The hot path allocates nothing to read a token, and once to verify it
// (the payload, with the signing input).
func TestAllocations(t *testing.T) {
	keys := newTestKeys(t)
	s, err := NewSigner(EdDSA, "kid-1", "at+jwt", keys.ed)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign([]byte(`{"sub":"alice","scope":"orders","exp":1800000000}`))
	if err != nil {
		t.Fatal(err)
	}
	byKID := map[string]crypto.PublicKey{"kid-1": keys.ed.Public()}
	pub := keys.ed.Public()
	if n := testing.AllocsPerRun(100, func() {
		tt, err := Parse(tok, allAlgs)
		if err != nil || !tt.TypIs("at+jwt") || byKID[string(tt.Kid())] == nil {
			t.Fatal("Parse failed")
		}
	}); n != 0 {
		t.Errorf("Parse: %v allocations; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		tt, err := Parse(tok, allAlgs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tt.Verify(pub); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("Parse and Verify: %v allocations; want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(tok[1:], allAlgs); err == nil {
			t.Fatal("accepted")
		}
	}); n != 0 {
		t.Errorf("Parse refusing a token: %v allocations; want 0", n)
	}
}
