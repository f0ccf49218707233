package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authd/authd/config"
	"github.com/authd/authd/connector"
	"github.com/authd/authd/connector/connectors"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/web"
)

// upstreamTimeout bounds each call to an identity provider (discovery, code
// exchange, keys, user info): a person waits on it.
const upstreamTimeout = 10 * time.Second

// connectorConfig is c as package connector takes it: the redirect URL is
// authd's callback for c on issuer unless c names one.
func connectorConfig(issuer string, c config.Connector) connector.Config {
	redirect := c.RedirectURL
	if redirect == "" {
		redirect = strings.TrimSuffix(issuer, "/") + web.ConnectorCallbackPath(c.ID)
	}
	return connector.Config{
		ID: c.ID, Type: c.Type, Name: c.Name, Issuer: c.Issuer, APIURL: c.APIURL,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes, RedirectURL: redirect,
	}
}

// connectorProblems lists every problem of the configured connectors, by
// package connector's rules.
func connectorProblems(cfg config.Config) []error {
	var errs []error
	for i, c := range cfg.Connectors {
		err := connectorConfig(cfg.Issuer, c).Validate()
		if err == nil {
			continue
		}
		each := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			each = j.Unwrap()
		}
		for _, e := range each { // one line per problem, each naming the item
			errs = append(errs, fmt.Errorf("config: %s[%d]: %w", config.ConnectorsKey, i, e))
		}
	}
	return errs
}

// buildConnectors makes the login page's connectors (no network call: an
// OIDC provider is discovered at its first sign-in).
func buildConnectors(cfg config.Config) ([]web.Connector, error) {
	client := &http.Client{Timeout: upstreamTimeout}
	out := make([]web.Connector, 0, len(cfg.Connectors))
	for _, c := range cfg.Connectors {
		conn, err := connectors.New(connectorConfig(cfg.Issuer, c), client)
		if err != nil {
			return nil, fmt.Errorf("connector %q: %w", c.ID, err)
		}
		out = append(out, web.Connector{
			Connector: conn,
			Policy:    identity.LinkPolicy{CreateUsers: c.CreateUsers, LinkVerifiedEmail: c.LinkVerifiedEmail},
		})
	}
	return out, nil
}
