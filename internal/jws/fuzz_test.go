package jws

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// fuzzKey is a key of the differential fuzz target. The keys are derived
// from fixed labels, so that tokens in testdata/fuzz stay signed by them.
type fuzzKey struct {
	alg  Alg
	kid  string
	priv crypto.Signer
	pub  crypto.PublicKey
}

func fuzzKeys(tb testing.TB) []fuzzKey {
	tb.Helper()
	seed := func(label string) []byte {
		s := sha256.Sum256([]byte("authd internal/jws fuzz key " + label))
		return s[:]
	}
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed("ES256"))
	if err != nil {
		tb.Fatal(err)
	}
	ed := ed25519.NewKeyFromSeed(seed("EdDSA"))
	rs := deterministicRSAKey(tb, seed("RS256"))
	keys := []fuzzKey{{ES256, "es", es, nil}, {RS256, "rs", rs, nil}, {EdDSA, "ed", ed, nil}}
	for i := range keys {
		keys[i].pub = keys[i].priv.Public()
	}
	return keys
}

// deterministicRSAKey builds a 2048-bit RSA key from two primes found by
// counting up from SHA-256 output (crypto/rsa ignores a custom random
// source since Go 1.26). A test key only.
func deterministicRSAKey(tb testing.TB, seed []byte) *rsa.PrivateKey {
	tb.Helper()
	const e = 65537
	prime := func(label byte) *big.Int {
		b := make([]byte, 0, 128)
		for i := byte(0); len(b) < 128; i++ {
			s := sha256.Sum256(append([]byte{label, i}, seed...))
			b = append(b, s[:]...)
		}
		b[0] |= 0xc0 // two top bits: the product has 2048 bits
		p := new(big.Int).SetBytes(b)
		p.SetBit(p, 0, 1)
		two, m := big.NewInt(2), new(big.Int)
		for !p.ProbablyPrime(20) || m.Mod(p, big.NewInt(e)).Int64() == 1 {
			p.Add(p, two)
		}
		return p
	}
	p, q := prime('p'), prime('q')
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e},
		D:         new(big.Int).ModInverse(big.NewInt(e), phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		tb.Fatalf("deterministic RSA key: %v", err)
	}
	return k
}

// fuzzSeeds are tokens of every key: valid ones (by Signer and by go-jose),
// and mutations of them, some signed again so that go-jose accepts them.
func fuzzSeeds(tb testing.TB, keys []fuzzKey) (seeds []string, keyIndex []uint8) {
	tb.Helper()
	add := func(i int, tokens ...string) {
		for _, t := range tokens {
			seeds, keyIndex = append(seeds, t), append(keyIndex, uint8(i))
		}
	}
	b64 := base64.RawURLEncoding.EncodeToString
	const payload = `{"sub":"alice","aud":"orders","exp":1800000000}`
	for i, k := range keys {
		s, err := NewSigner(k.alg, k.kid, "at+jwt", k.priv)
		if err != nil {
			tb.Fatal(err)
		}
		good, err := s.Sign([]byte(payload))
		if err != nil {
			tb.Fatal(err)
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg.String()), Key: k.priv},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.kid))
		if err != nil {
			tb.Fatal(err)
		}
		obj, err := js.Sign([]byte(payload))
		if err != nil {
			tb.Fatal(err)
		}
		byJose, err := obj.CompactSerialize()
		if err != nil {
			tb.Fatal(err)
		}
		jsonForm := obj.FullSerialize()
		parts := strings.Split(good, ".")
		signed := func(header, payload string) string { return forge(tb, k.alg, k.priv, header, payload) }
		h := func(alg, kid, typ string) string {
			return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":%q}`, alg, kid, typ)
		}
		other := keys[(i+1)%len(keys)]
		add(i,
			// accepted by both
			good,
			byJose,
			signed(h(k.alg.String(), k.kid, "application/at+jwt"), payload),
			signed(h(k.alg.String(), k.kid, ""), payload),
			signed(" {\n\t\"typ\" : \"JWT\",\"kid\":\"x y\" ,\"alg\":\""+k.alg.String()+"\"}\r\n", `[1,2]`),
			signed(h(k.alg.String(), k.kid, "at+jwt"), "x"),
			// refused by both
			parts[0]+"!."+parts[1]+"."+parts[2],
			good+"=",
			good+".",
			good+"."+parts[2],
			parts[0]+"."+parts[1],
			parts[0]+"."+parts[1]+".",
			parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-4],
			parts[0]+"."+b64([]byte(`{"sub":"mallory"}`))+"."+parts[2],
			b64([]byte(h("none", k.kid, "at+jwt")))+"."+parts[1]+".",
			b64([]byte(h("none", k.kid, "at+jwt")))+"."+parts[1]+"."+parts[2],
			forge(tb, other.alg, other.priv, h(k.alg.String(), k.kid, "at+jwt"), payload),
			signed(h(other.alg.String(), k.kid, "at+jwt"), payload),
			signed(h("HS256", k.kid, "at+jwt"), payload),
			"",
			"..",
			// go-jose accepts, jws refuses: see strictness
			nonCanonicalSeg(good, 0),
			nonCanonicalSeg(good, 1),
			nonCanonicalSeg(good, 2),
			good[:10]+"\n"+good[10:],
			" "+good+"\t",
			good[:10]+"\u00a0"+good[10:],
			jsonForm,
			signed(h(k.alg.String(), "", "at+jwt"), payload),
			signed(fmt.Sprintf(`{"alg":%q,"typ":"at+jwt"}`, k.alg), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":%q}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":1}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":null,"typ":"at+jwt"}`, k.alg), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt","jku":"https://evil.example"}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt","crit":["exp"],"exp":1}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"alg":"none","alg":%q,"kid":%q,"typ":"at+jwt"}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"\u0061lg":%q,"kid":%q,"typ":"at+jwt"}`, k.alg, k.kid), payload),
			signed(fmt.Sprintf(`{"alg":%q,"kid":"\u00e9","typ":"at+jwt"}`, k.alg), payload),
			signed(h(k.alg.String(), k.kid, "at+jwt"), ""),
			signed(h(k.alg.String(), strings.Repeat("k", MaxHeaderLen), "at+jwt"), payload),
			signed(h(k.alg.String(), k.kid, "at+jwt"), strings.Repeat("p", MaxTokenSize)),
		)
		add(i+1, good) // the right token, another key
	}
	return seeds, keyIndex
}

// nonCanonicalSeg sets an unused low bit in segment i of token, if its
// length leaves any.
func nonCanonicalSeg(token string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	parts := strings.Split(token, ".")
	if s := parts[i]; len(s)%4 != 0 {
		parts[i] = s[:len(s)-1] + string(alphabet[strings.IndexByte(alphabet, s[len(s)-1])|1])
	}
	return strings.Join(parts, ".")
}

// FuzzAgainstGoJose checks Parse and Token.Verify against go-jose
// (ParseSigned with the same algorithms, then Verify with the same key):
// both accept or both refuse, and when both accept they read the same alg,
// kid, typ and payload.
//
// keyIndex picks the key both verify with. With resign, the target first
// signs whatever precedes the token's last dot with that key, as its own
// algorithm does, and puts that signature after the dot: so the fuzzer
// explores headers and payloads that are validly signed, where a difference
// between the two parsers would matter.
//
// jws is deliberately stricter than go-jose in the ways strictness lists.
// For an input with one of them, jws must refuse, whatever go-jose does; for
// every other input the two must agree exactly.
func FuzzAgainstGoJose(f *testing.F) {
	keys := fuzzKeys(f)
	seeds, idx := fuzzSeeds(f, keys)
	for i := range seeds {
		f.Add(seeds[i], idx[i], false)
		f.Add(seeds[i], idx[i], true)
	}
	f.Fuzz(func(t *testing.T, token string, keyIndex uint8, resign bool) {
		k := keys[int(keyIndex)%len(keys)]
		if dot := strings.LastIndexByte(token, '.'); resign && dot >= 0 {
			token = token[:dot+1] + base64.RawURLEncoding.EncodeToString(rawSign(t, k.alg, k.priv, token[:dot]))
		}
		compareWithGoJose(t, token, k)
	})
}

// FuzzHeaderAgainstGoJose is FuzzAgainstGoJose on decoded headers and
// payloads: it encodes them, signs them with the key, and compares. The
// fuzzer mutates the JSON itself here, not its base64 form. RSA signing is
// slow and reads headers no differently, so the RS256 key verifies here
// only tokens signed with the others (which both refuse).
func FuzzHeaderAgainstGoJose(f *testing.F) {
	keys := fuzzKeys(f)
	seeds, idx := fuzzSeeds(f, keys)
	for i, s := range seeds {
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			continue
		}
		h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
		if err1 == nil && err2 == nil && len(p) < 1024 {
			f.Add(h, p, idx[i])
		}
	}
	// Bytes and members at the edges of what the scanner takes: jws refuses
	// all of these (go-jose takes the last one, which ignores a null member).
	for i, h := range []string{
		"{\"alg\":\"EdDSA\",\"kid\":\"a\tb\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"a\nb\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"a\x00b\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"a\x7fb\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"a\xffb\",\"typ\":\"at+jwt\"}",
		"\xef\xbb\xbf{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\"}\x00",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\",}",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\"\f}",
		"{\"alg\":\"EdDSA\",\"kid\":{\"k\":1},\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\",\"x\":null}",
		"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\"",
	} {
		f.Add([]byte(h), []byte(`{}`), uint8(2+3*i))
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, keyIndex uint8) {
		k := keys[int(keyIndex)%len(keys)]
		signer := k
		if signer.alg == RS256 {
			signer = keys[(int(keyIndex)/len(keys))%2*2] // ES256 or EdDSA
		}
		input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
		compareWithGoJose(t, input+"."+base64.RawURLEncoding.EncodeToString(rawSign(t, signer.alg, signer.priv, input)), k)
	})
}

// compareWithGoJose is the check of the fuzz targets for one token and key.
func compareWithGoJose(t *testing.T, token string, k fuzzKey) {
	t.Helper()
	tt, err := Parse(token, allAlgs)
	var payload []byte
	if err == nil {
		payload, err = tt.Verify(k.pub)
	}
	jwsOK := err == nil

	var joseHeader jose.Header
	var josePayload []byte
	obj, jerr := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if jerr == nil {
		joseHeader = obj.Signatures[0].Protected
		josePayload, jerr = obj.Verify(k.pub)
	}
	joseOK := jerr == nil

	if why := strictness(token); why != strictnessNone {
		if jwsOK {
			t.Fatalf("jws accepted %q (key %s), which it must refuse: %s", token, k.kid, why)
		}
		return
	}
	if jwsOK != joseOK {
		t.Fatalf("jws and go-jose disagree on %q (key %s): jws %v, go-jose %v", token, k.kid, err, jerr)
	}
	if !jwsOK {
		return
	}
	typ, _ := joseHeader.ExtraHeaders[jose.HeaderType].(string)
	if tt.Alg().String() != joseHeader.Algorithm || string(tt.Kid()) != joseHeader.KeyID || string(tt.Typ()) != typ {
		t.Fatalf("header of %q: jws %v %q %q, go-jose %s %q %q", token,
			tt.Alg(), tt.Kid(), tt.Typ(), joseHeader.Algorithm, joseHeader.KeyID, typ)
	}
	if !bytes.Equal(payload, josePayload) {
		t.Fatalf("payload of %q: jws %q, go-jose %q", token, payload, josePayload)
	}
}

// The documented ways in which jws is stricter than go-jose; strictness
// returns one of them.
const (
	tooLong        = "longer than MaxTokenSize"
	headerTooLong  = "header longer than MaxHeaderLen"
	notAlphabet    = "a character outside the base64url alphabet"
	nonCanonicalB  = "non-canonical base64url"
	emptyPayload   = "empty payload"
	headerEscape   = "header with an escape or a character other than printable ASCII"
	headerNonStr   = "header member that is not a string"
	headerMember   = "header member other than alg, kid and typ"
	headerNoKID    = "no kid, or an empty one"
	headerNoTyp    = "no typ"
	strictnessNone = ""
)

// strictness names the documented way in which jws is stricter than go-jose
// that token shows, or returns strictnessNone. It is written with
// encoding/base64 and encoding/json, apart from Parse's own scanner, so that
// the two readings of a token check each other. The exceptions:
//
//   - tooLong, headerTooLong: go-jose has no bound;
//   - notAlphabet: go-jose's ParseSigned also reads the JSON serializations,
//     removes Unicode white space from the compact one, and its base64
//     decoder skips CR and LF;
//   - nonCanonicalB: go-jose ignores the unused low bits of the last
//     character of a segment (it re-encodes what it decoded), so the same
//     token would have several spellings;
//   - emptyPayload: go-jose accepts an empty payload;
//   - headerEscape, headerNonStr, headerMember, headerNoKID, headerNoTyp: the
//     header must be a JSON object of the string members alg, kid and typ in
//     printable ASCII without escapes, kid not empty; go-jose reads any
//     member (jku, jwk, x5c, ...; it refuses crit itself), decodes escapes,
//     ignores null members and needs neither kid nor typ.
//
// Where go-jose refuses as jws does (more or fewer than three segments, an
// alg outside the set, duplicate members, crit, bad signatures, keys of
// another algorithm), strictness names nothing: the two must agree.
func strictness(token string) string {
	if len(token) > MaxTokenSize {
		return tooLong
	}
	for _, c := range []byte(token) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return notAlphabet
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return strictnessNone
	}
	if len(parts[0]) > MaxHeaderLen {
		return headerTooLong
	}
	strict := base64.RawURLEncoding.Strict()
	for _, p := range parts {
		_, strictErr := strict.DecodeString(p)
		_, lenientErr := base64.RawURLEncoding.DecodeString(p)
		if strictErr != nil && lenientErr == nil {
			return nonCanonicalB
		}
	}
	if parts[1] == "" {
		return emptyPayload
	}
	header, err := strict.DecodeString(parts[0])
	if err != nil {
		return strictnessNone
	}
	return headerStrictness(header)
}

// headerStrictness is strictness for the decoded header.
func headerStrictness(header []byte) string {
	for _, c := range header {
		if c == '\\' || (c < 0x20 || c > 0x7e) && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return headerEscape
		}
	}
	if !json.Valid(header) {
		return strictnessNone
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return strictnessNone
	}
	seen := map[string]string{}
	for dec.More() {
		name, _ := dec.Token()
		value, _ := dec.Token()
		v, ok := value.(string)
		if !ok {
			return headerNonStr
		}
		switch n := name.(string); n {
		case "alg", "kid", "typ":
			seen[n] = v
		default:
			return headerMember
		}
	}
	if _, ok := seen["alg"]; !ok {
		return strictnessNone
	}
	if seen["kid"] == "" {
		return headerNoKID
	}
	if _, ok := seen["typ"]; !ok {
		return headerNoTyp
	}
	return strictnessNone
}

// Every exception of strictness is needed: for each, go-jose accepts some
// seed that jws refuses. And every seed without one gets the same answer
// from both.
func TestStrictnessExceptionsAreNeeded(t *testing.T) {
	keys := fuzzKeys(t)
	seeds, idx := fuzzSeeds(t, keys)
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}
	needed := map[string]bool{}
	agreed := map[bool]int{}
	for i, token := range seeds {
		k := keys[int(idx[i])%len(keys)]
		tt, err := Parse(token, allAlgs)
		if err == nil {
			_, err = tt.Verify(k.pub)
		}
		obj, jerr := jose.ParseSigned(token, algs)
		if jerr == nil {
			_, jerr = obj.Verify(k.pub)
		}
		why := strictness(token)
		switch {
		case why != strictnessNone && err == nil:
			t.Errorf("seed %d: jws accepted it despite %s", i, why)
		case why != strictnessNone && jerr == nil:
			needed[why] = true
		case why == strictnessNone && (err == nil) != (jerr == nil):
			t.Errorf("seed %d: jws %v, go-jose %v", i, err, jerr)
		case why == strictnessNone:
			agreed[err == nil]++
		}
	}
	for _, why := range []string{tooLong, headerTooLong, notAlphabet, nonCanonicalB, emptyPayload,
		headerEscape, headerNonStr, headerMember, headerNoKID, headerNoTyp} {
		if !needed[why] {
			t.Errorf("no seed that go-jose accepts shows %q", why)
		}
	}
	if agreed[true] == 0 || agreed[false] == 0 {
		t.Errorf("seeds without an exception: %d accepted, %d refused by both; want some of each", agreed[true], agreed[false])
	}
}
