package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	maxIntrospectionBytes = 64 << 10
	maxIntrospectionCache = 10000
)

// introspector asks the issuer's introspection endpoint (RFC 7662) and
// remembers the answers briefly.
type introspector struct {
	endpoint     string
	clientID     string
	clientSecret string
	client       *http.Client
	ttl          time.Duration
	now          func() time.Time // clock.now

	group singleflight.Group
	mu    sync.Mutex
	cache map[[sha256.Size]byte]introspection
}

type introspection struct {
	active  bool
	expires time.Time // on introspector.now (time.Now: monotonic)
}

// setupIntrospection enables online mode when client credentials are given.
// cfg.IntrospectionEndpoint overrides discovered.
func (v *Verifier) setupIntrospection(cfg Config, client *http.Client, discovered string) error {
	if cfg.IntrospectionClientID == "" && cfg.IntrospectionClientSecret == "" {
		return nil
	}
	if cfg.IntrospectionClientID == "" || cfg.IntrospectionClientSecret == "" {
		return errors.New("verify: online mode needs both IntrospectionClientID and IntrospectionClientSecret")
	}
	endpoint := cfg.IntrospectionEndpoint
	if endpoint == "" {
		endpoint = discovered
	}
	if endpoint == "" {
		return errors.New("verify: online mode needs an introspection endpoint, and the issuer's metadata names none")
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return fmt.Errorf("verify: issuer: %w", err)
	}
	if _, err := checkURL(endpoint, issuer.Scheme); err != nil {
		return fmt.Errorf("verify: introspection endpoint: %w", err)
	}
	ttl := cfg.IntrospectionCacheTTL
	if ttl == 0 {
		ttl = defaultIntrospectionTTL
	}
	v.intro = &introspector{
		endpoint:     endpoint,
		clientID:     cfg.IntrospectionClientID,
		clientSecret: cfg.IntrospectionClientSecret,
		client:       client,
		ttl:          ttl,
		now:          v.clock.now,
		cache:        make(map[[sha256.Size]byte]introspection),
	}
	return nil
}

// Introspect verifies token locally, then asks the issuer's introspection
// endpoint whether it is still active (RFC 7662), so that a revoked token
// fails at once with ErrRevoked. Answers are reused for the same token for
// Config.IntrospectionCacheTTL. When the endpoint cannot be asked, the error
// matches ErrUnavailable: online mode fails closed.
//
// Like Verify, it refuses a DPoP-bound token; OnlineMiddleware in a DPoP
// mode checks such a token's proof, then asks.
func (v *Verifier) Introspect(ctx context.Context, token string) (*Claims, error) {
	c, err := v.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := v.active(ctx, token); err != nil {
		return nil, err
	}
	return c, nil
}

// active asks the introspection endpoint (or its cache) whether token, which
// the caller verified, is still active.
func (v *Verifier) active(ctx context.Context, token string) error {
	in := v.intro
	if in == nil {
		return fmt.Errorf("%w: online mode is not configured (IntrospectionClientID)", ErrUnavailable)
	}
	key := sha256.Sum256([]byte(token))
	active, ok := in.lookup(key)
	if !ok {
		ch := in.group.DoChan(string(key[:]), func() (any, error) {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
			defer cancel()
			active, err := in.ask(rctx, token)
			if err != nil {
				return false, err
			}
			in.store(key, active)
			return active, nil
		})
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case res := <-ch:
			if res.Err != nil {
				return res.Err
			}
			active = res.Val.(bool)
		}
	}
	if !active {
		return ErrRevoked
	}
	return nil
}

func (in *introspector) lookup(key [sha256.Size]byte) (active, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	e, ok := in.cache[key]
	if !ok || !in.now().Before(e.expires) {
		return false, false
	}
	return e.active, true
}

// store remembers an answer. When the cache is full it drops expired
// answers, then, if still full, an arbitrary half: a bounded cache that only
// costs an extra question now and then.
func (in *introspector) store(key [sha256.Size]byte, active bool) {
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= maxIntrospectionCache {
		for k, e := range in.cache {
			if !now.Before(e.expires) {
				delete(in.cache, k)
			}
		}
		for k := range in.cache {
			if len(in.cache) < maxIntrospectionCache/2 {
				break
			}
			delete(in.cache, k)
		}
	}
	in.cache[key] = introspection{active: active, expires: now.Add(in.ttl)}
}

// ask POSTs the token to the introspection endpoint, authenticating with
// client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded first).
func (in *introspector) ask(ctx context.Context, token string) (bool, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, fmt.Errorf("verify: introspection request: %w", err)
	}
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.clientSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := do(in.client, req, maxIntrospectionBytes)
	if err != nil {
		return false, fmt.Errorf("verify: introspection: %w", err)
	}
	if resp.status != http.StatusOK {
		return false, fmt.Errorf("verify: introspection: %w: status %d", ErrUnavailable, resp.status)
	}
	var answer struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(resp.body, &answer); err != nil || answer.Active == nil {
		return false, fmt.Errorf("verify: introspection: %w: answer has no active member", ErrUnavailable)
	}
	return *answer.Active, nil
}
