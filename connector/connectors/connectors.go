// Package connectors builds the connector a Config names. It is separate from
// package connector because the providers import connector.
package connectors

import (
	"fmt"
	"net/http"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/connector/github"
	"github.com/authd/authd/connector/oidc"
)

// New validates cfg and returns its connector. It makes no network call (an
// OIDC provider is discovered on first use). client makes every upstream
// request; nil means a client with a 30-second timeout.
func New(cfg connector.Config, client *http.Client) (connector.Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Type {
	case connector.TypeOIDC:
		return oidc.New(cfg, client)
	case connector.TypeGitHub:
		return github.New(cfg, client)
	default:
		return nil, fmt.Errorf("connectors: unknown type %q", cfg.Type)
	}
}
