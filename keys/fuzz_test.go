package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/storage"
)

// signedToken is a token the fuzz setup had a manager key sign.
type signedToken struct {
	token, kid, alg string
	claims          []byte
}

// fuzzSetup returns a manager whose set holds keys of every algorithm:
// retired ES256 keys, a current RS256 key and a next EdDSA key, and tokens
// signed by each of them, by their signing input (header.payload).
func fuzzSetup(f *testing.F) (*Manager, map[string]signedToken) {
	ctx := context.Background()
	clock := newFakeClock()
	store := &memStore{}
	signed := map[string]signedToken{}
	add := func(tok, kid, alg string, claims []byte) {
		signed[tok[:strings.LastIndexByte(tok, '.')]] = signedToken{tok, kid, alg, claims}
	}

	es := newTestManager(f, store, testOptions(ES256, clock))
	esTok, err := es.Sign(ctx, claimsFor(1))
	if err != nil {
		f.Fatal(err)
	}
	add(esTok, es.set.Load().current.id, ES256, claimsFor(1))
	rs := newTestManager(f, store, testOptions(RS256, clock))
	if _, err := rs.Rotate(ctx); err != nil {
		f.Fatal(err)
	}
	m := newTestManager(f, store, testOptions(EdDSA, clock))
	if _, err := m.Rotate(ctx); err != nil {
		f.Fatal(err)
	}
	if m.Alg() != RS256 {
		f.Fatalf("fuzz setup: current alg %s; want RS256", m.Alg())
	}
	rsTok, err := m.Sign(ctx, claimsFor(2))
	if err != nil {
		f.Fatal(err)
	}
	add(rsTok, m.set.Load().current.id, RS256, claimsFor(2))

	// The next EdDSA key has not signed yet; sign with it as its manager will.
	next := store.byState(storage.KeyNext)[0]
	opts := (&jose.SignerOptions{}).WithType(tokenType).WithHeader("kid", next.ID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: privateKey(f, m, store, next.ID)}, opts)
	if err != nil {
		f.Fatal(err)
	}
	obj, err := signer.Sign(claimsFor(3))
	if err != nil {
		f.Fatal(err)
	}
	edTok, err := obj.CompactSerialize()
	if err != nil {
		f.Fatal(err)
	}
	add(edTok, next.ID, EdDSA, claimsFor(3))

	for _, s := range signed {
		if _, _, err := m.Verify(ctx, s.token); err != nil {
			f.Fatalf("fuzz setup: Verify(%s token): %v", s.alg, err)
		}
	}
	return m, signed
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, every
// error must be an ErrInvalidToken, and it must accept only tokens the
// manager's keys signed. ECDSA signatures are malleable ((r, s) and
// (r, n-s) both verify), so for ES256 the signing input and claims must
// match a signed token; for RS256 and EdDSA the whole token must.
func FuzzVerify(f *testing.F) {
	m, signed := fuzzSetup(f)
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range signed {
		parts := strings.Split(s.token, ".")
		f.Add(s.token)
		f.Add(s.token + "=")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + enc([]byte(`{"sub":"admin"}`)) + "." + parts[2])
		f.Add(enc([]byte(`{"alg":"none","kid":"`+s.kid+`","typ":"at+jwt"}`)) + "." + parts[1] + ".")
		f.Add(enc([]byte(`{"alg":"HS256","kid":"`+s.kid+`","typ":"at+jwt"}`)) + "." + parts[1] + "." + parts[2])
		f.Add(enc([]byte(`{"alg":"`+s.alg+`","kid":"`+s.kid+`","typ":"at+jwt","jku":"https://x"}`)) + "." + parts[1] + "." + parts[2])
	}
	f.Add("")
	f.Add("..")
	f.Add(`{"protected":"e30","payload":"e30","signature":""}`)

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		claims, kid, err := m.Verify(ctx, token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error %v is not ErrInvalidToken", err)
			}
			if claims != nil || kid != "" {
				t.Fatalf("Verify failed but returned %q, %q", claims, kid)
			}
			return
		}
		dot := strings.LastIndexByte(token, '.')
		want, ok := signed[token[:max(dot, 0)]]
		if dot < 0 || !ok {
			t.Fatalf("Verify accepted a token no key signed: %q", token)
		}
		if want.alg != ES256 && token != want.token {
			t.Fatalf("Verify accepted a variant of a signed token: %q (signed %q)", token, want.token)
		}
		if !bytes.Equal(claims, want.claims) || kid != want.kid {
			t.Fatalf("Verify(%q) = %s, %q; want %s, %q", token, claims, kid, want.claims, want.kid)
		}
	})
}
