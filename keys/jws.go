package keys

import (
	"crypto"
	"fmt"

	"github.com/authd/authd/internal/jws"
)

// tokenSigner signs access tokens with the current key: a compact JWS whose
// header is {"alg":...,"kid":...,"typ":"at+jwt"} (package jws).
type tokenSigner struct {
	kid string
	key crypto.Signer
	jws *jws.Signer
}

func newTokenSigner(kid, alg string, key crypto.Signer) (*tokenSigner, error) {
	if err := checkKeyType(alg, key.Public()); err != nil {
		return nil, fmt.Errorf("keys: key %q: %w", kid, err)
	}
	a, ok := jws.ParseAlg(alg)
	if !ok {
		return nil, fmt.Errorf("keys: key %q: %w %q", kid, ErrUnsupportedAlg, alg)
	}
	s, err := jws.NewSigner(a, kid, tokenType, key)
	if err != nil {
		return nil, fmt.Errorf("keys: key %q: %w", kid, err)
	}
	return &tokenSigner{kid: kid, key: key, jws: s}, nil
}

// sign returns header.payload.signature over payload.
func (s *tokenSigner) sign(payload []byte) (string, error) {
	return s.jws.Sign(payload)
}
