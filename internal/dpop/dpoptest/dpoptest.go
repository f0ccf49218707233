// Package dpoptest builds DPoP proofs (RFC 9449) for tests, with go-jose
// alone: independently of the code under test, as a client would.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a client's ES256 DPoP key.
type Key struct {
	t    testing.TB
	priv *ecdsa.PrivateKey
	// JKT is the key's RFC 7638 SHA-256 thumbprint, base64url: the cnf.jkt
	// of the tokens bound to it.
	JKT string
}

// NewKey makes a key; failures fail t.
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{t: t, priv: priv, JKT: base64.RawURLEncoding.EncodeToString(tp)}
}

// Proof signs a proof (typ dpop+jwt, the public JWK in the header) for
// method and url, issued now, with a fresh jti, and with ath when
// accessToken is set; claims override or add any claim (an empty "jti", an
// old "iat", a "nonce").
func (k *Key) Proof(method, url, accessToken string, claims map[string]any) string {
	k.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		k.t.Fatal(err)
	}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": method, "htu": url, "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for name, v := range claims {
		c[name] = v
	}
	payload, err := json.Marshal(c)
	if err != nil {
		k.t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}
