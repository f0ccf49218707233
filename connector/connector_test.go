package connector_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/connector"
)

func TestNewState(t *testing.T) {
	a, err := connector.NewState("https://authd.example/cb")
	if err != nil {
		t.Fatal(err)
	}
	b, err := connector.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{a.State, a.Nonce, a.PKCEVerifier} {
		if len(v) != 43 {
			t.Errorf("len(%q) = %d; want 43 (32 random bytes)", v, len(v))
		}
	}
	if a.State == a.Nonce || a.Nonce == a.PKCEVerifier || a.State == b.State {
		t.Errorf("NewState values repeat: %+v %+v", a, b)
	}
	if a.RedirectURL != "https://authd.example/cb" {
		t.Errorf("RedirectURL = %q", a.RedirectURL)
	}
	if !a.CheckState(a.State) || a.CheckState(b.State) || a.CheckState("") || (connector.State{}).CheckState("") {
		t.Errorf("CheckState does not match exactly its own state")
	}
	if s := fmt.Sprint(a); strings.Contains(s, a.State) || strings.Contains(s, a.PKCEVerifier) {
		t.Errorf("fmt.Sprint(State) = %q; leaks secrets", s)
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "state", a)
	if strings.Contains(sb.String(), a.Nonce) || strings.Contains(sb.String(), a.PKCEVerifier) {
		t.Errorf("slog of State = %q; leaks secrets", sb.String())
	}
}

func TestIdentityHidesConnectorData(t *testing.T) {
	id := connector.Identity{ConnectorID: "gh", Subject: "42", ConnectorData: []byte(`{"access_token":"gho_secret"}`)}
	if s := fmt.Sprintf("%v %+v %s", id, id, id); strings.Contains(s, "gho_secret") {
		t.Errorf("fmt of Identity = %q; leaks ConnectorData", s)
	}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("x", "identity", id)
	if strings.Contains(sb.String(), "gho_secret") || !strings.Contains(sb.String(), `"subject":"42"`) {
		t.Errorf("slog of Identity = %q", sb.String())
	}
}

func TestCheckCallback(t *testing.T) {
	s := connector.State{State: "abc"}
	tests := []struct {
		query string
		code  string
		want  error
	}{
		{"state=abc&code=c1", "c1", nil},
		{"state=abd&code=c1", "", connector.ErrBadState},
		{"code=c1", "", connector.ErrBadState},
		{"state=abc", "", connector.ErrBadState},
		{"state=abc&error=access_denied&error_description=no+thanks", "", connector.ErrUpstreamDenied},
		{"state=evil&error=access_denied", "", connector.ErrBadState},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		code, err := connector.CheckCallback(s, q)
		if code != tt.code || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckCallback(%q) = %q, %v; want %q, %v", tt.query, code, err, tt.code, tt.want)
		}
	}
	q, _ := url.ParseQuery("state=abc&error=access_denied&error_description=no+thanks%0A%1b[31m")
	_, err := connector.CheckCallback(s, q)
	var de *connector.DeniedError
	if !errors.As(err, &de) || de.Code != "access_denied" || de.Description != "no thanks[31m" {
		t.Errorf("CheckCallback(error) = %#v; want DeniedError{access_denied, printable description}", err)
	}
	if errors.Is(err, connector.ErrBadState) || errors.Is(err, connector.ErrUpstream) {
		t.Errorf("DeniedError matches another sentinel: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := connector.Config{
		ID: "google", Type: connector.TypeOIDC, Name: "Google", Issuer: "https://accounts.google.com",
		ClientID: "id", ClientSecret: "secret", Scopes: []string{"openid", "email"},
		RedirectURL: "https://authd.example/connectors/google/callback",
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(good) = %v", err)
	}
	gh := good
	gh.Type, gh.Issuer, gh.ID = connector.TypeGitHub, "", "github"
	if err := gh.Validate(); err != nil {
		t.Errorf("Validate(github) = %v", err)
	}
	loop := good
	loop.Issuer, loop.RedirectURL = "http://127.0.0.1:5556/dex", "http://localhost:8080/cb"
	if err := loop.Validate(); err != nil {
		t.Errorf("Validate(loopback http) = %v", err)
	}

	tests := []struct {
		name   string
		mutate func(*connector.Config)
		want   []string
	}{
		{"empty", func(c *connector.Config) { *c = connector.Config{} }, []string{
			"id must be", "type is required", "name is required", "client_id is required",
			"client_secret is required", "redirect_url is required",
		}},
		{"oidc without issuer", func(c *connector.Config) { c.Issuer = "" }, []string{"issuer is required"}},
		{"http issuer", func(c *connector.Config) { c.Issuer = "http://accounts.example.com" }, []string{"must use https"}},
		{"relative redirect", func(c *connector.Config) { c.RedirectURL = "/callback" }, []string{"redirect_url", "absolute URL"}},
		{"bad id and type", func(c *connector.Config) { c.ID, c.Type = "Google Login", "saml" }, []string{"id must be", `unknown type "saml"`}},
		{"bad scope", func(c *connector.Config) { c.Scopes = []string{"email", "a b"} }, []string{`scope "a b"`}},
		{"api_url on oidc", func(c *connector.Config) { c.APIURL = "https://api.example" }, []string{"api_url applies to type github only"}},
	}
	for _, tt := range tests {
		c := good
		tt.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate() = nil; want %q", tt.name, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %q; want it to contain %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") && c.ClientSecret == "secret" {
			t.Errorf("%s: Validate() = %q; names the client secret", tt.name, err)
		}
	}
}
