package connector

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
)

// Connector types.
const (
	TypeOIDC   = "oidc"
	TypeGitHub = "github"
)

// Config configures one connector.
type Config struct {
	// ID is stable and URL-safe (lowercase letters, digits, '-', '_'); it keys
	// account links and appears in callback paths. Never change it once used.
	ID string
	// Type is TypeOIDC or TypeGitHub.
	Type string
	// Name is the display name ("Continue with <Name>").
	Name string
	// Issuer is the OIDC issuer URL (required for oidc). For github it is the web
	// base URL of GitHub Enterprise Server (empty: https://github.com).
	Issuer string
	// APIURL is GitHub's REST API base URL (github only; empty: https://api.github.com,
	// or <Issuer>/api/v3 when Issuer is set).
	APIURL string
	// ClientID and ClientSecret are authd's credentials at the upstream.
	ClientID     string
	ClientSecret string
	// Scopes requested upstream. oidc: "openid" is always added; empty means
	// openid, email, profile. github: empty means read:user, user:email.
	Scopes []string
	// RedirectURL is authd's callback URL registered at the upstream.
	RedirectURL string
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate lists every problem of c, joined; nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("connector %q: "+format, append([]any{c.ID}, args...)...))
	}
	if !idPattern.MatchString(c.ID) {
		add("id must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	switch c.Type {
	case TypeOIDC:
		if c.Issuer == "" {
			add("issuer is required for type oidc")
		} else if err := checkURL(c.Issuer); err != nil {
			add("issuer: %v", err)
		}
		if c.APIURL != "" {
			add("api_url applies to type github only")
		}
	case TypeGitHub:
		if c.Issuer != "" {
			if err := checkURL(c.Issuer); err != nil {
				add("issuer: %v", err)
			}
		}
		if c.APIURL != "" {
			if err := checkURL(c.APIURL); err != nil {
				add("api_url: %v", err)
			}
		}
	case "":
		add("type is required (%q or %q)", TypeOIDC, TypeGitHub)
	default:
		add("unknown type %q (want %q or %q)", c.Type, TypeOIDC, TypeGitHub)
	}
	if c.Name == "" {
		add("name is required")
	}
	if c.ClientID == "" {
		add("client_id is required")
	}
	if c.ClientSecret == "" {
		add("client_secret is required")
	}
	for _, s := range c.Scopes {
		if s == "" || !scopePattern.MatchString(s) {
			add("scope %q is not a valid scope token", s)
		}
	}
	if c.RedirectURL == "" {
		add("redirect_url is required")
	} else if err := checkURL(c.RedirectURL); err != nil {
		add("redirect_url: %v", err)
	}
	return errors.Join(errs...)
}

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
var scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

// checkURL accepts an absolute https URL, or http on a loopback host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must be an absolute URL without user info or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http only on loopback)", raw)
	default:
		return fmt.Errorf("%q must use https", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
