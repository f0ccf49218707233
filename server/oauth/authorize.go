package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// AuthorizePath is the authorize endpoint's path.
const AuthorizePath = "/oauth2/authorize"

// Pages are the browser pages the authorize endpoint shows and reads
// (server/web.Pages, adapted by server).
type Pages interface {
	// Session returns the browser's live session and its user;
	// identity.ErrNoSession when it has none.
	Session(r *http.Request) (storage.BrowserSession, storage.User, error)
	// Error renders the error page, for what cannot be redirected.
	Error(w http.ResponseWriter, r *http.Request, status int, message string)
	// Failure renders the error page for a failure that is not the
	// request's: 503 with Retry-After for an outage (identity.Unavailable),
	// else 500.
	Failure(w http.ResponseWriter, r *http.Request, err error)
	// Consent renders the consent page, whose form posts back to the
	// authorize endpoint with decision=allow or decision=deny.
	Consent(w http.ResponseWriter, r *http.Request, c ConsentPage)
	// ConsentDecision reads a consent form's POST (its CSRF token
	// checked); ok false when the error page has been written instead.
	ConsentDecision(w http.ResponseWriter, r *http.Request) (allow, ok bool)
	// LoginURL is the login page that returns to returnTo (a path and query
	// of the authorize endpoint) after the user signed in.
	LoginURL(returnTo string) string

	// The logout endpoint's pages (EndSession).

	// LogoutConfirm renders the question "Sign out?", whose form posts the
	// logout request back with a CSRF token.
	LogoutConfirm(w http.ResponseWriter, r *http.Request, l LogoutPage)
	// LogoutForm checks a logout confirmation's POST (its CSRF token);
	// false when the 403 page has been written instead.
	LogoutForm(w http.ResponseWriter, r *http.Request) bool
	// EndSession ends the browser's session and clears its cookie,
	// reporting whether there was a session to end (in r's context's
	// transaction, if any).
	EndSession(w http.ResponseWriter, r *http.Request) (bool, error)
	// LoggedOut renders the "signed out" page.
	LoggedOut(w http.ResponseWriter, r *http.Request)
}

// ConsentPage is what the consent page shows and posts back.
type ConsentPage struct {
	ClientID    string
	ClientName  string
	Username    string
	Scopes      []string
	Params      url.Values // the authorize request, posted back with the decision
	RedirectURI string     // where the decision sends the browser
}

// Messages of the authorize endpoint's error page.
const (
	msgBadRequest  = "The application sent an invalid sign-in request."
	msgUnknown     = "The application that sent you here is not registered."
	msgRedirectURI = "The application that sent you here asked to return to an address it did not register."
)

// Parameters of the consent form (its decision and CSRF token) and of the
// login marker (loginMarker); none of them is part of the authorize
// request that fosite sees.
const (
	paramDecision    = "decision"
	paramCSRF        = "csrf_token"
	paramLoginMarker = "authd_login_after"
)

// loginMarkerMaxAge is how long a login marker stands for "the user signs
// in now": the time a person takes on the login page.
const loginMarkerMaxAge = 15 * time.Minute

// Authorize serves GET and POST /oauth2/authorize (RFC 6749 §4.1, RFC 7636,
// OpenID Connect Core §3.1): decode and check the request (errors about the
// client or redirect_uri on the error page, never redirected), find the
// browser's session (else the login page, or login_required for
// prompt=none), ask consent when the client is not first-party, then issue
// the code and redirect with code, state and iss (RFC 9207).
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request) {
	if p.o.Pages == nil {
		http.NotFound(w, r)
		return
	}
	pages := p.o.Pages
	form, status, msg := p.authorizeForm(r)
	if status != 0 {
		pages.Error(w, r, status, msg)
		return
	}
	ctx := withReqInfo(r.Context(), &reqInfo{IP: p.o.ClientIP(r)})
	c, redirectURI, status, msg, err := p.authorizeClient(ctx, form)
	if err != nil {
		pages.Failure(w, r, err)
		return
	}
	if status != 0 {
		pages.Error(w, r, status, msg)
		return
	}
	// From here on the redirect_uri is the client's: errors go back there.
	fail := func(err error) { p.redirectError(w, r, redirectURI, form.Get("state"), err) }
	decision := r.Method == http.MethodPost && r.PostForm.Has(paramDecision)
	marker := form.Get(paramLoginMarker)
	// What fosite reads: the request without authd's own parameters, and
	// without id_token_hint, which authd ignores (the session decides).
	r.Form = cloneValues(form)
	for _, k := range []string{paramDecision, paramCSRF, paramLoginMarker, "id_token_hint"} {
		r.Form.Del(k)
	}
	ar, err := p.fosite.NewAuthorizeRequest(ctx, r)
	if err != nil {
		fail(err)
		return
	}
	prompt, err := parsePrompt(form.Get("prompt"))
	if err != nil {
		fail(err)
		return
	}
	maxAge, err := parseMaxAge(form.Get("max_age"))
	if err != nil {
		fail(err)
		return
	}

	bs, u, err := pages.Session(r)
	now := p.now()
	switch {
	case errors.Is(err, identity.ErrNoSession):
		if slices.Contains(prompt, "none") {
			fail(fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		p.toLogin(w, r, pages, c.ID, form, now)
		return
	case err != nil:
		p.o.Pages.Failure(w, r, err)
		return
	}
	// prompt=login and max_age want a sign-in no older than the request
	// (the login marker's time, when the login page was shown for it) or
	// than max_age.
	requestedAt, marked := p.checkLoginMarker(marker, c.ID, now)
	if !marked {
		requestedAt = now
	}
	fresh := !bs.AuthTime.Before(requestedAt.Truncate(time.Second))
	stale := slices.Contains(prompt, "login") && !fresh ||
		maxAge >= 0 && bs.AuthTime.Add(time.Duration(maxAge)*time.Second).Before(now) && !(marked && fresh)
	if stale {
		if slices.Contains(prompt, "none") {
			fail(fosite.ErrLoginRequired.WithHint("The sign-in is older than max_age allows."))
			return
		}
		p.toLogin(w, r, pages, c.ID, form, now)
		return
	}

	if !c.FirstParty {
		need, err := p.needsConsent(ctx, u.ID, c.ID, ar.GetRequestedScopes(), slices.Contains(prompt, "consent"))
		if err != nil {
			p.o.Pages.Failure(w, r, err)
			return
		}
		switch {
		case need && decision:
			allow, ok := pages.ConsentDecision(w, r)
			if !ok {
				return
			}
			if !allow {
				fail(fosite.ErrAccessDenied.WithHint("The user denied the request."))
				return
			}
			if err := p.saveConsent(ctx, u.ID, c.ID, ar.GetRequestedScopes(), now); err != nil {
				p.o.Pages.Failure(w, r, err)
				return
			}
		case need && slices.Contains(prompt, "none"):
			fail(fosite.ErrConsentRequired.WithHint("The user has not allowed this client the scopes it asks for."))
			return
		case need:
			params := cloneValues(form)
			params.Del(paramDecision)
			params.Del(paramCSRF)
			pages.Consent(w, r, ConsentPage{
				ClientID: c.ID, ClientName: c.Name, Username: u.Username, Scopes: ar.GetRequestedScopes(),
				Params: params, RedirectURI: redirectURI,
			})
			return
		}
	}

	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	aud := ar.GetRequestedAudience()
	if len(aud) == 0 {
		aud = ar.GetClient().GetAudience()
	}
	for _, a := range aud {
		ar.GrantAudience(a)
	}
	sess := &Session{
		Subject: u.ID, Username: u.Username, Roles: u.Roles,
		AuthTime: bs.AuthTime.UTC(), AMR: bs.AMR, SID: bs.ID, RequestedAt: requestedAt.UTC(),
	}
	pc := &pendingCode{}
	resp, err := p.fosite.NewAuthorizeResponse(withPendingCode(ctx, pc), ar, sess)
	if err != nil {
		fail(err)
		return
	}
	if err := p.store.writeCode(ctx, pc); err != nil {
		fail(fosite.ErrServerError.WithWrap(err))
		return
	}
	resp.AddParameter("iss", p.o.Issuer)
	p.fosite.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// authorizeForm reads the request's parameters: the query of a GET, the
// form body of a POST. A parameter given twice, or text no request can hold,
// is answered on the error page (status 400): which client it is for is
// not known yet.
func (p *Provider) authorizeForm(r *http.Request) (url.Values, int, string) {
	return browserForm(r, func(string) int { return maxParamLen })
}

// browserForm reads a browser request's parameters (the query of a GET,
// the form body of a POST), each at most maxLen(name) bytes of plain text,
// none given twice. A failure is a status and the error page's message.
func browserForm(r *http.Request, maxLen func(name string) int) (url.Values, int, string) {
	switch r.Method {
	case http.MethodGet:
		if err := r.ParseForm(); err != nil {
			return nil, http.StatusBadRequest, msgBadRequest
		}
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, http.StatusBadRequest, msgBadRequest
		}
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, http.StatusRequestEntityTooLarge, msgBadRequest
			}
			return nil, http.StatusBadRequest, msgBadRequest
		}
		if len(r.URL.RawQuery) > 0 {
			return nil, http.StatusBadRequest, msgBadRequest // one place for the parameters
		}
	default:
		return nil, http.StatusMethodNotAllowed, msgBadRequest
	}
	for k, v := range r.Form {
		if len(v) != 1 || !plainText(k, maxParamNameLen) || !plainText(v[0], maxLen(k)) {
			return nil, http.StatusBadRequest, msgBadRequest
		}
	}
	return r.Form, 0, ""
}

// authorizeClient finds the request's client and checks its redirect_uri,
// which is required and must be registered (matchRedirectURI). A failure is
// for the error page: its status and message.
func (p *Provider) authorizeClient(ctx context.Context, form url.Values) (storage.Client, string, int, string, error) {
	id, redirectURI := form.Get("client_id"), form.Get("redirect_uri")
	if id == "" || !clients.ValidID(id) {
		return storage.Client{}, "", http.StatusBadRequest, msgUnknown, nil
	}
	c, err := p.o.Store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, "", http.StatusBadRequest, msgUnknown, nil
	case err != nil:
		return storage.Client{}, "", 0, "", fmt.Errorf("oauth: authorize: client lookup: %w", err)
	case !matchRedirectURI(redirectURI, c.RedirectURIs):
		return storage.Client{}, "", http.StatusBadRequest, msgRedirectURI, nil
	}
	return c, redirectURI, 0, "", nil
}

// parsePrompt is the prompt parameter's values (OpenID Connect Core
// §3.1.2.1): none, login and consent; none alone.
func parsePrompt(v string) ([]string, error) {
	prompt := fosite.RemoveEmpty(strings.Split(v, " "))
	for _, p := range prompt {
		if p != "none" && p != "login" && p != "consent" {
			return nil, fosite.ErrInvalidRequest.WithHint("prompt may hold none, login and consent only.")
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return nil, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with another value.")
	}
	return prompt, nil
}

// parseMaxAge is max_age in seconds; -1 when absent.
func parseMaxAge(v string) (int64, error) {
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return 0, fosite.ErrInvalidRequest.WithHint("max_age must be a number of seconds.")
	}
	return n, nil
}

// toLogin sends the browser to the login page, which returns to this
// authorize request with a login marker: the sign-in it shows counts as
// fresh for prompt=login and max_age.
func (p *Provider) toLogin(w http.ResponseWriter, r *http.Request, pages Pages, clientID string, form url.Values, now time.Time) {
	q := cloneValues(form)
	q.Del(paramDecision)
	q.Del(paramCSRF)
	q.Set(paramLoginMarker, p.loginMarker(clientID, now))
	w.Header().Set("Location", pages.LoginURL(AuthorizePath+"?"+q.Encode()))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// loginMarker says, unforgeably, "the login page was shown at now for an
// authorize request of this client": a sign-in after it is fresh for that
// request. Its value is the Unix time and a MAC of it and the client.
func (p *Provider) loginMarker(clientID string, now time.Time) string {
	t := strconv.FormatInt(now.Unix(), 10)
	return t + "." + base64.RawURLEncoding.EncodeToString(p.markerMAC(t, clientID))
}

func (p *Provider) markerMAC(t, clientID string) []byte {
	m := hmac.New(sha256.New, p.markerKey)
	m.Write([]byte(t))
	m.Write([]byte{0})
	m.Write([]byte(clientID))
	return m.Sum(nil)[:16]
}

// checkLoginMarker returns the time of a valid marker for clientID, no
// older than loginMarkerMaxAge.
func (p *Provider) checkLoginMarker(v, clientID string, now time.Time) (time.Time, bool) {
	t, mac, ok := strings.Cut(v, ".")
	if !ok {
		return time.Time{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, p.markerMAC(t, clientID)) {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	at := time.Unix(sec, 0)
	if at.After(now) || now.Sub(at) > loginMarkerMaxAge {
		return time.Time{}, false
	}
	return at, true
}

// markerKeyFor derives the login marker's MAC key from AUTHD_SECRET.
func markerKeyFor(secret []byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "authd authorize login marker v1", 32)
	if err != nil {
		// Unreachable: HKDF-SHA256 refuses only outputs over 8160 bytes.
		panic("oauth: login marker key: " + err.Error())
	}
	return k
}

// needsConsent reports whether the user must be asked: the client was
// never allowed every scope requested, or prompt=consent asks again.
func (p *Provider) needsConsent(ctx context.Context, userID, clientID string, scopes []string, ask bool) (bool, error) {
	if ask {
		return true, nil
	}
	c, err := p.o.Store.GetConsent(ctx, userID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("oauth: get consent: %w", err)
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// saveConsent adds scopes to what the user allowed the client.
func (p *Provider) saveConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	var prev []string
	c, err := p.o.Store.GetConsent(ctx, userID, clientID)
	switch {
	case err == nil:
		prev = c.Scopes
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("oauth: get consent: %w", err)
	}
	all := slices.Clone(prev)
	for _, s := range scopes {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	if err := p.o.Store.SaveConsent(ctx, storage.Consent{UserID: userID, ClientID: clientID, Scopes: all, GrantedAt: now.UTC()}); err != nil {
		return fmt.Errorf("oauth: save consent: %w", err)
	}
	return nil
}

// redirectError sends an authorization error back to the client's
// redirect_uri (RFC 6749 §4.1.2.1) with error, error_description, state and
// iss (RFC 9207), always in the query. Server errors are logged and
// described without detail.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	desc := rfc.DescriptionField
	if rfc.HintField != "" {
		desc = rfc.HintField
	}
	if rfc.CodeField >= 500 || rfc.ErrorField == fosite.ErrServerError.ErrorField {
		if storage.Retryable(err) {
			rfc = fosite.ErrTemporarilyUnavailable
			p.log.WarnContext(r.Context(), "oauth: authorize: unavailable", "cause", err)
			desc = "The service is temporarily unavailable; retry shortly."
		} else {
			p.log.ErrorContext(r.Context(), "oauth: authorize failed", "error", rfc.ErrorField, "cause", rfc.Unwrap())
			desc = "The server could not complete the request."
		}
	}
	u, perr := url.Parse(redirectURI)
	if perr != nil { // unreachable: matchRedirectURI parsed it
		p.o.Pages.Error(w, r, http.StatusBadRequest, msgRedirectURI)
		return
	}
	q := u.Query()
	q.Set("error", rfc.ErrorField)
	if desc != "" {
		q.Set("error_description", desc)
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", p.o.Issuer)
	u.RawQuery = q.Encode()
	h := w.Header()
	h.Set("Location", u.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusSeeOther)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
