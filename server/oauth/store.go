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

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/internal/dpop"
	"github.com/authd/authd/storage"
)

// Store is what the OAuth layer needs from the SQL store.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	DeleteClient(ctx context.Context, id string) error
	GetUser(ctx context.Context, id string) (storage.User, error)
	storage.RefreshTokens
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
// arguments: who the client is and where the request came from.
type reqInfo struct {
	ClientID string
	IP       string
	User     *storage.User // the user the password grant authenticated
	Proof    *dpop.Proof   // the token request's checked DPoP proof, nil without one
	// Owner is the refresh token's user, read with the token by
	// GetRefreshTokenSession (the refresh grant reads both in one query).
	Owner *tokenOwner
}

// tokenOwner is the user a refresh token was issued to, as read with it:
// User is nil when that user no longer exists.
type tokenOwner struct {
	Subject string
	User    *storage.User
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
}

var (
	_ fosite.ClientManager                                 = (*fositeStore)(nil)
	_ foauth2.TokenRevocationStorage                       = (*fositeStore)(nil)
	_ foauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStore)(nil)
)

// GetClient is fosite's client lookup (authd authenticates clients itself,
// see clientAuthenticator); an id no client can have is never looked up.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if !validClientID(id) {
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
// (RotateRefreshToken came first) it is the rotation itself: the presented
// token is replaced by this one in one atomic storage step that, within the
// reuse interval, also answers a repeated rotation to the same successor.
func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, req fosite.Requester) error {
	lt := lazyTxFrom(ctx)
	var rotate string
	if lt != nil {
		rotate, lt.rotate = lt.rotate, ""
	}
	if !req.GetClient().GetGrantTypes().Has(GrantRefreshToken) {
		if rotate != "" {
			return errors.New("oauth: a refresh rotation for a client without the refresh_token grant")
		}
		return nil // the token endpoint drops it from the response too
	}
	sess, ok := req.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauth: unexpected session type %T", req.GetSession())
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
	ctx = stmtCtx(ctx)
	if rotate != "" {
		return mapErr(s.store.RotateRefreshToken(ctx, rotate, rt, s.reuseInterval))
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
	reqInfoFrom(ctx).Owner = &tokenOwner{Subject: rt.Subject, User: owner}
	req, err := decodeRequest(rt, session)
	if err != nil {
		return nil, err
	}
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
// is presented again (reuse), right before it revokes the family in the same
// transaction. The row is kept, so every later presentation is reuse too; this
// records the security event.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	ctx, err := s.txCtx(ctx)
	if err != nil {
		return err
	}
	rt, err := s.store.GetRefreshToken(ctx, hashSignature(signature))
	if err != nil {
		return mapErr(err)
	}
	return s.rec.Record(ctx, events.Event{
		Type: events.RefreshReuse, Subject: rt.Subject, ClientID: rt.ClientID, IP: reqInfoFrom(ctx).IP,
		Data: map[string]any{"family": rt.FamilyID},
	})
}

// RotateRefreshToken notes the presented token for CreateRefreshTokenSession,
// which fosite calls next in the same transaction and which replaces it by
// its successor in one atomic storage step (storage.RefreshTokens).
func (s *fositeStore) RotateRefreshToken(ctx context.Context, _ string, signature string) error {
	lt := lazyTxFrom(ctx)
	if lt == nil {
		return errors.New("oauth: refresh rotation outside a transaction")
	}
	lt.rotate = hashSignature(signature)
	return nil
}

func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	ctx, err := s.txCtx(ctx)
	if err != nil {
		return err
	}
	return mapErr(s.store.RevokeRefreshFamily(ctx, requestID))
}

// RevokeAccessToken denylists every access token of the family until the
// longest of them has expired.
func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	ctx, err := s.txCtx(ctx)
	if err != nil {
		return err
	}
	return s.deny.Revoke(ctx, storage.Revocation{
		Kind: storage.RevokedFamily, Value: requestID, ExpiresAt: s.now().Add(s.accessTTL + time.Minute),
	})
}

// lazyTx is the transaction fosite asked for: it is begun in the store only
// when a second statement needs it, so the refresh grant, whose rotation is
// one atomic storage step, needs none.
type lazyTx struct {
	parent context.Context // where BeginTX was called
	ctx    context.Context // the store's transaction, once begun
	rotate string          // signature hash of the token being rotated, until its successor is stored
}

type lazyTxKey struct{}

func lazyTxFrom(ctx context.Context) *lazyTx {
	lt, _ := ctx.Value(lazyTxKey{}).(*lazyTx)
	return lt
}

// txCtx returns the context to run a statement with: the store's
// transaction when fosite began one (beginning it now if needed), else ctx.
func (s *fositeStore) txCtx(ctx context.Context) (context.Context, error) {
	lt := lazyTxFrom(ctx)
	if lt == nil {
		return ctx, nil
	}
	if lt.ctx == nil {
		tctx, err := s.store.BeginTx(lt.parent)
		if err != nil {
			return nil, mapErr(err)
		}
		lt.ctx = tctx
	}
	return lt.ctx, nil
}

// stmtCtx returns the context to run one self-contained statement with: the
// store's transaction when one has begun, else none (the statement is atomic
// by itself, and fosite's transaction needs no round trips for it).
func stmtCtx(ctx context.Context) context.Context {
	lt := lazyTxFrom(ctx)
	switch {
	case lt == nil:
		return ctx
	case lt.ctx != nil:
		return lt.ctx
	default:
		return lt.parent
	}
}

func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	if lazyTxFrom(ctx) != nil {
		return nil, errors.New("oauth: a transaction is already in progress")
	}
	return context.WithValue(ctx, lazyTxKey{}, &lazyTx{parent: ctx}), nil
}

func (s *fositeStore) Commit(ctx context.Context) error {
	lt := lazyTxFrom(ctx)
	if lt == nil {
		return errors.New("oauth: commit: no transaction in context")
	}
	if lt.rotate != "" {
		return errors.New("oauth: commit: a refresh rotation without its successor")
	}
	if lt.ctx == nil {
		return nil // nothing ran inside
	}
	return mapErr(s.store.Commit(lt.ctx))
}

func (s *fositeStore) Rollback(ctx context.Context) error {
	lt := lazyTxFrom(ctx)
	if lt == nil {
		return errors.New("oauth: rollback: no transaction in context")
	}
	lt.rotate = ""
	if lt.ctx == nil {
		return nil
	}
	return s.store.Rollback(lt.ctx)
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
