package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// The browser session cookie: HttpOnly, SameSite=Lax (it must come along
// when a client's link or redirect brings the browser to the authorize
// endpoint), Secure and __Host- prefixed when the issuer is https, Path=/.
// Its value is 32 random bytes (identity.Sessions); the store keeps its
// SHA-256 only.

// Cookie names; with an https issuer they carry the __Host- prefix, which
// browsers accept only from a secure origin, for Path=/, without Domain.
const (
	sessionCookie = "authd_session"
	csrfCookie    = "authd_csrf"
	// upstreamCookie binds connector flows to the browser that started them.
	upstreamCookie = "authd_upstream"
	hostPrefix     = "__Host-"
)

type cookieNames struct{ session, csrf, upstream string }

func newCookieNames(secure bool) cookieNames {
	if secure {
		return cookieNames{session: hostPrefix + sessionCookie, csrf: hostPrefix + csrfCookie, upstream: hostPrefix + upstreamCookie}
	}
	return cookieNames{session: sessionCookie, csrf: csrfCookie, upstream: upstreamCookie}
}

// SessionCookieName is the name of the session cookie.
func (p *Pages) SessionCookieName() string { return p.cookies.session }

// Session returns the browser's live session and its user;
// identity.ErrNoSession when it has none.
func (p *Pages) Session(r *http.Request) (storage.BrowserSession, storage.User, error) {
	c, err := r.Cookie(p.cookies.session)
	if err != nil {
		return storage.BrowserSession{}, storage.User{}, identity.ErrNoSession
	}
	return p.cfg.Sessions.CheckSession(r.Context(), c.Value, p.cfg.Now())
}

// startSession signs the browser in as userID: the session it had, if any,
// ends (a new sign-in never keeps a cookie value the browser held before),
// a new one starts and its cookie is set.
func (p *Pages) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string) error {
	if c, err := r.Cookie(p.cookies.session); err == nil {
		if _, err := p.cfg.Sessions.EndSession(ctx, c.Value); err != nil {
			return err
		}
	}
	value, _, err := p.cfg.Sessions.StartSession(ctx, userID, amr)
	if err != nil {
		return err
	}
	c := &http.Cookie{Name: p.cookies.session, Value: value, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode}
	if p.cfg.SessionTTL > 0 {
		c.MaxAge = int(p.cfg.SessionTTL / time.Second)
	}
	http.SetCookie(w, c)
	return nil
}

// EndSession ends the browser's session (logout) and clears its cookie;
// it reports whether there was one.
func (p *Pages) EndSession(w http.ResponseWriter, r *http.Request) (bool, error) {
	c, err := r.Cookie(p.cookies.session)
	if err != nil {
		return false, nil
	}
	http.SetCookie(w, &http.Cookie{Name: p.cookies.session, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	ended, err := p.cfg.Sessions.EndSession(r.Context(), c.Value)
	if err != nil {
		return false, err
	}
	return ended, nil
}

// LoginURL is the login page's address that returns to returnTo after a
// sign-in (an authorize request's path and query; see ValidReturnTo).
func LoginURL(returnTo string) string {
	if !ValidReturnTo(returnTo) {
		return LoginPath
	}
	return LoginPath + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

// signupURL is LoginURL's twin for the signup page.
func signupURL(returnTo string) string {
	if !ValidReturnTo(returnTo) {
		return SignupPath
	}
	return SignupPath + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

// redirectAfterSignIn sends the browser on after a sign-in: to returnTo when
// it is a valid authorize request, else to the login page, which says who
// is signed in. Never anywhere else (no open redirect).
func redirectAfterSignIn(w http.ResponseWriter, returnTo string) {
	target := LoginPath
	if ValidReturnTo(returnTo) {
		target = returnTo
	}
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// leaves reports whether a sign-in form returning to returnTo ends at a
// client: when it returns to an authorize request (see leavingCSP).
func leaves(returnTo string) bool { return ValidReturnTo(returnTo) }
