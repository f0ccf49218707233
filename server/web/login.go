package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/templates"
)

// msgWrongCredentials is the one answer to every failed sign-in: wrong
// password, unknown user, locked or disabled account alike.
const msgWrongCredentials = "Wrong username or password."

// amrPassword is the amr of a password sign-in (RFC 8176).
const amrPassword = "pwd"

// switchPath is the login form for a browser already signed in.
const switchPath = LoginPath + "?switch=1"

// LoginForm serves GET /login: the form, or, for a browser signed in and
// with nowhere to return to, the page that says who is signed in (and
// links to the form, ?switch=1, to sign in as someone else).
func (p *Pages) LoginForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnTo := q.Get("return_to")
	if !ValidReturnTo(returnTo) {
		returnTo = ""
	}
	if returnTo == "" && !q.Has("switch") {
		if _, u, err := p.Session(r); err == nil {
			p.render(w, r, http.StatusOK, templates.PageSignedIn, templates.SignedIn{Base: p.base(w, r, ""), Username: u.Username, SwitchURL: switchPath}, false)
			return
		} else if !errors.Is(err, identity.ErrNoSession) {
			p.Failure(w, r, err)
			return
		}
	}
	p.renderLogin(w, r, http.StatusOK, returnTo, loginHint(returnTo), "")
}

// loginHint is the authorize request's login_hint (OIDC Core 3.1.2.1), to
// pre-fill the username: only when it could be a username or an email.
func loginHint(returnTo string) string {
	_, query, ok := strings.Cut(returnTo, "?")
	if !ok {
		return ""
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	hint := q.Get("login_hint")
	if hint == "" || !printable(hint, maxLoginHint) {
		return ""
	}
	return hint
}

// maxLoginHint is the longest login_hint used: an email's length.
const maxLoginHint = 254

func (p *Pages) renderLogin(w http.ResponseWriter, r *http.Request, status int, returnTo, username, msg string) {
	p.render(w, r, status, templates.PageLogin, templates.Login{
		Base: p.base(w, r, purposeLogin), Action: LoginPath, ReturnTo: returnTo, Username: username, Error: msg,
		SignupURL: signupURL(returnTo), Connectors: p.connectorButtons(returnTo),
	}, leaves(returnTo))
}

// Login serves POST /login (server puts the token endpoint's rate limit
// in front): identity's Authenticate (the lockout and
// throttling of the password grant, events with via=form), then a new
// browser session and a 303 to return_to. Every failed sign-in gets the
// same page: the form again, the username kept, one message.
func (p *Pages) Login(w http.ResponseWriter, r *http.Request) {
	if !p.postForm(w, r, purposeLogin) {
		return
	}
	returnTo := r.PostForm.Get("return_to")
	if !ValidReturnTo(returnTo) {
		returnTo = ""
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if !printable(username, identity.MaxEmailLen) {
		username = "" // looked up as no one, at the cost of anyone
	}
	u, err := p.cfg.Identity.Authenticate(r.Context(), username, password, p.meta(r))
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		p.renderLogin(w, r, http.StatusBadRequest, returnTo, username, msgWrongCredentials)
		return
	case err != nil:
		p.Failure(w, r, err)
		return
	}
	if err := p.startSession(r.Context(), w, r, u.ID, []string{amrPassword}); err != nil {
		p.Failure(w, r, err)
		return
	}
	redirectAfterSignIn(w, returnTo)
}

// printable reports whether s is at most max bytes of UTF-8 text without
// control characters.
func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0xfffd {
			return false
		}
	}
	return true
}
