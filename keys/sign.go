package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authd/authd/internal/jws"
)

// MaxTokenSize is the longest token Verify parses; longer ones are rejected
// before any decoding.
const MaxTokenSize = 8 << 10

// Sign returns a compact JWS over claims, which must be a JSON object, signed
// with the current key; the header holds alg, kid and typ "at+jwt".
func (m *Manager) Sign(ctx context.Context, claims []byte) (string, error) {
	return m.sign(claims, false)
}

// SignIDToken is Sign for an OpenID Connect id_token: the same current key
// and kid, the header's typ "JWT". Verify refuses what it signs.
func (m *Manager) SignIDToken(ctx context.Context, claims []byte) (string, error) {
	return m.sign(claims, true)
}

func (m *Manager) sign(claims []byte, idToken bool) (string, error) {
	if len(claims) == 0 || claims[0] != '{' || !json.Valid(claims) {
		return "", ErrInvalidClaims
	}
	set := m.set.Load()
	token, err := set.signer.sign(claims, idToken)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	if len(token) > MaxTokenSize {
		return "", fmt.Errorf("%w: a token of %d bytes exceeds MaxTokenSize", ErrInvalidClaims, len(token))
	}
	return token, nil
}

// Verify checks that token is a compact JWS signed by one of the published
// keys and returns its payload and the kid that signed it. The header must
// hold exactly alg, kid and typ: alg must be the algorithm of the key kid
// names, typ "at+jwt" or "application/at+jwt" (any case). Any other header
// parameter (jku, x5u, x5c, jwk, crit, ...) is refused, as is a token larger
// than MaxTokenSize. An unknown kid makes Verify reload the key set once (at
// most once every few seconds across all callers) before failing with
// ErrUnknownKey. Verify checks no claim: exp, nbf, iss, aud are the caller's.
//
// Every segment must be canonical base64url, so a token has one spelling;
// but an ECDSA signature (r, s) has a twin (r, n-s) that verifies too, so
// identify tokens by their jti, never by their string or signature.
func (m *Manager) Verify(ctx context.Context, token string) (claims []byte, kid string, err error) {
	return m.verify(ctx, token, tokenType)
}

// VerifyIDToken is Verify for an OpenID Connect id_token that authd signed
// (SignIDToken): the header's typ must be "JWT" (or "application/jwt"), so
// an access token never passes for an id_token. Like Verify it checks no
// claim: iss, aud and exp are the caller's (an id_token_hint, for one, is
// acceptable expired).
func (m *Manager) VerifyIDToken(ctx context.Context, token string) (claims []byte, kid string, err error) {
	return m.verify(ctx, token, idTokenType)
}

// verify checks token's shape, its typ (typ) and its signature by the key
// its kid names.
func (m *Manager) verify(ctx context.Context, token, typ string) (claims []byte, kid string, err error) {
	if len(token) > MaxTokenSize {
		return nil, "", &tokenError{reason: ErrTokenTooLarge}
	}
	t, err := jws.Parse(token, jws.ES256|jws.RS256|jws.EdDSA)
	if err != nil {
		return nil, "", invalid(err.Error())
	}
	if !t.TypIs(typ) {
		return nil, "", invalid("typ is not " + typ)
	}
	k := m.set.Load().keys[string(t.Kid())]
	if k == nil {
		if k = m.reloadForKID(ctx, string(t.Kid())); k == nil {
			return nil, "", &tokenError{reason: ErrUnknownKey}
		}
	}
	if t.Alg().String() != k.alg {
		return nil, "", invalid("alg does not match the key")
	}
	payload, err := t.Verify(k.pub)
	if errors.Is(err, jws.ErrSignature) {
		return nil, "", &tokenError{reason: ErrInvalidSignature}
	}
	if err != nil {
		return nil, "", invalid(err.Error())
	}
	return payload, k.id, nil
}

// reloadForKID reloads the key set for a kid the snapshot lacks, at most once
// every unknownKIDReloadEvery whatever the number of callers, and returns the
// key if it is now known.
func (m *Manager) reloadForKID(ctx context.Context, kid string) *verifyKey {
	limited := func() bool {
		now, last := m.now().UnixNano(), m.lastKIDReload.Load()
		return last != 0 && now >= last && now-last < int64(unknownKIDReloadEvery)
	}
	if limited() { // the cheap answer to a flood of made-up kids
		return nil
	}
	ch := m.kidReload.DoChan("reload", func() (any, error) {
		if limited() {
			return nil, nil
		}
		// Shared by every waiting caller: one caller's cancellation must not fail the others.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unknownKIDReloadTimeout)
		defer cancel()
		err := m.Reload(rctx)
		// Stamped when done: callers arriving meanwhile wait for this reload
		// instead of being turned away by the limit.
		m.lastKIDReload.Store(m.now().UnixNano())
		if err != nil {
			m.log.Warn("keys: reload for an unknown kid failed", "err", err)
		}
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil
	}
	return m.set.Load().keys[kid]
}
