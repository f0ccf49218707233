package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/internal/jws"
)

// Errors returned by Verify and Introspect. They may be wrapped with detail;
// compare with errors.Is.
var (
	// ErrInvalid reports a malformed token, a bad signature, or an algorithm,
	// typ or header that is not accepted.
	ErrInvalid = errors.New("verify: invalid token")
	// ErrExpired reports a token whose exp has passed, beyond the leeway.
	ErrExpired = errors.New("verify: token expired")
	// ErrNotYetValid reports a token whose nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("verify: token not valid yet")
	// ErrIssuer reports an iss other than Config.Issuer.
	ErrIssuer = errors.New("verify: wrong issuer")
	// ErrAudience reports an aud that does not contain Config.Audience.
	ErrAudience = errors.New("verify: wrong audience")
	// ErrUnknownKey reports a kid that is not in the issuer's key set, even
	// after a refetch.
	ErrUnknownKey = errors.New("verify: unknown signing key")
	// ErrRevoked reports a token that the introspection endpoint calls inactive.
	ErrRevoked = errors.New("verify: token revoked")
	// ErrUnavailable reports that the authorization server could not be asked
	// (discovery, key set or introspection), or that the DPoP replay cache
	// failed: both fail closed.
	ErrUnavailable = errors.New("verify: authorization server unavailable")
	// ErrDPoPProof reports a DPoP proof (RFC 9449 §4.3) that is missing,
	// malformed, badly signed, outside its time window, already used, made
	// for another request or another access token, or signed by another key
	// than the one the token is bound to. The middleware answers it with
	// error="invalid_dpop_proof".
	ErrDPoPProof = errors.New("verify: invalid DPoP proof")
	// ErrDPoPBinding reports a token presented against its binding: a
	// DPoP-bound token (with a cnf claim) as a bearer token (RFC 9449 §7.2),
	// or an unbound token where a DPoP-bound one is needed. It also matches
	// ErrInvalid.
	ErrDPoPBinding = fmt.Errorf("%w: DPoP binding", ErrInvalid)
)

// MaxTokenSize is the largest token Verify looks at, in bytes.
const MaxTokenSize = 8 << 10

const (
	defaultLeeway             = 30 * time.Second
	maxLeeway                 = 60 * time.Second
	defaultMinRefetchInterval = 10 * time.Second
	defaultIntrospectionTTL   = 5 * time.Second
	httpTimeout               = 10 * time.Second
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the exact iss every token must carry. New also reads the
	// issuer's metadata from it (RFC 8414).
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// Algorithms is the allowlist of JWS algorithms; the default is ES256,
	// RS256 and EdDSA, which are also the only ones supported.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat: 30s when zero,
	// at most 60s.
	Leeway time.Duration
	// HTTPClient fetches metadata, keys and introspection answers. When nil,
	// a client with a 10s timeout that refuses redirects to other schemes
	// and downgrades from https is used. Every request is also bounded by a
	// 10s deadline of its own.
	HTTPClient *http.Client
	// MinRefetchInterval is the least time between two key-set fetches
	// caused by an unknown kid (10s when zero), so that a flood of tokens with
	// made-up kids cannot hammer the authorization server.
	MinRefetchInterval time.Duration
	// Now is the clock for exp, nbf and iat, and for DPoP proofs' iat and
	// the default DPoP replay cache; time.Now when nil. It is used for
	// nothing else: MinRefetchInterval, the key-set refresh and the
	// introspection cache always run on the real clock.
	Now func() time.Time
	// Logger receives refresh failures and rejected tokens (never the token
	// itself). Nothing is logged when nil.
	Logger *slog.Logger
	// LogRejections logs why the middleware refused a token (expired, wrong
	// aud, bad signature, ...) at Info instead of Debug: turn it on while
	// setting a service up, so that a wrong audience shows in the log.
	// Unavailability is always logged at Warn.
	LogRejections bool
	// Realm is the realm in WWW-Authenticate challenges; Audience when empty.
	Realm string

	// IntrospectionEndpoint overrides the introspection_endpoint of the
	// issuer's metadata; NewStatic needs it for online mode.
	IntrospectionEndpoint string
	// IntrospectionClientID and IntrospectionClientSecret authenticate the
	// resource server to the introspection endpoint (client_secret_basic).
	// Online mode (Introspect, OnlineMiddleware) needs them.
	IntrospectionClientID     string
	IntrospectionClientSecret string
	// IntrospectionCacheTTL is how long an introspection answer is reused
	// for the same token: 5s when zero.
	IntrospectionCacheTTL time.Duration

	// DPoP says which tokens Middleware and OnlineMiddleware take (RFC
	// 9449): DPoPOff (the default: Bearer only, bound tokens refused),
	// DPoPAccept (Bearer for unbound tokens, the DPoP scheme with a proof
	// for bound ones) or DPoPRequire (bound tokens with a proof only).
	DPoP DPoPMode
	// PublicURL is where clients reach this service: scheme://host[:port],
	// and any path prefix that a proxy in front removes. A DPoP proof's htu
	// must be PublicURL followed by the request's path. When empty, the
	// scheme and host come from the request itself (r.TLS, r.Host): set it
	// behind a proxy or load balancer, whose forwarded headers are never
	// trusted.
	PublicURL string
	// DPoPReplayCache remembers accepted proofs so that none is accepted
	// twice; by default an in-memory cache of at most 100,000 proofs for
	// this process (NewMemoryReplayCache). Replicas of a service should
	// share one.
	DPoPReplayCache ReplayCache
	// DPoPWindow is how far a proof's iat may be from now, either way: 60s
	// when zero, at most 5 minutes.
	DPoPWindow time.Duration
}

// Verifier checks authd access tokens. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	realm    string
	allowed  jws.Alg // a set
	leeway   time.Duration
	now      func() time.Time // Config.Now: for exp, nbf and iat only
	clock    clock            // for the caches and the refresh schedule
	log      *slog.Logger
	rejectAt slog.Level // the level of "token rejected" lines

	dpop dpopConfig

	keys   atomic.Pointer[keySet]
	remote *remoteKeys   // nil for a static key set
	intro  *introspector // nil when online mode is not configured

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New reads the issuer's metadata from <Issuer>/.well-known/oauth-authorization-server
// (RFC 8414), fetches its jwks_uri, and starts a goroutine that refreshes the
// key set as its Cache-Control allows; Close stops it. ctx bounds only these
// first fetches. New fails when the issuer cannot be reached: the caller
// decides whether to retry or exit.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	return newRemote(ctx, cfg, realClock)
}

func newRemote(ctx context.Context, cfg Config, clk clock) (*Verifier, error) {
	v, err := newVerifier(cfg, clk)
	if err != nil {
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	md, err := discover(ctx, client, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if err := v.setupIntrospection(cfg, client, md.IntrospectionEndpoint); err != nil {
		return nil, err
	}
	minRefetch := cfg.MinRefetchInterval
	if minRefetch == 0 {
		minRefetch = defaultMinRefetchInterval
	}
	v.remote = &remoteKeys{
		url:        md.JWKSURI,
		client:     client,
		allowed:    v.allowed,
		log:        v.log,
		keys:       &v.keys,
		minRefetch: minRefetch,
		clock:      v.clock,
	}
	interval, err := v.remote.fetch(ctx)
	if err != nil {
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	v.stop = stop
	v.done = make(chan struct{})
	go func() {
		defer close(v.done)
		v.remote.run(loopCtx, interval)
	}()
	return v, nil
}

// NewStatic returns a Verifier over a fixed JWKS document (RFC 7517): no
// discovery, no refresh; a token with an unknown kid fails with ErrUnknownKey.
// Online mode needs Config.IntrospectionEndpoint.
func NewStatic(cfg Config, jwks []byte) (*Verifier, error) {
	v, err := newVerifier(cfg, realClock)
	if err != nil {
		return nil, err
	}
	ks, err := parseKeySet(jwks, v.allowed, v.log)
	if err != nil {
		return nil, err
	}
	v.keys.Store(ks)
	client := cfg.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	if err := v.setupIntrospection(cfg, client, ""); err != nil {
		return nil, err
	}
	return v, nil
}

func newVerifier(cfg Config, clk clock) (*Verifier, error) {
	var problems []error
	if cfg.Issuer == "" {
		problems = append(problems, errors.New("verify: Config.Issuer is required"))
	}
	if cfg.Audience == "" {
		problems = append(problems, errors.New("verify: Config.Audience is required"))
	}
	if cfg.Leeway < 0 {
		problems = append(problems, errors.New("verify: Config.Leeway must not be negative"))
	}
	if cfg.MinRefetchInterval < 0 {
		problems = append(problems, errors.New("verify: Config.MinRefetchInterval must not be negative"))
	}
	if cfg.IntrospectionCacheTTL < 0 {
		problems = append(problems, errors.New("verify: Config.IntrospectionCacheTTL must not be negative"))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	dp, dpopProblems := newDPoPConfig(cfg, now)
	problems = append(problems, dpopProblems...)
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{"ES256", "RS256", "EdDSA"}
	}
	var allowed jws.Alg
	for _, name := range algs {
		a, ok := jws.ParseAlg(name)
		if !ok {
			problems = append(problems, fmt.Errorf("verify: algorithm %q is not supported (ES256, RS256, EdDSA)", name))
			continue
		}
		allowed |= a
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = defaultLeeway
	}
	leeway = min(leeway, maxLeeway)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rejectAt := slog.LevelDebug
	if cfg.LogRejections {
		rejectAt = slog.LevelInfo
	}
	realm := cfg.Realm
	if realm == "" {
		realm = cfg.Audience
	}
	return &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		realm:    realm,
		allowed:  allowed,
		leeway:   leeway,
		now:      now,
		clock:    clk,
		log:      log,
		rejectAt: rejectAt,
		dpop:     dp,
	}, nil
}

// Close stops the background refresh started by New. It is safe to call
// more than once, and on a Verifier from NewStatic.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		if v.stop != nil {
			v.stop()
			<-v.done
		}
	})
	return nil
}

// Verify checks a bearer token locally: size, signature against the
// issuer's keys, alg, typ, iss, aud, exp, nbf and iat. It returns the
// token's claims, or an error that matches one of the package's sentinel
// errors with errors.Is. A token bound to a key (cnf, RFC 9449) is refused
// with ErrDPoPBinding: it is good only with a proof of that key, which
// VerifyDPoP checks. ctx bounds the key-set refetch that an unknown kid may
// cause.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	c, err := v.verifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.bound {
		return nil, fmt.Errorf("%w: the token is bound to a key (cnf) and needs a DPoP proof", ErrDPoPBinding)
	}
	return c, nil
}

// verifyToken is Verify without the binding check.
func (v *Verifier) verifyToken(ctx context.Context, token string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenSize)
	}
	t, err := jws.Parse(token, v.allowed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !t.TypIs("at+jwt") {
		return nil, fmt.Errorf("%w: typ %q is not at+jwt", ErrInvalid, short(string(t.Typ())))
	}
	key := v.keys.Load().byKID[string(t.Kid())]
	if key == nil {
		if key, err = v.refetchKey(ctx, string(t.Kid())); err != nil {
			return nil, err
		}
	}
	if key.alg != t.Alg() {
		return nil, fmt.Errorf("%w: alg %s does not match key %q", ErrInvalid, t.Alg(), short(key.kid))
	}
	b, err := t.Verify(key.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c, err := parseClaims(b)
	if err != nil {
		return nil, err
	}
	if err := v.checkClaims(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (v *Verifier) checkClaims(c *Claims) error {
	if c.Issuer != v.issuer {
		return fmt.Errorf("%w: %q", ErrIssuer, short(c.Issuer))
	}
	if !slices.Contains(c.Audience, v.audience) {
		return ErrAudience
	}
	now := v.now()
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	late := now.Add(v.leeway)
	if !c.NotBefore.IsZero() && late.Before(c.NotBefore) {
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if late.Before(c.IssuedAt) {
		return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// refetchKey looks kid up after refreshing the key set, at most once per
// MinRefetchInterval across all callers.
func (v *Verifier) refetchKey(ctx context.Context, kid string) (*publicKey, error) {
	if v.remote == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, short(kid))
	}
	ks, err := v.remote.refetch(ctx)
	if key := ks.byKID[kid]; key != nil {
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrUnknownKey, short(kid), err)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, short(kid))
}

// short bounds an attacker-chosen string quoted in an error.
func short(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
