package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Tokens signed by hand verify with go-jose against the published JWK, and
// tokens go-jose signs with the current key verify with Verify: the compact
// form is the standard one both ways.
func TestCompactJWSInteroperatesWithGoJose(t *testing.T) {
	ctx := context.Background()
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			m := newTestManager(t, &memStore{}, testOptions(alg, newFakeClock()))
			set := m.set.Load()
			claims := claimsFor(7)

			tok, err := m.Sign(ctx, claims)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose cannot parse Sign's token: %v", err)
			}
			h := jws.Signatures[0].Protected
			if h.KeyID != set.current.id || h.Algorithm != alg || h.ExtraHeaders[jose.HeaderType] != tokenType {
				t.Errorf("header = kid %q alg %q typ %v; want %q %q %q", h.KeyID, h.Algorithm, h.ExtraHeaders[jose.HeaderType], set.current.id, alg, tokenType)
			}
			got, err := jws.Verify(set.current.jwk)
			if err != nil || !bytes.Equal(got, claims) {
				t.Fatalf("go-jose Verify(Sign's token) = %q, %v; want the claims", got, err)
			}

			opts := (&jose.SignerOptions{}).WithType(tokenType).WithHeader("kid", set.current.id)
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: set.signer.key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := js.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			joseTok, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			payload, kid, err := m.Verify(ctx, joseTok)
			if err != nil || kid != set.current.id || !bytes.Equal(payload, claims) {
				t.Fatalf("Verify(go-jose token) = %q, %q, %v; want the claims", payload, kid, err)
			}

			// Any flipped bit of the signature is refused.
			dot := strings.LastIndexByte(tok, '.')
			sig := []byte(tok[dot+1:])
			for _, i := range []int{0, len(sig) / 2, len(sig) - 2} {
				bad := append([]byte(nil), sig...)
				if bad[i] == 'A' {
					bad[i] = 'B'
				} else {
					bad[i] = 'A'
				}
				if _, _, err := m.Verify(ctx, tok[:dot+1]+string(bad)); err == nil {
					t.Errorf("Verify accepted a token with signature character %d changed", i)
				}
			}
		})
	}
}

// R and S shorter than 32 bytes (leading zeros) and with the high bit set
// survive the round trip between the JWS and the ASN.1 forms.
func TestECDSASignatureForms(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"leading zero bytes": append(append(make([]byte, 3), bytes.Repeat([]byte{0x11}, 29)...), append([]byte{0, 0x7f}, bytes.Repeat([]byte{0x22}, 30)...)...),
		"high bits set":      bytes.Repeat([]byte{0xff}, 64),
		"mixed":              append(bytes.Repeat([]byte{0x80}, 32), bytes.Repeat([]byte{0x01}, 32)...),
	}
	for name, raw := range cases {
		var buf [72]byte
		der := rawToDER(raw, buf[:])
		if der == nil {
			t.Fatalf("%s: rawToDER = nil", name)
		}
		back := make([]byte, 64)
		if err := derToRaw(der, back); err != nil || !bytes.Equal(back, raw) {
			t.Errorf("%s: derToRaw(rawToDER(x)) = %x, %v; want %x", name, back, err, raw)
		}
	}
	var buf [72]byte
	if der := rawToDER(make([]byte, 64), buf[:]); der != nil {
		t.Errorf("rawToDER(zero R and S) = %x; want nil", der)
	}

	// A real signature converts and still verifies.
	d := sha256.Sum256([]byte("payload"))
	der, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	if err := derToRaw(der, raw); err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(&key.PublicKey, d[:], rawToDER(raw, buf[:])) {
		t.Error("signature converted to R || S and back does not verify")
	}
	if err := derToRaw([]byte{0x30, 0x03, 0x02, 0x01}, raw); err == nil {
		t.Error("derToRaw accepted a truncated signature")
	}
}
