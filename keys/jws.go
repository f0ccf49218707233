package keys

import (
	"crypto"
	"fmt"

	"github.com/authd/authd/internal/jws"
)

// tokenSigner signs with the current key: access tokens, a compact JWS whose
// header is {"alg":...,"kid":...,"typ":"at+jwt"}, and OpenID Connect
// id_tokens, the same with typ "JWT" (package jws).
type tokenSigner struct {
	kid string
	key crypto.Signer
	jws *jws.Signer
	id  *jws.Signer
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
	id, err := jws.NewSigner(a, kid, idTokenType, key)
	if err != nil {
		return nil, fmt.Errorf("keys: key %q: %w", kid, err)
	}
	return &tokenSigner{kid: kid, key: key, jws: s, id: id}, nil
}

// sign returns header.payload.signature over payload, with the header of
// an id_token or of an access token.
func (s *tokenSigner) sign(payload []byte, idToken bool) (string, error) {
	if idToken {
		return s.id.Sign(payload)
	}
	return s.jws.Sign(payload)
}
