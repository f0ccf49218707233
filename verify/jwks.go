package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/authd/authd/internal/jws"
)

const (
	minRSABits       = 2048
	maxKeySetBytes   = 1 << 20
	maxMetadataBytes = 1 << 20
	minRefresh       = time.Minute
	maxRefresh       = 24 * time.Hour
	defaultRefresh   = 5 * time.Minute
)

// publicKey is one verification key, parsed once when the key set is read.
type publicKey struct {
	kid string
	alg jws.Alg
	pub crypto.PublicKey // of alg
}

// keySet is an immutable snapshot of the issuer's keys; a refresh replaces
// it whole, so readers need no lock.
type keySet struct {
	byKID map[string]*publicKey
	etag  string
}

// jwkMeta holds the JWK members that go-jose does not expose.
type jwkMeta struct {
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
}

// parseKeySet reads a JWKS document and keeps the keys usable for verifying
// with an allowed algorithm; others are skipped with a log line. A set with
// no usable key is an error.
func parseKeySet(doc []byte, allowed jws.Alg, log *slog.Logger) (*keySet, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("verify: key set is not a JWKS document: %w", err)
	}
	ks := &keySet{byKID: make(map[string]*publicKey, len(set.Keys))}
	for i, raw := range set.Keys {
		key, err := parseKey(raw, allowed)
		if err != nil {
			log.Warn("verify: skipping JWK", slog.Int("index", i), slog.String("error", err.Error()))
			continue
		}
		if _, dup := ks.byKID[key.kid]; dup {
			log.Warn("verify: skipping JWK with a duplicate kid", slog.Int("index", i), slog.String("kid", key.kid))
			continue
		}
		ks.byKID[key.kid] = key
	}
	if len(ks.byKID) == 0 {
		return nil, fmt.Errorf("verify: key set has no usable key among %d", len(set.Keys))
	}
	return ks, nil
}

func parseKey(raw json.RawMessage, allowed jws.Alg) (*publicKey, error) {
	var meta jwkMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("verify: JWK: %w", err)
	}
	if meta.Kid == "" {
		return nil, errors.New("verify: JWK has no kid")
	}
	if meta.Use != "" && meta.Use != "sig" {
		return nil, fmt.Errorf("verify: JWK %q: use %q is not sig", short(meta.Kid), short(meta.Use))
	}
	if meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify") {
		return nil, fmt.Errorf("verify: JWK %q: key_ops lacks verify", short(meta.Kid))
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("verify: JWK %q: %w", short(meta.Kid), err)
	}
	if !jwk.IsPublic() {
		return nil, fmt.Errorf("verify: JWK %q holds private or symmetric key material; refusing it", short(meta.Kid))
	}
	key := &publicKey{kid: meta.Kid}
	var inferred jws.Alg
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("verify: JWK %q: curve %s is not P-256", short(meta.Kid), k.Curve.Params().Name)
		}
		inferred = jws.ES256
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("verify: JWK %q: RSA key of %d bits, want at least %d", short(meta.Kid), k.N.BitLen(), minRSABits)
		}
		inferred = jws.RS256
	case ed25519.PublicKey:
		inferred = jws.EdDSA
	default:
		return nil, fmt.Errorf("verify: JWK %q: key type %T not supported", short(meta.Kid), jwk.Key)
	}
	key.alg, key.pub = inferred, jwk.Key
	if jwk.Algorithm != "" {
		a, ok := jws.ParseAlg(jwk.Algorithm)
		if !ok || a != inferred {
			return nil, fmt.Errorf("verify: JWK %q: alg %q does not fit its %s key", short(meta.Kid), short(jwk.Algorithm), inferred)
		}
	}
	if allowed&key.alg == 0 {
		return nil, fmt.Errorf("verify: JWK %q: alg %s not allowed", short(meta.Kid), key.alg)
	}
	return key, nil
}

// remoteKeys keeps Verifier.keys fresh from the issuer's jwks_uri.
type remoteKeys struct {
	url        string
	client     *http.Client
	allowed    jws.Alg
	log        *slog.Logger
	keys       *atomic.Pointer[keySet]
	minRefetch time.Duration
	clock      clock

	group singleflight.Group
	// lastFetch is when the last fetch attempt ended, successful or not, on
	// clock; nil before the first. fetch stores it before it installs a new
	// set, so whoever sees the set also sees its time.
	lastFetch atomic.Pointer[time.Time]
}

// fetchResult is what a fetch attempt shares with every waiting caller.
type fetchResult struct {
	interval time.Duration // until the next scheduled refresh
}

// fetch reads the key set once, conditional on the current ETag, and
// installs it. It returns the refresh interval that the response's
// Cache-Control asks for, bounded to [1m, 24h]. On failure the current set
// stays in place.
func (r *remoteKeys) fetch(ctx context.Context) (time.Duration, error) {
	cur := r.keys.Load()
	var etag string
	if cur != nil {
		etag = cur.etag
	}
	resp, err := get(ctx, r.client, r.url, etag, maxKeySetBytes)
	end := r.clock.now()
	r.lastFetch.Store(&end)
	if err != nil {
		return 0, fmt.Errorf("verify: fetch key set: %w", err)
	}
	interval := refreshInterval(resp.header.Get("Cache-Control"))
	switch {
	case resp.status == http.StatusNotModified && cur != nil:
		if newTag := resp.header.Get("ETag"); newTag != "" && newTag != cur.etag {
			r.keys.Store(&keySet{byKID: cur.byKID, etag: newTag})
		}
		return interval, nil
	case resp.status != http.StatusOK:
		return 0, fmt.Errorf("verify: fetch key set: %w: status %d", ErrUnavailable, resp.status)
	}
	ks, err := parseKeySet(resp.body, r.allowed, r.log)
	if err != nil {
		return 0, err
	}
	ks.etag = resp.header.Get("ETag")
	r.keys.Store(ks)
	return interval, nil
}

// refetch refreshes the key set for an unknown kid, unless a fetch ended less
// than minRefetch ago. Concurrent callers share one fetch; each may leave on
// its own ctx. It always returns the current set, and the fetch's error.
func (r *remoteKeys) refetch(ctx context.Context) (*keySet, error) {
	if r.recent() {
		return r.keys.Load(), nil
	}
	ch := r.group.DoChan("jwks", func() (any, error) {
		if r.recent() { // another caller's fetch just ended
			return fetchResult{}, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
		defer cancel()
		interval, err := r.fetch(fctx)
		return fetchResult{interval: interval}, err
	})
	select {
	case <-ctx.Done():
		return r.keys.Load(), ctx.Err()
	case res := <-ch:
		return r.keys.Load(), res.Err
	}
}

func (r *remoteKeys) recent() bool {
	last := r.lastFetch.Load()
	return last != nil && r.clock.now().Sub(*last) < r.minRefetch
}

// run refreshes the key set on schedule until ctx ends. After a failure it
// retries sooner, backing off, while the last good set keeps serving.
func (r *remoteKeys) run(ctx context.Context, interval time.Duration) {
	retry := r.minRefetch
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.clock.after(jitter(wait)):
		}
		// DoChan, not Do: Close must not wait for a refetch in flight.
		ch := r.group.DoChan("jwks", func() (any, error) {
			fctx, cancel := context.WithTimeout(ctx, httpTimeout)
			defer cancel()
			interval, err := r.fetch(fctx)
			return fetchResult{interval: interval}, err
		})
		var res singleflight.Result
		select {
		case <-ctx.Done():
			return
		case res = <-ch:
		}
		switch {
		case res.Err != nil:
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("verify: key set refresh failed; keeping the last good set",
				slog.String("url", r.url), slog.String("error", res.Err.Error()), slog.Duration("retry_in", retry))
			wait = retry
			retry = min(2*retry, defaultRefresh)
		default:
			retry = r.minRefetch
			wait = res.Val.(fetchResult).interval
			if wait == 0 {
				wait = minRefresh
			}
		}
	}
}

// jitter spreads refreshes of many replicas: d minus up to 10%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - rand.N(d/10+1)
}

// refreshInterval reads max-age from Cache-Control, bounded to [1m, 24h];
// 5m when absent.
func refreshInterval(cacheControl string) time.Duration {
	d := defaultRefresh
	for directive := range strings.SplitSeq(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return minRefresh
		case "max-age":
			if secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && secs >= 0 {
				d = time.Duration(min(secs, int64(maxRefresh/time.Second))) * time.Second
			}
		}
	}
	return min(max(d, minRefresh), maxRefresh)
}
