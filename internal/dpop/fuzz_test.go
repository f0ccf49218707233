package dpop_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/dpop"
)

// FuzzCheck feeds arbitrary proofs to Check. It must never panic; every
// error must be ErrInvalidProof or ErrUseNonce; and a proof it accepts must
// carry a signature that verifies, checked here with the standard library
// alone, by the key in its own header, whose RFC 7638 thumbprint (computed
// here by hand) is the JKT returned, over claims that match the request.
func FuzzCheck(f *testing.F) {
	token := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	p := dpop.Params{Method: testMethod, URL: testURL, Now: testNow, AccessToken: token}
	for _, alg := range algs {
		k := newClientKey(f, alg)
		good := k.proof(f, with(claims(), "ath", ath(token)))
		f.Add(good)
		parts := strings.Split(good, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2])
		f.Add(k.proof(f, with(claims(), "ath", ath(token), "htu", "https://evil.example/oauth2/token")))
		f.Add(k.proof(f, with(claims(), "ath", ath(token)), "typ", "JWT"))
		f.Add(k.proof(f, with(claims(), "ath", ath(token)), "crit", []string{"b64"}, "b64", false))
		f.Add(k.rawProof(f, k.header(f, "alg", "none"), with(claims(), "ath", ath(token))))
		f.Add(k.rawProof(f, k.header(f, "jwk", k.privateJWK(f)), with(claims(), "ath", ath(token))))
		f.Add(k.rawProof(f, k.header(f, "alg", "HS256"), with(claims(), "ath", ath(token))))
		f.Add(k.proof(f, with(claims(), "ath", ath(token), "iat", testNow.Add(-time.Hour).Unix())))
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(strings.Repeat("A", dpop.MaxProofLen+1))
	f.Add(`{"payload":"e30","signatures":[]}`)

	f.Fuzz(func(t *testing.T, proof string) {
		got, err := dpop.Check(proof, p)
		if err != nil {
			if got != nil {
				t.Fatalf("Check returned a proof and %v", err)
			}
			if !errors.Is(err, dpop.ErrInvalidProof) && !errors.Is(err, dpop.ErrUseNonce) {
				t.Fatalf("Check error %v is neither ErrInvalidProof nor ErrUseNonce", err)
			}
			return
		}
		if got == nil {
			t.Fatal("Check = nil, nil")
		}
		jwk, c, verr := verifyIndependently(proof)
		if verr != nil {
			t.Fatalf("Check accepted %q, whose signature does not verify: %v", proof, verr)
		}
		if want, err := thumbprint(jwk); err != nil || got.JKT != want {
			t.Fatalf("JKT %q; the header's key has thumbprint %q (%v)", got.JKT, want, err)
		}
		if c["htm"] != testMethod || !dpop.SameURL(c["htu"].(string), testURL) || c["ath"] != ath(token) || c["jti"] != got.JTI {
			t.Fatalf("Check accepted claims %v", c)
		}
	})
}
