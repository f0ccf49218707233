// Command authbench is a load generator for OAuth 2.0 authorization servers.
//
// It reads the server's endpoints from its metadata
// (<issuer>/.well-known/oauth-authorization-server, falling back to
// openid-configuration), prepares what the scenarios need (clients, users and
// token pools), then drives one scenario at a time at a fixed number of
// connections for a bounded duration and request count, with a live progress
// line on stderr, and ends with a table (req/s, p50, p90, p99, max, errors by
// status) or JSON (--json).
//
// Against authd it provisions its own clients and users with the authd CLI
// (--authd PATH, run with this process's AUTHD_* environment). Against any
// other server, pass a pre-registered client and user (--client-id,
// --client-secret, --username, --password; secrets may come from the
// environment instead, see --help).
//
// Scenarios: password, refresh (each refresh token is used exactly once: every
// worker follows its own rotation chain), client-credentials, introspect,
// revoke (each token revoked once, from a pool minted beforehand), jwks, and
// mixed (a weighted blend of all of them); and, only when named, code
// (browser sign-ins: the authorization request, the login form, the code,
// its exchange with PKCE, with each step's figures; see authorize.go).
//
// With -dpop, every simulated client holds an ES256 key and sends a fresh
// DPoP proof (RFC 9449: new jti, htm POST, htu the token endpoint) with
// each of its token requests, so that its tokens are bound to its key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Scenario names, in the order "all" runs them.
var scenarioNames = []string{"password", "refresh", "client-credentials", "introspect", "revoke", "jwks", "mixed"}

// extraScenarios run only when named: not part of "all".
var extraScenarios = []string{"code"}

// Bounds on a run: authbench always stops by itself.
const (
	maxDuration    = time.Hour
	maxConcurrency = 1024
)

type config struct {
	issuer      string
	scenarios   []string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	maxRequests int64
	repeat      int
	timeout     time.Duration
	jsonOut     bool
	jsonFile    string
	label       string
	pid         int
	allowRemote bool

	authdBin string
	users    int
	cleanup  bool

	clientID, clientSecret string
	introID, introSecret   string
	username, password     string
	scope                  string
	revokePool             int
	dpop                   bool
	redirectURI            string // code, without -authd
	codeSSO                bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "authbench:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program; environ is the environment handed to the authd
// CLI and read for secrets.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, environ, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, environ, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.runAll(ctx)
	if err != nil {
		return err
	}
	if cfg.jsonFile != "" {
		f, err := os.Create(cfg.jsonFile)
		if err != nil {
			return fmt.Errorf("results file: %w", err)
		}
		err = rep.writeJSON(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("results file: %w", err)
		}
	}
	if cfg.jsonOut {
		return rep.writeJSON(stdout)
	}
	return rep.writeTable(stdout)
}

func getenv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func parseFlags(args, environ []string, stderr io.Writer) (config, error) {
	var (
		cfg       config
		scenarios string
	)
	fs := flag.NewFlagSet("authbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: authbench [flags]

Drives an OAuth 2.0 server's token, introspection, revocation and JWKS
endpoints (found through its metadata) and reports req/s and latencies.

Scenarios (-scenario, comma-separated, or "all"): %s; and, only when
named, %s (browser sign-ins with PKCE, each step reported: see -code-sso).

Against authd, -authd PATH provisions clients and users with the authd CLI,
run with this process's AUTHD_* environment. Against another server, give a
client allowed the password, refresh_token and client_credentials grants and
a user; secrets may come from AUTHBENCH_CLIENT_SECRET,
AUTHBENCH_INTROSPECT_CLIENT_SECRET and AUTHBENCH_PASSWORD instead of flags.

With -dpop, each worker holds an ES256 key and sends a fresh DPoP proof
(RFC 9449) with every token request; its tokens must come back of type DPoP.

Flags:
`, strings.Join(scenarioNames, ", "), strings.Join(extraScenarios, ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.issuer, "issuer", "http://127.0.0.1:8080", "issuer URL; endpoints come from its metadata")
	fs.StringVar(&scenarios, "scenario", "all", "scenarios to run, one at a time: comma-separated names or all")
	fs.IntVar(&cfg.concurrency, "c", 16, "concurrent connections (workers)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "measured duration of each run")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	fs.Int64Var(&cfg.maxRequests, "n", 5_000_000, "at most this many measured requests per run")
	fs.IntVar(&cfg.repeat, "repeat", 1, "runs of each scenario; with more than one, the medians are reported too")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&cfg.jsonFile, "o", "", "also write the results as JSON to this file")
	fs.StringVar(&cfg.label, "label", "", "label of this target in the output (e.g. sqlite, postgres)")
	fs.IntVar(&cfg.pid, "pid", 0, "process id of the server on this machine: report its RSS after each run (Linux)")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a target that is not on a loopback address (only your own servers)")
	fs.StringVar(&cfg.authdBin, "authd", "", "path to the authd binary: provision clients and users with its CLI")
	fs.IntVar(&cfg.users, "users", 0, "users to create with -authd (default: one per connection, so that no two connections sign in as one user at once: one account admits at most the lockout threshold of checks at once, the rest queue)")
	fs.BoolVar(&cfg.cleanup, "cleanup", true, "with -authd, delete the clients authbench created when done")
	fs.StringVar(&cfg.clientID, "client-id", "", "pre-registered client (without -authd)")
	fs.StringVar(&cfg.clientSecret, "client-secret", "", "its secret (or AUTHBENCH_CLIENT_SECRET)")
	fs.StringVar(&cfg.introID, "introspect-client-id", "", "client that introspects (default: -client-id)")
	fs.StringVar(&cfg.introSecret, "introspect-client-secret", "", "its secret (or AUTHBENCH_INTROSPECT_CLIENT_SECRET)")
	fs.StringVar(&cfg.username, "username", "", "pre-registered user for the password and refresh grants (without -authd)")
	fs.StringVar(&cfg.password, "password", "", "the user's password (or AUTHBENCH_PASSWORD)")
	fs.StringVar(&cfg.scope, "scope", "", "scope parameter of token requests (e.g. offline_access for servers that need it)")
	fs.IntVar(&cfg.revokePool, "revoke-pool", 0, "tokens minted before each revoke run (default: enough for 1,500 req/s)")
	fs.BoolVar(&cfg.dpop, "dpop", false, "DPoP (RFC 9449): each worker holds an ES256 key and sends a fresh proof with every token request; the server must advertise ES256 in dpop_signing_alg_values_supported and answer token_type DPoP")
	fs.StringVar(&cfg.redirectURI, "redirect-uri", "", "code scenario without -authd: a redirect URI registered for -client-id (nothing needs to listen there)")
	fs.BoolVar(&cfg.codeSSO, "code-sso", false, "code scenario: ride the worker's browser session after its first sign-in (single sign-on), instead of posting the login form in every round trip (a fresh browser)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.clientSecret = firstNonEmpty(cfg.clientSecret, getenv(environ, "AUTHBENCH_CLIENT_SECRET"))
	cfg.introSecret = firstNonEmpty(cfg.introSecret, getenv(environ, "AUTHBENCH_INTROSPECT_CLIENT_SECRET"))
	cfg.password = firstNonEmpty(cfg.password, getenv(environ, "AUTHBENCH_PASSWORD"))

	var problems []error
	switch {
	case scenarios == "all":
		cfg.scenarios = slices.Clone(scenarioNames)
	default:
		for _, s := range strings.Split(scenarios, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(scenarioNames, s) && !slices.Contains(extraScenarios, s) {
				problems = append(problems, fmt.Errorf("unknown scenario %q (want %s, %s or all)", s, strings.Join(scenarioNames, ", "), strings.Join(extraScenarios, ", ")))
				continue
			}
			cfg.scenarios = append(cfg.scenarios, s)
		}
	}
	if cfg.concurrency < 1 || cfg.concurrency > maxConcurrency {
		problems = append(problems, fmt.Errorf("-c must be in [1, %d]", maxConcurrency))
	}
	if cfg.duration <= 0 || cfg.duration > maxDuration {
		problems = append(problems, fmt.Errorf("-d must be in (0, %s]", maxDuration))
	}
	if cfg.warmup < 0 || cfg.warmup > maxDuration {
		problems = append(problems, fmt.Errorf("-warmup must be in [0, %s]", maxDuration))
	}
	if cfg.maxRequests < 1 {
		problems = append(problems, errors.New("-n must be positive"))
	}
	if cfg.repeat < 1 || cfg.repeat > 100 {
		problems = append(problems, errors.New("-repeat must be in [1, 100]"))
	}
	if cfg.timeout <= 0 {
		problems = append(problems, errors.New("-timeout must be positive"))
	}
	if cfg.revokePool < 0 || cfg.revokePool > 10_000_000 {
		problems = append(problems, errors.New("-revoke-pool must be in [0, 10000000]"))
	}
	if cfg.authdBin != "" {
		if cfg.users == 0 {
			cfg.users = cfg.concurrency
		}
		if cfg.users < 1 || cfg.users > 1000 {
			problems = append(problems, errors.New("-users must be in [1, 1000]"))
		}
		if cfg.clientID != "" || cfg.username != "" {
			problems = append(problems, errors.New("-authd provisions its own clients and users: drop -client-id and -username"))
		}
	} else {
		if cfg.clientID == "" || cfg.clientSecret == "" {
			problems = append(problems, errors.New("without -authd, -client-id and -client-secret are required"))
		}
		needsUser := slices.ContainsFunc(cfg.scenarios, func(s string) bool { return s == "password" || s == "refresh" || s == "mixed" })
		if needsUser && (cfg.username == "" || cfg.password == "") {
			problems = append(problems, errors.New("without -authd, the password, refresh and mixed scenarios need -username and -password"))
		}
		if slices.Contains(cfg.scenarios, "code") && (cfg.redirectURI == "" || cfg.username == "" || cfg.password == "") {
			problems = append(problems, errors.New("without -authd, the code scenario needs -redirect-uri, -username and -password"))
		}
	}
	if err := checkTarget(cfg.issuer, cfg.allowRemote); err != nil {
		problems = append(problems, err)
	}
	return cfg, errors.Join(problems...)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkTarget refuses anything but an http(s) URL on a loopback address,
// unless remote targets are explicitly allowed.
func checkTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %q is not an http(s) URL", raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not on a loopback address (use -allow-remote for your own servers)", raw)
}
