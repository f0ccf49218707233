package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// A real browser (Debian's chromium, headless) signs up through the page,
// signs in, and signs in with the keyboard alone; screenshots of the pages
// go to docs/screenshots/. Without chromium the test skips (it fails when
// CI=true).

// chromiumPath finds the browser, or skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// newBrowser returns a context of a fresh headless browser (its own
// profile, so its own cookies).
func newBrowser(t *testing.T, execPath string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath), chromedp.NoSandbox, chromedp.WindowSize(1000, 820),
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the page as docs/screenshots/name.png.
func screenshot(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var png []byte
		// Quality 100 makes a PNG (anything lower, a JPEG).
		if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
			return err
		}
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// sessionCookie returns the browser's authd_session cookie, if any.
func sessionCookie(ctx context.Context) (*network.Cookie, error) {
	cookies, err := network.GetCookies().Do(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cookies {
		if c.Name == "authd_session" {
			return c, nil
		}
	}
	return nil, nil
}

func TestBrowserSignUpAndSignIn(t *testing.T) {
	chromium := chromiumPath(t)
	vars := envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "authd.db"), nil)
	in := start(t, vars)
	const password = "violet kites drift over harbours"

	// Sign up through the page: a field error first, then the account.
	ctx := newBrowser(t, chromium)
	var heading, errText string
	err := chromedp.Run(ctx,
		chromedp.Navigate(in.base+"/signup"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		screenshot("signup"),
		chromedp.SendKeys(`#username`, "Zoe", chromedp.ByID),
		chromedp.SendKeys(`#email`, "zoe@example.com", chromedp.ByID),
		chromedp.SendKeys(`#password`, "too short", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#password-error`, chromedp.ByID),
		chromedp.Text(`#password-error`, &errText, chromedp.ByID),
		screenshot("signup-errors"),
		chromedp.SendKeys(`#password`, password, chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#page-title`, chromedp.ByID),
		chromedp.Text(`#page-title`, &heading, chromedp.ByID),
		screenshot("signed-in"),
	)
	if err != nil {
		t.Fatalf("signing up in the browser: %v", err)
	}
	if !strings.Contains(errText, "Password must be at least 15 characters.") {
		t.Errorf("password error = %q", errText)
	}
	if heading != "You are signed in" {
		t.Errorf("after signing up the page says %q; want You are signed in", heading)
	}
	var c *network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) (err error) { c, err = sessionCookie(ctx); return err })); err != nil {
		t.Fatal(err)
	}
	if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("session cookie = %+v; want HttpOnly, SameSite=Lax", c)
	}

	// A wrong password in a fresh browser: the one message, the username kept.
	ctx = newBrowser(t, chromium)
	var alert, kept string
	err = chromedp.Run(ctx,
		chromedp.Navigate(in.base+"/login"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		screenshot("login"),
		chromedp.SendKeys(`#username`, "zoe", chromedp.ByID),
		chromedp.SendKeys(`#password`, "not the password at all", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`[role="alert"]`, chromedp.ByQuery),
		chromedp.Text(`[role="alert"]`, &alert, chromedp.ByQuery),
		chromedp.Value(`#username`, &kept, chromedp.ByID),
		screenshot("login-error"),
	)
	if err != nil {
		t.Fatalf("a wrong password in the browser: %v", err)
	}
	if !strings.Contains(alert, "Wrong username or password.") || kept != "zoe" {
		t.Errorf("after a wrong password: alert %q, username %q", alert, kept)
	}

	// Keyboard only, in a fresh browser: Tab to the username, type, Tab to
	// the password, type, Enter.
	ctx = newBrowser(t, chromium)
	var focused string
	err = chromedp.Run(ctx,
		chromedp.Navigate(in.base+"/login"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.KeyEvent(kb.Tab),
		chromedp.Evaluate(`document.activeElement.id`, &focused),
	)
	if err != nil {
		t.Fatalf("keyboard sign-in: %v", err)
	}
	if focused != "username" {
		t.Fatalf("the first Tab focuses %q; want the username field", focused)
	}
	err = chromedp.Run(ctx,
		chromedp.KeyEvent("zoe"),
		screenshot("login-focus"),
		chromedp.KeyEvent(kb.Tab),
		chromedp.Evaluate(`document.activeElement.id`, &focused),
		chromedp.KeyEvent(password),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(`#page-title`, chromedp.ByID),
		chromedp.Text(`#page-title`, &heading, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("keyboard sign-in: %v", err)
	}
	if focused != "password" || heading != "You are signed in" {
		t.Errorf("keyboard sign-in: second Tab focused %q, page %q; want password, You are signed in", focused, heading)
	}

	// Signed in: the logout confirmation, then signed out; and the error
	// page an authorization request for an unknown client gets.
	var asked, done, failed string
	err = chromedp.Run(ctx,
		chromedp.Navigate(in.base+"/oauth2/logout"),
		chromedp.WaitVisible(`button[name="decision"]`, chromedp.ByQuery),
		chromedp.Text(`#page-title`, &asked, chromedp.ByID),
		screenshot("logout"),
		chromedp.Click(`button[name="decision"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`p[role="status"]`, chromedp.ByQuery),
		chromedp.Text(`#page-title`, &done, chromedp.ByID),
		screenshot("signed-out"),
		chromedp.Navigate(in.base+"/oauth2/authorize?client_id=no-such-client&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"),
		chromedp.WaitVisible(`#page-title`, chromedp.ByID),
		chromedp.Text(`#page-title`, &failed, chromedp.ByID),
		screenshot("error"),
	)
	if err != nil {
		t.Fatalf("logout and the error page in the browser: %v", err)
	}
	if asked != "Sign out?" || done != "You are signed out" || failed == "" {
		t.Errorf("logout pages %q then %q, error page %q", asked, done, failed)
	}
	if c, err := sessionCookieAfter(ctx); err != nil || c != nil {
		t.Errorf("after signing out the session cookie is %+v (%v); want none", c, err)
	}
}

// sessionCookieAfter is sessionCookie run in the browser's context.
func sessionCookieAfter(ctx context.Context) (*network.Cookie, error) {
	var c *network.Cookie
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) (err error) { c, err = sessionCookie(ctx); return err }))
	return c, err
}
