package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authd/authd/config"
)

// runCLIEnviron is runCLI with the whole environment listed too (as main
// does with os.Environ), so that unknown variables are seen.
func runCLIEnviron(t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, lookupEnv: lookup(vars), environ: func() []string {
		var kv []string
		for k, v := range vars {
			kv = append(kv, k+"="+v)
		}
		return kv
	}}
	root := e.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestCLIConfigVerbsDoNotNeedServeSettings(t *testing.T) {
	// An operator's shell outside dev mode: database and secret, no TLS, the
	// default http issuer, a listen address serve would refuse.
	vars := map[string]string{
		"AUTHD_SECRET": testSecret, "AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
		"AUTHD_DATA_DIR": t.TempDir(), "AUTHD_HTTP_ADDR": "nonsense", "AUTHD_TLS_KEY": "/only/the/key.pem",
	}
	for _, args := range [][]string{{"migrate", "up"}, {"clients", "list"}, {"users", "list"}, {"keys", "list"}} {
		if _, _, err := runCLI(t, vars, "", args...); err != nil {
			t.Errorf("authd %s = %v; want no serve-only demands", strings.Join(args, " "), err)
		}
	}
	_, _, err := runCLI(t, vars, "", "serve")
	for _, want := range []string{"AUTHD_ISSUER: must be https", "AUTHD_TLS_CERT", "AUTHD_HTTP_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve = %v; want it to name %q", err, want)
		}
	}
}

func TestCLIConfigParseAndValidationErrorsTogether(t *testing.T) {
	vars := map[string]string{
		"AUTHD_SECRET": "short", "AUTHD_ACCESS_TOKEN_TTL": "15", "AUTHD_DEV": "maybe", "AUTHD_SIGNING_ALG": "HS256",
		"AUTHD_DATABASE_URL": "mysql://db", "AUTHD_DATA_DIR": t.TempDir(),
	}
	_, _, err := runCLI(t, vars, "", "clients", "list")
	for _, want := range []string{"AUTHD_ACCESS_TOKEN_TTL", "AUTHD_DEV", "AUTHD_SIGNING_ALG", "AUTHD_DATABASE_URL", "AUTHD_SECRET: must be at least"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("clients list = %v; want it to name %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"short"`) {
		t.Errorf("the error shows the secret: %v", err)
	}
}

func TestCLIConfigUnknownVariableWarns(t *testing.T) {
	vars := map[string]string{
		"AUTHD_DEV": "true", "AUTHD_SECRET": testSecret, "AUTHD_DATA_DIR": t.TempDir(),
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
	}
	vars["AUTHD_ISSUR"], vars["AUTHD_SECRETS"], vars["AUTHD_TEST_POSTGRES_URL"] = "https://typo.example", "never-echoed-value", "postgres://x"
	_, stderr, err := runCLIEnviron(t, vars, "migrate", "status")
	if err != nil {
		t.Fatalf("an unknown variable is an error: %v", err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["level"] != "WARN" || lines[0]["variable"] != "AUTHD_ISSUR" || lines[0]["did_you_mean"] != "AUTHD_ISSUER" ||
		lines[1]["variable"] != "AUTHD_SECRETS" {
		t.Errorf("warnings = %v; want AUTHD_ISSUR (did you mean AUTHD_ISSUER) and AUTHD_SECRETS", lines)
	}
	if strings.Contains(stderr, "never-echoed-value") || strings.Contains(stderr, "typo.example") {
		t.Errorf("a warning shows a value: %s", stderr)
	}
}

func TestCLIConfigDevSecretHint(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "secret"), []byte(strings.Repeat("a", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"AUTHD_DATA_DIR": data, "AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(data, "authd.db")}
	_, _, err := runCLI(t, vars, "", "users", "list")
	if err == nil || !strings.Contains(err.Error(), "AUTHD_SECRET: is required") || !strings.Contains(err.Error(), "AUTHD_DEV=true") ||
		!strings.Contains(err.Error(), filepath.Join(data, "secret")) {
		t.Errorf("users list beside a dev secret = %v; want how to use it", err)
	}
	if err != nil && strings.Contains(err.Error(), strings.Repeat("a", 64)) {
		t.Errorf("the hint shows the secret: %v", err)
	}
	// With AUTHD_DEV=true the same data works.
	vars["AUTHD_DEV"] = "true"
	if _, _, err := runCLI(t, vars, "", "migrate", "status"); err != nil {
		t.Errorf("migrate status with AUTHD_DEV=true = %v", err)
	}
	// No dev secret, no hint.
	delete(vars, "AUTHD_DEV")
	vars["AUTHD_DATA_DIR"] = t.TempDir()
	if _, _, err := runCLI(t, vars, "", "users", "list"); err == nil || strings.Contains(err.Error(), "AUTHD_DEV=true to use it") {
		t.Errorf("users list without a dev secret = %v; want no hint", err)
	}
}

func TestDevIssuerFollowsListenAddress(t *testing.T) {
	addr := freeAddr(t)
	vars := map[string]string{
		"AUTHD_HTTP_ADDR": addr, "AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
		"AUTHD_DEV": "true", "AUTHD_SECRET": testSecret, "AUTHD_DATA_DIR": t.TempDir(), "AUTHD_LOG_LEVEL": "warn",
	}
	in := start(t, vars)
	resp, err := http.Get(in.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != "http://"+addr || !strings.HasPrefix(str(doc, "token_endpoint"), "http://"+addr+"/") {
		t.Errorf("dev issuer on %s = %v; want http://%s", addr, doc["issuer"], addr)
	}
}

// Every problem of every connector is reported by serve together with the
// rest of the configuration, secrets never shown; the other verbs do not
// check connectors.
func TestCLIConfigConnectorProblems(t *testing.T) {
	yaml := filepath.Join(t.TempDir(), "authd.yaml")
	body := `connectors:
  - id: Google
    type: oidc
    name: Google
    issuer: http://accounts.example.com
    client_id: gid
    client_secret: the-google-secret-value
  - id: gh
    type: gitlab
    client_secret: the-github-secret-value
  - id: gh
    type: github
    name: GitHub
    client_id: x
    client_secret: y
    api_url: not a url
`
	if err := os.WriteFile(yaml, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AUTHD_DEV": "true", "AUTHD_SECRET": testSecret, "AUTHD_DATA_DIR": t.TempDir(), "AUTHD_CONFIG": yaml,
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"), "AUTHD_ACCESS_TOKEN_TTL": "-1s",
	}
	_, _, err := runCLI(t, vars, "", "serve")
	if err == nil {
		t.Fatal("serve = nil; want the connectors' problems")
	}
	for _, want := range []string{
		"AUTHD_ACCESS_TOKEN_TTL",
		`connectors[0]: connector "Google": id must be`, `connectors[0]: connector "Google": issuer: "http://accounts.example.com" must use https`,
		`connectors[1]: connector "gh": unknown type "gitlab"`, `connectors[1]: connector "gh": name is required`, `connectors[1]: connector "gh": client_id is required`,
		`connectors[2]: id "gh" is used twice`, `connectors[2]: connector "gh": api_url`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("serve = %v\nwant it to name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "the-google-secret-value") || strings.Contains(err.Error(), "the-github-secret-value") {
		t.Errorf("a connector secret is shown: %v", err)
	}
	delete(vars, "AUTHD_ACCESS_TOKEN_TTL")
	if _, _, err := runCLI(t, vars, "", "clients", "list"); err != nil && strings.Contains(err.Error(), "connector \"") {
		t.Errorf("clients list checks the connectors: %v", err)
	}
}

// A connector's redirect URL defaults to the route serve registers for its
// callback, on the issuer.
func TestConnectorRedirectURLDefault(t *testing.T) {
	for _, issuer := range []string{"https://auth.example.com", "https://auth.example.com/"} {
		if got := connectorConfig(issuer, config.Connector{ID: "google"}).RedirectURL; got != "https://auth.example.com/connectors/google/callback" {
			t.Errorf("connectorConfig(%q).RedirectURL = %q", issuer, got)
		}
	}
	if got := connectorConfig("https://a.example", config.Connector{ID: "x", RedirectURL: "https://b.example/cb"}).RedirectURL; got != "https://b.example/cb" {
		t.Errorf("a configured redirect_url = %q; want it kept", got)
	}
}
