package main

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// devClientDoc returns the dev client as `authd clients list` prints it.
func devClientDoc(t *testing.T, vars map[string]string) map[string]any {
	t.Helper()
	var list []map[string]any
	out := cli(t, vars, "", "clients", "list")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("clients list is not a JSON array: %v\n%s", err, out)
	}
	for _, c := range list {
		if c["client_id"] == "dev-client" || c["id"] == "dev-client" {
			return c
		}
	}
	t.Fatalf("clients list has no dev-client:\n%s", out)
	return nil
}

// checkDevClient checks what the dev bootstrap gives the dev client for the
// browser flow: the authorization_code grant, the loopback redirect URIs,
// the post-logout address, first-party.
func checkDevClient(t *testing.T, c map[string]any) {
	t.Helper()
	grants := toStrings(c["grant_types"])
	redirects := toStrings(c["redirect_uris"])
	postLogout := toStrings(c["post_logout_redirect_uris"])
	if !slices.Contains(grants, "authorization_code") || !slices.Contains(grants, "password") || !slices.Contains(grants, "refresh_token") {
		t.Errorf("dev client grant_types = %v; want authorization_code, password and refresh_token among them", grants)
	}
	for _, want := range []string{"http://127.0.0.1/callback", "http://[::1]/callback"} {
		if !slices.Contains(redirects, want) {
			t.Errorf("dev client redirect_uris = %v; want %s among them", redirects, want)
		}
	}
	if !slices.Contains(postLogout, "http://127.0.0.1/") {
		t.Errorf("dev client post_logout_redirect_uris = %v; want http://127.0.0.1/", postLogout)
	}
	if c["first_party"] != true {
		t.Errorf("dev client first_party = %v; want true", c["first_party"])
	}
	if scopes := toStrings(c["scopes"]); !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "profile") {
		t.Errorf("dev client scopes = %v; want openid and profile among them", scopes)
	}
}

var (
	devFormRE   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	devHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// devBrowser is a browser: a cookie jar, following redirects within authd
// and stopping at one that leaves it.
type devBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newDevBrowser(t *testing.T, base string) *devBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(base, "http://")
	return &devBrowser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// do answers the status, the body and a Location that leaves authd.
func (b *devBrowser) do(req *http.Request) (int, string, *url.URL) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var loc *url.URL
	if l := resp.Header.Get("Location"); l != "" && resp.StatusCode/100 == 3 {
		if loc, err = url.Parse(l); err != nil {
			b.t.Fatal(err)
		}
	}
	return resp.StatusCode, string(body), loc
}

func (b *devBrowser) get(u string) (int, string, *url.URL) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// submit posts the page's form with its hidden fields and extra.
func (b *devBrowser) submit(body string, extra url.Values) (int, string, *url.URL) {
	b.t.Helper()
	m := devFormRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no form on the page:\n%s", body)
	}
	form := url.Values{}
	for _, h := range devHiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, v := range extra {
		form[k] = v
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+html.UnescapeString(m[1]), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// A fresh `make run`: the dev client runs the code flow with PKCE on any
// loopback port, with no consent page, and RP-initiated logout returns to
// its loopback address; the banner says how to try it with examples/webapp.
func TestDevClientBrowserSignIn(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	vars := devVars(t, addr, data)
	in := start(t, vars)
	issuer := "http://" + addr

	raw, err := os.ReadFile(filepath.Join(data, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dc devCredentials
	if err := json.Unmarshal(raw, &dc); err != nil {
		t.Fatal(err)
	}
	wantLine := "WEBAPP_CLIENT_ID=dev-client WEBAPP_CLIENT_SECRET='" + dc.ClientSecret + "' go run ./examples/webapp -issuer " + issuer +
		" -redirect-url http://127.0.0.1:8082/callback"
	if !strings.Contains(in.out.String(), "\n  "+wantLine+"\n") || !strings.Contains(in.out.String(), "then open http://127.0.0.1:8082") {
		t.Errorf("the banner lacks the browser sign-in line %q:\n%s", wantLine, in.out.String())
	}
	checkDevClient(t, devClientDoc(t, vars))

	conf := func(redirect string) *oauth2.Config {
		return &oauth2.Config{ClientID: dc.ClientID, ClientSecret: dc.ClientSecret, RedirectURL: redirect, Scopes: []string{"openid", "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: issuer + "/oauth2/token"}}
	}
	b := newDevBrowser(t, in.base)

	// Any port of the loopback callback; the login page, then straight back
	// (first-party: no consent).
	c := conf("http://127.0.0.1:54321/callback")
	verifier := oauth2.GenerateVerifier()
	status, body, loc := b.get(c.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)))
	if status != http.StatusOK || !strings.Contains(body, `autocomplete="current-password"`) {
		t.Fatalf("GET authorize: %d, Location %v; want the login page:\n%s", status, loc, body)
	}
	status, body, loc = b.submit(body, url.Values{"username": {dc.Username}, "password": {dc.Password}})
	if loc == nil || loc.Host != "127.0.0.1:54321" || loc.Path != "/callback" || loc.Query().Get("state") != "state-0001" || loc.Query().Get("code") == "" {
		t.Fatalf("after the login: %d, Location %v; want the loopback callback with code and state:\n%s", status, loc, body)
	}
	tok, err := c.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token response lacks an id_token or a refresh token: %v", tok)
	}

	// The IPv6 loopback callback, on another port: signed in already.
	c6 := conf("http://[::1]:50505/callback")
	verifier = oauth2.GenerateVerifier()
	if _, _, loc = b.get(c6.AuthCodeURL("state-0002", oauth2.S256ChallengeOption(verifier))); loc == nil || loc.Host != "[::1]:50505" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize with [::1]: Location %v; want the callback with a code", loc)
	}

	// RP-initiated logout back to the loopback address, on any port.
	status, body, _ = b.get(issuer + "/oauth2/logout?" + url.Values{
		"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:40404/"}, "state": {"bye"},
	}.Encode())
	if status != http.StatusOK {
		t.Fatalf("GET logout: %d; want the confirmation:\n%s", status, body)
	}
	if _, _, loc = b.submit(body, url.Values{"decision": {"logout"}}); loc == nil || loc.String() != "http://127.0.0.1:40404/?state=bye" {
		t.Errorf("confirmed logout: Location %v; want http://127.0.0.1:40404/?state=bye", loc)
	}
	if _, _, loc = b.get(c.AuthCodeURL("state-0003", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none"))); loc == nil || loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after the logout: Location %v; want error=login_required", loc)
	}
}
