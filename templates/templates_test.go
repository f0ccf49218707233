package templates

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyDefaults writes the embedded files into a new folder and returns it.
func copyDefaults(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := embedded.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := embedded.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func render(t *testing.T, s *Set, p Page, data any) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Execute(&b, p, data); err != nil {
		t.Fatalf("Execute(%s) = %v", p, err)
	}
	return b.String()
}

func TestEmbeddedPagesRender(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatalf("Embedded() = %v", err)
	}
	label := regexp.MustCompile(`<label for="([a-z_]+)"`)
	input := regexp.MustCompile(`<input id="([a-z_]+)"`)
	for _, p := range Pages() {
		for _, data := range samples(p) {
			out := render(t, s, p, data)
			for _, bad := range []string{"<script", "http://", "https://", "style=", "<style", "onclick"} {
				if strings.Contains(out, bad) {
					t.Errorf("%s holds %q: no scripts, inline styles or external assets", p, bad)
				}
			}
			if !strings.Contains(out, `<html lang="en">`) || !strings.Contains(out, `href="/assets/authd.css"`) {
				t.Errorf("%s lacks the layout (lang, stylesheet):\n%s", p, out)
			}
			// Every visible input has a label.
			labels := map[string]bool{}
			for _, m := range label.FindAllStringSubmatch(out, -1) {
				labels[m[1]] = true
			}
			for _, m := range input.FindAllStringSubmatch(out, -1) {
				if !labels[m[1]] {
					t.Errorf("%s: input %q has no label", p, m[1])
				}
			}
			if strings.Contains(out, "<form") && !strings.Contains(out, `name="csrf_token" value="t"`) {
				t.Errorf("%s: a form without the CSRF field", p)
			}
		}
	}
}

func TestAutocompleteAndAlerts(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	login := render(t, s, PageLogin, samples(PageLogin)[0])
	for _, want := range []string{`autocomplete="username"`, `autocomplete="current-password"`, `role="alert"`, `method="post"`, `value="u"`} {
		if !strings.Contains(login, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	signup := render(t, s, PageSignup, samples(PageSignup)[0])
	for _, want := range []string{`autocomplete="username"`, `autocomplete="email"`, `autocomplete="new-password"`, `role="alert"`,
		`href="#password"`, `id="password-error"`, `aria-invalid="true"`} {
		if !strings.Contains(signup, want) {
			t.Errorf("signup page lacks %s", want)
		}
	}
	consent := render(t, s, PageConsent, samples(PageConsent)[0])
	for _, want := range []string{`name="decision" value="allow"`, `name="decision" value="deny"`, `name="client_id" value="app"`} {
		if !strings.Contains(consent, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
	// Without errors, no alert.
	if out := render(t, s, PageLogin, Login{}); strings.Contains(out, "role=\"alert\"") {
		t.Errorf("login page without an error shows an alert")
	}
}

// Data is escaped: a username cannot inject markup.
func TestEscaping(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, s, PageLogin, Login{Username: `"><script>alert(1)</script>`, Action: "javascript:alert(1)"})
	if strings.Contains(out, "<script>") || strings.Contains(out, `action="javascript:`) {
		t.Errorf("login page does not escape its data:\n%s", out)
	}
}

func TestDir(t *testing.T) {
	dir := copyDefaults(t)
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{define "title"}}Welcome{{end}}{{define "content"}}<h1>Operator login {{.Username}}</h1>{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Dir(dir)
	if err != nil {
		t.Fatalf("Dir = %v", err)
	}
	if out := render(t, s, PageLogin, Login{Username: "bob"}); !strings.Contains(out, "Operator login bob") {
		t.Errorf("Dir's login page is not the operator's:\n%s", out)
	}
	// The default stylesheet when the folder has none; the folder's when it has one.
	def, _ := Embedded()
	defCSS, defHash := def.Stylesheet()
	if err := os.Remove(filepath.Join(dir, StylesheetFile)); err != nil {
		t.Fatal(err)
	}
	s, err = Dir(dir)
	if err != nil {
		t.Fatalf("Dir without a stylesheet = %v", err)
	}
	if css, h := s.Stylesheet(); !bytes.Equal(css, defCSS) || h != defHash {
		t.Errorf("Dir without a stylesheet serves another one")
	}
	if err := os.WriteFile(filepath.Join(dir, StylesheetFile), []byte("body{color:red}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if css, h := s.Stylesheet(); string(css) != "body{color:red}" || h == defHash || len(h) != 16 {
		t.Errorf("Stylesheet() = %q, %q; want the folder's with its own hash", css, h)
	}
}

// A broken folder fails with an error naming the file.
func TestDirErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(dir string) error
		want   string
	}{
		{"missing page", func(dir string) error { return os.Remove(filepath.Join(dir, "consent.html")) }, "consent.html"},
		{"missing layout", func(dir string) error { return os.Remove(filepath.Join(dir, "layout.html")) }, "layout.html"},
		{"syntax error", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "signup.html"), []byte(`{{define "content"}}{{if .Username}}{{end}`), 0o600)
		}, "signup.html"},
		{"unknown field", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "error.html"), []byte(`{{define "title"}}x{{end}}{{define "content"}}{{.NoSuchField}}{{end}}`), 0o600)
		}, "error.html"},
		{"no content", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "logout.html"), []byte(`{{define "title"}}x{{end}}`), 0o600)
		}, "logout.html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDefaults(t)
			if err := c.change(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Dir(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Dir = %v; want an error naming %s", err, c.want)
			}
		})
	}
	if _, err := Dir(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Dir(missing folder) = nil")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(f); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("Dir(file) = %v; want not a folder", err)
	}
}
