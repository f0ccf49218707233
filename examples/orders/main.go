// Command orders is a small resource server that trusts authd's access
// tokens through the verify package: the consumer's view of authd.
//
//	POST   /orders       any user creates an order of their own
//	GET    /orders       the caller's orders; an admin sees all
//	GET    /orders/{id}  an order of the caller's, or any to an admin
//	DELETE /orders/{id}  admins only (204); a user gets 403
//
// Configuration, flags first, then the environment:
//
//	-addr      ORDERS_ADDR       listen address (:8081)
//	-issuer    AUTHD_ISSUER      authd's issuer URL (http://localhost:8080)
//	-audience  ORDERS_AUDIENCE   the aud tokens must carry (orders)
//	-online    ORDERS_ONLINE     check every token with authd's introspection endpoint
//	           ORDERS_CLIENT_ID, ORDERS_CLIENT_SECRET  this service's client, for -online
//	-dpop      ORDERS_DPOP       take only DPoP-bound tokens, each request with a DPoP proof (RFC 9449)
//	-public-url ORDERS_PUBLIC_URL the URL clients call this service at (the proofs' htu), behind a proxy
//	-quiet     ORDERS_QUIET      log refused tokens at debug, not info (info helps while setting up)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/authd/authd/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

type config struct {
	addr         string
	issuer       string
	audience     string
	online       bool
	clientID     string
	clientSecret string
	dpop         bool
	publicURL    string
	quiet        bool // refused tokens logged at debug (default: info, which helps while setting up)
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
	boolEnv := func(name string) (bool, error) {
		v := getenv(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: %w", name, v, err)
		}
		return b, nil
	}
	onlineDefault, err := boolEnv("ORDERS_ONLINE")
	if err != nil {
		return config{}, err
	}
	dpopDefault, err := boolEnv("ORDERS_DPOP")
	if err != nil {
		return config{}, err
	}
	quietDefault, err := boolEnv("ORDERS_QUIET")
	if err != nil {
		return config{}, err
	}
	var c config
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", env("ORDERS_ADDR", ":8081"), "listen address (ORDERS_ADDR)")
	fs.StringVar(&c.issuer, "issuer", env("AUTHD_ISSUER", "http://localhost:8080"), "authd issuer URL (AUTHD_ISSUER)")
	fs.StringVar(&c.audience, "audience", env("ORDERS_AUDIENCE", "orders"), "audience tokens must carry (ORDERS_AUDIENCE)")
	fs.BoolVar(&c.online, "online", onlineDefault, "ask authd's introspection endpoint about every token (ORDERS_ONLINE)")
	fs.StringVar(&c.clientID, "client-id", getenv("ORDERS_CLIENT_ID"), "client id for introspection (ORDERS_CLIENT_ID)")
	fs.BoolVar(&c.dpop, "dpop", dpopDefault, "take only DPoP-bound access tokens, each request with a DPoP proof (ORDERS_DPOP)")
	fs.StringVar(&c.publicURL, "public-url", getenv("ORDERS_PUBLIC_URL"), "URL clients call this service at, for DPoP proofs' htu behind a proxy; default: from the request (ORDERS_PUBLIC_URL)")
	fs.BoolVar(&c.quiet, "quiet", quietDefault, "log why a token was refused at debug instead of info (ORDERS_QUIET)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c.clientSecret = getenv("ORDERS_CLIENT_SECRET")
	if c.online && (c.clientID == "" || c.clientSecret == "") {
		return config{}, errors.New("-online needs ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET")
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	vcfg := verify.Config{Issuer: cfg.issuer, Audience: cfg.audience, Logger: log, PublicURL: cfg.publicURL, LogRejections: !cfg.quiet}
	if cfg.dpop {
		vcfg.DPoP = verify.DPoPRequire
	}
	if cfg.online {
		vcfg.IntrospectionClientID = cfg.clientID
		vcfg.IntrospectionClientSecret = cfg.clientSecret
	}
	v, err := newVerifier(ctx, vcfg, log)
	if err != nil {
		return err
	}
	defer v.Close()

	auth := v.Middleware
	if cfg.online {
		auth = v.OnlineMiddleware
	}
	a := &app{store: newStore(time.Now), log: log}
	srv := &http.Server{
		Addr:              cfg.addr,
		Handler:           a.routes(auth),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("orders listening", slog.String("addr", cfg.addr), slog.String("issuer", cfg.issuer),
		slog.String("audience", cfg.audience), slog.Bool("online", cfg.online), slog.Bool("dpop", cfg.dpop))

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

// newVerifier retries for a while: in a compose file, authd may start after
// this service.
func newVerifier(ctx context.Context, cfg verify.Config, log *slog.Logger) (*verify.Verifier, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wait := 500 * time.Millisecond
	for {
		v, err := verify.New(ctx, cfg)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, verify.ErrUnavailable) {
			return nil, err
		}
		log.Warn("authd not reachable yet; retrying", slog.String("error", err.Error()), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("authd at %s: %w", cfg.Issuer, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
