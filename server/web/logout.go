package web

import (
	"errors"
	"net/http"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/templates"
)

// LogoutView is what the logout confirmation shows; the logout endpoint
// fills it.
type LogoutView struct {
	Action      string             // where the form posts
	Hidden      []templates.Hidden // the logout request's parameters, posted back
	RedirectURI string             // the (validated) post_logout_redirect_uri, if any
}

// LogoutConfirm renders the question "Sign out?" with a button that posts
// to v.Action (check the POST with LogoutForm). It names the signed-in user
// when the browser has a session.
func (p *Pages) LogoutConfirm(w http.ResponseWriter, r *http.Request, v LogoutView) {
	data := templates.Logout{Base: p.base(w, r, purposeLogout), Action: v.Action, Hidden: v.Hidden}
	switch _, u, err := p.Session(r); {
	case err == nil:
		data.Username = u.Username
	case !errors.Is(err, identity.ErrNoSession):
		p.Failure(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, templates.PageLogout, data, v.RedirectURI != "")
}

// LogoutForm checks a logout confirmation's POST (its CSRF token); false
// means the 403 page has been written.
func (p *Pages) LogoutForm(w http.ResponseWriter, r *http.Request) bool {
	return p.postForm(w, r, purposeLogout)
}

// LoggedOut renders the page after signing out, for a logout with nowhere
// to return to.
func (p *Pages) LoggedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, templates.PageLogout, templates.Logout{Base: p.base(w, r, ""), Done: true}, false)
}
