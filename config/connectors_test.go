package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConnectors(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "gh-secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `issuer: https://auth.example.com
connectors:
  - id: google
    type: oidc
    name: Google
    issuer: https://accounts.google.com
    client_id: gid
    client_secret: gsecret
    scopes: [openid, email]
    link_verified_email: true
  - id: github
    type: github
    name: GitHub
    client_id: ghid
    client_secret_file: ` + secretFile + `
    scopes: "read:user user:email"
    create_users: false
`
	c, err := load(t, yaml, nil)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	want := []Connector{
		{ID: "google", Type: "oidc", Name: "Google", Issuer: "https://accounts.google.com", ClientID: "gid", ClientSecret: "gsecret",
			Scopes: []string{"openid", "email"}, CreateUsers: true, LinkVerifiedEmail: true},
		{ID: "github", Type: "github", Name: "GitHub", ClientID: "ghid", ClientSecret: "file-secret", ClientSecretFile: secretFile,
			Scopes: []string{"read:user", "user:email"}, CreateUsers: false},
	}
	if !reflect.DeepEqual(c.Connectors, want) {
		t.Fatalf("Connectors = %+v\nwant %+v", c.Connectors, want)
	}
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "connectors") {
		t.Fatalf("Validate() = %v", err)
	}
	for _, s := range []string{c.String(), strings.Join(strings.Fields(c.LogValue().String()), " ")} {
		if strings.Contains(s, "gsecret") || strings.Contains(s, "file-secret") {
			t.Fatalf("a connector secret is shown: %s", s)
		}
		if !strings.Contains(s, "google") {
			t.Fatalf("the connector ids are not shown: %s", s)
		}
	}
}

func TestLoadConnectorsErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		wants []string
	}{
		{name: "not a list", yaml: "connectors:\n  google:\n    type: oidc\n", wants: []string{"connectors", "must be a list"}},
		{name: "item not a map", yaml: "connectors:\n  - google\n", wants: []string{"connectors[0]", "map"}},
		{name: "unknown key", yaml: "connectors:\n  - id: a\n    clientid: x\n    secret: y\n", wants: []string{"connectors[0]", "unknown keys clientid, secret"}},
		{name: "wrong types", yaml: "connectors:\n  - id: 7\n    create_users: yes-please\n    scopes: [1]\n", wants: []string{"connectors[0]: id: must be a string", "create_users: must be true or false", "scopes: must be a list of strings"}},
		{name: "both secrets", yaml: "connectors:\n  - id: a\n    client_secret: x\n    client_secret_file: /etc/hostname\n", wants: []string{"not both"}},
		{name: "secret file missing", yaml: "connectors:\n  - id: a\n    client_secret_file: /nonexistent/secret\n", wants: []string{"client_secret_file", "/nonexistent/secret"}},
		{name: "every problem at once", yaml: "connectors:\n  - id: a\n    x: 1\n  - b\n", wants: []string{"connectors[0]: unknown keys x", "connectors[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml, nil)
			if err == nil {
				t.Fatalf("Load() = nil; want %q", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateConnectorIDsUnique(t *testing.T) {
	c := Defaults()
	c.Connectors = []Connector{{ID: "a"}, {ID: "b"}, {ID: "a"}}
	err := c.ValidateCLI()
	if err == nil || !strings.Contains(err.Error(), `connectors[2]: id "a" is used twice`) {
		t.Fatalf("ValidateCLI() = %v; want the repeated id", err)
	}
}
