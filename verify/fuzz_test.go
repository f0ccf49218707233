package verify_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/authd/authd/verify"
)

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, every
// error must match a sentinel, and a token it accepts must carry a valid
// ES256 signature of the test key over its first two parts (checked here
// with crypto/ecdsa directly, not with verify's code).
func FuzzVerify(f *testing.F) {
	key := newKey(f, "ES256", "k1")
	v := newStatic(f, iss, key.jwk())
	pub := key.priv.Public().(*ecdsa.PublicKey)

	good := key.sign(f, claims(iss))
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(key.sign(f, with(claims(iss), "aud", audience, "nbf", nil)))
	f.Add(key.sign(f, claims(iss), "crit", []string{"exp"}))
	f.Add(key.rawSign(f, map[string]any{"alg": "none", "kid": "k1", "typ": "at+jwt"}, claims(iss)))
	f.Add(key.rawSign(f, map[string]any{"alg": "HS256", "kid": "k1", "typ": "at+jwt"}, claims(iss)))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("..")
	f.Add("")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add(strings.Repeat("A", verify.MaxTokenSize+1))

	sentinels := []error{verify.ErrInvalid, verify.ErrExpired, verify.ErrNotYetValid, verify.ErrIssuer,
		verify.ErrAudience, verify.ErrUnknownKey}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(t.Context(), token)
		if err != nil {
			if c != nil {
				t.Fatalf("Verify(%q) returned claims and error %v", token, err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Verify(%q) error %v matches no sentinel", token, err)
		}
		if c == nil {
			t.Fatalf("Verify(%q) = nil, nil", token)
		}
		dot := strings.LastIndexByte(token, '.')
		sig, decErr := base64.RawURLEncoding.DecodeString(token[dot+1:])
		digest := sha256.Sum256([]byte(token[:dot]))
		if decErr != nil || len(sig) != 64 ||
			!ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("Verify accepted %q, which the test key did not sign", token)
		}
		if c.Issuer != iss || !slices.Contains(c.Audience, audience) {
			t.Fatalf("Verify accepted %q with claims %+v", token, c)
		}
	})
}
