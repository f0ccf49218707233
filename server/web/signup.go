package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/templates"
)

// fieldLabel names a signup form's input in its messages; "" for none.
func fieldLabel(field string) string {
	switch field {
	case identity.FieldUsername:
		return "Username"
	case identity.FieldEmail:
		return "Email address"
	case identity.FieldPassword:
		return "Password"
	}
	return ""
}

// SignupForm serves GET /signup.
func (p *Pages) SignupForm(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.Query().Get("return_to")
	if !ValidReturnTo(returnTo) {
		returnTo = ""
	}
	p.renderSignup(w, r, http.StatusOK, templates.Signup{ReturnTo: returnTo})
}

func (p *Pages) renderSignup(w http.ResponseWriter, r *http.Request, status int, v templates.Signup) {
	v.Base = p.base(w, r, purposeSignup)
	v.Action = SignupPath
	v.LoginURL = LoginURL(v.ReturnTo)
	p.render(w, r, status, templates.PageSignup, v, leaves(v.ReturnTo))
}

// Signup serves POST /signup (rate-limited like Login): identity's CreateUser (the JSON signup's
// rules; every field's problem shown beside it), then a browser session
// for the new user and a 303 like a sign-in's.
func (p *Pages) Signup(w http.ResponseWriter, r *http.Request) {
	if !p.postForm(w, r, purposeSignup) {
		return
	}
	v := templates.Signup{
		ReturnTo: r.PostForm.Get("return_to"),
		Username: r.PostForm.Get("username"),
		Email:    r.PostForm.Get("email"),
	}
	password := r.PostForm.Get("password")
	if !ValidReturnTo(v.ReturnTo) {
		v.ReturnTo = ""
	}
	if problems := p.cfg.Identity.SignupProblems(v.Username, v.Email, password); len(problems) > 0 {
		for _, pr := range problems {
			v.Errors = append(v.Errors, fieldError(pr))
		}
		p.renderSignup(w, r, http.StatusBadRequest, v)
		return
	}
	u, err := p.cfg.Identity.CreateUser(r.Context(), identity.NewUser{Username: v.Username, Email: v.Email, Password: password}, p.meta(r))
	var ve *identity.ValidationError
	switch {
	case errors.As(err, &ve):
		v.Errors = []templates.FieldError{fieldError(ve)}
		p.renderSignup(w, r, http.StatusBadRequest, v)
		return
	case errors.Is(err, storage.ErrConflict):
		// As the JSON signup answers: which of the two is taken.
		fe := templates.FieldError{Field: identity.FieldEmail, Message: "An account with this email address already exists."}
		if _, gerr := p.cfg.Users.GetUserByLogin(r.Context(), identity.NormalizeUsername(v.Username)); gerr == nil {
			fe = templates.FieldError{Field: identity.FieldUsername, Message: "This username is already taken."}
		}
		v.Errors = []templates.FieldError{fe}
		p.renderSignup(w, r, http.StatusConflict, v)
		return
	case err != nil:
		p.Failure(w, r, err)
		return
	}
	if err := p.startSession(r.Context(), w, r, u.ID, []string{amrPassword}); err != nil {
		p.Failure(w, r, err)
		return
	}
	redirectAfterSignIn(w, v.ReturnTo)
}

// fieldError is a validation problem as the form shows it: "Username must
// be 3 to 64 characters."
func fieldError(ve *identity.ValidationError) templates.FieldError {
	label := fieldLabel(ve.Field)
	if label == "" {
		return templates.FieldError{Message: "The account could not be created: " + ve.Reason + "."}
	}
	msg := label + " " + ve.Reason
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return templates.FieldError{Field: ve.Field, Message: msg}
}
