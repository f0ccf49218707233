package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/config"
	"github.com/authd/authd/events"
	"github.com/authd/authd/events/kafka"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/internal/headertimeout"
	"github.com/authd/authd/internal/idlemem"
	"github.com/authd/authd/internal/logbuf"
	"github.com/authd/authd/server"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/redis"
	"github.com/authd/authd/templates"
)

func (e *env) serveCommand() *cobra.Command {
	var noMigrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the authorization server (applies pending migrations first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			return e.serve(cmd.Context(), cfg, !noMigrate)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply pending migrations at start-up")
	return cmd
}

func (e *env) serve(ctx context.Context, cfg config.Config, migrate bool) error {
	start := time.Now()
	// Everything started below stops when serve returns, also when start-up
	// fails half-way (a listen error, a bad TLS file): nothing waits forever.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// The log stream is written in batches (a line per request, one write
	// per 100 ms or 64 KiB); warnings and errors go out at once.
	logw := logbuf.NewWriter(e.stderr, logbuf.DefaultLimit, logbuf.DefaultEvery)
	defer logw.Close()
	log := slog.New(logbuf.NewHandler(newLogger(cfg, logw).Handler(), logw))
	e.applyMemoryLimit(cfg, log)
	metrics, err := server.NewMetrics(nil) // a registry per serve: tests run several in one process
	if err != nil {
		return err
	}
	ph := newPhases(log, start)
	d, err := openObserved(ctx, cfg, log, migrate, metrics, ph)
	if err != nil {
		return err
	}
	defer d.Close()
	go d.keys.Run(ctx)

	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, _ := netip.ParseAddr(p) // Validate accepted it as one or the other
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, pfx)
	}
	clientIP := server.ClientIPFunc(proxies)
	// The authorize endpoint shows the pages.
	pages, err := d.pages(clientIP)
	if err != nil {
		return err
	}
	ph.done("pages")
	provider, err := d.provider(clientIP, server.AuthorizePages(pages))
	if err != nil {
		return err
	}
	ph.done("oauth provider")
	checks := []server.Check{{Name: "store", Required: true, Probe: d.store.Ping}}
	if d.redis != nil {
		checks = append(checks, server.Check{Name: "redis", Probe: func(ctx context.Context) error { return d.redis.Ping(ctx).Err() }})
	}
	var relay *events.Relay
	if len(cfg.KafkaBrokers) > 0 {
		pub, err := kafka.New(cfg.KafkaBrokers, kafkaOptions(cfg, log)...)
		if err != nil {
			return err
		}
		defer pub.Close() // after the relay has stopped: defers run last in, first out
		relay = events.NewRelay(d.store, pub, events.RelayOptions{Logger: log})
		relayDone := make(chan struct{})
		go func() { defer close(relayDone); _ = relay.Run(ctx) }()
		defer func() { stop(); <-relayDone }()
		checks = append(checks, server.Check{Name: "kafka", Probe: pub.Ping})
	}
	var sharedLimiter server.SharedLimiter
	var redisLimiter *redis.Limiter
	if d.redis != nil && cfg.RateLimitTokenPerMin > 0 {
		redisLimiter = redis.NewLimiter(d.redis, cfg.RedisKeyPrefix, cfg.RateLimitTokenPerMin, log)
		sharedLimiter = redisLimiter
	}
	if err := d.watch(metrics, redisLimiter, relay); err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Issuer: cfg.Issuer, OAuth: provider, Keys: d.keys, Store: d.store, Identity: d.identity,
		Recorder: d.recorder, Clients: d.clients, Links: d.federate, Pages: pages, Checks: checks, Logger: log, AccessLog: logw, Metrics: metrics,
		HSTS: cfg.TLS(), RateLimitPerMin: cfg.RateLimitTokenPerMin, SharedLimiter: sharedLimiter, ClientIP: clientIP,
	})
	if err != nil {
		return err
	}
	// Bind before dev mode prints its banner: a busy port fails here, before
	// any credentials are made or shown. (Connections wait in the backlog
	// until Serve below.)
	ph.done("http server")
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ph.done("listen")
	defer ln.Close() // when start-up fails before Serve; Serve closes it otherwise
	if cfg.Dev {
		if err := e.bootstrapDev(ctx, d); err != nil {
			return err
		}
		ph.done("dev bootstrap")
	}
	retention := storage.Retention{Audit: cfg.AuditRetention, SentOutbox: storage.OutboxRetention}
	if len(cfg.KafkaBrokers) == 0 {
		// No broker will ever publish them: keep unpublished events (they
		// are in the audit trail too) as long as published ones.
		retention.UnsentOutbox = storage.OutboxRetention
	}
	go purgeLoop(ctx, d.store, retention, log)
	// Dev mode's first start hashes the dev user's password: hand its
	// argon2id scratch memory (19 MiB) back now, not at the first forced GC
	// two minutes into an idle server. In the background: ready need not
	// wait for it.
	go debug.FreeOSMemory()
	if e.releaseIdleMemory {
		// And after every burst of work, once quiet (argon2id's scratch
		// memory of the logins, the garbage of the requests).
		go idlemem.New().Run(ctx)
	}

	if cfg.PprofAddr != "" {
		go servePprof(ctx, cfg.PprofAddr, log)
	}

	hs := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           srv,
		ConnState:         headertimeout.ConnState,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLS() {
		// Loaded now, so that a bad file fails start-up before "ready".
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: AUTHD_TLS_CERT / AUTHD_TLS_KEY: %w", err)
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS() {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			// Slow headers get a 408 before net/http closes the connection.
			hl := headertimeout.Listen(ln)
			hl.OnTimeout = metrics.HeaderTimeout
			errc <- hs.Serve(hl)
		}
	}()
	if e.onReady != nil {
		e.onReady(ln.Addr().String())
	}
	if d.pgDeny != nil {
		// Its listening connection and first read start once the server
		// answers, not while start-up still needs the CPU and the
		// database: until it has read the denylist, every check asks SQL.
		go d.pgDeny.Run(ctx)
	}
	log.Info("authd ready", "issuer", cfg.Issuer, "addr", ln.Addr().String(), "tls", cfg.TLS(),
		"dev", cfg.Dev, "version", version, "startup_ms", time.Since(start).Milliseconds())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout_ms", cfg.ShutdownTimeout.Milliseconds())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Requests still running past the timeout are cut: a shutdown that
		// was asked for is not a failure (exit 0), but it is worth a line.
		log.Warn("shutdown timed out; closing the remaining connections", "timeout_ms", cfg.ShutdownTimeout.Milliseconds(), "error", err)
		if err := hs.Close(); err != nil {
			log.Warn("closing connections", "error", err)
		}
	}
	log.Info("stopped")
	return nil
}

// firstPurgeAfter is how long after start-up the first purge waits: not
// while start-up and the first requests need the database.
const firstPurgeAfter = 10 * time.Second

// purgeLoop deletes, hourly, what has expired (refresh tokens, denylist
// entries, DPoP proof ids, dropped keys) and the history r lets go.
func purgeLoop(ctx context.Context, st storage.Store, r storage.Retention, log *slog.Logger) {
	first := time.NewTimer(firstPurgeAfter)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.Purge(ctx, time.Now(), r)
		if err != nil && ctx.Err() == nil {
			log.Warn("purge failed", "error", err)
		} else if n > 0 {
			log.Info("purged expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func servePprof(ctx context.Context, addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	log.Info("pprof listening", "addr", addr)
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("pprof stopped", "error", err)
	}
}

// devCredentials is what dev mode bootstraps and keeps in the data folder so
// that every `make run` prints the same working client and user.
type devCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Username     string `json:"username"`
	Password     string `json:"password"`
}

// devAudience is the audience of the example resource server
// (examples/orders), which the dev client may request.
const devAudience = "orders"

// examples/webapp as the banner runs it: on its default port, its callback
// one of the dev client's loopback redirects.
const (
	devWebappURL      = "http://127.0.0.1:8082"
	devWebappCallback = devWebappURL + "/callback"
)

// devPostLogoutURI is where RP-initiated logout may send the browser back
// for the dev client (a loopback address: any port).
const devPostLogoutURI = "http://127.0.0.1/"

// devRedirectURIs are the dev client's redirect URIs: loopback callbacks,
// which match on any port (RFC 8252 §7.3), so that any OAuth tool on the
// developer's machine (examples/webapp, a CLI) can run the code flow.
func devRedirectURIs() []string {
	return []string{"http://127.0.0.1/callback", "http://[::1]/callback"}
}

// devScopes are the scopes the dev client may ask for.
func devScopes() []string { return []string{"openid", "profile", "email", "offline_access"} }

// updateDevClient brings a dev client kept from an earlier run up to date:
// the audience (the issuer may have changed), every grant, the dev scopes,
// the loopback redirect URIs, first-party. What an operator added stays.
// It reports whether c changed.
func updateDevClient(c *storage.Client, audience []string) bool {
	changed := false
	if !slices.Equal(c.Audience, audience) {
		c.Audience, changed = slices.Clone(audience), true
	}
	add := func(list *[]string, want []string) {
		for _, v := range want {
			if !slices.Contains(*list, v) {
				*list, changed = append(*list, v), true
			}
		}
	}
	add(&c.GrantTypes, oauth.SupportedGrantTypes())
	add(&c.Scopes, devScopes())
	add(&c.RedirectURIs, devRedirectURIs())
	add(&c.PostLogoutRedirectURIs, []string{devPostLogoutURI})
	if !c.FirstParty {
		c.FirstParty, changed = true, true
	}
	return changed
}

// bootstrapDev creates the dev client and user once and prints how to sign in.
// It is only reached in dev mode; it prints to the terminal, not to the log.
func (e *env) bootstrapDev(ctx context.Context, d *deps) error {
	if err := os.MkdirAll(d.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(d.cfg.DataDir, "dev-credentials.json")
	var dc devCredentials
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &dc); err != nil {
			return fmt.Errorf("dev credentials in %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		dc = devCredentials{ClientID: "dev-client", ClientSecret: clients.GenerateSecret(), Username: "dev"}
		for dc.Password == "" || identity.ValidatePassword(dc.Password, dc.Username, dc.Username+"@example.com", nil) != nil {
			dc.Password = clients.GenerateSecret()[:24] // random; redrawn in the rare case it holds "dev"
		}
	default:
		return fmt.Errorf("read dev credentials: %w", err)
	}
	// The dev client may ask for the example audience (examples/orders
	// accepts aud "orders") and for the issuer, since authd's own API accepts
	// only tokens for itself or the client: tokens without an audience
	// parameter carry both. It has every grant, authorization_code with
	// loopback redirect URIs, and is first-party (no consent page). A client
	// kept from an earlier run, or from another issuer (another
	// AUTHD_HTTP_ADDR), is brought up to date.
	audience := []string{d.cfg.Issuer, devAudience}
	if c, err := d.store.GetClient(ctx, dc.ClientID); errors.Is(err, storage.ErrNotFound) {
		c, _, err := clients.Spec{
			ID: dc.ClientID, Name: "dev client", Secret: dc.ClientSecret, Introspect: true, Audience: audience,
			GrantTypes: oauth.SupportedGrantTypes(), Scopes: devScopes(),
			RedirectURIs: devRedirectURIs(), PostLogoutRedirectURIs: []string{devPostLogoutURI}, FirstParty: true,
		}.Record(ctx, d.hasher, oauth.SupportedGrantTypes())
		if err != nil {
			return err
		}
		if err := d.store.CreateClient(ctx, c); err != nil && !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("create dev client: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("dev client: %w", err)
	} else if updateDevClient(&c, audience) {
		if _, err := d.store.UpdateClient(ctx, dc.ClientID, func(c *storage.Client) error { updateDevClient(c, audience); return nil }); err != nil {
			return fmt.Errorf("dev client: %w", err)
		}
	}
	if _, err := d.store.GetUserByLogin(ctx, dc.Username); errors.Is(err, storage.ErrNotFound) {
		if _, err := d.identity.CreateUser(ctx, identity.NewUser{Username: dc.Username, Email: dc.Username + "@example.com", Password: dc.Password, Roles: []string{"admin"}}, identity.Meta{}); err != nil && !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("create dev user: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("dev user: %w", err)
	}
	out, _ := json.MarshalIndent(dc, "", "  ")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("write dev credentials: %w", err)
	}
	// The banner is for the person at the terminal: stdout, so that stderr
	// stays one JSON log stream (and the credentials stay out of it).
	fmt.Fprintf(e.stdout, `
authd dev mode — not for production
  issuer:        %[1]s
  dev client:    %[2]s / %[3]s
  dev user:      %[4]s / %[5]s  (roles user, admin)
  kept in:       %[6]s
sign in (a token for authd's API, /api/v1/...):
  curl -s -u '%[2]s:%[3]s' -d grant_type=password -d username=%[4]s -d password='%[5]s' %[1]s/oauth2/token
a token for the orders example (go run ./examples/orders -issuer %[1]s):
  curl -s -u '%[2]s:%[3]s' -d grant_type=password -d username=%[4]s -d password='%[5]s' -d audience=%[7]s %[1]s/oauth2/token
sign in through a browser (code flow + PKCE; redirect http://127.0.0.1:ANY-PORT/callback), then open %[9]s:
  WEBAPP_CLIENT_ID=%[2]s WEBAPP_CLIENT_SECRET='%[3]s' go run ./examples/webapp -issuer %[1]s -redirect-url %[8]s

`, d.cfg.Issuer, dc.ClientID, dc.ClientSecret, dc.Username, dc.Password, path, devAudience, devWebappCallback, devWebappURL)
	return nil
}

// gcPercentUnderLimit is the collector's GOGC while a soft memory limit is
// in effect and GOGC is not set: the heap may grow to five times what is
// live before a collection, the limit still bounds it. Measured on 2 CPUs,
// PostgreSQL, 16 connections (interleaved runs, GOGC 100 against 400):
// jwks 18,500-18,800 -> 22,300-24,000 req/s (authd's CPU per request
// 34-37 -> 27-28 us), client_credentials 7,600-7,700 -> 9,400-9,900 req/s,
// refresh 1,298-1,309 -> 1,329-1,387; password logins, mixed and every RSS
// target unchanged (the limit and the collection after each hash bound them).
const gcPercentUnderLimit = 400

// applyMemoryLimit sets the runtime's soft memory limit from
// AUTHD_MEMORY_LIMIT, unless GOMEMLIMIT is set (the runtime read it already),
// and, while a limit is in effect and GOGC is not set, the collector's
// percentage to gcPercentUnderLimit. Without a limit GOGC stays 100: the
// heap would have no other bound.
func (e *env) applyMemoryLimit(cfg config.Config, log *slog.Logger) {
	if e.setMemoryLimit == nil {
		return
	}
	if v, ok := e.lookupEnv("GOMEMLIMIT"); ok && v != "" {
		log.Debug("memory limit from GOMEMLIMIT", "gomemlimit", v)
	} else if n, err := cfg.MemoryLimitBytes(); err == nil && n > 0 { // validated already
		e.setMemoryLimit(n)
		log.Debug("memory limit", "bytes", n)
	}
	if e.setMemoryLimit(-1) == math.MaxInt64 || e.setGCPercent == nil {
		return
	}
	if v, ok := e.lookupEnv("GOGC"); ok && v != "" {
		log.Debug("collector percentage from GOGC", "gogc", v)
		return
	}
	e.setGCPercent(gcPercentUnderLimit)
	log.Debug("collector percentage under the memory limit", "gogc", gcPercentUnderLimit)
}

// pages builds the browser pages: the templates (AUTHD_TEMPLATES_DIR's,
// parsed now so that a broken page stops the start naming its file, or the
// embedded ones) and browser sessions on the store.
func (d *deps) pages(clientIP func(*http.Request) string) (*web.Pages, error) {
	set, err := templates.Embedded()
	if d.cfg.TemplatesDir != "" {
		set, err = templates.Dir(d.cfg.TemplatesDir)
	}
	if err != nil {
		return nil, fmt.Errorf("AUTHD_TEMPLATES_DIR: %w", err)
	}
	secret, old := secretBytes(d.cfg)
	var unavailable func(error)
	if d.metrics != nil {
		unavailable = d.metrics.DatabaseUnavailable
	}
	conns, err := buildConnectors(d.cfg)
	if err != nil {
		return nil, err
	}
	return web.New(web.Config{
		Connectors: conns, Federation: d.federate, UpstreamLogins: d.store,
		Issuer: d.cfg.Issuer, Secrets: append([][]byte{secret}, old...), Templates: set,
		Identity: d.identity, Users: d.store, SessionTTL: d.cfg.SessionTTL,
		Sessions: identity.NewSessions(d.store, identity.SessionOptions{
			TTL: d.cfg.SessionTTL, IdleTTL: d.cfg.SessionIdleTTL, Logger: d.log,
		}),
		ClientIP: clientIP, Logger: d.log, StoreUnavailable: unavailable,
	})
}
