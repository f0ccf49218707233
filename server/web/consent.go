package web

import (
	"net/http"

	"github.com/authd/authd/templates"
)

// ConsentView is what the consent page shows: the authorize endpoint fills
// it for a client that is not first-party.
type ConsentView struct {
	Action      string // where the form posts; AuthorizePath when empty
	ClientID    string
	ClientName  string // the client's name; its id when empty
	Username    string // who is signed in
	Scopes      []string
	Hidden      []templates.Hidden // the authorize request's parameters, posted back with the decision
	RedirectURI string             // the (validated) redirect_uri the decision sends the browser to
}

// ScopeText says in plain words what scope lets a client do.
func ScopeText(scope string) string {
	switch scope {
	case "openid":
		return "Confirm who you are (your account's identifier)"
	case "profile":
		return "See your username"
	case "email":
		return "See your email address"
	case "offline_access":
		return "Keep access to your account when you are not using the application"
	}
	return "Use the permission “" + scope + "”"
}

// Consent renders the consent page: which client asks for what, and the
// buttons that submit decision=allow or decision=deny (read them back with
// ConsentDecision).
func (p *Pages) Consent(w http.ResponseWriter, r *http.Request, v ConsentView) {
	if v.Action == "" {
		v.Action = AuthorizePath
	}
	if v.ClientName == "" {
		v.ClientName = v.ClientID
	}
	words := make([]string, 0, len(v.Scopes))
	for _, s := range v.Scopes {
		words = append(words, ScopeText(s))
	}
	p.render(w, r, http.StatusOK, templates.PageConsent, templates.Consent{
		Base: p.base(w, r, purposeConsent), Action: v.Action, ClientID: v.ClientID, ClientName: v.ClientName,
		Username: v.Username, Scopes: words, Hidden: v.Hidden,
	}, true)
}

// ConsentDecision reads a consent form's POST: allow is whether the user
// chose decision=allow. ok is false when the form's CSRF token is missing
// or wrong (403) or the decision is neither allow nor deny (400); the
// error page has been written then.
func (p *Pages) ConsentDecision(w http.ResponseWriter, r *http.Request) (allow, ok bool) {
	if !p.postForm(w, r, purposeConsent) {
		return false, false
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		return true, true
	case "deny":
		return false, true
	}
	p.Error(w, r, http.StatusBadRequest, "Choose Allow or Deny.")
	return false, false
}
