package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	foauth2 "github.com/ory/fosite/handler/oauth2"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/internal/dpop"
	"github.com/authd/authd/storage"
)

// Store is what the OAuth layer needs from the SQL store.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	GetUser(ctx context.Context, id string) (storage.User, error)
	storage.RefreshTokens
	storage.AuthorizationCodes
	storage.Consents
	storage.Transactor
}

// Authenticator checks a user's password (identity.Service).
type Authenticator interface {
	Authenticate(ctx context.Context, login, password string, m identity.Meta) (storage.User, error)
}

// Recorder records security events in the caller's transaction.
type Recorder interface {
	Record(ctx context.Context, e events.Event) error
}

// reqInfo carries per-request facts that fosite's storage calls do not get as
// arguments: who the client is, where the request came from, its DPoP proof
// and, on the password grant, the user Authenticate checked. (What a refresh
// grant reads with its token travels in the Session: see refreshOrigin.)
type reqInfo struct {
	ClientID string
	IP       string
	User     *storage.User // the user the password grant authenticated
	Proof    *dpop.Proof   // the token request's checked DPoP proof, nil without one
	// ReusedCode is the authorization code an exchange found used: what its
	// first exchange issued is revoked.
	ReusedCode *storage.AuthorizationCode
	// AccessToken is the access token the request issued, for the
	// id_token's at_hash.
	AccessToken string
	// code is the authorization code an exchange read, with its client:
	// fosite asks for it three times (code, PKCE, OpenID Connect), the
	// store is read once.
	code *codeRead
}

type reqInfoKey struct{}

func withReqInfo(ctx context.Context, ri *reqInfo) context.Context {
	return context.WithValue(ctx, reqInfoKey{}, ri)
}

func reqInfoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// storedRequest is the part of a fosite request kept with a refresh token.
type storedRequest struct {
	ID                string    `json:"id"`
	RequestedAt       time.Time `json:"requested_at"`
	ClientID          string    `json:"client_id"`
	RequestedScope    []string  `json:"requested_scope,omitempty"`
	GrantedScope      []string  `json:"granted_scope,omitempty"`
	RequestedAudience []string  `json:"requested_audience,omitempty"`
	GrantedAudience   []string  `json:"granted_audience,omitempty"`
	Session           *Session  `json:"session"`
}

// hashSignature is what is stored for a refresh token: a hash of its HMAC
// signature, itself keyed by the server secret.
func hashSignature(sig string) string {
	h := sha256.Sum256([]byte(sig))
	return hex.EncodeToString(h[:])
}

// fositeStore adapts storage to fosite's storage interfaces. Access tokens
// are stateless JWTs: nothing is stored for them; revoking one denylists it.
type fositeStore struct {
	store         Store
	deny          storage.Denylist
	auth          Authenticator
	rec           Recorder
	accessTTL     time.Duration
	reuseInterval time.Duration // idempotent rotation; 0: strict
	now           func() time.Time
	// codeSignature is an authorization code's signature (the code strategy's).
	codeSignature func(ctx context.Context, code string) string
}

var (
	_ fosite.ClientManager                                 = (*fositeStore)(nil)
	_ foauth2.TokenRevocationStorage                       = (*fositeStore)(nil)
	_ foauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStore)(nil)
)

// GetClient is fosite's client lookup (authd authenticates clients itself,
// see clientAuthenticator); an id no client can have is never looked up.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if !clients.ValidID(id) {
		return nil, fosite.ErrNotFound
	}
	c, err := s.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("oauth: get client: %w", err)
	}
	return client{c}, nil
}

// Client assertions (RFC 7523) are refused by the client authenticator, so
// these are never reached; they fail closed.
func (s *fositeStore) ClientAssertionJWTValid(context.Context, string) error {
	return fosite.ErrJTIKnown
}

func (s *fositeStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errors.New("oauth: client assertions are not supported")
}

// Authenticate checks the password grant's credentials. A username or a
// password that no account can have (invalid UTF-8, a NUL or another control
// character in the name, a name longer than an email may be) is never handed
// to the identity service and its store: it gets the same invalid_grant as
// any other failure. It skips the password hashing, which tells nothing
// about existing accounts, since no account can be registered with such text.
func (s *fositeStore) Authenticate(ctx context.Context, name, secret string) (string, error) {
	if !plainText(name, maxLoginLen) || !passwordText(secret) {
		return "", fosite.ErrNotFound
	}
	ri := reqInfoFrom(ctx)
	u, err := s.auth.Authenticate(ctx, name, secret, identity.Meta{ClientID: ri.ClientID, IP: ri.IP})
	if errors.Is(err, identity.ErrInvalidCredentials) {
		return "", fosite.ErrNotFound
	} else if err != nil {
		return "", fmt.Errorf("oauth: authenticate: %w", err)
	}
	ri.User = &u
	return u.ID, nil
}

func (s *fositeStore) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}

func (s *fositeStore) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

func (s *fositeStore) DeleteAccessTokenSession(context.Context, string) error { return nil }

// CreateRefreshTokenSession stores a new refresh token. On the refresh grant
// it is the rotation itself: the session remembers the presented token
// (refreshOrigin, set by GetRefreshTokenSession), and this token replaces it
// in one atomic storage statement that, within the reuse interval, also
// answers a repeated rotation to the same successor.
func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, req fosite.Requester) error {
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauth: unexpected session type %T", req.GetSession())
	}
	rotates := sess.origin.hash
	if !req.GetClient().GetGrantTypes().Has(GrantRefreshToken) {
		if rotates != "" {
			return errors.New("oauth: a refresh rotation for a client without the refresh_token grant")
		}
		return nil // the token endpoint drops it from the response too
	}
	body, err := json.Marshal(storedRequest{
		ID: req.GetID(), RequestedAt: req.GetRequestedAt(), ClientID: req.GetClient().GetID(),
		RequestedScope: req.GetRequestedScopes(), GrantedScope: req.GetGrantedScopes(),
		RequestedAudience: req.GetRequestedAudience(), GrantedAudience: req.GetGrantedAudience(),
		Session: sess,
	})
	if err != nil {
		return fmt.Errorf("oauth: encode refresh request: %w", err)
	}
	rt := storage.RefreshToken{
		SignatureHash: hashSignature(signature), FamilyID: req.GetID(), ClientID: req.GetClient().GetID(),
		Subject: sess.Subject, Active: true, Request: body, RequestedAt: s.now().UTC(),
		ExpiresAt: sess.GetExpiresAt(fosite.RefreshToken),
	}
	if rotates != "" {
		return mapErr(s.store.RotateRefreshToken(ctx, rotates, rt, s.reuseInterval))
	}
	return mapErr(s.store.CreateRefreshToken(ctx, rt))
}

// GetRefreshTokenSession returns the stored request of a refresh token. An
// inactive token is reuse (fosite.ErrInactiveToken), unless it was rotated
// within the reuse interval and its successor is unused: then the request
// goes on, and its rotation answers that same successor.
func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	hash := hashSignature(signature)
	rt, owner, err := s.store.GetRefreshTokenWithUser(ctx, hash)
	if err != nil {
		return nil, mapErr(err)
	}
	req, err := decodeRequest(rt, session)
	if err != nil {
		return nil, err
	}
	// fosite clones this session into the request it goes on with: the
	// origin reaches completeGrant (the owner) and CreateRefreshTokenSession
	// (the token to rotate).
	req.Session.(*Session).origin = refreshOrigin{hash: hash, subject: rt.Subject, owner: owner, read: true}
	if !rt.Active {
		grace, err := s.store.InRotationGrace(ctx, hash, s.reuseInterval)
		if err != nil {
			return nil, mapErr(err)
		}
		if !grace {
			return req, fosite.ErrInactiveToken
		}
	}
	return req, nil
}

func decodeRequest(rt storage.RefreshToken, session fosite.Session) (*fosite.Request, error) {
	sess, ok := session.(*Session)
	if !ok || sess == nil {
		sess = &Session{}
	}
	sr := storedRequest{Session: sess}
	if err := json.Unmarshal(rt.Request, &sr); err != nil {
		return nil, fmt.Errorf("oauth: decode refresh request: %w", err)
	}
	return &fosite.Request{
		ID: sr.ID, RequestedAt: sr.RequestedAt,
		Client:            client{storage.Client{ID: sr.ClientID}},
		RequestedScope:    fosite.Arguments(sr.RequestedScope),
		GrantedScope:      fosite.Arguments(sr.GrantedScope),
		RequestedAudience: fosite.Arguments(sr.RequestedAudience),
		GrantedAudience:   fosite.Arguments(sr.GrantedAudience),
		Form:              map[string][]string{},
		Session:           sr.Session,
	}, nil
}

// DeleteRefreshTokenSession is called by fosite only when an inactive token
// is presented again (reuse). It answers the reuse in one transaction:
// records the security event, deactivates the whole family and denylists its
// access tokens. (fosite then calls RevokeRefreshToken and RevokeAccessToken
// for the family, which find the work done.) The row is kept, so every later
// presentation is reuse too.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return mapErr(s.store.InTx(ctx, func(ctx context.Context) error {
		rt, err := s.store.GetRefreshToken(ctx, hashSignature(signature))
		if err != nil {
			return err
		}
		if err := s.store.RevokeRefreshFamily(ctx, rt.FamilyID); err != nil {
			return err
		}
		if err := s.denyFamily(ctx, rt.FamilyID); err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.RefreshReuse, Subject: rt.Subject, ClientID: rt.ClientID, IP: reqInfoFrom(ctx).IP,
			Data: map[string]any{"family": rt.FamilyID},
		})
	}))
}

// RotateRefreshToken does nothing: fosite calls it before the successor
// token is stored, and the rotation needs both tokens to be one atomic
// statement, so CreateRefreshTokenSession, which fosite calls next, does it.
func (s *fositeStore) RotateRefreshToken(context.Context, string, string) error { return nil }

// RevokeRefreshToken deactivates every refresh token of the family.
func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return mapErr(s.store.RevokeRefreshFamily(ctx, requestID))
}

// RevokeAccessToken denylists every access token of the family.
func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.denyFamily(ctx, requestID)
}

// denyFamily denylists every access token of the family until the longest of
// them has expired.
func (s *fositeStore) denyFamily(ctx context.Context, family string) error {
	return s.deny.Revoke(ctx, storage.Revocation{
		Kind: storage.RevokedFamily, Value: family, ExpiresAt: s.now().Add(s.accessTTL + time.Minute),
	})
}

// mapErr turns storage's sentinels into fosite's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %w", fosite.ErrNotFound, err)
	case errors.Is(err, storage.ErrSerialization):
		return fmt.Errorf("%w: %w", fosite.ErrSerializationFailure, err)
	default:
		return err
	}
}
