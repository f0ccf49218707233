// Package web is the browser side of authd: the login, signup, consent and
// logout pages rendered from templates, their CSRF tokens, and the browser
// session cookie. Each page flow has its file; the authorize endpoint
// (server/oauth, composed later) calls the renderers exported here.
//
// Every page carries a strict Content-Security-Policy (no script at all,
// styles only from authd's own stylesheet, forms only to authd), is never
// framed or cached, and sends no Referer.
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/templates"
)

// Identity is the account logic the pages call (identity.Service).
type Identity interface {
	Authenticate(ctx context.Context, login, password string, m identity.Meta) (storage.User, error)
	CreateUser(ctx context.Context, nu identity.NewUser, m identity.Meta) (storage.User, error)
	SignupProblems(username, email, password string) []*identity.ValidationError
}

// Sessions starts, checks and ends browser sessions (identity.Sessions).
type Sessions interface {
	StartSession(ctx context.Context, userID string, amr []string) (string, storage.BrowserSession, error)
	CheckSession(ctx context.Context, value string, now time.Time) (storage.BrowserSession, storage.User, error)
	EndSession(ctx context.Context, value string) (bool, error)
}

// Users finds accounts (a signup's conflict names the field taken).
type Users interface {
	GetUserByLogin(ctx context.Context, login string) (storage.User, error)
}

// Config is what the pages need; cmd/authd fills it through server.
type Config struct {
	Issuer    string // an https issuer makes the cookies Secure (and __Host- prefixed)
	Secrets   [][]byte
	Templates *templates.Set
	Identity  Identity
	Sessions  Sessions
	Users     Users
	// SessionTTL is the session cookie's Max-Age (the session's absolute
	// lifetime); 0 makes it a cookie that ends with the browser.
	SessionTTL time.Duration
	ClientIP   func(*http.Request) string // nil: the connection's peer address
	SiteName   string                     // shown above each page's heading; "authd" when empty
	Logger     *slog.Logger
	Now        func() time.Time
	// StoreUnavailable, when set, hears of each request answered 503
	// because the store could not serve (for a metric).
	StoreUnavailable func(error)

	// Connectors are the other identity providers the login page offers, in
	// order; Federation and UpstreamLogins are required when there is one.
	Connectors     []Connector
	Federation     Federation
	UpstreamLogins storage.UpstreamLogins
}

// Pages serves the browser pages.
type Pages struct {
	cfg     Config
	log     *slog.Logger
	csrf    *csrf
	cookies cookieNames
	secure  bool
	css     string // the stylesheet's URL, with its content hash
}

// New returns the pages.
func New(cfg Config) (*Pages, error) {
	if cfg.Templates == nil || cfg.Identity == nil || cfg.Sessions == nil || cfg.Users == nil || len(cfg.Secrets) == 0 || cfg.Issuer == "" {
		return nil, errors.New("web: missing dependency")
	}
	if len(cfg.Connectors) > 0 && (cfg.Federation == nil || cfg.UpstreamLogins == nil) {
		return nil, errors.New("web: connectors need Federation and UpstreamLogins")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("web: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "authd"
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	c, err := newCSRF(cfg.Secrets)
	if err != nil {
		return nil, err
	}
	secure := u.Scheme == "https"
	_, hash := cfg.Templates.Stylesheet()
	return &Pages{cfg: cfg, log: cfg.Logger, csrf: c, cookies: newCookieNames(secure), secure: secure,
		css: StylesheetPath + "?v=" + hash}, nil
}

// Paths of the pages.
const (
	LoginPath      = "/login"
	SignupPath     = "/signup"
	StylesheetPath = "/assets/authd.css"
	// AuthorizePath is the only place a sign-in returns to.
	AuthorizePath = "/oauth2/authorize"
)

// pageCSP is the Content-Security-Policy of a page whose forms stay on
// authd; leavingCSP that of a page whose form's submission ends at a
// client (a sign-in or consent that returns to an authorize request, a
// logout confirmation with a post_logout_redirect_uri).
//
// A page that leaves has no form-action: browsers apply form-action to
// every redirect that follows a submission, and the chain goes on past the
// client's redirect URI, wherever the client sends the browser next (its
// callback redirecting to its app on another origin, or authd's own
// connector callback going on to the client authd signs the person in
// to), which authd cannot know. Such a page still runs no script, loads
// nothing but authd's stylesheet, is never framed, and html/template
// escapes everything it shows, so no form can be injected into it.
const (
	leavingCSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
	pageCSP    = leavingCSP + "; form-action 'self'"
)

// setPageHeaders marks an answer as a page: HTML that no one frames,
// caches or learns the address of, and that runs no script. leaves says
// that the page's form ends at a client (see leavingCSP).
func setPageHeaders(h http.Header, leaves bool) {
	csp := pageCSP
	if leaves {
		csp = leavingCSP
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// base is the data every page gets; purpose names the page's form (its
// CSRF token's purpose), "" for a page without one.
func (p *Pages) base(w http.ResponseWriter, r *http.Request, purpose string) templates.Base {
	b := templates.Base{SiteName: p.cfg.SiteName, Stylesheet: p.css}
	if purpose != "" {
		b.CSRFToken = p.csrf.token(p.csrfCookie(w, r), purpose)
	}
	return b
}

// render writes page with data and status; leaves says that the page's
// form ends at a client (see leavingCSP). A template that fails (an
// operator's copy the start-up check could not catch) is logged and
// answered with a bare 500.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, page templates.Page, data any, leaves bool) {
	var buf bytes.Buffer
	if err := p.cfg.Templates.Execute(&buf, page, data); err != nil {
		p.log.ErrorContext(r.Context(), "web: render page", "page", string(page), "error", err)
		setPageHeaders(w.Header(), false)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<!doctype html><title>Error</title><p>The page could not be shown.</p>\n"))
		return
	}
	setPageHeaders(w.Header(), leaves)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorHeading is the error page's heading for status.
func errorHeading(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "Something is wrong with this request"
	case http.StatusForbidden:
		return "This form has expired"
	case http.StatusNotFound:
		return "Page not found"
	case http.StatusTooManyRequests:
		return "Too many attempts"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	case http.StatusInternalServerError:
		return "Something went wrong"
	case http.StatusBadGateway:
		return "Sign-in provider unavailable"
	}
	return http.StatusText(status)
}

// Error renders the error page with status and a message for the person
// reading it (never an internal detail). 429 and 503 say to retry.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, message string) {
	p.errorWith(w, r, status, errorHeading(status), message)
}

// errorWith is Error with its own heading. 429, 502 and 503 say to retry.
func (p *Pages) errorWith(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	retry := status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusBadGateway
	if retry && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	p.render(w, r, status, templates.PageError, templates.Error{
		Base: p.base(w, r, ""), Heading: heading, Message: message, RetryAfter: retry,
	}, false)
}

// Messages of the error pages.
const (
	msgCSRF        = "This form has expired or did not come from this site. Go back, reload the page and try again."
	msgUnavailable = "The service cannot sign you in right now. Please try again in a moment."
	msgInternal    = "The server could not complete your request."
	msgTooMany     = "There have been too many attempts from your network. Please wait a minute and try again."
	msgBadForm     = "The form could not be read. Go back, reload the page and try again."
)

// Failure answers an error of the store or of identity that is not the
// user's on the error page: 503 with Retry-After for an outage or a busy
// account (identity.Unavailable), else 500 (logged).
func (p *Pages) Failure(w http.ResponseWriter, r *http.Request, err error) {
	if identity.Unavailable(err) {
		if storage.Retryable(err) && p.cfg.StoreUnavailable != nil {
			p.cfg.StoreUnavailable(err)
		}
		p.log.WarnContext(r.Context(), "web: unavailable", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "1")
		p.Error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	if r.Context().Err() == nil {
		p.log.ErrorContext(r.Context(), "web: request failed", "path", r.URL.Path, "error", err)
	}
	p.Error(w, r, http.StatusInternalServerError, msgInternal)
}

// TooManyRequests answers 429 with the error page and Retry-After, for a
// rate limit in front of the forms (server applies the token endpoint's).
func (p *Pages) TooManyRequests(w http.ResponseWriter, r *http.Request, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)+1))
	p.Error(w, r, http.StatusTooManyRequests, msgTooMany)
}

// postForm parses a form POST and checks its CSRF token for purpose; it
// answers the error page itself and returns false when either fails.
func (p *Pages) postForm(w http.ResponseWriter, r *http.Request, purpose string) bool {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.Error(w, r, http.StatusRequestEntityTooLarge, msgBadForm)
		} else {
			p.Error(w, r, http.StatusBadRequest, msgBadForm)
		}
		return false
	}
	for _, vs := range r.PostForm {
		if len(vs) > 1 {
			p.Error(w, r, http.StatusBadRequest, msgBadForm)
			return false
		}
	}
	cookie, _ := r.Cookie(p.cookies.csrf)
	if cookie == nil || !p.csrf.check(cookie.Value, purpose, r.PostForm.Get(csrfField)) {
		p.log.InfoContext(r.Context(), "web: csrf check failed", "path", r.URL.Path, "cookie", cookie != nil)
		p.Error(w, r, http.StatusForbidden, msgCSRF)
		return false
	}
	return true
}

// meta is the events' view of r.
func (p *Pages) meta(r *http.Request) identity.Meta {
	return identity.Meta{IP: p.cfg.ClientIP(r), Via: identity.ViaForm}
}
