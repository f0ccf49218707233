package keys

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func benchManager(b *testing.B, alg string) (*Manager, string) {
	b.Helper()
	m := newTestManager(b, &memStore{}, testOptions(alg, newFakeClock()))
	tok, err := m.Sign(context.Background(), claimsFor(1))
	if err != nil {
		b.Fatal(err)
	}
	return m, tok
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			m, _ := benchManager(b, alg)
			ctx, claims := context.Background(), claimsFor(1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Sign(ctx, claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignBaseline is go-jose signing with the same key, for
// comparison: Sign used it until the compact form was written by hand.
func BenchmarkSignBaseline(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			m, _ := benchManager(b, alg)
			ts, claims := m.set.Load().signer, claimsFor(1)
			opts := (&jose.SignerOptions{}).WithType(tokenType).WithHeader("kid", ts.kid)
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: ts.key}, opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				obj, err := signer.Sign(claims)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obj.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			m, tok := benchManager(b, alg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := m.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyBaseline is go-jose signature verification with the key
// already chosen, for comparison: Verify used it until the signature check
// was written by hand.
func BenchmarkVerifyBaseline(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			m, tok := benchManager(b, alg)
			k := m.set.Load().current
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
			b.ReportAllocs()
			for b.Loop() {
				obj, err := jose.ParseSignedCompact(tok, algs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obj.Verify(k.pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	m, tok := benchManager(b, ES256)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := m.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyRejectUnknownKID is the cost of a token with a kid the
// manager does not know, once the reload rate limit is in force.
func BenchmarkVerifyRejectUnknownKID(b *testing.B) {
	m, _ := benchManager(b, ES256)
	ctx := context.Background()
	tok := "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vcGUiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln"
	m.Verify(ctx, tok) // spends the one allowed reload
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Verify(ctx, tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkJWKS(b *testing.B) {
	m, _ := benchManager(b, ES256)
	b.ReportAllocs()
	for b.Loop() {
		if body, etag := m.JWKS(); len(body) == 0 || etag == "" {
			b.Fatal("empty")
		}
	}
}
