package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/authd/authd/internal/proctest"
)

// TestBrowserThroughWebapp signs up in a real browser through the example
// relying party (examples/webapp, with examples/orders behind it): the app's
// "Sign in with authd" → authd's login page → "Create an account" → the
// signup form → back at the app, signed in, ordering a book with its access
// token. A second, third-party app then gets the consent page for the same
// browser session. Screenshots go to docs/screenshots/webapp-*.png and
// consent.png. Without chromium it skips (it fails when CI=true).
func TestBrowserThroughWebapp(t *testing.T) {
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("builds and runs two binaries and a browser")
	}
	vars := envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "authd.db"), nil)
	in := start(t, vars)
	issuer := vars["AUTHD_ISSUER"]
	bins := t.TempDir()
	orders, webapp := filepath.Join(bins, "orders"), filepath.Join(bins, "webapp")
	proctest.Build(t, orders, "github.com/authd/authd/examples/orders")
	proctest.Build(t, webapp, "github.com/authd/authd/examples/webapp")

	ordersAddr, shopAddr, partnerAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	const shopSecret, partnerSecret = "shop-browser-secret-0123456789abcdef0123", "partner-browser-secret-0123456789abcdef01"
	cli(t, vars, "", "clients", "create", "--id", "shop", "--name", "Example shop", "--secret", shopSecret,
		"--grant-types", "authorization_code,refresh_token", "--scopes", "openid profile", "--audience", "orders",
		"--redirect-uris", "http://"+shopAddr+"/callback", "--first-party")
	cli(t, vars, "", "clients", "create", "--id", "partner", "--name", "Partner app", "--secret", partnerSecret,
		"--grant-types", "authorization_code", "--scopes", "openid profile", "--audience", "orders",
		"--redirect-uris", "http://"+partnerAddr+"/callback")
	proctest.Start(t, os.Environ(), "http://"+ordersAddr+"/healthz", orders, "-addr", ordersAddr, "-issuer", issuer)
	for _, app := range []struct{ addr, id, secret string }{{shopAddr, "shop", shopSecret}, {partnerAddr, "partner", partnerSecret}} {
		proctest.Start(t, append(os.Environ(), "WEBAPP_CLIENT_SECRET="+app.secret), "http://"+app.addr+"/healthz", webapp,
			"-addr", app.addr, "-issuer", issuer, "-client-id", app.id, "-redirect-url", "http://"+app.addr+"/callback",
			"-orders-url", "http://"+ordersAddr)
	}

	ctx := newBrowser(t, chromium)
	const password = "amber lanterns sway in the rain"
	var loginURL, signupTitle, name, status, answer string
	err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+shopAddr+"/"),
		chromedp.WaitVisible(`#sign-in`, chromedp.ByID),
		screenshot("webapp-signed-out"),
		chromedp.Click(`#sign-in`, chromedp.ByID),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.Location(&loginURL),
		screenshot("webapp-login"),
		chromedp.Click(`a[href^="/signup"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.Text(`#page-title`, &signupTitle, chromedp.ByID),
		chromedp.SendKeys(`#username`, "mira", chromedp.ByID),
		chromedp.SendKeys(`#email`, "mira@example.com", chromedp.ByID),
		chromedp.SendKeys(`#password`, password, chromedp.ByID),
		screenshot("webapp-signup"),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#place-order`, chromedp.ByID),
		chromedp.Text(`#username`, &name, chromedp.ByID),
		screenshot("webapp-signed-in"),
		chromedp.Click(`#place-order`, chromedp.ByID),
		chromedp.WaitVisible(`#orders-answer`, chromedp.ByID),
		chromedp.Text(`#orders-status`, &status, chromedp.ByID),
		chromedp.Text(`#orders-answer`, &answer, chromedp.ByID),
		screenshot("webapp-orders"),
	)
	if err != nil {
		t.Fatalf("signing up through the example app: %v", err)
	}
	if !strings.HasPrefix(loginURL, in.base+"/login?") {
		t.Errorf("the app's sign-in link led to %s; want authd's login page", loginURL)
	}
	if signupTitle != "Create an account" || name != "mira" {
		t.Errorf("signup page %q, then the app names %q; want Create an account, mira", signupTitle, name)
	}
	if status != "200" || !strings.Contains(answer, `"item": "book"`) {
		t.Errorf("orders answered %s: %s; want 200 and the book", status, answer)
	}

	// The third-party app: the same browser session, so no login page, but
	// the consent page; allowing it signs mira in there too.
	var consentTitle string
	err = chromedp.Run(ctx,
		chromedp.Navigate("http://"+partnerAddr+"/"),
		chromedp.WaitVisible(`#sign-in`, chromedp.ByID),
		chromedp.Click(`#sign-in`, chromedp.ByID),
		chromedp.WaitVisible(`button[value="allow"]`, chromedp.ByQuery),
		chromedp.Text(`#page-title`, &consentTitle, chromedp.ByID),
		screenshot("consent"),
		chromedp.Click(`button[value="allow"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#place-order`, chromedp.ByID),
		chromedp.Text(`#username`, &name, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("consenting to the third-party app: %v", err)
	}
	if consentTitle != "Allow Partner app to use your account?" || name != "mira" {
		t.Errorf("consent page %q, then the app names %q; want Allow Partner app to use your account?, mira", consentTitle, name)
	}
}
