package server

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/templates"
)

// AuthorizePages adapts the browser pages to what the authorize and logout
// endpoints show (oauth.Pages): cmd/authd hands the result to the provider.
func AuthorizePages(p *web.Pages) oauth.Pages { return authorizePages{p} }

type authorizePages struct{ *web.Pages }

// Consent renders the consent page; the authorize request's parameters go
// into hidden fields, in a stable order.
func (a authorizePages) Consent(w http.ResponseWriter, r *http.Request, c oauth.ConsentPage) {
	a.Pages.Consent(w, r, web.ConsentView{
		ClientID: c.ClientID, ClientName: c.ClientName, Username: c.Username, Scopes: c.Scopes,
		Hidden: hiddenFields(c.Params), RedirectURI: c.RedirectURI,
	})
}

// LogoutConfirm renders the logout confirmation; the logout request's
// parameters go into hidden fields, in a stable order.
func (a authorizePages) LogoutConfirm(w http.ResponseWriter, r *http.Request, l oauth.LogoutPage) {
	a.Pages.LogoutConfirm(w, r, web.LogoutView{Action: l.Action, Hidden: hiddenFields(l.Params), RedirectURI: l.RedirectURI})
}

// hiddenFields are params as hidden form fields, sorted by name.
func hiddenFields(params url.Values) []templates.Hidden {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	hidden := make([]templates.Hidden, 0, len(names))
	for _, k := range names {
		hidden = append(hidden, templates.Hidden{Name: k, Value: params.Get(k)})
	}
	return hidden
}

// LoginURL is the login page that returns to returnTo.
func (a authorizePages) LoginURL(returnTo string) string { return web.LoginURL(returnTo) }
