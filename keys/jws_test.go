package keys

import (
	"bytes"
	"context"
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
