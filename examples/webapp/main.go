// Command webapp is a small relying party that signs its users in through
// authd's browser sign-in (authorization code with PKCE S256 and OpenID
// Connect), with golang.org/x/oauth2 for the flow and go-oidc for the
// id_token; with the access token it calls the orders example.
//
//	GET  /          signed out: a "Sign in with authd" link; signed in: who
//	                you are (from the verified id_token) and a button that
//	                places an order with the orders example
//	GET  /login     starts the code flow (state, nonce and PKCE verifier in a
//	                short-lived HttpOnly cookie)
//	GET  /callback  checks state, exchanges the code with the verifier,
//	                verifies the id_token (signature by authd's JWKS, iss,
//	                aud, exp, nonce, at_hash), asks userinfo for the
//	                username; the tokens stay in this process's memory,
//	                keyed by a random session cookie
//	POST /orders    calls the orders example with the access token
//	POST /logout    forgets the session
//
// Configuration, flags first, then the environment:
//
//	-addr         WEBAPP_ADDR          listen address (:8082)
//	-issuer       AUTHD_ISSUER         authd's issuer URL (http://localhost:8080)
//	-client-id    WEBAPP_CLIENT_ID     this app's client id (webapp)
//	              WEBAPP_CLIENT_SECRET its secret; empty: a public client (PKCE alone)
//	-redirect-url WEBAPP_REDIRECT_URL  the registered redirect URI (http://127.0.0.1:8082/callback)
//	-orders-url   ORDERS_URL           the orders example (http://localhost:8081)
//	-audience     WEBAPP_AUDIENCE      the audience asked for the access token (orders)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

type config struct {
	addr         string
	issuer       string
	clientID     string
	clientSecret string
	redirectURL  string
	ordersURL    string
	audience     string
}

// loadConfig reads flags, falling back to the environment, then defaults.
// The client secret comes from the environment only, never from a flag that
// ps would show.
func loadConfig(args []string, getenv func(string) string) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", env("WEBAPP_ADDR", ":8082"), "listen address (WEBAPP_ADDR)")
	fs.StringVar(&c.issuer, "issuer", env("AUTHD_ISSUER", "http://localhost:8080"), "authd issuer URL (AUTHD_ISSUER)")
	fs.StringVar(&c.clientID, "client-id", env("WEBAPP_CLIENT_ID", "webapp"), "this app's client id (WEBAPP_CLIENT_ID); its secret is WEBAPP_CLIENT_SECRET, empty for a public client")
	fs.StringVar(&c.redirectURL, "redirect-url", env("WEBAPP_REDIRECT_URL", "http://127.0.0.1:8082/callback"), "redirect URI registered for the client (WEBAPP_REDIRECT_URL)")
	fs.StringVar(&c.ordersURL, "orders-url", env("ORDERS_URL", "http://localhost:8081"), "the orders example's URL (ORDERS_URL)")
	fs.StringVar(&c.audience, "audience", env("WEBAPP_AUDIENCE", "orders"), "audience of the access token, asked at the authorize endpoint; empty: the client's registered audiences (WEBAPP_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.clientSecret = getenv("WEBAPP_CLIENT_SECRET")
	var problems []error
	if c.clientID == "" {
		problems = append(problems, errors.New("-client-id is required"))
	}
	for name, raw := range map[string]string{"-issuer": c.issuer, "-redirect-url": c.redirectURL, "-orders-url": c.ordersURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Errorf("%s %q is not an http(s) URL", name, raw))
		}
	}
	if u, err := url.Parse(c.redirectURL); err == nil && u.Path != callbackPath {
		problems = append(problems, fmt.Errorf("-redirect-url %q must end in %s, where this app serves the callback", c.redirectURL, callbackPath))
	}
	return c, errors.Join(problems...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	hc := &http.Client{Timeout: 10 * time.Second}
	provider, err := discover(oidc.ClientContext(ctx, hc), cfg.issuer, log)
	if err != nil {
		return err
	}
	a, err := newApp(appConfig{
		OAuth: oauth2.Config{
			ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, RedirectURL: cfg.redirectURL,
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"},
		},
		Verifier:  provider.Verifier(&oidc.Config{ClientID: cfg.clientID}),
		Issuer:    cfg.issuer,
		Audience:  cfg.audience,
		OrdersURL: cfg.ordersURL,
		UserInfo:  provider,
		HTTP:      hc,
		Log:       log,
		Now:       time.Now,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.addr,
		Handler:           a.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("webapp listening", slog.String("addr", cfg.addr), slog.String("issuer", cfg.issuer),
		slog.String("client_id", cfg.clientID), slog.Bool("public_client", cfg.clientSecret == ""),
		slog.String("redirect_url", cfg.redirectURL), slog.String("orders_url", cfg.ordersURL))
	go a.sessions.prune(ctx, time.Minute)

	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// discover reads authd's OpenID Connect discovery document, retrying for a
// while: in a compose file, authd may start after this app.
func discover(ctx context.Context, issuer string, log *slog.Logger) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wait := 500 * time.Millisecond
	for {
		p, err := oidc.NewProvider(ctx, issuer)
		if err == nil {
			return p, nil
		}
		log.Warn("authd not reachable yet; retrying", slog.String("error", err.Error()), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("discovery at %s: %w", issuer, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
