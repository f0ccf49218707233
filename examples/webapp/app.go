package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	callbackPath = "/callback"
	// loginCookie holds one authorization request's state, nonce and PKCE
	// verifier between /login and /callback.
	loginCookie = "webapp_login"
	// sessionCookie names the signed-in session kept in memory.
	sessionCookie = "webapp_session"
	// loginTTL is how long a person has on authd's pages to come back.
	loginTTL = 10 * time.Minute
	// sessionTTL is how long this app remembers a sign-in.
	sessionTTL = 8 * time.Hour
	// maxOrdersAnswer is the most of the orders example's answer shown.
	maxOrdersAnswer = 64 << 10
)

//go:embed templates
var templateFS embed.FS

// appConfig is what the app is built from; run fills it from discovery.
type appConfig struct {
	OAuth     oauth2.Config
	Verifier  *oidc.IDTokenVerifier
	Issuer    string // when set, the iss parameter of a callback must equal it (RFC 9207)
	Audience  string // asked with the audience parameter; empty: none asked
	OrdersURL string
	// UserInfo asks authd's userinfo endpoint (the id_token carries no
	// username); *oidc.Provider is one.
	UserInfo userInfoer
	HTTP     *http.Client // for the token endpoint and the orders example
	Log      *slog.Logger
	Now      func() time.Time
}

// userInfoer is authd's userinfo endpoint (OpenID Connect Core §5.3).
type userInfoer interface {
	UserInfo(ctx context.Context, ts oauth2.TokenSource) (*oidc.UserInfo, error)
}

type app struct {
	cfg      appConfig
	secure   bool // cookies only over https: the redirect URL is https
	page     *template.Template
	css      []byte
	sessions *sessionStore
}

func newApp(cfg appConfig) (*app, error) {
	page, err := template.ParseFS(templateFS, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("webapp: templates: %w", err)
	}
	css, err := templateFS.ReadFile("templates/style.css")
	if err != nil {
		return nil, fmt.Errorf("webapp: templates: %w", err)
	}
	u, err := url.Parse(cfg.OAuth.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("webapp: redirect URL: %w", err)
	}
	return &app{cfg: cfg, secure: u.Scheme == "https", page: page, css: css, sessions: newSessionStore(cfg.Now)}, nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET "+callbackPath, a.callback)
	mux.HandleFunc("POST /orders", a.orders)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /style.css", a.style)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return headers(mux)
}

// headers sets the security headers of every answer: no framing, no
// outside assets, forms only to this app, nothing cached.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// view is what the page shows.
type view struct {
	SignedIn     bool
	Username     string
	Subject      string
	CSRFToken    string
	Error        string
	OrdersStatus int
	OrdersAnswer string
}

func (a *app) render(w http.ResponseWriter, r *http.Request, status int, v view) {
	var buf bytes.Buffer
	if err := a.page.Execute(&buf, v); err != nil {
		a.cfg.Log.ErrorContext(r.Context(), "webapp: render", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *app) style(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(a.css)
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(r)
	if !ok {
		a.render(w, r, http.StatusOK, view{})
		return
	}
	a.render(w, r, http.StatusOK, s.view())
}

// login starts the authorization code flow: a fresh state, nonce and PKCE
// verifier, kept in a short-lived HttpOnly cookie (SameSite=Lax, so that it
// comes back with authd's top-level redirect to the callback).
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	req := pendingLogin{state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: req.encode(), Path: callbackPath, MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(req.verifier), oidc.Nonce(req.nonce)}
	if a.cfg.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", a.cfg.Audience))
	}
	http.Redirect(w, r, a.cfg.OAuth.AuthCodeURL(req.state, opts...), http.StatusSeeOther)
}

// callback finishes the flow: the state must be the cookie's, the code is
// exchanged with the cookie's verifier, and the id_token must verify
// (signature by authd's JWKS, iss, aud, exp) and carry the cookie's nonce
// and the access token's at_hash.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := r.Cookie(loginCookie)
	// The login cookie is single use, whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: callbackPath, MaxAge: -1, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		a.render(w, r, http.StatusBadRequest, view{Error: "This sign-in was not started here, or took too long. Please sign in again."})
		return
	}
	req, ok := decodePendingLogin(c.Value)
	q := r.URL.Query()
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.state)) != 1 {
		a.render(w, r, http.StatusBadRequest, view{Error: "This sign-in was not started here, or took too long. Please sign in again."})
		return
	}
	if iss := q.Get("iss"); a.cfg.Issuer != "" && iss != "" && iss != a.cfg.Issuer {
		a.render(w, r, http.StatusBadRequest, view{Error: "The answer came from another server than the one this app trusts."})
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "authd did not sign you in (" + e + ")."
		if e == "access_denied" {
			msg = "You did not allow this app to use your account."
		}
		a.render(w, r, http.StatusOK, view{Error: msg})
		return
	}
	code := q.Get("code")
	if code == "" {
		a.render(w, r, http.StatusBadRequest, view{Error: "The answer carries no authorization code."})
		return
	}
	tok, err := a.cfg.OAuth.Exchange(a.clientContext(ctx), code, oauth2.VerifierOption(req.verifier))
	if err != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: code exchange failed", "error", exchangeError(err))
		a.render(w, r, http.StatusBadGateway, view{Error: "authd refused to complete the sign-in. Please sign in again."})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		a.render(w, r, http.StatusBadGateway, view{Error: "authd's answer carries no id_token."})
		return
	}
	idt, err := a.cfg.Verifier.Verify(a.clientContext(ctx), raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(req.nonce)) != 1 {
		err = errors.New("nonce mismatch")
	}
	if err == nil {
		err = idt.VerifyAccessToken(tok.AccessToken)
	}
	if err != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: id_token refused", "error", err)
		a.render(w, r, http.StatusBadGateway, view{Error: "authd's id_token did not verify."})
		return
	}
	id := a.sessions.create(&session{token: tok, subject: idt.Subject, username: a.username(ctx, tok, idt.Subject), csrf: randomString()})
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
	a.cfg.Log.InfoContext(ctx, "webapp: signed in", "sub", idt.Subject)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// username is the preferred_username that userinfo answers for the access
// token, when its sub is the id_token's (OpenID Connect Core §5.3.2); ""
// otherwise (the page then shows the sub).
func (a *app) username(ctx context.Context, tok *oauth2.Token, sub string) string {
	if a.cfg.UserInfo == nil {
		return ""
	}
	ui, err := a.cfg.UserInfo.UserInfo(a.clientContext(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: userinfo failed", "error", err)
		return ""
	}
	var claims struct {
		PreferredUsername string `json:"preferred_username"`
	}
	if ui.Subject != sub || ui.Claims(&claims) != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: userinfo answered for another subject or unreadable claims")
		return ""
	}
	return claims.PreferredUsername
}

// exchangeError is err without the token endpoint's response body.
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return "token endpoint: " + re.ErrorCode
		}
		if re.Response != nil {
			return "token endpoint: " + re.Response.Status
		}
	}
	return err.Error()
}

// orders places an order with the orders example on the user's behalf,
// with the access token (refreshed when it expired), then shows the list
// it answers.
func (a *app) orders(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, ok := a.checkedSession(w, r)
	if !ok {
		return
	}
	tok, err := a.cfg.OAuth.TokenSource(a.clientContext(ctx), s.currentToken()).Token()
	if err != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: token refresh failed", "error", exchangeError(err))
		a.sessions.delete(s.id)
		a.render(w, r, http.StatusOK, view{Error: "Your sign-in has expired. Please sign in again."})
		return
	}
	s.setToken(tok)
	v := s.view()
	status, _, err := a.callOrders(ctx, http.MethodPost, `{"item":"book","quantity":1}`, tok.AccessToken)
	if err == nil && status == http.StatusCreated {
		status, v.OrdersAnswer, err = a.callOrders(ctx, http.MethodGet, "", tok.AccessToken)
	}
	if err != nil {
		a.cfg.Log.WarnContext(ctx, "webapp: orders unreachable", "error", err)
		v.Error = "The orders service did not answer."
		a.render(w, r, http.StatusBadGateway, v)
		return
	}
	v.OrdersStatus = status
	a.render(w, r, http.StatusOK, v)
}

// callOrders sends one request to the orders example's /orders and returns
// its status and body (indented when JSON).
func (a *app) callOrders(ctx context.Context, method, body, accessToken string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.cfg.OrdersURL, "/")+"/orders", strings.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("orders request: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := a.cfg.HTTP.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("orders request: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxOrdersAnswer))
	if err != nil {
		return 0, "", fmt.Errorf("orders answer: %w", err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		return resp.StatusCode, pretty.String(), nil
	}
	return resp.StatusCode, string(b), nil
}

// logout forgets the session and its tokens.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := a.checkedSession(w, r)
	if !ok {
		return
	}
	a.sessions.delete(s.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkedSession is the session of a form's POST, its CSRF token checked;
// ok false when an answer has been written instead.
func (a *app) checkedSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, ok := a.session(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(s.csrf)) != 1 {
		a.render(w, r, http.StatusForbidden, view{Error: "This form has expired. Please try again from the home page."})
		return nil, false
	}
	return s, true
}

func (a *app) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	return a.sessions.get(c.Value)
}

// clientContext makes x/oauth2 and go-oidc use the app's HTTP client.
func (a *app) clientContext(ctx context.Context) context.Context {
	if a.cfg.HTTP == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, a.cfg.HTTP)
}

// pendingLogin is one authorization request's secrets, kept by the browser
// in the login cookie until the callback.
type pendingLogin struct {
	state, nonce, verifier string
}

func (p pendingLogin) encode() string { return p.state + "." + p.nonce + "." + p.verifier }

func decodePendingLogin(v string) (pendingLogin, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return pendingLogin{}, false
	}
	return pendingLogin{state: parts[0], nonce: parts[1], verifier: parts[2]}, true
}

// randomString is 256 random bits, base64url.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
