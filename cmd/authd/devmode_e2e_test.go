package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/verify"
)

// devVars is the environment of `make run` on addr: dev mode, no secret
// (generated into dataDir), the issuer derived from the address.
func devVars(t *testing.T, addr, dataDir string) map[string]string {
	return map[string]string{
		"AUTHD_DEV": "true", "AUTHD_HTTP_ADDR": addr, "AUTHD_DATA_DIR": dataDir,
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(dataDir, "authd.db"), "AUTHD_LOG_LEVEL": "warn",
	}
}

func TestDevBusyPortFailsBeforeTheBanner(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	stdout, stderr, err := runCLI(t, devVars(t, busy.Addr().String(), data), "", "serve")
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("serve on a busy port = %v; want a listen error", err)
	}
	if both := stdout + stderr; strings.Contains(both, "dev client") || strings.Contains(both, "curl") {
		t.Errorf("a busy port printed the banner first:\n%s", both)
	}
	if _, err := os.Stat(filepath.Join(data, "dev-credentials.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a busy port created dev credentials: %v", err)
	}
}

// bannerCurls returns the curl lines of the dev banner in logs.
func bannerCurls(t *testing.T, logs string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "curl ") {
			out = append(out, l)
		}
	}
	return out
}

// runCurl runs a banner line as a shell would and decodes its JSON answer.
func runCurl(t *testing.T, line string) map[string]any {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: answer %q is not JSON", line, out)
	}
	return m
}

func TestDevBannerCurlLinesWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	data := t.TempDir()
	addr := freeAddr(t)
	// A data folder from before: its dev client may not ask for the
	// example audience yet; start-up brings it up to date.
	vars := devVars(t, addr, data)
	vars["AUTHD_SECRET"] = testSecret
	cli(t, vars, "", "migrate", "up")
	const secret = "dev-client-secret-from-an-older-version-0123"
	cli(t, vars, "", "clients", "create", "--id", "dev-client", "--secret", secret, "--grant-types", "password,refresh_token", "--scopes", "openid")
	creds, _ := json.Marshal(devCredentials{ClientID: "dev-client", ClientSecret: secret, Username: "dev", Password: "an older pass phrase for it"})
	if err := os.WriteFile(filepath.Join(data, "dev-credentials.json"), creds, 0o600); err != nil {
		t.Fatal(err)
	}

	in := start(t, vars)
	issuer := "http://" + addr
	curls := bannerCurls(t, in.out.String())
	if len(curls) != 2 || !strings.Contains(in.out.String(), "examples/orders") {
		t.Fatalf("banner curl lines = %q; want two, and the orders example named\n%s", curls, in.out.String())
	}
	assertJSONLogs(t, in.logs.String())
	// The browser sign-in line names the kept client and its secret, and
	// the client kept from before has what the code flow needs now.
	if want := "WEBAPP_CLIENT_ID=dev-client WEBAPP_CLIENT_SECRET='" + secret + "' go run ./examples/webapp -issuer " + issuer +
		" -redirect-url http://127.0.0.1:8082/callback"; !strings.Contains(in.out.String(), want) {
		t.Errorf("the banner lacks %q:\n%s", want, in.out.String())
	}
	checkDevClient(t, devClientDoc(t, vars))

	// The first signs in: a token for authd's own API.
	m := runCurl(t, curls[0])
	at := str(m, "access_token")
	if code, me := in.api("GET", "/api/v1/me", at, nil); code != http.StatusOK || me["username"] != "dev" {
		t.Errorf("/api/v1/me with the first banner token: %d %v", code, me)
	}

	// The second gets a token the orders example accepts (aud orders, role
	// user, verified as examples/orders does), and authd's API does not.
	m = runCurl(t, curls[1])
	ot := str(m, "access_token")
	if ot == "" {
		t.Fatalf("second banner line answered %v", m)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := verify.New(ctx, verify.Config{Issuer: issuer, Audience: "orders", Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.Verify(ctx, ot)
	if err != nil || !c.HasRole("user") {
		t.Errorf("orders' verifier on the second banner token = %v, %v; want it accepted with role user", c, err)
	}
	if _, claims := in.verifyJWT(ot); !slices.Equal(toStrings(claims["aud"]), []string{"orders"}) {
		t.Errorf("second banner token aud = %v; want [orders]", claims["aud"])
	}
	if code, _ := in.api("GET", "/api/v1/me", ot, nil); code != http.StatusUnauthorized {
		t.Errorf("/api/v1/me with the orders token: %d; want 401", code)
	}
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}
