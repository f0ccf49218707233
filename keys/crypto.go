package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/storage"
)

// Supported signing algorithms.
const (
	ES256 = "ES256" // ECDSA on P-256 with SHA-256 (the default)
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, 3072-bit keys
	EdDSA = "EdDSA" // Ed25519
)

const (
	// MinSecretLen is the shortest Secret (and OldSecrets entry) accepted.
	MinSecretLen = 32

	// rsaBits is the size of generated RSA keys; loaded keys must have at least minRSABits.
	rsaBits    = 3072
	minRSABits = 2048

	// hkdfInfo separates the key-encryption key from every other use of AUTHD_SECRET
	// (the refresh-token HMAC derives its own key). Changing it makes every stored
	// private key undecryptable.
	hkdfInfo = "authd keys: signing key encryption v1"
	// sealVersion is the first byte of a sealed private key.
	sealVersion byte = 1
	nonceSize        = 12
)

// sealer encrypts private keys at rest with AES-256-GCM. aeads[0] is derived
// from Options.Secret and is the only one used to seal; the others come from
// Options.OldSecrets and are tried in order when opening.
type sealer struct {
	aeads []cipher.AEAD
}

func newSealer(secret []byte, old [][]byte) (*sealer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("keys: secret must be at least %d bytes", MinSecretLen)
	}
	s := &sealer{aeads: make([]cipher.AEAD, 0, 1+len(old))}
	for i, sec := range append([][]byte{secret}, old...) {
		if len(sec) < MinSecretLen {
			return nil, fmt.Errorf("keys: old secret %d must be at least %d bytes", i, MinSecretLen) // i >= 1: secret was checked above
		}
		aead, err := deriveAEAD(sec)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

func deriveAEAD(secret []byte) (cipher.AEAD, error) {
	kek, err := hkdf.Key(sha256.New, secret, nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive key-encryption key: %w", err)
	}
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption cipher: %w", err)
	}
	return aead, nil
}

// sealAAD binds a sealed key to its record, so a ciphertext copied onto
// another key id or algorithm does not open.
func sealAAD(kid, alg string) []byte {
	return []byte("authd/keys/v1\x00" + kid + "\x00" + alg)
}

// seal encrypts plaintext under the primary secret: version || nonce || ciphertext.
func (s *sealer) seal(kid, alg string, plaintext []byte) ([]byte, error) {
	aead := s.aeads[0]
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, sealAAD(kid, alg)), nil
}

// open decrypts a sealed key, trying the primary secret then the old ones.
// primary reports whether the primary secret opened it (false means the key
// should be sealed again under the primary secret).
func (s *sealer) open(kid, alg string, sealed []byte) (plaintext []byte, primary bool, err error) {
	if len(sealed) < 1+nonceSize || sealed[0] != sealVersion {
		return nil, false, fmt.Errorf("%w %q: unknown format", ErrDecrypt, kid)
	}
	nonce, ct := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	aad := sealAAD(kid, alg)
	for i, aead := range s.aeads {
		if len(ct) < aead.Overhead() {
			break
		}
		pt, err := aead.Open(nil, nonce, ct, aad)
		if err == nil {
			return pt, i == 0, nil
		}
	}
	return nil, false, fmt.Errorf("%w %q: no configured secret opens it", ErrDecrypt, kid)
}

// generateKey makes a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		k, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	return k, nil
}

// newRecord generates a key for alg and returns its record with the private
// part sealed and the public JWK rendered; the kid is the key's RFC 7638
// thumbprint. Times and state are left for the caller.
func (m *Manager) newRecord(alg string) (storage.SigningKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	jwk := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	pub, err := jwk.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	defer clear(der)
	sealed, err := m.sealer.seal(jwk.KeyID, alg, der)
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{ID: jwk.KeyID, Alg: alg, PrivateKey: sealed, PublicKey: pub}, nil
}

// parsePublic decodes a stored public JWK and checks it against the record:
// public only, same kid and alg, and a key type and size that fit alg.
func parsePublic(kid, alg string, raw []byte) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: key %q: public JWK: %w", kid, err)
	}
	if !jwk.IsPublic() {
		return jose.JSONWebKey{}, fmt.Errorf("keys: key %q: stored public JWK is not a public key", kid)
	}
	if jwk.KeyID != kid {
		return jose.JSONWebKey{}, fmt.Errorf("keys: key %q: public JWK has kid %q", kid, jwk.KeyID)
	}
	if jwk.Algorithm != "" && jwk.Algorithm != alg {
		return jose.JSONWebKey{}, fmt.Errorf("keys: key %q: public JWK alg %q, record alg %q", kid, jwk.Algorithm, alg)
	}
	if err := checkKeyType(alg, jwk.Key); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: key %q: %w", kid, err)
	}
	// Render only what a verifier needs, whatever else the stored JWK held.
	return jose.JSONWebKey{Key: jwk.Key, KeyID: kid, Algorithm: alg, Use: "sig"}, nil
}

// checkKeyType reports whether pub is a public key usable with alg.
func checkKeyType(alg string, pub crypto.PublicKey) error {
	switch alg {
	case ES256:
		if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return nil
		}
	case RS256:
		if k, ok := pub.(*rsa.PublicKey); ok {
			if k.N.BitLen() < minRSABits {
				return fmt.Errorf("RSA key of %d bits is too short", k.N.BitLen())
			}
			return nil
		}
	case EdDSA:
		if k, ok := pub.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return nil
		}
	default:
		return fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
	}
	return fmt.Errorf("public key type %T does not fit %s", pub, alg)
}

// parsePrivate decodes a PKCS #8 private key and checks that it is the
// private half of pub.
func parsePrivate(kid, alg string, der []byte, pub crypto.PublicKey) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The parse error never holds key bytes, but keep it out anyway.
		return nil, fmt.Errorf("keys: key %q: private key does not parse", kid)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %q: private key type %T is not a signer", kid, k)
	}
	if err := checkKeyType(alg, signer.Public()); err != nil {
		return nil, fmt.Errorf("keys: key %q: private key: %w", kid, err)
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("keys: key %q: private key does not match the public key", kid)
	}
	return signer, nil
}
