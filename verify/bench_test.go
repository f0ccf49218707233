package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

// benchKeys are authd's key sizes: P-256, RSA 3072, Ed25519.
func benchKeys(b *testing.B) []*testKey {
	b.Helper()
	rsa3072, err := rsaKey(3072)
	if err != nil {
		b.Fatal(err)
	}
	rs := &testKey{alg: "RS256", kid: "rs", priv: rsa3072}
	return []*testKey{newKey(b, "ES256", "es"), rs, newKey(b, "EdDSA", "ed")}
}

// BenchmarkVerify is Verify with a warm key cache: the whole per-request cost.
func BenchmarkVerify(b *testing.B) {
	for _, key := range benchKeys(b) {
		b.Run(key.alg, func(b *testing.B) {
			v := newStatic(b, iss, key.jwk())
			token := key.sign(b, claims(iss))
			ctx := b.Context()
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareSignature is the floor: only the signature check of the same
// token with crypto/ecdsa, crypto/rsa and crypto/ed25519 (decode the
// signature, hash, verify), no header, no claims.
func BenchmarkBareSignature(b *testing.B) {
	for _, key := range benchKeys(b) {
		b.Run(key.alg, func(b *testing.B) {
			token := key.sign(b, claims(iss))
			pub := key.priv.Public()
			verifyBare := func() bool {
				dot := strings.LastIndexByte(token, '.')
				sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
				if err != nil {
					return false
				}
				input := []byte(token[:dot])
				switch p := pub.(type) {
				case *ecdsa.PublicKey:
					d := sha256.Sum256(input)
					return ecdsa.Verify(p, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
				case *rsa.PublicKey:
					d := sha256.Sum256(input)
					return rsa.VerifyPKCS1v15(p, crypto.SHA256, d[:], sig) == nil
				case ed25519.PublicKey:
					return ed25519.Verify(p, input, sig)
				}
				return false
			}
			if !verifyBare() {
				b.Fatal("bare verification failed")
			}
			b.ReportAllocs()
			for b.Loop() {
				if !verifyBare() {
					b.Fatal("bare verification failed")
				}
			}
		})
	}
}

// BenchmarkGoJose is go-jose's own parse and verify of the same token, for
// comparison (it checks no claims).
func BenchmarkGoJose(b *testing.B) {
	for _, key := range benchKeys(b) {
		b.Run(key.alg, func(b *testing.B) {
			token := key.sign(b, claims(iss))
			pub := key.priv.Public()
			algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}
			b.ReportAllocs()
			for b.Loop() {
				jws, err := jose.ParseSigned(token, algs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyParallel shows that the hot path takes no lock.
func BenchmarkVerifyParallel(b *testing.B) {
	key := newKey(b, "EdDSA", "ed")
	v := newStatic(b, iss, key.jwk())
	token := key.sign(b, claims(iss))
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDPoP compares a bearer token with a DPoP-bound token and its
// proof (ES256 both; a new proof per request, as clients send them, signed
// beforehand; the default in-memory replay cache), through Verify or
// VerifyDPoP and through the middleware.
func BenchmarkDPoP(b *testing.B) {
	key := newKey(b, "ES256", "es")
	alice := newClientKey(b)
	unbound := key.sign(b, claims(iss))
	tok := key.sign(b, bound(alice))
	proofs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = alice.proof(b, proofClaims(tok))
		}
		return out
	}
	ctx := b.Context()
	b.Run("Verify/Bearer", func(b *testing.B) {
		v := newDPoPVerifier(b, verify.DPoPAccept, key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, unbound); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify/DPoP", func(b *testing.B) {
		v := newDPoPVerifier(b, verify.DPoPAccept, key)
		ps := proofs(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.VerifyDPoP(ctx, tok, ps[i], http.MethodGet, resourceURL); err != nil {
				b.Fatal(err)
			}
		}
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	b.Run("Middleware/Bearer", func(b *testing.B) {
		h := newDPoPVerifier(b, verify.DPoPAccept, key).Middleware(ok)
		req := httptest.NewRequest(http.MethodGet, resourceURL, nil)
		req.Header.Set("Authorization", "Bearer "+unbound)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	})
	b.Run("Middleware/DPoP", func(b *testing.B) {
		h := newDPoPVerifier(b, verify.DPoPAccept, key).Middleware(ok)
		req := httptest.NewRequest(http.MethodGet, resourceURL, nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		ps := proofs(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			req.Header.Set("DPoP", ps[i])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	})
}
