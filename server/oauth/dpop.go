package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/internal/dpop"
	"github.com/authd/authd/storage"
)

// DPoP (RFC 9449): a client proves, with a JWT signed by a key it holds, that
// the tokens it gets or presents are bound to that key. fosite v0.49 knows
// nothing of it: the token endpoint checks the proof before fosite sees the
// request, the session carries the key's thumbprint, and the access-token
// strategy signs it into cnf.jkt.

// DPoPAlgs are the proof algorithms accepted (and advertised in discovery).
func DPoPAlgs() []string { return append([]string(nil), dpop.Algs...) }

const (
	// dpopWindow bounds how far a proof's iat may be from now, either way.
	dpopWindow = 60 * time.Second
	// dpopNonceEvery is how long a server nonce is current; the previous one
	// is accepted too.
	dpopNonceEvery = 5 * time.Minute
)

// Errors of RFC 9449 §5 and §8.
var (
	errInvalidDPoPProof = &fosite.RFC6749Error{ErrorField: "invalid_dpop_proof", CodeField: http.StatusBadRequest,
		DescriptionField: "The DPoP proof is invalid."}
	errUseDPoPNonce = &fosite.RFC6749Error{ErrorField: "use_dpop_nonce", CodeField: http.StatusBadRequest,
		DescriptionField: "Resend the request with a DPoP proof carrying the server's nonce (the DPoP-Nonce header)."}
)

// dpopChecker checks proofs for the token endpoint and authd's own API.
type dpopChecker struct {
	replay   storage.ProofReplay
	nonceKey []byte // nil: no server nonces
	now      func() time.Time
}

func newDPoPChecker(replay storage.ProofReplay, secret []byte, nonces bool, now func() time.Time) *dpopChecker {
	c := &dpopChecker{replay: replay, now: now}
	if nonces {
		k, err := hkdf.Key(sha256.New, secret, nil, "authd dpop nonce v1", 32)
		if err != nil {
			panic("oauth: dpop nonce key: " + err.Error()) // unreachable: 32 bytes
		}
		c.nonceKey = k
	}
	return c
}

// nonce returns the server nonce of the period holding t: the period number
// and a MAC of it, so that every replica computes and accepts the same ones
// without storing anything.
func (c *dpopChecker) nonce(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.Unix()/int64(dpopNonceEvery/time.Second)))
	m := hmac.New(sha256.New, c.nonceKey)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CurrentNonce is the nonce to hand out in DPoP-Nonce; "" when nonces are off.
func (c *dpopChecker) CurrentNonce() string {
	if c.nonceKey == nil {
		return ""
	}
	return c.nonce(c.now())
}

// proofHeader returns the request's DPoP header: "" when there is none, an
// error when there is more than one.
func proofHeader(r *http.Request) (string, error) {
	switch v := r.Header.Values("DPoP"); len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	default:
		return "", fmt.Errorf("%w: more than one DPoP header", dpop.ErrInvalidProof)
	}
}

// check verifies proof for a request to url (method, and accessToken when
// presented to a resource), its nonce when nonces are on and asked for (the
// token endpoint hands them out), and that its jti was not seen before.
// Errors wrap dpop.ErrInvalidProof or dpop.ErrUseNonce; others are the
// replay store's.
func (c *dpopChecker) check(ctx context.Context, proof, method, url, accessToken string, nonce bool) (*dpop.Proof, error) {
	now := c.now()
	pr, err := dpop.Check(proof, dpop.Params{Method: method, URL: url, AccessToken: accessToken, Window: dpopWindow, Now: now})
	if err != nil {
		return nil, err
	}
	if nonce && c.nonceKey != nil && pr.Nonce != c.nonce(now) && pr.Nonce != c.nonce(now.Add(-dpopNonceEvery)) {
		return nil, dpop.ErrUseNonce
	}
	fresh, err := c.replay.RememberProof(ctx, pr.JKT+":"+pr.JTI, pr.IssuedAt.Add(dpopWindow+time.Second))
	if err != nil {
		return nil, fmt.Errorf("oauth: dpop replay: %w", err)
	}
	if !fresh {
		return nil, dpop.ErrReplayed
	}
	return pr, nil
}

// tokenProof checks the DPoP proof of a token request, if there is one.
func (p *Provider) tokenProof(r *http.Request) (*dpop.Proof, error) {
	proof, err := proofHeader(r)
	if err != nil || proof == "" {
		return nil, err
	}
	return p.dpop.check(r.Context(), proof, http.MethodPost, p.o.Issuer+"/oauth2/token", "", true)
}

// dpopError maps a proof failure to the token endpoint's error.
func dpopError(err error) error {
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return errUseDPoPNonce
	case errors.Is(err, dpop.ErrInvalidProof):
		return errInvalidDPoPProof.WithHint(hintOf(err))
	default:
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
}

// hintOf is the reason of a proof failure, safe to show: dpop's messages
// name the failed check, never the proof's content.
func hintOf(err error) string {
	return "The DPoP proof is invalid: " + err.Error() + "."
}

// Errors of ResourceProof.
var (
	// ErrDPoPProof: the proof is missing, invalid, replayed, or for another key.
	ErrDPoPProof = errors.New("oauth: invalid DPoP proof")
	// ErrDPoPBoundAsBearer: a DPoP-bound token presented as Bearer (RFC 9449 §7.2).
	ErrDPoPBoundAsBearer = errors.New("oauth: a DPoP-bound token presented as Bearer")
)

// ResourceProof checks the proof of a request to authd's own API or
// userinfo that presents token with the DPoP scheme, for claims c (already
// verified): the proof must be for this method and URL, carry the token's
// hash, be fresh, and be signed by the key the token is bound to. Errors
// wrap ErrDPoPProof; others mean the replay store cannot be asked.
func (p *Provider) ResourceProof(r *http.Request, token string, c *AccessClaims) error {
	proof, err := proofHeader(r)
	if err == nil && proof == "" {
		err = errors.New("no DPoP header")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDPoPProof, err)
	}
	pr, err := p.dpop.check(r.Context(), proof, r.Method, p.o.Issuer+r.URL.EscapedPath(), token, false)
	switch {
	case errors.Is(err, dpop.ErrInvalidProof) || errors.Is(err, dpop.ErrUseNonce):
		return fmt.Errorf("%w: %w", ErrDPoPProof, err)
	case err != nil:
		return err
	case c.Confirmation == nil || c.Confirmation.JKT != pr.JKT:
		return fmt.Errorf("%w: the proof's key is not the token's", ErrDPoPProof)
	}
	return nil
}

// bindSession puts the proof's key into the session of a grant, and checks
// a refresh token's binding: a public client's refresh token is bound to
// the key of the proof it was issued with, and refreshing it takes a proof
// of the same key (RFC 9449 §5).
func bindSession(sess *Session, c fosite.Client, refresh bool, pr *dpop.Proof) error {
	if refresh && sess.JKT != "" && c.IsPublic() && (pr == nil || pr.JKT != sess.JKT) {
		return fosite.ErrInvalidGrant.WithHint("The refresh token is bound to a DPoP key; send a proof signed with that key.")
	}
	sess.JKT = ""
	if pr != nil {
		sess.JKT = pr.JKT
	}
	return nil
}
