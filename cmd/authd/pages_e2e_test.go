package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTemplates copies the repository's templates folder into a new one.
func copyTemplates(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../../templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".html") && !strings.HasSuffix(e.Name(), ".css") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../../templates", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// AUTHD_TEMPLATES_DIR: an operator's pages are served; a broken one stops
// serve with an error naming the file.
func TestServeTemplatesDir(t *testing.T) {
	t.Parallel()
	dir := copyTemplates(t)
	login := filepath.Join(dir, "login.html")
	b, err := os.ReadFile(login)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(login, []byte(strings.Replace(string(b), "<h1 id=\"page-title\">Sign in</h1>", "<h1 id=\"page-title\">Sign in to Example Corp</h1>", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "authd.db"), map[string]string{"AUTHD_TEMPLATES_DIR": dir})
	in := start(t, vars)
	res, err := http.Get(in.base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sign in to Example Corp") || !strings.Contains(string(body), `autocomplete="current-password"`) {
		t.Errorf("GET /login with AUTHD_TEMPLATES_DIR = %d:\n%s", res.StatusCode, body)
	}
	in.stop()

	if err := os.WriteFile(filepath.Join(dir, "consent.html"), []byte(`{{define "content"}}{{.Nope}`), 0o600); err != nil {
		t.Fatal(err)
	}
	vars = envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "authd.db"), map[string]string{"AUTHD_TEMPLATES_DIR": dir})
	err, logs := serveOnce(t, vars)
	if err == nil || !strings.Contains(err.Error(), "AUTHD_TEMPLATES_DIR") || !strings.Contains(err.Error(), "consent.html") || strings.Contains(logs, "authd ready") {
		t.Errorf("serve with a broken consent.html = %v; want an error naming it\n%s", err, logs)
	}
}
