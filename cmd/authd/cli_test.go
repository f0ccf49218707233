package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runCLI runs one CLI verb and returns stdout, stderr and the error.
func runCLI(t *testing.T, vars map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(stdin), &out, &errb, lookup(vars))
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestCLIVerbs(t *testing.T) {
	vars := map[string]string{
		"AUTHD_DEV": "true", "AUTHD_SECRET": testSecret, "AUTHD_DATA_DIR": t.TempDir(),
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
	}
	if out, _, err := runCLI(t, vars, "", "version"); err != nil || !strings.HasPrefix(out, "authd ") {
		t.Errorf("version: %q %v", out, err)
	}
	out, _, err := runCLI(t, vars, "", "migrate", "status")
	if err != nil || !strings.Contains(out, "pending") || strings.Contains(out, "applied") {
		t.Errorf("migrate status before up: %q %v", out, err)
	}
	cli(t, vars, "", "migrate", "up")
	if out := cli(t, vars, "", "migrate", "status"); !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Errorf("migrate status after up: %q", out)
	}

	// clients: create (secret shown once), list (never the secret), delete.
	created := cli(t, vars, "", "clients", "create", "--id", "svc", "--grant-types", "client_credentials", "--scopes", "a b", "--name", "Service")
	var c map[string]any
	if err := json.Unmarshal([]byte(created), &c); err != nil || len(str(c, "client_secret")) < 43 || c["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("clients create: %s", created)
	}
	pub := cli(t, vars, "", "clients", "create", "--id", "spa", "--public", "--grant-types", "password,refresh_token")
	if strings.Contains(pub, "client_secret\"") || !strings.Contains(pub, `"none"`) {
		t.Errorf("public client: %s", pub)
	}
	if _, _, err := runCLI(t, vars, "", "clients", "create", "--id", "svc", "--grant-types", "client_credentials"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate client: %v", err)
	}
	if _, _, err := runCLI(t, vars, "", "clients", "create", "--id", "x", "--grant-types", "implicit"); err == nil || !strings.Contains(err.Error(), "unsupported grant type") {
		t.Errorf("bad grant type: %v", err)
	}
	if _, _, err := runCLI(t, vars, "", "clients", "create", "--id", "x", "--public", "--secret", strings.Repeat("s", 40)); err == nil {
		t.Errorf("--public with --secret accepted")
	}
	// Browser sign-in: redirect URIs (repeats dropped, a comma inside a
	// quoted one), logout URIs, first-party; a bad URI is refused and named.
	web := cli(t, vars, "", "clients", "create", "--id", "web", "--public", "--grant-types", "refresh_token",
		"--redirect-uris", `https://app.example/cb, http://127.0.0.1/cb,"https://app.example/cb?x=a,b"`, "--redirect-uris", "https://app.example/cb",
		"--post-logout-redirect-uris", "https://app.example/", "--first-party")
	var w struct {
		Redirects  []string `json:"redirect_uris"`
		PostLogout []string `json:"post_logout_redirect_uris"`
		FirstParty bool     `json:"first_party"`
	}
	if err := json.Unmarshal([]byte(web), &w); err != nil || !slices.Equal(w.Redirects, []string{"https://app.example/cb", "http://127.0.0.1/cb", "https://app.example/cb?x=a,b"}) ||
		!slices.Equal(w.PostLogout, []string{"https://app.example/"}) || !w.FirstParty {
		t.Errorf("clients create --redirect-uris --post-logout-redirect-uris --first-party: %s", web)
	}
	if !strings.Contains(created, `"redirect_uris": []`) || !strings.Contains(created, `"first_party": false`) {
		t.Errorf("clients create without redirect URIs: %s; want redirect_uris [] and first_party false", created)
	}
	if _, _, err := runCLI(t, vars, "", "clients", "create", "--id", "x", "--public", "--grant-types", "refresh_token",
		"--redirect-uris", "http://app.example/cb"); err == nil || !strings.Contains(err.Error(), `redirect URI "http://app.example/cb" may use http only with a loopback host`) {
		t.Errorf("bad redirect URI: %v", err)
	}
	list := cli(t, vars, "", "clients", "list")
	if !strings.Contains(list, `"svc"`) || !strings.Contains(list, `"spa"`) || strings.Contains(list, str(c, "client_secret")) {
		t.Errorf("clients list: %s", list)
	}
	cli(t, vars, "", "clients", "delete", "svc")
	if _, _, err := runCLI(t, vars, "", "clients", "delete", "svc"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("delete twice: %v", err)
	}

	// users: the password only from stdin, policy applied, role added to user.
	if _, _, err := runCLI(t, vars, "x\n", "users", "create", "--username", "amy", "--email", "amy@example.org"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("users create without --password-stdin: %v", err)
	}
	if _, _, err := runCLI(t, vars, "short\n", "users", "create", "--username", "amy", "--email", "amy@example.org", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("short password: %v", err)
	}
	out = cli(t, vars, "a perfectly fine pass phrase\n", "users", "create", "--username", "Amy", "--email", "amy@example.org", "--password-stdin", "--role", "admin")
	if !strings.Contains(out, `"amy"`) || !strings.Contains(out, `"admin"`) || !strings.Contains(out, `"user"`) || strings.Contains(out, "argon2") {
		t.Errorf("users create: %s", out)
	}
	if _, _, err := runCLI(t, vars, "a perfectly fine pass phrase\n", "users", "create", "--username", "amy", "--email", "other@example.org", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("duplicate user: %v", err)
	}
	// users import: bad lines are reported by number, good ones imported, never the hash echoed.
	lines := `{"username":"bob","email":"bob@example.org","password_hash":"$2a$04$abcdefghijklmnopqrstuv"}` + "\n" +
		`not json` + "\n" +
		`{"username":"cyd","email":"cyd@example.org","password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}` + "\n"
	out, errOut, err := runCLI(t, vars, lines, "users", "import")
	if err == nil || !strings.Contains(out, `"imported": 1`) || !strings.Contains(out, `"failed": 2`) ||
		!strings.Contains(errOut, "line 1:") || !strings.Contains(errOut, "line 2:") || strings.Contains(errOut, "$2a$") {
		t.Errorf("users import: out %q, stderr %q, err %v", out, errOut, err)
	}

	// Configuration errors list every problem at once and never show the secret.
	bad := map[string]string{"AUTHD_SECRET": "short", "AUTHD_SIGNING_ALG": "HS256", "AUTHD_ACCESS_TOKEN_TTL": "-1s"}
	_, _, err = runCLI(t, bad, "", "clients", "list")
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"AUTHD_SECRET", "AUTHD_SIGNING_ALG", "AUTHD_ACCESS_TOKEN_TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("configuration error lacks %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"short"`) {
		t.Errorf("configuration error echoes the secret: %v", err)
	}
}

func TestCLIUnknownCommandsFail(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"users", "bogus"}, {"clients", "frobnicate", "x"}, {"keys", "lst"}, {"migrate", "down"}} {
		_, _, err := runCLI(t, nil, "", args...)
		if err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("authd %s = %v; want an unknown command error", strings.Join(args, " "), err)
		}
	}
	// A group alone prints its help and succeeds.
	if out, _, err := runCLI(t, nil, "", "users"); err != nil || !strings.Contains(out, "set-password") {
		t.Errorf("authd users = %q, %v; want its help", out, err)
	}
}

func TestCLIVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := runCLI(t, nil, "", args...)
		if err != nil || out != "authd "+version+"\n" {
			t.Errorf("authd %s = %q, %v; want %q", args[0], out, err, "authd "+version+"\n")
		}
	}
}

func TestServeHelpNamesSecrets(t *testing.T) {
	out, _, err := runCLI(t, nil, "", "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AUTHD_SECRET ", "AUTHD_SECRET_OLD", "AUTHD_ISSUER", "--no-migrate"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}
