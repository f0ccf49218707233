package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/templates"
)

// Sign-in through another identity provider (a connector). The login page
// offers each connector as a link ("Continue with <Name>") to
// ConnectorLoginPath; authd keeps the flow's state, nonce and PKCE verifier
// server-side (storage.UpstreamLogins, single-use, 10 minutes), bound to the
// browser by a cookie, and redirects to the provider. The provider sends
// the browser back to ConnectorCallbackPath, where authd takes the flow
// (once), checks the browser's cookie, lets the connector verify the answer
// and signs the person in as the local user linked to them (identity's
// Federation: created or linked as the connector's policy allows). An
// identity that must be linked by a local password gets the link page
// (LinkPath), whose state is kept the same way.

// Paths of the connector flow.
const (
	connectorsPrefix = "/connectors/"
	// LinkPath is the link page's form.
	LinkPath = LoginPath + "/link"
)

// ConnectorLoginPath starts a sign-in through the connector (the "Continue
// with" link; GET, with return_to in the query).
func ConnectorLoginPath(id string) string { return connectorsPrefix + id + "/login" }

// ConnectorCallbackPath is the connector's callback (the redirect URI
// registered at the provider, on the issuer).
func ConnectorCallbackPath(id string) string { return connectorsPrefix + id + "/callback" }

// Connector is an identity provider the login page offers, with what its
// sign-ins may do to local accounts.
type Connector struct {
	Connector connector.Connector
	Policy    identity.LinkPolicy
}

// Federation signs people in through connectors (identity.Federation).
type Federation interface {
	SignIn(ctx context.Context, up identity.Upstream, pol identity.LinkPolicy, m identity.Meta) (storage.User, error)
	Link(ctx context.Context, userID string, up identity.Upstream, m identity.Meta) (storage.User, error)
}

// upstreamTTL is how long a connector flow may take, at each stage.
const upstreamTTL = 10 * time.Minute

// amrFederated is the amr of a sign-in through a provider that does not say
// how the person authenticated.
const amrFederated = "fed"

// Messages of the connector flow.
const (
	msgUpstreamExpired = "This sign-in has expired, was already used or was started in another browser. Go back to the application and sign in again."
	msgUpstreamDown    = "%s could not be reached or answered with an error, so you were not signed in. Please try again in a moment."
	msgUpstreamBad     = "%s sent an answer that failed verification, so you were not signed in. Please try again, or sign in another way."
	msgUpstreamDenied  = "%s did not sign you in (%s). You can try again or sign in another way."
	msgAccountDisabled = "This account cannot sign in. Contact the administrator of this site."
	msgAlreadyLinked   = "This account is already linked to another %s account."
	msgLinkedElsewhere = "This %s account is already linked to another account here."
)

// flow is what an upstream login row holds (storage.UpstreamLogin.Data).
type flow struct {
	Stage    string `json:"stage"` // stageCallback or stageLink
	ReturnTo string `json:"return_to,omitempty"`
	// stageCallback: the State given to the connector (its State field is
	// the row's key, not kept).
	Nonce    string `json:"nonce,omitempty"`
	Verifier string `json:"verifier,omitempty"`
	// stageLink: who the provider said the person is, and how (its amr).
	Identity   *identity.Upstream `json:"identity,omitempty"`
	AMR        []string           `json:"amr,omitempty"`
	EmailTaken bool               `json:"email_taken,omitempty"`
}

const (
	stageCallback = "callback"
	stageLink     = "link"
)

// connectorButtons are the login page's "Continue with" forms.
func (p *Pages) connectorButtons(returnTo string) []templates.ConnectorButton {
	out := make([]templates.ConnectorButton, 0, len(p.cfg.Connectors))
	for _, c := range p.cfg.Connectors {
		out = append(out, templates.ConnectorButton{Name: c.Connector.Name(), URL: connectorLoginURL(c.Connector.ID(), returnTo)})
	}
	return out
}

// connectorLoginURL starts a sign-in through connector id that returns to
// returnTo.
func connectorLoginURL(id, returnTo string) string {
	if !ValidReturnTo(returnTo) {
		return ConnectorLoginPath(id)
	}
	return ConnectorLoginPath(id) + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

func (p *Pages) connector(id string) (Connector, bool) {
	for _, c := range p.cfg.Connectors {
		if c.Connector.ID() == id {
			return c, true
		}
	}
	return Connector{}, false
}

// servedConnector is connector for a route naming id: 404 when there is none.
func (p *Pages) servedConnector(w http.ResponseWriter, r *http.Request, id string) (Connector, bool) {
	c, ok := p.connector(id)
	if !ok {
		p.Error(w, r, http.StatusNotFound, "There is no such sign-in provider here.")
	}
	return c, ok
}

// ConnectorLogin serves GET ConnectorLoginPath(id): the "Continue with"
// link. It saves the flow and sends the browser to the provider. (A GET
// link, not a form: starting a flow changes nothing here; the callback is
// what the state and the browser binding protect.)
func (p *Pages) ConnectorLogin(w http.ResponseWriter, r *http.Request, id string) {
	c, ok := p.servedConnector(w, r, id)
	if !ok {
		return
	}
	returnTo := r.URL.Query().Get("return_to")
	if !ValidReturnTo(returnTo) {
		returnTo = ""
	}
	state, err := connector.NewState("") // the connector's configured redirect URL
	if err != nil {
		p.Failure(w, r, err)
		return
	}
	target, err := c.Connector.LoginURL(r.Context(), state)
	if err != nil {
		p.upstreamFailed(w, r, c, err)
		return
	}
	binding := p.bindBrowser(w, r)
	err = p.saveFlow(r.Context(), state.State, binding, id, flow{
		Stage: stageCallback, ReturnTo: returnTo, Nonce: state.Nonce, Verifier: state.PKCEVerifier,
	})
	if err != nil {
		p.Failure(w, r, err)
		return
	}
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// ConnectorCallback serves GET ConnectorCallbackPath(id): the provider's
// answer. The flow is taken (once) by the state parameter and must have
// been started in this browser for this connector.
func (p *Pages) ConnectorCallback(w http.ResponseWriter, r *http.Request, id string) {
	c, ok := p.servedConnector(w, r, id)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	f, err := p.takeFlow(r, state, id, stageCallback)
	if err != nil {
		p.flowFailed(w, r, err)
		return
	}
	upID, err := c.Connector.HandleCallback(r.Context(), connector.State{
		State: state, Nonce: f.Nonce, PKCEVerifier: f.Verifier, // the connector's configured redirect URL
	}, r)
	if err != nil {
		p.upstreamFailed(w, r, c, err)
		return
	}
	up := identity.Upstream{
		ConnectorID: id, Subject: upID.Subject, Email: upID.Email, EmailVerified: upID.EmailVerified,
		Name: upID.Name, PreferredUsername: upID.PreferredUsername,
	}
	amr := sessionAMR(nil, upID.AMR)
	u, err := p.cfg.Federation.SignIn(r.Context(), up, c.Policy, p.connectorMeta(r))
	var lr *identity.LinkRequiredError
	switch {
	case errors.As(err, &lr):
		p.startLink(w, r, c, flow{Stage: stageLink, ReturnTo: f.ReturnTo, Identity: &up, AMR: upID.AMR, EmailTaken: lr.EmailTaken}, "", "", http.StatusOK)
		return
	case errors.Is(err, identity.ErrInvalidCredentials):
		p.errorWith(w, r, http.StatusForbidden, "Account disabled", msgAccountDisabled)
		return
	case errors.Is(err, identity.ErrAlreadyLinked):
		// The account with the provider's verified email has another
		// identity of this provider linked.
		p.errorWith(w, r, http.StatusConflict, "Already linked", fmt.Sprintf(msgAlreadyLinked, c.Connector.Name()))
		return
	case err != nil:
		p.Failure(w, r, err)
		return
	}
	if err := p.startSession(r.Context(), w, r, u.ID, amr); err != nil {
		p.Failure(w, r, err)
		return
	}
	redirectAfterSignIn(w, f.ReturnTo)
}

// startLink saves f as a link flow and renders the link page with a fresh
// token (each token is good for one submission).
func (p *Pages) startLink(w http.ResponseWriter, r *http.Request, c Connector, f flow, username, msg string, status int) {
	token := newRandom()
	binding := p.bindBrowser(w, r)
	if err := p.saveFlow(r.Context(), token, binding, c.Connector.ID(), f); err != nil {
		p.Failure(w, r, err)
		return
	}
	data := templates.Link{
		Base: p.base(w, r, purposeLink), Action: LinkPath, Token: token, ReturnTo: f.ReturnTo,
		ConnectorName: c.Connector.Name(), Username: username, Error: msg, CancelURL: LoginURL(f.ReturnTo),
	}
	if f.EmailTaken {
		data.Email = f.Identity.Email
	}
	p.render(w, r, status, templates.PageLink, data, leaves(f.ReturnTo))
}

// Link serves POST LinkPath: the person proves a local account's password;
// the provider's identity is linked to that account and they are signed in.
// A wrong password shows the form again (with a new token); the lockout
// and throttling are the password login's.
func (p *Pages) Link(w http.ResponseWriter, r *http.Request) {
	if !p.postForm(w, r, purposeLink) {
		return
	}
	f, c, err := p.takeLinkFlow(r)
	if err != nil {
		p.flowFailed(w, r, err)
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if !printable(username, identity.MaxEmailLen) {
		username = ""
	}
	u, err := p.cfg.Identity.Authenticate(r.Context(), username, password, p.meta(r))
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		p.startLink(w, r, c, f, username, msgWrongCredentials, http.StatusBadRequest)
		return
	case err != nil:
		p.Failure(w, r, err)
		return
	}
	_, err = p.cfg.Federation.Link(r.Context(), u.ID, *f.Identity, p.connectorMeta(r))
	switch {
	case errors.Is(err, identity.ErrAlreadyLinked):
		p.errorWith(w, r, http.StatusConflict, "Already linked", fmt.Sprintf(msgAlreadyLinked, c.Connector.Name()))
		return
	case errors.Is(err, identity.ErrLinkedElsewhere):
		p.errorWith(w, r, http.StatusConflict, "Already linked", fmt.Sprintf(msgLinkedElsewhere, c.Connector.Name()))
		return
	case errors.Is(err, identity.ErrInvalidCredentials):
		p.errorWith(w, r, http.StatusForbidden, "Account disabled", msgAccountDisabled)
		return
	case err != nil:
		p.Failure(w, r, err)
		return
	}
	if err := p.startSession(r.Context(), w, r, u.ID, sessionAMR([]string{amrPassword}, f.AMR)); err != nil {
		p.Failure(w, r, err)
		return
	}
	redirectAfterSignIn(w, f.ReturnTo)
}

func (p *Pages) takeLinkFlow(r *http.Request) (flow, Connector, error) {
	token := r.PostForm.Get("link_token")
	row, f, err := p.take(r, token)
	if err != nil {
		return flow{}, Connector{}, err
	}
	c, ok := p.connector(row.ConnectorID)
	if !ok || f.Stage != stageLink || f.Identity == nil {
		return flow{}, Connector{}, errFlowGone
	}
	return f, c, nil
}

// errFlowGone: no usable flow (unknown, used, expired, another browser's,
// another connector's or stage's).
var errFlowGone = errors.New("web: connector flow unknown, used, expired or not this browser's")

// takeFlow takes the flow named by value for connector id at stage.
func (p *Pages) takeFlow(r *http.Request, value, id, stage string) (flow, error) {
	row, f, err := p.take(r, value)
	if err != nil {
		return flow{}, err
	}
	if row.ConnectorID != id || f.Stage != stage {
		return flow{}, errFlowGone
	}
	return f, nil
}

// take deletes and returns the flow named by value, when it was started
// in this browser.
func (p *Pages) take(r *http.Request, value string) (storage.UpstreamLogin, flow, error) {
	if value == "" || len(value) > 512 {
		return storage.UpstreamLogin{}, flow{}, errFlowGone
	}
	row, err := p.cfg.UpstreamLogins.TakeUpstreamLogin(r.Context(), hashHex(value), p.cfg.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return storage.UpstreamLogin{}, flow{}, errFlowGone
	} else if err != nil {
		return storage.UpstreamLogin{}, flow{}, err
	}
	c, cerr := r.Cookie(p.cookies.upstream)
	if cerr != nil || subtle.ConstantTimeCompare([]byte(hashHex(c.Value)), []byte(row.BindingHash)) != 1 {
		return storage.UpstreamLogin{}, flow{}, errFlowGone
	}
	var f flow
	if err := json.Unmarshal(row.Data, &f); err != nil {
		return storage.UpstreamLogin{}, flow{}, fmt.Errorf("web: connector flow unreadable: %w", err)
	}
	return row, f, nil
}

// saveFlow stores f under value's hash, bound to the browser's binding.
func (p *Pages) saveFlow(ctx context.Context, value, binding, connectorID string, f flow) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("web: encode connector flow: %w", err)
	}
	now := p.cfg.Now().UTC()
	return p.cfg.UpstreamLogins.CreateUpstreamLogin(ctx, storage.UpstreamLogin{
		IDHash: hashHex(value), BindingHash: hashHex(binding), ConnectorID: connectorID, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(upstreamTTL),
	})
}

// bindBrowser returns the browser's binding value (its upstream cookie,
// set now if it has none) and refreshes the cookie. One value serves every
// flow of the browser, so that two tabs do not undo each other.
func (p *Pages) bindBrowser(w http.ResponseWriter, r *http.Request) string {
	value := newRandom()
	if c, err := r.Cookie(p.cookies.upstream); err == nil && validRandom(c.Value) {
		value = c.Value
	}
	// SameSite=Lax: the provider's redirect back is a top-level GET, which
	// brings Lax cookies along.
	http.SetCookie(w, &http.Cookie{
		Name: p.cookies.upstream, Value: value, Path: "/", MaxAge: int(upstreamTTL / time.Second),
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	return value
}

// flowFailed answers a flow that could not be taken.
func (p *Pages) flowFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errFlowGone) {
		p.log.InfoContext(r.Context(), "web: connector flow refused", "path", r.URL.Path)
		p.errorWith(w, r, http.StatusBadRequest, "This sign-in has expired", msgUpstreamExpired)
		return
	}
	p.Failure(w, r, err)
}

// upstreamFailed answers a connector's error on the error page: what the
// person can do, never the provider's raw answer.
func (p *Pages) upstreamFailed(w http.ResponseWriter, r *http.Request, c Connector, err error) {
	name := c.Connector.Name()
	p.log.WarnContext(r.Context(), "web: sign-in through connector failed", "connector_id", c.Connector.ID(), "error", err)
	var denied *connector.DeniedError
	switch {
	case errors.As(err, &denied):
		p.errorWith(w, r, http.StatusBadRequest, "Sign-in cancelled", fmt.Sprintf(msgUpstreamDenied, name, denied.Code))
	case errors.Is(err, connector.ErrBadState):
		p.errorWith(w, r, http.StatusBadRequest, "This sign-in has expired", msgUpstreamExpired)
	case errors.Is(err, connector.ErrInvalidToken):
		p.errorWith(w, r, http.StatusBadGateway, "Sign-in failed", fmt.Sprintf(msgUpstreamBad, name))
	case r.Context().Err() != nil:
		p.Failure(w, r, r.Context().Err())
	default: // connector.ErrUpstream, and anything else the provider caused
		w.Header().Set("Retry-After", "5")
		p.errorWith(w, r, http.StatusBadGateway, name+" is not answering", fmt.Sprintf(msgUpstreamDown, name))
	}
}

// sessionAMR is the amr of a session started through a provider: the
// methods proved here (pwd after a local password), then the provider's
// own values (each connector.ValidAMR, at most 8: the connector's
// promise), once each; amrFederated alone when neither says anything.
func sessionAMR(local, provider []string) []string {
	out := slices.Clone(local)
	for _, v := range provider {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return []string{amrFederated}
	}
	return out
}

// connectorMeta is the events' view of r for a connector sign-in.
func (p *Pages) connectorMeta(r *http.Request) identity.Meta {
	return identity.Meta{IP: p.cfg.ClientIP(r), Via: identity.ViaConnector}
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
