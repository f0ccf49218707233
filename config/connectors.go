package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Connector configures sign-in through another identity provider. Connectors
// are set in the YAML file only, as the list `connectors:` (each item's keys
// are the yaml names below); their rules per type are checked by package
// connector when serve starts (see cmd/authd).
type Connector struct {
	ID     string `yaml:"id"`      // stable, URL-safe; keys the account links
	Type   string `yaml:"type"`    // oidc or github
	Name   string `yaml:"name"`    // "Continue with <name>"
	Issuer string `yaml:"issuer"`  // oidc: the issuer URL; github: GitHub Enterprise's web URL
	APIURL string `yaml:"api_url"` // github: the REST API base URL
	// ClientID and ClientSecret are authd's credentials at the provider;
	// ClientSecretFile names a file holding the secret instead (read at load).
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
	// RedirectURL is the callback registered at the provider; empty means
	// authd's callback for the connector: <issuer>/connectors/<id>/callback
	// (server/web's ConnectorCallbackPath; cmd/authd fills it in).
	RedirectURL string `yaml:"redirect_url"`
	// CreateUsers lets a first sign-in create a local user (default true).
	CreateUsers bool `yaml:"create_users"`
	// LinkVerifiedEmail lets a first sign-in link to the local account that
	// has the provider's email, when the provider says it verified it and
	// a provider vouched for it as the account's before (default false:
	// the person proves the local password first).
	LinkVerifiedEmail bool `yaml:"link_verified_email"`
}

// ConnectorsKey is the YAML key of the connector list.
const ConnectorsKey = "connectors"

// connectorKeys are the keys a connector item may have.
var connectorKeys = map[string]bool{
	"id": true, "type": true, "name": true, "issuer": true, "api_url": true,
	"client_id": true, "client_secret": true, "client_secret_file": true, "scopes": true,
	"redirect_url": true, "create_users": true, "link_verified_email": true,
}

// decodeConnectors reads the YAML list raw into connectors, reporting every
// problem of shape (not a list, an item not a map, unknown keys, a value of
// the wrong type, an unreadable secret file) at once.
func decodeConnectors(raw any) ([]Connector, []error) {
	items, ok := raw.([]any)
	if !ok {
		return nil, []error{fmt.Errorf("config: %s: must be a list of connectors", ConnectorsKey)}
	}
	var out []Connector
	var errs []error
	for i, item := range items {
		where := fmt.Sprintf("config: %s[%d]", ConnectorsKey, i)
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: must be a map of settings", where))
			continue
		}
		c := Connector{CreateUsers: true}
		var unknown []string
		for key, v := range m {
			if !connectorKeys[key] {
				unknown = append(unknown, key)
				continue
			}
			if err := c.set(key, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, key, err))
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			errs = append(errs, fmt.Errorf("%s: unknown keys %s", where, strings.Join(unknown, ", ")))
		}
		if c.ClientSecretFile != "" {
			if c.ClientSecret != "" {
				errs = append(errs, fmt.Errorf("%s: set client_secret or client_secret_file, not both", where))
			} else if b, err := os.ReadFile(c.ClientSecretFile); err != nil {
				errs = append(errs, fmt.Errorf("%s: client_secret_file: %w", where, err))
			} else {
				c.ClientSecret = strings.TrimSpace(string(b))
			}
		}
		out = append(out, c)
	}
	return out, errs
}

func (c *Connector) set(key string, v any) error {
	str := func(dst *string) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a string")
		}
		*dst = s
		return nil
	}
	boolean := func(dst *bool) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("must be true or false")
		}
		*dst = b
		return nil
	}
	switch key {
	case "id":
		return str(&c.ID)
	case "type":
		return str(&c.Type)
	case "name":
		return str(&c.Name)
	case "issuer":
		return str(&c.Issuer)
	case "api_url":
		return str(&c.APIURL)
	case "client_id":
		return str(&c.ClientID)
	case "client_secret":
		return str(&c.ClientSecret)
	case "client_secret_file":
		return str(&c.ClientSecretFile)
	case "redirect_url":
		return str(&c.RedirectURL)
	case "create_users":
		return boolean(&c.CreateUsers)
	case "link_verified_email":
		return boolean(&c.LinkVerifiedEmail)
	case "scopes":
		switch s := v.(type) {
		case string:
			c.Scopes = strings.Fields(s)
		case []any:
			c.Scopes = nil
			for _, x := range s {
				xs, ok := x.(string)
				if !ok {
					return fmt.Errorf("must be a list of strings")
				}
				c.Scopes = append(c.Scopes, xs)
			}
		default:
			return fmt.Errorf("must be a list of strings")
		}
		return nil
	}
	return fmt.Errorf("unknown key")
}

// validateConnectors checks what the config alone can: ids unique. (Each
// connector's own rules are package connector's.)
func (c Config) validateConnectors() []error {
	var errs []error
	seen := map[string]bool{}
	for i, cn := range c.Connectors {
		if cn.ID != "" && seen[cn.ID] {
			errs = append(errs, fmt.Errorf("config: %s[%d]: id %q is used twice", ConnectorsKey, i, cn.ID))
		}
		seen[cn.ID] = true
	}
	return errs
}
