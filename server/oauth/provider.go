// Package oauth composes fosite into authd's OAuth 2.0 endpoints: the token
// endpoint (password, refresh_token, client_credentials), introspection
// (RFC 7662) and revocation (RFC 7009), with JWT access tokens (RFC 9068)
// that are never stored and opaque, rotating refresh tokens.
package oauth

import (
	"context"
	"crypto/hkdf"
	stdhmac "crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	foauth2 "github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/hmac"

	"github.com/authd/authd/storage"
)

// Options wires the provider. Every dependency is passed in.
type Options struct {
	Issuer           string
	AccessTokenTTL   time.Duration
	RefreshTokenTTL  time.Duration
	RefreshFamilyTTL time.Duration // absolute lifetime of a refresh family
	// RefreshReuseInterval: a refresh token presented again within it (and
	// before its successor is used) answers the same successor; 0 is strict
	// (every second presentation is reuse).
	RefreshReuseInterval time.Duration
	Secret               []byte // >= 32 bytes: keys the refresh-token HMAC
	OldSecrets           [][]byte

	Store    Store
	Denylist storage.Denylist
	// ProofReplay remembers DPoP proof ids (the SQL store, or Redis over it).
	ProofReplay storage.ProofReplay
	// DPoPNonces makes token requests with DPoP carry a server nonce
	// (use_dpop_nonce / DPoP-Nonce, RFC 9449 §8).
	DPoPNonces bool
	// Signer signs access tokens; it must sign id_tokens too (IDTokenSigner).
	Signer   Signer
	Auth     Authenticator
	Recorder Recorder
	Hasher   *SecretHasher

	// Pages are the browser pages of the authorize endpoint (login,
	// consent, error); nil: Authorize answers 404.
	Pages Pages

	ClientIP func(*http.Request) string // nil: the connection's address
	Logger   *slog.Logger
	Now      func() time.Time
	// StoreUnavailable, when set, hears of each request answered 503
	// because the store could not serve (storage.Retryable), for metrics.
	StoreUnavailable func(err error)
}

// Provider serves the OAuth 2.0 endpoints.
type Provider struct {
	o       Options
	dpop    *dpopChecker
	fosite  *fosite.Fosite
	clients *clientAuthenticator
	tokens  *accessTokens
	refresh *refreshStrategy
	store   *fositeStore
	// markerKey keys the login marker of an authorize request (loginMarker).
	markerKey []byte
	idSigner  IDTokenSigner
	// idVerifier checks id_token_hints (EndSession).
	idVerifier IDTokenVerifier
	log        *slog.Logger
	now        func() time.Time
}

// refreshKey derives the refresh-token HMAC key from AUTHD_SECRET with
// HKDF-SHA256, separate from the keys it derives for client secrets and
// signing-key encryption.
func refreshKey(secret []byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "authd refresh token hmac v1", 32)
	if err != nil {
		// Unreachable: HKDF-SHA256 refuses only outputs over 8160 bytes.
		panic("oauth: refresh key: " + err.Error())
	}
	return k
}

// New builds the provider; it fails on a missing dependency rather than at the first request.
func New(o Options) (*Provider, error) {
	switch {
	case o.Store == nil || o.Denylist == nil || o.ProofReplay == nil || o.Signer == nil || o.Auth == nil || o.Recorder == nil || o.Hasher == nil:
		return nil, errors.New("oauth: missing dependency")
	case len(o.Secret) < 32:
		return nil, errors.New("oauth: secret must be at least 32 bytes")
	case o.Issuer == "" || o.AccessTokenTTL <= 0 || o.RefreshTokenTTL <= 0 || o.RefreshFamilyTTL <= 0:
		return nil, errors.New("oauth: issuer and token lifetimes are required")
	case o.RefreshReuseInterval < 0:
		return nil, errors.New("oauth: the refresh reuse interval cannot be negative")
	}
	idSigner, ok := o.Signer.(IDTokenSigner)
	if !ok {
		return nil, errors.New("oauth: the signer cannot sign id_tokens")
	}
	idVerifier, ok := o.Signer.(IDTokenVerifier)
	if !ok {
		return nil, errors.New("oauth: the signer cannot verify id_tokens")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ClientIP == nil {
		o.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	p := &Provider{o: o, log: o.Logger, now: o.Now, markerKey: markerKeyFor(o.Secret), idSigner: idSigner,
		idVerifier: idVerifier}
	p.clients = &clientAuthenticator{clients: o.Store, hasher: o.Hasher}
	p.dpop = newDPoPChecker(o.ProofReplay, o.Secret, o.DPoPNonces, o.Now)
	p.tokens = &accessTokens{issuer: o.Issuer, signer: o.Signer, deny: o.Denylist, now: o.Now}
	p.store = &fositeStore{store: o.Store, deny: o.Denylist, auth: o.Auth, rec: o.Recorder, accessTTL: o.AccessTokenTTL,
		reuseInterval: o.RefreshReuseInterval, now: o.Now}

	cfg := &fosite.Config{
		AccessTokenLifespan:      o.AccessTokenTTL,
		RefreshTokenLifespan:     o.RefreshTokenTTL,
		GlobalSecret:             refreshKey(o.Secret),
		RefreshTokenScopes:       []string{}, // a refresh token needs no offline_access scope
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		AccessTokenIssuer:        o.Issuer,
		TokenURL:                 o.Issuer + "/oauth2/token",
		IDTokenIssuer:            o.Issuer,
		IDTokenLifespan:          o.AccessTokenTTL,
		AuthorizeCodeLifespan:    codeLifespan,
		// PKCE with S256 for every client, public or confidential.
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		AllowedPromptValues:            []string{"none", "login", "consent"},
		SendDebugMessagesToClients:     false,
		ClientSecretsHasher:            o.Hasher,
		ClientAuthenticationStrategy: func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
			c, err := p.clients.authenticate(ctx, r, form)
			if err == nil {
				reqInfoFrom(ctx).ClientID = c.GetID()
			}
			return c, err
		},
	}
	// Refresh tokens issued before the key was derived were keyed with the
	// secret's first 32 bytes: they keep validating until they expire.
	cfg.RotatedGlobalSecrets = append(cfg.RotatedGlobalSecrets, o.Secret[:32])
	for _, s := range o.OldSecrets {
		if len(s) >= 32 {
			cfg.RotatedGlobalSecrets = append(cfg.RotatedGlobalSecrets, refreshKey(s), s[:32])
		}
	}
	p.refresh = newRefreshStrategy(&hmac.HMACStrategy{Config: cfg}, cfg)
	if o.RefreshReuseInterval > 0 {
		p.refresh.successorKey = successorKey(o.Secret)
		p.refresh.signingKey = cfg.GlobalSecret
	}
	// Authorization codes are fosite's unprefixed HMAC-SHA tokens under the
	// refresh tokens' key.
	codes := p.refresh.HMACSHAStrategyUnPrefixed
	p.store.codeSignature = codes.AuthorizeCodeSignature
	codeHandler := &foauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy: p.tokens, RefreshTokenStrategy: p.refresh, AuthorizeCodeStrategy: codes,
		CoreStorage: p.store, TokenRevocationStorage: p.store, Config: cfg,
	}
	pkceHandler := &pkce.Handler{AuthorizeCodeStrategy: codes, Storage: p.store, Config: cfg}
	oidcHandler := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage: p.store,
		// The validator checks prompt and max_age against the session; it
		// would decode an id_token_hint with its Strategy, but the
		// authorize endpoint drops that parameter (authd ignores the hint:
		// the browser session decides).
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(nil, cfg),
		IDTokenHandleHelper:           &openid.IDTokenHandleHelper{IDTokenStrategy: &idTokens{issuer: o.Issuer, signer: idSigner, now: o.Now}},
		Config:                        cfg,
	}
	// The code first: PKCE and OpenID Connect act on the code it issued,
	// and the id_token's at_hash is of the access token it issued.
	cfg.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{codeHandler, pkceHandler, oidcHandler}
	helper := &foauth2.HandleHelper{AccessTokenStrategy: p.tokens, AccessTokenStorage: p.store, Config: cfg}
	cfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{
		ownGrantOnly{codeHandler}, ownGrantOnly{pkceHandler}, ownGrantOnly{oidcHandler},
		ownGrantOnly{&foauth2.ClientCredentialsGrantHandler{HandleHelper: helper, Config: cfg}},
		ownGrantOnly{&foauth2.ResourceOwnerPasswordCredentialsGrantHandler{
			HandleHelper: helper, ResourceOwnerPasswordCredentialsGrantStorage: p.store,
			RefreshTokenStrategy: p.refresh, Config: cfg,
		}},
		ownGrantOnly{&foauth2.RefreshTokenGrantHandler{
			AccessTokenStrategy: p.tokens, RefreshTokenStrategy: p.refresh,
			TokenRevocationStorage: p.store, Config: cfg,
		}},
	}
	p.fosite = fosite.NewOAuth2Provider(p.store, cfg)
	return p, nil
}

// ownGrantOnly wraps a token endpoint handler for fosite's response loop,
// which (unlike its request loop) asks every handler to populate the
// response: the handlers of other grants answer ErrUnknownRequest, each
// with a stack trace captured for nothing (five of them per request, about
// a tenth of a client_credentials request's CPU). Here they are skipped
// before that; fosite treats ErrUnknownRequest and nil alike in that loop.
type ownGrantOnly struct{ fosite.TokenEndpointHandler }

func (h ownGrantOnly) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}

// AuthorizeEnabled reports whether the authorize endpoint (and so the
// authorization_code grant) is served: the provider has the browser pages.
func (p *Provider) AuthorizeEnabled() bool { return p.o.Pages != nil }

// IDTokenAlg is the algorithm id_tokens are signed with now (the current key's).
func (p *Provider) IDTokenAlg() string { return p.idSigner.Alg() }

// VerifyAccessToken checks a Bearer access token: signature by kid, typ,
// issuer, times and the denylist.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (*AccessClaims, error) {
	if !looksLikeJWT(token) {
		return nil, ErrTokenInvalid
	}
	return p.tokens.Verify(ctx, token)
}

// Token serves POST /oauth2/token.
func (p *Provider) Token(w http.ResponseWriter, r *http.Request) {
	if !p.parseForm(w, r) {
		return
	}
	gt := r.PostForm.Get("grant_type")
	switch {
	case gt == "":
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The grant_type parameter is missing."))
		return
	case !slices.Contains(supportedGrantTypes, gt) || gt == GrantAuthorizationCode && !p.AuthorizeEnabled():
		p.writeError(w, r, fosite.ErrUnsupportedGrantType.WithHintf("The grant type is not supported."))
		return
	case gt == GrantAuthorizationCode && r.PostForm.Get("code") == "":
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The code parameter is missing."))
		return
	case gt == GrantRefreshToken && r.PostForm.Get("refresh_token") == "":
		// fosite would look the empty token up and answer invalid_grant;
		// a missing parameter is invalid_request (RFC 6749 §5.2).
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The refresh_token parameter is missing."))
		return
	}
	if n := p.dpop.CurrentNonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
	proof, err := p.tokenProof(r)
	if err != nil {
		p.writeError(w, r, dpopError(err))
		return
	}
	ri := &reqInfo{IP: p.o.ClientIP(r), Proof: proof}
	ctx := withReqInfo(r.Context(), ri)
	sess := &Session{}
	ar, err := p.fosite.NewAccessRequest(ctx, r, sess)
	if errors.Is(err, fosite.ErrTokenSignatureMismatch) {
		// A refresh token whose key does not match its stored signature.
		err = fosite.ErrInvalidGrant.WithHint("The refresh token is malformed or not valid.")
	}
	if err != nil {
		p.writeError(w, r, p.codeReuse(ctx, err))
		return
	}
	if err := p.completeGrant(ctx, ar); err != nil {
		p.writeError(w, r, err)
		return
	}
	var resp fosite.AccessResponder
	if ar.GetGrantTypes().ExactOne(GrantAuthorizationCode) {
		// The code is marked used and the refresh token it is exchanged
		// for stored in one transaction: a concurrent exchange of the same
		// code waits for this one to commit, then finds the code used and
		// revokes what this one issued (codeReuse).
		err = p.o.Store.InTx(ctx, func(ctx context.Context) error {
			var err error
			resp, err = p.fosite.NewAccessResponse(ctx, ar)
			return err
		})
	} else {
		resp, err = p.fosite.NewAccessResponse(ctx, ar)
	}
	if err != nil {
		p.writeError(w, r, p.codeReuse(ctx, err))
		return
	}
	if !ar.GetClient().GetGrantTypes().Has(GrantRefreshToken) {
		if ext, ok := resp.(*fosite.AccessResponse); ok {
			delete(ext.Extra, "refresh_token")
		}
	}
	if proof != nil {
		resp.SetTokenType("DPoP")
	}
	writeJSON(w, http.StatusOK, resp.ToMap()) // what fosite's WriteAccessResponse writes, with authd's Content-Type
}

// codeReuse answers an exchange of an authorization code that was used
// already (RFC 6749 §4.1.2, RFC 9700 §4.2.4): what the first exchange issued
// is revoked (fosite did it too on its path; this records it, and covers an
// exchange that lost the race to mark the code used), and the answer is
// invalid_grant. Any other error is returned as it is.
func (p *Provider) codeReuse(ctx context.Context, err error) error {
	c := reqInfoFrom(ctx).ReusedCode
	if c == nil {
		return err
	}
	if rerr := p.revokeFamily(ctx, c.RequestID, c.Subject, c.ClientID,
		map[string]any{"token_type": "authorization_code", "reason": "code_reuse"}); rerr != nil {
		return fosite.ErrServerError.WithWrap(rerr)
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

// completeGrant does what fosite leaves to the application between request
// and response: grant the validated scopes and audience, and put the user
// (reloaded on every refresh) into the session.
func (p *Provider) completeGrant(ctx context.Context, ar fosite.AccessRequester) error {
	sess, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("oauth: unexpected session type %T", ar.GetSession()))
	}
	c := ar.GetClient()
	proof := reqInfoFrom(ctx).Proof
	if cl, ok := c.(client); ok && cl.c.DPoPBound && proof == nil {
		return errInvalidDPoPProof.WithHint("This client must send a DPoP proof with every token request.")
	}
	if err := bindSession(sess, c, ar.GetGrantTypes().ExactOne(GrantRefreshToken), proof); err != nil {
		return err
	}
	switch {
	case ar.GetGrantTypes().ExactOne(GrantRefreshToken):
		u, err := p.refreshOwner(ctx, sess)
		if errors.Is(err, storage.ErrNotFound) || err == nil && u.Disabled {
			if rerr := p.revokeFamily(ctx, ar.GetID(), sess.Subject, c.GetID(),
				map[string]any{"token_type": "refresh_token", "reason": "user_unavailable"}); rerr != nil {
				return fosite.ErrServerError.WithWrap(rerr)
			}
			return fosite.ErrInvalidGrant.WithHint("The user of this refresh token is disabled or deleted.")
		} else if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		sess.Roles, sess.Username = u.Roles, u.Username
		return nil
	case ar.GetGrantTypes().ExactOne(GrantAuthorizationCode):
		// The session is the one the code was issued with; the user is
		// read again (disabled or deleted since: no tokens). fosite grants
		// the scopes and audience the code was issued with.
		u, err := p.o.Store.GetUser(ctx, sess.Subject)
		if errors.Is(err, storage.ErrNotFound) || err == nil && u.Disabled {
			return fosite.ErrInvalidGrant.WithHint("The user of this authorization code is disabled or deleted.")
		} else if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		sess.Roles, sess.Username = u.Roles, u.Username
		sess.FamilyDeadline = p.now().Add(p.o.RefreshFamilyTTL).UTC().Truncate(time.Second)
		sess.SetExpiresAt(fosite.RefreshToken, sess.GetExpiresAt(fosite.RefreshToken)) // clamp
		return nil
	case ar.GetGrantTypes().ExactOne(GrantPassword):
		u := reqInfoFrom(ctx).User // loaded by Authenticate a moment ago
		if u == nil || u.ID != sess.Subject {
			return fosite.ErrServerError.WithWrap(errors.New("oauth: authenticated user missing"))
		}
		sess.Roles, sess.Username = u.Roles, u.Username
		sess.FamilyDeadline = p.now().Add(p.o.RefreshFamilyTTL).UTC().Truncate(time.Second)
		sess.SetExpiresAt(fosite.RefreshToken, sess.GetExpiresAt(fosite.RefreshToken)) // clamp
	case ar.GetGrantTypes().ExactOne(GrantClientCredentials):
		sess.Subject = c.GetID()
		sess.Roles = []string{}
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	aud := ar.GetRequestedAudience()
	if len(aud) == 0 {
		aud = c.GetAudience()
	}
	for _, a := range aud {
		ar.GrantAudience(a)
	}
	return nil
}

// refreshOwner returns the user a refresh token is used for: the one read
// with the token a moment ago (GetRefreshTokenSession), else from the store.
// storage.ErrNotFound when the user no longer exists.
func (p *Provider) refreshOwner(ctx context.Context, sess *Session) (storage.User, error) {
	if o := sess.origin; o.read && o.subject == sess.Subject {
		if o.owner == nil {
			return storage.User{}, storage.ErrNotFound
		}
		return *o.owner, nil
	}
	return p.o.Store.GetUser(ctx, sess.Subject)
}

// Refresh-token prefixes. fosite's HMACSHAStrategy hard-codes "ory_rt_"
// (handler/oauth2/strategy_hmacsha_prefixed.go); authd's tokens name authd so
// that secret scanners can tell them apart. The prefix is outside the HMAC
// (only the part before the dot is signed, and the part after it is what is
// stored, hashed), so tokens issued with the old prefix still validate.
const (
	refreshTokenPrefix       = "authd_rt_"
	legacyRefreshTokenPrefix = "ory_rt_"
)

// refreshStrategy is fosite's unprefixed HMAC-SHA refresh-token strategy
// with authd's prefix. A token with neither prefix is refused.
//
// With a reuse interval, the successor of a refresh token is not random but
// derived from it with a keyed HMAC (successorKey): presented again, the same
// token yields the same successor, so that idempotent rotation can answer it
// without storing any secret. The successor is an ordinary fosite token:
// its key part is that HMAC, its signature fosite's HMAC-SHA512/256 of the
// key part under signingKey (fosite's GlobalSecret).
type refreshStrategy struct {
	*foauth2.HMACSHAStrategyUnPrefixed
	successorKey []byte // nil: successors are random (strict policy)
	signingKey   []byte
}

// successorKey derives the key of successor derivation from AUTHD_SECRET.
func successorKey(secret []byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "authd refresh token successor v1", 32)
	if err != nil {
		// Unreachable: HKDF-SHA256 refuses only outputs over 8160 bytes.
		panic("oauth: successor key: " + err.Error())
	}
	return k
}

// successor returns the refresh token that follows presented (without its
// prefix), and its signature.
func (s *refreshStrategy) successor(presented string) (string, string) {
	m := stdhmac.New(sha256.New, s.successorKey)
	m.Write([]byte(presented))
	key := m.Sum(nil) // 32 bytes, as fosite's default token entropy
	sig := stdhmac.New(sha512.New512_256, s.signingKey[:32])
	sig.Write(key)
	encSig := base64.RawURLEncoding.EncodeToString(sig.Sum(nil))
	return refreshTokenPrefix + base64.RawURLEncoding.EncodeToString(key) + "." + encSig, encSig
}

var _ foauth2.RefreshTokenStrategy = (*refreshStrategy)(nil)

func newRefreshStrategy(enigma *hmac.HMACStrategy, cfg foauth2.LifespanConfigProvider) *refreshStrategy {
	return &refreshStrategy{HMACSHAStrategyUnPrefixed: foauth2.NewHMACSHAStrategyUnPrefixed(enigma, cfg)}
}

func trimRefreshPrefix(token string) (string, bool) {
	if t, ok := strings.CutPrefix(token, refreshTokenPrefix); ok {
		return t, true
	}
	return strings.CutPrefix(token, legacyRefreshTokenPrefix)
}

// RefreshTokenSignature returns the signature part of token; "" (which
// matches no stored token) when token has neither prefix.
func (s *refreshStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	t, ok := trimRefreshPrefix(token)
	if !ok {
		return ""
	}
	return s.HMACSHAStrategyUnPrefixed.RefreshTokenSignature(ctx, t)
}

// GenerateRefreshToken returns a new token "authd_rt_<key>.<signature>":
// on a refresh with a reuse interval, the presented token's successor;
// otherwise a random one.
func (s *refreshStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if ar, ok := r.(fosite.AccessRequester); ok && s.successorKey != nil && ar.GetGrantTypes().ExactOne(GrantRefreshToken) {
		if presented, ok := trimRefreshPrefix(ar.GetRequestForm().Get("refresh_token")); ok && presented != "" {
			token, sig := s.successor(presented)
			return token, sig, nil
		}
	}
	token, sig, err := s.HMACSHAStrategyUnPrefixed.GenerateRefreshToken(ctx, r)
	if err != nil {
		return "", "", err
	}
	return refreshTokenPrefix + token, sig, nil
}

// ValidateRefreshToken checks token's HMAC and r's refresh expiry. Any
// failure but expiry is ErrTokenSignatureMismatch, which the token endpoint
// answers as invalid_grant, as it answers an unknown token (fosite would say
// invalid_request).
func (s *refreshStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	t, ok := trimRefreshPrefix(token)
	if !ok {
		return fosite.ErrTokenSignatureMismatch
	}
	err := s.HMACSHAStrategyUnPrefixed.ValidateRefreshToken(ctx, r, t)
	if err == nil || errors.Is(err, fosite.ErrTokenExpired) {
		return err
	}
	return fosite.ErrTokenSignatureMismatch.WithWrap(err)
}
