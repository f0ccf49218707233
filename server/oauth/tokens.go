package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	foauth2 "github.com/ory/fosite/handler/oauth2"

	"github.com/authd/authd/storage"
)

// Signer signs and verifies compact JWS access tokens (keys.Manager).
type Signer interface {
	Sign(ctx context.Context, claims []byte) (string, error)
	Verify(ctx context.Context, token string) (claims []byte, kid string, err error)
}

// AccessClaims are the claims of an RFC 9068 access token as authd issues them.
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	Roles     []string `json:"roles"`
	Username  string   `json:"preferred_username,omitempty"`
	Family    string   `json:"sid"` // refresh family (request id): revoking it denylists the token
	// Confirmation binds the token to a DPoP key (RFC 9449 §6.1).
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a DPoP-bound token.
type Confirmation struct {
	JKT string `json:"jkt"` // RFC 7638 SHA-256 thumbprint, base64url
}

// audience is "aud": one string or an array when decoding, always an array when encoding.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// Errors of access-token verification.
var (
	ErrTokenInvalid = errors.New("oauth: invalid access token")
	ErrTokenExpired = errors.New("oauth: access token expired")
	ErrTokenRevoked = errors.New("oauth: access token revoked")
)

// Rejected reports whether err says the access token is not acceptable
// (invalid, expired or revoked), as opposed to verification being unavailable.
func Rejected(err error) bool {
	return errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenRevoked)
}

// clockLeeway tolerates clock skew between replicas for iat and nbf.
const clockLeeway = 60 * time.Second

// accessTokens issues and checks JWT access tokens. It implements fosite's
// AccessTokenStrategy; refresh tokens stay with fosite's HMAC strategy.
type accessTokens struct {
	issuer string
	signer Signer
	deny   storage.Denylist
	now    func() time.Time
}

var _ foauth2.AccessTokenStrategy = (*accessTokens)(nil)

// newJTI returns a UUIDv7 (RFC 9562 §5.7): the issue time to the
// millisecond, which revocation marks compare with (iat has only seconds),
// and 74 random bits.
func newJTI(now time.Time) string {
	var id uuid.UUID
	_, _ = rand.Read(id[6:])
	ms := uint64(now.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	id[6] = 0x70 | id[6]&0x0f // version 7
	id[8] = 0x80 | id[8]&0x3f // variant 10
	return id.String()
}

// issuedAt is when a token was issued, as precisely as it tells: the
// millisecond of its UUIDv7 jti when that agrees with iat, else iat's second.
// Either is rounded down, so a token is never judged younger than it is.
func (c *AccessClaims) issuedAt() time.Time {
	iat := time.Unix(c.IssuedAt, 0)
	if len(c.ID) == 36 {
		if id, err := uuid.Parse(c.ID); err == nil && id.Version() == 7 {
			sec, nsec := id.Time().UnixTime()
			if at := time.Unix(sec, nsec); at.Unix() == c.IssuedAt {
				return at
			}
		}
	}
	return iat
}

// ref is what the denylist matches against.
func (c *AccessClaims) ref() storage.TokenRef {
	return storage.TokenRef{JTI: c.ID, Family: c.Family, Subject: c.Subject, ClientID: c.ClientID, IssuedAt: c.issuedAt()}
}

// AccessTokenSignature returns the JWS signature part, fosite's handle for a token.
func (t *accessTokens) AccessTokenSignature(_ context.Context, token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		return token[i+1:]
	}
	return ""
}

// GenerateAccessToken signs the claims of requester's grant.
func (t *accessTokens) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return "", "", fmt.Errorf("oauth: unexpected session type %T", req.GetSession())
	}
	now := t.now()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		return "", "", errors.New("oauth: access token expiry not set")
	}
	c := AccessClaims{
		Issuer:    t.issuer,
		Subject:   sess.Subject,
		Audience:  audience(req.GetGrantedAudience()),
		ExpiresAt: exp.Unix(),
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ID:        newJTI(now),
		ClientID:  req.GetClient().GetID(),
		Scope:     strings.Join(req.GetGrantedScopes(), " "),
		Roles:     sess.Roles,
		Username:  sess.Username,
		Family:    req.GetID(),
	}
	if c.Subject == "" {
		c.Subject = c.ClientID
	}
	if len(c.Audience) == 0 {
		c.Audience = audience{c.ClientID}
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	if sess.JKT != "" {
		c.Confirmation = &Confirmation{JKT: sess.JKT}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", "", fmt.Errorf("oauth: encode claims: %w", err)
	}
	token, err := t.signer.Sign(ctx, body)
	if err != nil {
		return "", "", fmt.Errorf("oauth: sign access token: %w", err)
	}
	reqInfoFrom(ctx).AccessToken = token // for an id_token's at_hash
	return token, t.AccessTokenSignature(ctx, token), nil
}

// ValidateAccessToken checks a token fully (signature, claims, denylist).
func (t *accessTokens) ValidateAccessToken(ctx context.Context, _ fosite.Requester, token string) error {
	_, err := t.Verify(ctx, token)
	return err
}

// Verify checks an access token's signature (by kid, so tokens signed before a
// key rotation still pass), its typ, issuer and times, and the denylist.
func (t *accessTokens) Verify(ctx context.Context, token string) (*AccessClaims, error) {
	c, err := t.verifyUnrevoked(ctx, token)
	if err != nil {
		return c, err
	}
	revoked, err := t.deny.IsRevoked(ctx, c.ref())
	if err != nil {
		return nil, fmt.Errorf("oauth: denylist: %w", err)
	}
	if revoked {
		return c, ErrTokenRevoked
	}
	return c, nil
}

// verifyUnrevoked is Verify without the denylist. An expired token is
// returned with ErrTokenExpired, so revocation can still act on it.
func (t *accessTokens) verifyUnrevoked(ctx context.Context, token string) (*AccessClaims, error) {
	body, _, err := t.signer.Verify(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	var c AccessClaims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	if c.Issuer != t.issuer || c.ID == "" || c.ClientID == "" || c.ExpiresAt == 0 {
		return nil, fmt.Errorf("%w: claims", ErrTokenInvalid)
	}
	now := t.now()
	if c.NotBefore != 0 && time.Unix(c.NotBefore, 0).After(now.Add(clockLeeway)) ||
		time.Unix(c.IssuedAt, 0).After(now.Add(clockLeeway)) {
		return nil, fmt.Errorf("%w: not yet valid", ErrTokenInvalid)
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return &c, ErrTokenExpired
	}
	return &c, nil
}

// looksLikeJWT tells a compact JWS from an opaque refresh token cheaply.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}
