package server

import (
	"net/http"
	"slices"

	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/templates"
)

// AuthorizePages adapts the browser pages to what the authorize endpoint
// shows (oauth.Pages): cmd/authd hands the result to the provider.
func AuthorizePages(p *web.Pages) oauth.Pages { return authorizePages{p} }

type authorizePages struct{ *web.Pages }

// Consent renders the consent page; the authorize request's parameters go
// into hidden fields, in a stable order.
func (a authorizePages) Consent(w http.ResponseWriter, r *http.Request, c oauth.ConsentPage) {
	names := make([]string, 0, len(c.Params))
	for k := range c.Params {
		names = append(names, k)
	}
	slices.Sort(names)
	hidden := make([]templates.Hidden, 0, len(names))
	for _, k := range names {
		hidden = append(hidden, templates.Hidden{Name: k, Value: c.Params.Get(k)})
	}
	a.Pages.Consent(w, r, web.ConsentView{
		ClientID: c.ClientID, ClientName: c.ClientName, Username: c.Username, Scopes: c.Scopes,
		Hidden: hidden, RedirectURI: c.RedirectURI,
	})
}

// LoginURL is the login page that returns to returnTo.
func (a authorizePages) LoginURL(returnTo string) string { return web.LoginURL(returnTo) }
