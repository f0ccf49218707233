package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The code scenario measures browser sign-ins: one round trip is an
// authorization request (PKCE S256, a state, scope openid), the login page
// and its form (in a fresh browser every time; with -code-sso only when the
// worker's browser has no session yet), the redirect to the client with the
// code, and the code exchange with the verifier. It counts completed round
// trips (op code), and times each request in its step: code:authorize
// (every request to the authorization endpoint), code:login (the login
// page and its form) and code:token (the exchange).
//
// It goes through net/http with a cookie jar per worker (the browser
// session), not the lean client: it needs cookies, redirects and forms.

// defaultRedirectURI is the redirect URI of the client authbench registers
// for the code scenario: nothing listens there, authbench only reads
// the Location header that points to it.
const defaultRedirectURI = "http://127.0.0.1/authbench/callback"

// maxHops bounds the redirects and pages of one round trip.
const maxHops = 8

var (
	loginFormRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE    = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// browser returns the worker's HTTP client for the code scenario: its own
// cookie jar, redirects not followed. Every round trip starts with an empty
// jar, unless -code-sso keeps the worker's session.
func (w *worker) browser() *http.Client {
	if w.web == nil || !w.b.cfg.codeSSO {
		jar, _ := cookiejar.New(nil) // never fails without options
		w.web = &http.Client{
			Transport: w.b.hc.Transport, Jar: jar, Timeout: w.b.cfg.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w.web
}

// authorize runs one round trip and returns the status of its last answer
// (the token endpoint's when it got that far) and whether it ended with the
// tokens it should.
func (w *worker) authorize(ctx context.Context) (int, bool, error) {
	hc := w.browser()
	verifier, state := randomToken(), randomToken()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {w.b.creds.web.id}, "redirect_uri": {w.b.creds.redirectURI},
		"scope": {"openid"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	next, err := url.Parse(w.b.meta.AuthorizationEndpoint + "?" + q.Encode())
	if err != nil {
		return 0, false, err
	}
	u := w.b.creds.users[w.id%len(w.b.creds.users)]
	var (
		method = http.MethodGet
		form   url.Values
		code   string
	)
	for hop := 0; code == ""; hop++ {
		if hop == maxHops {
			return 0, false, errors.New("authorize: too many redirects or pages")
		}
		step := opCodeLogin
		if next.Path == w.b.eps[opCode].path {
			step = opCodeAuthorize
		}
		began := time.Now()
		status, loc, body, err := w.browse(ctx, hc, method, next, form)
		w.recordStep(step, began, status, err)
		if err != nil {
			return 0, false, err
		}
		switch {
		case status/100 == 3 && loc != nil:
			if strings.HasPrefix(loc.String(), w.b.creds.redirectURI+"?") {
				rq := loc.Query()
				if rq.Get("state") != state || rq.Get("code") == "" {
					return status, false, nil // an error response, or not ours
				}
				code = rq.Get("code")
				continue
			}
			next, method, form = loc, http.MethodGet, nil
		case status == http.StatusOK && method == http.MethodGet && strings.Contains(body, `autocomplete="current-password"`):
			action, hidden, ok := loginForm(body)
			if !ok {
				return status, false, nil
			}
			if next, err = next.Parse(action); err != nil {
				return status, false, nil
			}
			hidden.Set("username", u.name)
			hidden.Set("password", u.password)
			method, form = http.MethodPost, hidden
		default:
			return status, false, nil
		}
	}
	tf := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.b.creds.redirectURI}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.b.meta.TokenEndpoint, strings.NewReader(tf.Encode()))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", w.b.creds.web.basic)
	began := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		w.recordStep(opCodeToken, began, 0, err)
		return 0, false, err
	}
	defer resp.Body.Close()
	defer func() { w.recordStep(opCodeToken, began, resp.StatusCode, nil) }()
	var tr struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&tr)
	return resp.StatusCode, resp.StatusCode == http.StatusOK && err == nil && tr.AccessToken != "" && tr.IDToken != "", nil
}

// recordStep records one request of a round trip in its step's figures.
func (w *worker) recordStep(o op, began time.Time, status int, err error) {
	st := w.stats[o]
	st.hist.record(time.Since(began))
	if err != nil || status <= 0 || status >= len(st.status) {
		st.status[0]++
		return
	}
	st.status[status]++
}

// browse sends one browser request and returns its status, its Location
// resolved against u, and its body.
func (w *worker) browse(ctx context.Context, hc *http.Client, method string, u *url.URL, form url.Values) (int, *url.URL, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "authbench")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, "", err
	}
	var loc *url.URL
	if l := resp.Header.Get("Location"); l != "" {
		if loc, err = u.Parse(l); err != nil {
			return 0, nil, "", fmt.Errorf("authorize: Location %q: %w", l, err)
		}
	}
	return resp.StatusCode, loc, string(b), nil
}

// loginForm reads a login page's form: its action and hidden fields (the
// CSRF token, where to return).
func loginForm(page string) (string, url.Values, bool) {
	m := loginFormRE.FindStringSubmatchIndex(page)
	if m == nil {
		return "", nil, false
	}
	rest := page[m[1]:]
	if end := strings.Index(rest, "</form>"); end >= 0 {
		rest = rest[:end]
	}
	vals := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(rest, -1) {
		vals.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(page[m[2]:m[3]]), vals, true
}

// randomToken is 256 random bits, base64url: a PKCE verifier or a state.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
