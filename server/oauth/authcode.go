package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	foauth2 "github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/authd/authd/storage"
)

// Authorization codes. fosite's three authorize handlers each store their
// part of a code through their own storage interface, with their own
// sanitised copy of the request: the code itself (its request, session and
// redirect_uri), the PKCE challenge, and the OpenID Connect parameters
// (nonce, prompt, max_age). authd keeps one row per code: during
// NewAuthorizeResponse the three calls only collect their parts in the
// request's pendingCode, and the authorize endpoint writes the row
// (writeCode) once NewAuthorizeResponse has succeeded, before the redirect
// that carries the code. Every Get reads that row.

var (
	_ foauth2.AuthorizeCodeStorage       = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
)

// pendingCode is the one code an authorize request issues, collected from
// fosite's storage calls until writeCode stores it.
type pendingCode struct {
	signature string
	req       fosite.Requester // as CreateAuthorizeCodeSession got it
	form      url.Values       // the parameters each handler kept
	oidc      bool             // the OpenID Connect handler took part: an id_token follows
}

type pendingCodeKey struct{}

func withPendingCode(ctx context.Context, pc *pendingCode) context.Context {
	return context.WithValue(ctx, pendingCodeKey{}, pc)
}

func pendingCodeFrom(ctx context.Context) (*pendingCode, error) {
	if pc, ok := ctx.Value(pendingCodeKey{}).(*pendingCode); ok {
		return pc, nil
	}
	return nil, errors.New("oauth: an authorization code outside an authorize request")
}

// merge adds the parameters a handler kept.
func (pc *pendingCode) merge(form url.Values) {
	if pc.form == nil {
		pc.form = url.Values{}
	}
	for k, v := range form {
		if len(v) > 0 {
			pc.form.Set(k, v[0])
		}
	}
}

// storedCode is storage.AuthorizationCode.Request.
type storedCode struct {
	storedRequest
	Form url.Values `json:"form"`
	OIDC bool       `json:"oidc,omitempty"`
}

// CreateAuthorizeCodeSession collects the code's request (see pendingCode).
func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	pc, err := pendingCodeFrom(ctx)
	if err != nil {
		return err
	}
	if pc.signature != "" && pc.signature != signature {
		return errors.New("oauth: a second authorization code in one request")
	}
	pc.signature, pc.req = signature, req
	pc.merge(req.GetRequestForm())
	return nil
}

// CreatePKCERequestSession collects the PKCE challenge and its method.
func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	pc, err := pendingCodeFrom(ctx)
	if err != nil {
		return err
	}
	if pc.signature != signature {
		return errors.New("oauth: a PKCE request for another authorization code")
	}
	pc.merge(req.GetRequestForm())
	return nil
}

// CreateOpenIDConnectSession collects the OpenID Connect parameters. fosite
// names the code here, not its signature.
func (s *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	pc, err := pendingCodeFrom(ctx)
	if err != nil {
		return err
	}
	if pc.signature != s.codeSignature(ctx, code) {
		return errors.New("oauth: an OpenID Connect request for another authorization code")
	}
	pc.merge(req.GetRequestForm())
	pc.oidc = true
	return nil
}

// writeCode stores the code that NewAuthorizeResponse issued, as one row.
func (s *fositeStore) writeCode(ctx context.Context, pc *pendingCode) error {
	if pc.req == nil {
		return errors.New("oauth: no authorization code was issued")
	}
	sess, ok := pc.req.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauth: unexpected session type %T", pc.req.GetSession())
	}
	body, err := json.Marshal(storedCode{
		storedRequest: storedRequest{
			ID: pc.req.GetID(), RequestedAt: pc.req.GetRequestedAt(), ClientID: pc.req.GetClient().GetID(),
			RequestedScope: pc.req.GetRequestedScopes(), GrantedScope: pc.req.GetGrantedScopes(),
			RequestedAudience: pc.req.GetRequestedAudience(), GrantedAudience: pc.req.GetGrantedAudience(),
			Session: sess,
		},
		Form: pc.form,
		OIDC: pc.oidc,
	})
	if err != nil {
		return fmt.Errorf("oauth: encode authorization code: %w", err)
	}
	return s.store.CreateAuthorizationCode(ctx, storage.AuthorizationCode{
		SignatureHash: hashSignature(pc.signature), RequestID: pc.req.GetID(), ClientID: pc.req.GetClient().GetID(),
		Subject: sess.Subject, SessionID: sess.SID, Active: true, Request: body,
		RequestedAt: s.now().UTC(), ExpiresAt: sess.GetExpiresAt(fosite.AuthorizeCode),
	})
}

// readCode returns the stored code and its request, decoded into a fresh
// session: fosite makes the first one it reads the exchange's session, and
// reads the code again later, when the session already holds what the
// exchange added (roles reloaded, DPoP key), which a decode into it would
// overwrite.
func (s *fositeStore) readCode(ctx context.Context, signature string) (storage.AuthorizationCode, *fosite.Request, storedCode, error) {
	cr, err := s.loadCode(ctx, hashSignature(signature))
	if err != nil {
		return cr.row, nil, storedCode{}, err
	}
	row, c := cr.row, cr.client
	sc := storedCode{storedRequest: storedRequest{Session: &Session{}}}
	if err := json.Unmarshal(row.Request, &sc); err != nil {
		return row, nil, sc, fmt.Errorf("oauth: decode authorization code: %w", err)
	}
	form := sc.Form
	if form == nil {
		form = url.Values{}
	}
	return row, &fosite.Request{
		ID: sc.ID, RequestedAt: sc.RequestedAt,
		Client:            client{c},
		RequestedScope:    fosite.Arguments(sc.RequestedScope),
		GrantedScope:      fosite.Arguments(sc.GrantedScope),
		RequestedAudience: fosite.Arguments(sc.RequestedAudience),
		GrantedAudience:   fosite.Arguments(sc.GrantedAudience),
		Form:              form,
		Session:           sc.Session,
	}, sc, nil
}

// codeRead is a code's row and its client as registered now, read once per
// token request (reqInfo.code).
type codeRead struct {
	hash   string
	row    storage.AuthorizationCode
	client storage.Client
}

// loadCode reads the code with signature hash and its client, or returns
// what this request read already.
func (s *fositeStore) loadCode(ctx context.Context, hash string) (codeRead, error) {
	ri := reqInfoFrom(ctx)
	if ri.code != nil && ri.code.hash == hash {
		return *ri.code, nil
	}
	row, err := s.store.GetAuthorizationCode(ctx, hash)
	if err != nil {
		return codeRead{row: row}, mapErr(err)
	}
	// The client as registered now: whether it may have a refresh token
	// is read from the code's request.
	c, err := s.store.GetClient(ctx, row.ClientID)
	if err != nil {
		return codeRead{row: row}, mapErr(err)
	}
	ri.code = &codeRead{hash: hash, row: row, client: c}
	return *ri.code, nil
}

// GetAuthorizeCodeSession returns a code's request. A used code is
// returned with fosite.ErrInvalidatedAuthorizeCode: fosite then revokes
// what its first exchange issued (the family is the request id), and the
// token endpoint records it (reqInfo.ReusedCode).
func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	row, req, _, err := s.readCode(ctx, signature)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		reqInfoFrom(ctx).ReusedCode = &row
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession is the single-use guard: one conditional
// statement of which, however many exchanges race, exactly one succeeds.
// A loser is a reuse too (reqInfo.ReusedCode): the token endpoint revokes
// what the winner issued.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	err := s.store.UseAuthorizationCode(ctx, hashSignature(signature))
	if errors.Is(err, storage.ErrNotFound) {
		if row, gerr := s.store.GetAuthorizationCode(ctx, hashSignature(signature)); gerr == nil {
			reqInfoFrom(ctx).ReusedCode = &row
		}
		return fmt.Errorf("%w: %w", fosite.ErrInvalidatedAuthorizeCode, err)
	}
	return mapErr(err)
}

// GetPKCERequestSession returns the code's request, which holds its PKCE
// challenge (every code has one: PKCE is enforced).
func (s *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	_, req, _, err := s.readCode(ctx, signature)
	if err != nil {
		return nil, err
	}
	if req.Form.Get("code_challenge") == "" {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// DeletePKCERequestSession has nothing to do: the challenge is part of the
// code's row, which the exchange marks used (InvalidateAuthorizeCodeSession)
// and the purge deletes once expired; a used code never gets this far again.
func (s *fositeStore) DeletePKCERequestSession(context.Context, string) error { return nil }

// GetOpenIDConnectSession returns the code's request when the OpenID
// Connect handler took part in issuing it (openid was granted);
// openid.ErrNoSessionFound otherwise.
func (s *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	_, req, sc, err := s.readCode(ctx, s.codeSignature(ctx, code))
	if err != nil {
		return nil, err
	}
	if !sc.OIDC {
		return nil, openid.ErrNoSessionFound
	}
	return req, nil
}

// DeleteOpenIDConnectSession has nothing to do, as DeletePKCERequestSession.
func (s *fositeStore) DeleteOpenIDConnectSession(context.Context, string) error { return nil }

// codeLifespan is how long an authorization code lives.
const codeLifespan = 60 * time.Second
