package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// LogoutPath is the end-session endpoint's path (OpenID Connect
// RP-Initiated Logout 1.0).
const LogoutPath = "/oauth2/logout"

// IDTokenVerifier checks the signature of an id_token authd signed
// (keys.Manager's VerifyIDToken: typ JWT, any published key) and returns
// its claims, checking none of them. The provider finds it on
// Options.Signer.
type IDTokenVerifier interface {
	VerifyIDToken(ctx context.Context, token string) (claims []byte, kid string, err error)
}

// LogoutPage is what the logout confirmation shows and posts back.
type LogoutPage struct {
	Action      string     // where the form posts: LogoutPath
	Params      url.Values // the logout request, posted back with the confirmation
	RedirectURI string     // the validated post_logout_redirect_uri; "" for none
}

// Messages of the logout endpoint's error page.
const (
	msgLogoutBadRequest  = "The application sent an invalid sign-out request."
	msgLogoutHint        = "The sign-out request names a sign-in this service did not issue."
	msgLogoutRedirectURI = "The application that sent you here asked to return to an address it did not register for sign-out."
	msgLogoutNoClient    = "The sign-out request asks to return to an application but does not say which."
)

// logoutParams are the parameters of a logout request that the
// confirmation posts back (RP-Initiated Logout 1.0 §2); others are dropped.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"}

// logoutRequest is a checked logout request.
type logoutRequest struct {
	clientID    string // the client the request is from; "" when it says not
	redirectURI string // a registered post_logout_redirect_uri; "" for none
	state       string
}

// EndSession serves GET and POST /oauth2/logout (OpenID Connect
// RP-Initiated Logout 1.0). The request (id_token_hint, client_id,
// post_logout_redirect_uri, state) is checked first: an id_token_hint must
// carry authd's signature, its iss and, as aud, the client (an expired one
// is still a hint); a post_logout_redirect_uri must be registered for that
// client. Any failure is shown on the error page, never redirected. A
// browser with a session is asked to confirm (a form with a CSRF token that
// posts back here); the confirmation ends the session and records
// auth.logout. The browser then goes to post_logout_redirect_uri, with
// state, or to the "signed out" page. Without a session there is nothing to
// confirm: straight to the result.
func (p *Provider) EndSession(w http.ResponseWriter, r *http.Request) {
	if p.o.Pages == nil {
		http.NotFound(w, r)
		return
	}
	pages := p.o.Pages
	form, status, _ := browserForm(r, func(k string) int {
		if k == "id_token_hint" {
			return maxTokenLen
		}
		return maxParamLen
	})
	if status != 0 {
		pages.Error(w, r, status, msgLogoutBadRequest)
		return
	}
	// The confirmation posts its CSRF token and the button's decision; an
	// RP may POST the logout request itself, without either (§2).
	confirmed := r.Method == http.MethodPost && (r.PostForm.Has(paramCSRF) || r.PostForm.Has(paramDecision))
	if confirmed && !pages.LogoutForm(w, r) {
		return
	}
	ctx := withReqInfo(r.Context(), &reqInfo{IP: p.o.ClientIP(r)})
	req, status, msg, err := p.logoutRequest(ctx, form)
	if err != nil {
		pages.Failure(w, r, err)
		return
	}
	if status != 0 {
		pages.Error(w, r, status, msg)
		return
	}

	bs, u, err := pages.Session(r)
	switch {
	case errors.Is(err, identity.ErrNoSession):
		if confirmed {
			// A stale cookie, if any, goes too.
			if _, err := pages.EndSession(w, r); err != nil {
				p.o.Pages.Failure(w, r, err)
				return
			}
		}
		p.loggedOut(w, r, req)
		return
	case err != nil:
		p.o.Pages.Failure(w, r, err)
		return
	}
	if !confirmed {
		params := url.Values{}
		for _, k := range logoutParams {
			if v := form.Get(k); v != "" {
				params.Set(k, v)
			}
		}
		pages.LogoutConfirm(w, r, LogoutPage{Action: LogoutPath, Params: params, RedirectURI: req.redirectURI})
		return
	}
	err = p.o.Store.InTx(ctx, func(ctx context.Context) error {
		ended, err := pages.EndSession(w, r.WithContext(ctx))
		if err != nil || !ended {
			return err // ended already, by a logout that recorded it
		}
		return p.o.Recorder.Record(ctx, events.Event{
			Type: events.Logout, Subject: u.ID, ClientID: req.clientID, IP: p.o.ClientIP(r),
			Data: map[string]any{"via": "browser", "sid": bs.ID},
		})
	})
	if err != nil {
		p.o.Pages.Failure(w, r, fmt.Errorf("oauth: logout: %w", err))
		return
	}
	p.loggedOut(w, r, req)
}

// logoutRequest checks a logout request's parameters; a failure is for the
// error page: its status and message.
func (p *Provider) logoutRequest(ctx context.Context, form url.Values) (logoutRequest, int, string, error) {
	req := logoutRequest{clientID: form.Get("client_id"), state: form.Get("state")}
	if hint := form.Get("id_token_hint"); hint != "" {
		aud, err := p.idTokenHintAudience(ctx, hint)
		if err != nil {
			p.log.InfoContext(ctx, "oauth: logout: id_token_hint refused", "error", err)
			return logoutRequest{}, http.StatusBadRequest, msgLogoutHint, nil
		}
		switch {
		case req.clientID != "" && !slices.Contains(aud, req.clientID):
			return logoutRequest{}, http.StatusBadRequest, msgLogoutHint, nil
		case req.clientID == "" && len(aud) == 1:
			req.clientID = aud[0]
		}
	}
	redirectURI := form.Get("post_logout_redirect_uri")
	if req.clientID == "" {
		if redirectURI != "" {
			return logoutRequest{}, http.StatusBadRequest, msgLogoutNoClient, nil
		}
		return req, 0, "", nil
	}
	if !clients.ValidID(req.clientID) {
		return logoutRequest{}, http.StatusBadRequest, msgUnknown, nil
	}
	c, err := p.o.Store.GetClient(ctx, req.clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return logoutRequest{}, http.StatusBadRequest, msgUnknown, nil
	case err != nil:
		return logoutRequest{}, 0, "", fmt.Errorf("oauth: logout: client lookup: %w", err)
	}
	if redirectURI != "" {
		// Registered exactly; a loopback redirect's port may vary (RFC
		// 8252 §7.3), as for redirect_uri.
		if !matchRedirectURI(redirectURI, c.PostLogoutRedirectURIs) {
			return logoutRequest{}, http.StatusBadRequest, msgLogoutRedirectURI, nil
		}
		req.redirectURI = redirectURI
	}
	return req, 0, "", nil
}

// idTokenHintAudience checks an id_token_hint: an id_token that authd's
// keys signed, for authd's issuer, with a subject. Its exp is not checked
// (RP-Initiated Logout 1.0 §4: an expired id_token is still a hint). It
// returns the token's aud. Errors never hold the token.
func (p *Provider) idTokenHintAudience(ctx context.Context, hint string) ([]string, error) {
	raw, _, err := p.idVerifier.VerifyIDToken(ctx, hint)
	if err != nil {
		return nil, fmt.Errorf("oauth: id_token_hint: %w", err)
	}
	var c struct {
		Issuer   string   `json:"iss"`
		Subject  string   `json:"sub"`
		Audience audience `json:"aud"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errors.New("oauth: id_token_hint: claims are not an id_token's")
	}
	if c.Issuer != p.o.Issuer || c.Subject == "" || len(c.Audience) == 0 {
		return nil, errors.New("oauth: id_token_hint: not an id_token of this issuer")
	}
	return c.Audience, nil
}

// loggedOut ends a logout: 303 to the post_logout_redirect_uri with state,
// or the "signed out" page.
func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request, req logoutRequest) {
	if req.redirectURI == "" {
		p.o.Pages.LoggedOut(w, r)
		return
	}
	u, err := url.Parse(req.redirectURI)
	if err != nil { // unreachable: matchRedirectURI accepted it
		p.o.Pages.Error(w, r, http.StatusBadRequest, msgLogoutRedirectURI)
		return
	}
	if req.state != "" {
		q := u.Query()
		q.Set("state", req.state)
		u.RawQuery = q.Encode()
	}
	h := w.Header()
	h.Set("Location", u.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusSeeOther)
}
