package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// IDTokenSigner signs OpenID Connect id_tokens with the key that signs
// access tokens (keys.Manager: the current key and its kid, typ "JWT") and
// names that key's algorithm. The provider finds it on Options.Signer.
type IDTokenSigner interface {
	SignIDToken(ctx context.Context, claims []byte) (string, error)
	Alg() string
}

// idTokens is the OpenID Connect handler's id_token strategy: authd's
// claims, signed by authd's keys (never a second key set).
type idTokens struct {
	issuer string
	signer IDTokenSigner
	now    func() time.Time
}

var _ openid.OpenIDConnectTokenStrategy = (*idTokens)(nil)

// IDClaims are the claims of an id_token (OpenID Connect Core §2).
type IDClaims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        string   `json:"aud"` // the client id
	ExpiresAt       int64    `json:"exp"`
	IssuedAt        int64    `json:"iat"`
	AuthTime        int64    `json:"auth_time"`
	Nonce           string   `json:"nonce,omitempty"`
	AccessTokenHash string   `json:"at_hash,omitempty"`
	SID             string   `json:"sid,omitempty"` // the browser session
	AMR             []string `json:"amr,omitempty"`
}

// GenerateIDToken signs the id_token of the code exchange that req (the
// stored authorization request) belongs to. at_hash is of the access token
// the exchange issued a moment ago (reqInfo.AccessToken).
func (t *idTokens) GenerateIDToken(ctx context.Context, lifespan time.Duration, req fosite.Requester) (string, error) {
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return "", fmt.Errorf("oauth: unexpected session type %T", req.GetSession())
	}
	if sess.Subject == "" || sess.AuthTime.IsZero() {
		return "", errors.New("oauth: an id_token needs a subject and an auth_time")
	}
	now := t.now()
	c := IDClaims{
		Issuer: t.issuer, Subject: sess.Subject, Audience: req.GetClient().GetID(),
		ExpiresAt: now.Add(lifespan).Unix(), IssuedAt: now.Unix(), AuthTime: sess.AuthTime.Unix(),
		Nonce: req.GetRequestForm().Get("nonce"), SID: sess.SID, AMR: sess.AMR,
	}
	at := reqInfoFrom(ctx).AccessToken
	// at_hash depends on the signing algorithm: should the current key
	// change between Alg and SignIDToken (a rotation to another
	// algorithm), sign again with the hash of the key that signed.
	alg := t.signer.Alg()
	for range 2 {
		if at != "" {
			h, err := halfHash(alg, at)
			if err != nil {
				return "", err
			}
			c.AccessTokenHash = h
		}
		body, err := json.Marshal(c)
		if err != nil {
			return "", fmt.Errorf("oauth: encode id_token claims: %w", err)
		}
		token, err := t.signer.SignIDToken(ctx, body)
		if err != nil {
			return "", fmt.Errorf("oauth: sign id_token: %w", err)
		}
		signed, err := headerAlg(token)
		if err != nil {
			return "", err
		}
		if signed == alg {
			return token, nil
		}
		alg = signed
	}
	return "", errors.New("oauth: the signing key changed twice while an id_token was signed")
}

// halfHash is the left half of value's hash under the hash of alg, base64url
// (at_hash, OpenID Connect Core §3.1.3.6): SHA-256 for ES256 and RS256,
// SHA-512 for EdDSA with Ed25519.
func halfHash(alg, value string) (string, error) {
	var h hash.Hash
	switch alg {
	case "ES256", "RS256":
		h = sha256.New()
	case "EdDSA":
		h = sha512.New()
	default:
		return "", fmt.Errorf("oauth: no at_hash for algorithm %q", alg)
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// headerAlg reads alg from a compact JWS that authd signed.
func headerAlg(token string) (string, error) {
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return "", fmt.Errorf("oauth: id_token header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("oauth: id_token header: %w", err)
	}
	return h.Alg, nil
}
