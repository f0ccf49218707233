package connectors_test

import (
	"testing"

	"github.com/authd/authd/connector"
	"github.com/authd/authd/connector/connectors"
	"github.com/authd/authd/connector/github"
	"github.com/authd/authd/connector/oidc"
)

func TestNew(t *testing.T) {
	base := connector.Config{ID: "x", Name: "X", ClientID: "id", ClientSecret: "secret", RedirectURL: "https://authd.example/callback"}

	o := base
	o.Type, o.Issuer = connector.TypeOIDC, "https://issuer.example"
	c, err := connectors.New(o, nil)
	if err != nil {
		t.Fatalf("New(oidc) = %v", err)
	}
	if _, ok := c.(*oidc.Connector); !ok {
		t.Errorf("New(oidc) = %T; want *oidc.Connector", c)
	}
	if _, ok := c.(connector.Refresher); !ok {
		t.Errorf("oidc connector does not implement Refresher")
	}

	g := base
	g.Type = connector.TypeGitHub
	c, err = connectors.New(g, nil)
	if err != nil {
		t.Fatalf("New(github) = %v", err)
	}
	if _, ok := c.(*github.Connector); !ok {
		t.Errorf("New(github) = %T; want *github.Connector", c)
	}
	if c.ID() != "x" || c.Name() != "X" {
		t.Errorf("ID(), Name() = %q, %q; want x, X", c.ID(), c.Name())
	}

	bad := base
	bad.Type = "saml"
	if _, err := connectors.New(bad, nil); err == nil {
		t.Errorf("New(type saml) = nil error; want one")
	}
}
