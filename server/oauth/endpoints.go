package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// parseForm reads an application/x-www-form-urlencoded body and refuses what
// RFC 6749 forbids: another media type, a parameter given twice (§3.2), a
// body over the server's limit (413). It writes the error itself.
func (p *Provider) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.writeError(w, r, withStatus(fosite.ErrInvalidRequest.WithHint("Use POST."), http.StatusMethodNotAllowed))
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The body must be application/x-www-form-urlencoded."))
		return false
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.writeError(w, r, withStatus(fosite.ErrInvalidRequest.WithHint("The request body is too large."), http.StatusRequestEntityTooLarge))
			return false
		}
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The body could not be parsed as a form."))
		return false
	}
	for k, v := range r.Form {
		if len(v) > 1 {
			p.writeError(w, r, fosite.ErrInvalidRequest.WithHintf("The parameter %q is given more than once.", safeParam(k)))
			return false
		}
		if !plainText(k, maxParamNameLen) {
			p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("A parameter name is not printable UTF-8 text."))
			return false
		}
		if !formValueOK(k, v[0]) {
			if k == "scope" { // RFC 6749 §5.2: a malformed scope is invalid_scope
				p.writeError(w, r, fosite.ErrInvalidScope.WithHint("The scope parameter is malformed or too long."))
				return false
			}
			p.writeError(w, r, fosite.ErrInvalidRequest.WithHintf("The parameter %q is malformed or too long.", safeParam(k)))
			return false
		}
	}
	return true
}

// formValueOK checks a parameter's text before anything reads it. The
// credentials are checked where they are used, so that they fail like any
// other wrong credential: client_id and client_secret as invalid_client
// (clientAuthenticator), username and password as invalid_grant
// (fositeStore.Authenticate).
func formValueOK(name, v string) bool {
	switch name {
	case "client_id", "client_secret", "username", "password":
		return true
	case "token", "refresh_token", "code", "code_verifier":
		return tokenText(v)
	default:
		return plainText(v, maxParamLen)
	}
}

// withStatus sets the HTTP status of an error copy (fosite's With* methods copy).
func withStatus(e *fosite.RFC6749Error, code int) *fosite.RFC6749Error {
	e.CodeField = code
	return e
}

// safeParam keeps attacker-chosen parameter names short and printable in messages.
func safeParam(k string) string {
	if len(k) > 40 {
		k = k[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, k)
}

// writeError writes an RFC 6749 §5.2 error. 401 invalid_client carries
// WWW-Authenticate when the client used HTTP Basic; server errors are logged
// and answered without detail.
func (p *Provider) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	status := rfc.CodeField
	if status >= 500 && identity.Unavailable(err) {
		// The store is down or busy, or an account had as many password
		// checks in flight as its lockout threshold for the whole queue
		// timeout: not a bug (RFC 6749 §5.2's temporarily_unavailable, with
		// Retry-After).
		rfc = fosite.ErrTemporarilyUnavailable.WithWrap(err)
		if storage.Retryable(err) && p.o.StoreUnavailable != nil {
			p.o.StoreUnavailable(err)
		}
	}
	if rfc.ErrorField == fosite.ErrTemporarilyUnavailable.ErrorField {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	desc := rfc.DescriptionField
	if rfc.HintField != "" {
		desc = rfc.HintField
	}
	switch {
	case status == http.StatusServiceUnavailable:
		p.log.WarnContext(r.Context(), "oauth: unavailable", "path", r.URL.Path, "cause", rfc.Unwrap())
		desc = "The service is temporarily unavailable; retry shortly."
	case status >= 500:
		p.log.ErrorContext(r.Context(), "oauth: request failed", "path", r.URL.Path, "error", rfc.ErrorField, "cause", rfc.Unwrap())
		desc = "The server could not complete the request."
	}
	h := w.Header()
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		status = http.StatusUnauthorized
		if _, _, basic := r.BasicAuth(); basic {
			h.Set("WWW-Authenticate", `Basic realm="authd", charset="UTF-8"`)
		}
	}
	WriteError(w, status, rfc.ErrorField, desc)
}

// WriteError writes an RFC 6749 §5.2 error body with the no-store headers
// every OAuth answer carries.
func WriteError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authenticateClient parses the form and authenticates the caller for
// introspection and revocation; it writes the error itself.
func (p *Provider) authenticateClient(w http.ResponseWriter, r *http.Request) (context.Context, storage.Client, string, bool) {
	if !p.parseForm(w, r) {
		return nil, storage.Client{}, "", false
	}
	ri := &reqInfo{IP: p.o.ClientIP(r)}
	ctx := withReqInfo(r.Context(), ri)
	fc, err := p.clients.authenticate(ctx, r, r.PostForm)
	if err != nil {
		p.writeError(w, r, err)
		return nil, storage.Client{}, "", false
	}
	ri.ClientID = fc.GetID()
	token := r.PostForm.Get("token")
	if token == "" {
		p.writeError(w, r, fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return nil, storage.Client{}, "", false
	}
	return ctx, fc.(client).c, token, true
}

// Introspection is an RFC 7662 response.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	// Confirmation is the DPoP key a bound access token is tied to.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Introspect serves POST /oauth2/introspect. A client registered to
// introspect sees any token; any other client only its own.
func (p *Provider) Introspect(w http.ResponseWriter, r *http.Request) {
	ctx, caller, token, ok := p.authenticateClient(w, r)
	if !ok {
		return
	}
	res, err := p.introspect(ctx, caller, token, r.PostForm.Get("token_type_hint"))
	if err != nil {
		p.writeError(w, r, fosite.ErrServerError.WithWrap(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (p *Provider) introspect(ctx context.Context, caller storage.Client, token, hint string) (Introspection, error) {
	inactive := Introspection{Active: false}
	mayView := func(owner string) bool { return caller.Introspect || owner == caller.ID }
	if looksLikeJWT(token) {
		c, err := p.tokens.Verify(ctx, token)
		if err != nil {
			if Rejected(err) {
				return inactive, nil
			}
			return inactive, err
		}
		if !mayView(c.ClientID) {
			return inactive, nil
		}
		return Introspection{
			Active: true, Scope: c.Scope, ClientID: c.ClientID, Username: c.Username, TokenType: "Bearer",
			ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, Subject: c.Subject,
			Audience: c.Audience, Issuer: c.Issuer, JTI: c.ID, Roles: c.Roles, Confirmation: c.Confirmation,
		}, nil
	}
	rt, req, err := p.lookupRefresh(ctx, token)
	if err != nil || rt == nil || !rt.Active || !mayView(rt.ClientID) {
		return inactive, err
	}
	sess := req.Session.(*Session)
	return Introspection{
		Active: true, Scope: strings.Join(req.GrantedScope, " "), ClientID: rt.ClientID, Username: sess.Username,
		TokenType: "refresh_token", ExpiresAt: rt.ExpiresAt.Unix(), IssuedAt: rt.RequestedAt.Unix(),
		Subject: rt.Subject, Audience: req.GrantedAudience, Issuer: p.o.Issuer, Roles: sess.Roles,
	}, nil
}

// lookupRefresh finds a refresh token by its value; nil when unknown,
// malformed, forged or expired.
func (p *Provider) lookupRefresh(ctx context.Context, token string) (*storage.RefreshToken, *fosite.Request, error) {
	sig := p.refresh.RefreshTokenSignature(ctx, token)
	if sig == "" {
		return nil, nil, nil
	}
	rt, err := p.o.Store.GetRefreshToken(ctx, hashSignature(sig))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	req, err := decodeRequest(rt, &Session{})
	if err != nil {
		return nil, nil, err
	}
	// Checks the HMAC over the token's key part and the expiry.
	if err := p.refresh.ValidateRefreshToken(ctx, req, token); err != nil {
		return nil, nil, nil
	}
	if !rt.ExpiresAt.IsZero() && !p.now().Before(rt.ExpiresAt) {
		return nil, nil, nil
	}
	return &rt, req, nil
}

// Revoke serves POST /oauth2/revoke (RFC 7009): unknown tokens answer 200;
// revoking a refresh token revokes its family and the family's access tokens;
// revoking an access token denylists it and revokes its family.
func (p *Provider) Revoke(w http.ResponseWriter, r *http.Request) {
	ctx, caller, token, ok := p.authenticateClient(w, r)
	if !ok {
		return
	}
	var family, subject, owner, kind, jti string
	var jtiExp time.Time
	if looksLikeJWT(token) {
		c, err := p.tokens.verifyUnrevoked(ctx, token)
		if c != nil && (err == nil || errors.Is(err, ErrTokenExpired)) {
			family, subject, owner, kind, jti = c.Family, c.Subject, c.ClientID, "access_token", c.ID
			jtiExp = time.Unix(c.ExpiresAt, 0)
		}
	} else {
		rt, _, err := p.lookupRefresh(ctx, token)
		if err != nil {
			p.writeError(w, r, fosite.ErrServerError.WithWrap(err))
			return
		}
		if rt != nil {
			family, subject, owner, kind = rt.FamilyID, rt.Subject, rt.ClientID, "refresh_token"
		}
	}
	if family == "" { // unknown, malformed or forged: nothing to do (RFC 7009 §2.2)
		writeRevoked(w)
		return
	}
	if owner != caller.ID {
		p.writeError(w, r, fosite.ErrUnauthorizedClient.WithHint("The token was not issued to this client."))
		return
	}
	err := p.o.Store.InTx(ctx, func(ctx context.Context) error {
		if jti != "" {
			if err := p.o.Denylist.Revoke(ctx, storage.Revocation{Kind: storage.RevokedJTI, Value: jti, ExpiresAt: jtiExp}); err != nil {
				return err
			}
		}
		return p.revokeFamily(ctx, family, subject, caller.ID, map[string]any{"token_type": kind})
	})
	if err != nil {
		p.writeError(w, r, fosite.ErrServerError.WithWrap(err))
		return
	}
	writeRevoked(w)
}

func writeRevoked(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// revokeFamily revokes a refresh family and its access tokens and records
// auth.token.revoked with data (plus the family), in one transaction.
func (p *Provider) revokeFamily(ctx context.Context, family, subject, clientID string, data map[string]any) error {
	return p.o.Store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.RevokeRefreshToken(ctx, family); err != nil {
			return err
		}
		if err := p.store.RevokeAccessToken(ctx, family); err != nil {
			return err
		}
		data["family"] = family
		return p.o.Recorder.Record(ctx, events.Event{
			Type: events.TokenRevoked, Subject: subject, ClientID: clientID, IP: reqInfoFrom(ctx).IP, Data: data,
		})
	})
}

// RevokeSubject ends a user's tokens (password change, logout, disable,
// delete): it revokes every refresh family of the user but exceptFamily,
// denylists their access tokens, and marks the user so that every access
// token issued to them until now is revoked too, whichever client holds it
// and whether or not it has a refresh token. Only exceptFamily's refresh
// token keeps working (a password change keeps the caller signed in).
func (p *Provider) RevokeSubject(ctx context.Context, subject, exceptFamily string) error {
	return p.o.Store.InTx(ctx, func(ctx context.Context) error {
		// At least twice, then until a pass finds nothing (at most five): on
		// PostgreSQL a refresh that rotated a token while a pass waited for
		// its row lock committed a successor that pass could not see, and
		// found nothing to change; the next pass sees it. (A rotation that
		// starts later finds its token inactive.)
		var families []string
		for pass := range 5 {
			f, err := p.o.Store.RevokeSubjectRefreshTokens(ctx, subject, exceptFamily)
			if err != nil {
				return err
			}
			if len(f) == 0 && pass > 0 {
				break
			}
			families = append(families, f...)
		}
		for _, f := range families {
			if err := p.store.RevokeAccessToken(ctx, f); err != nil {
				return err
			}
		}
		return p.o.Denylist.Revoke(ctx, p.mark(storage.RevokedSubject, subject))
	})
}

// RevokeClient marks a client so that every access token issued to it until
// now is revoked (clients.Service.Delete calls it in the transaction that
// deletes the client, whose refresh tokens go with its row).
func (p *Provider) RevokeClient(ctx context.Context, id string) error {
	return p.o.Denylist.Revoke(ctx, p.mark(storage.RevokedClient, id))
}

// mark is a denylist entry for every token of a subject or client issued
// until now; it is kept as long as any of them can live.
func (p *Provider) mark(kind storage.RevocationKind, value string) storage.Revocation {
	now := p.now()
	return storage.Revocation{Kind: kind, Value: value, Cutoff: now, ExpiresAt: now.Add(p.o.AccessTokenTTL + clockLeeway)}
}

// Logout revokes every token of the presented token's user (RevokeSubject)
// and records auth.logout, in one transaction: from then on introspection,
// userinfo and the API refuse all of them.
func (p *Provider) Logout(ctx context.Context, c *AccessClaims, ip string) error {
	return p.o.Store.InTx(ctx, func(ctx context.Context) error {
		if err := p.RevokeSubject(ctx, c.Subject, ""); err != nil {
			return err
		}
		// The presented token's access tokens are covered by the mark and
		// its refresh token (if any) by RevokeSubject. Deny the family too,
		// so that a token of it issued later (a refresh racing this logout)
		// is refused.
		if err := p.store.RevokeAccessToken(ctx, c.Family); err != nil {
			return err
		}
		return p.o.Recorder.Record(ctx, events.Event{
			Type: events.Logout, Subject: c.Subject, ClientID: c.ClientID, IP: ip,
		})
	})
}
