package verify_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

func TestNewDiscoversAndVerifies(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	v := newVerifier(t, is, verify.Config{})
	for range 3 {
		if _, err := v.Verify(t.Context(), key.sign(t, claims(is.url()))); err != nil {
			t.Fatalf("Verify = %v; want nil", err)
		}
	}
	if d, j := is.discoveries.Load(), is.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("discovery fetched %d times, JWKS %d times; want 1 and 1 (keys are cached)", d, j)
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestNewFailures(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	doc := jwks(t, key.jwk())
	serve := func(t *testing.T, md func(base string) map[string]any, status int) string {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/.well-known/oauth-authorization-server":
				if status != http.StatusOK {
					w.WriteHeader(status)
					return
				}
				_ = json.NewEncoder(w).Encode(md(srv.URL))
			case "/jwks":
				_, _ = w.Write(doc)
			case "/huge":
				_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2<<20) + `]}`))
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cases := []struct {
		name   string
		md     func(base string) map[string]any
		status int
	}{
		{"metadata names another issuer", func(b string) map[string]any {
			return map[string]any{"issuer": "https://evil.example", "jwks_uri": b + "/jwks"}
		}, 200},
		{"no jwks_uri", func(b string) map[string]any { return map[string]any{"issuer": b} }, 200},
		{"jwks_uri not http", func(b string) map[string]any {
			return map[string]any{"issuer": b, "jwks_uri": "file:///etc/passwd"}
		}, 200},
		{"jwks_uri not found", func(b string) map[string]any {
			return map[string]any{"issuer": b, "jwks_uri": b + "/missing"}
		}, 200},
		{"key set too large", func(b string) map[string]any {
			return map[string]any{"issuer": b, "jwks_uri": b + "/huge"}
		}, 200},
		{"discovery fails", nil, http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, tc.md, tc.status)
			v, err := verify.New(t.Context(), verify.Config{Issuer: base, Audience: audience})
			if err == nil {
				v.Close()
				t.Fatalf("New(%s) = nil error; want an error", tc.name)
			}
		})
	}
	t.Run("issuer unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := verify.New(t.Context(), verify.Config{Issuer: srv.URL, Audience: audience})
		if !errors.Is(err, verify.ErrUnavailable) {
			t.Errorf("New(closed server) = %v; want ErrUnavailable", err)
		}
	})
	t.Run("issuer not http", func(t *testing.T) {
		if _, err := verify.New(t.Context(), verify.Config{Issuer: "ftp://auth.example.com", Audience: audience}); err == nil {
			t.Error("New(ftp issuer) = nil error; want an error")
		}
	})
}

func TestDiscoveryWithIssuerPath(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	var srv *httptest.Server
	var hits []string
	var mu sync.Mutex
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server/tenant":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL + "/tenant", "jwks_uri": srv.URL + "/tenant/jwks"})
		case "/tenant/jwks":
			_, _ = w.Write(jwks(t, key.jwk()))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	v, err := verify.New(t.Context(), verify.Config{Issuer: srv.URL + "/tenant", Audience: audience, Now: fixedNow})
	if err != nil {
		t.Fatalf("New(issuer with path) = %v; hits %v", err, hits)
	}
	defer v.Close()
	if _, err := v.Verify(t.Context(), key.sign(t, claims(srv.URL+"/tenant"))); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

func TestUnknownKidFlood(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	attacker := newKey(t, "ES256", "")
	is := newIssuer(t, jwks(t, key.jwk()))
	v := newVerifier(t, is, verify.Config{}) // MinRefetchInterval: the default 10s

	tokens := make([]string, 1000)
	for i := range tokens {
		attacker.kid = fmt.Sprintf("bogus-%d", i)
		tokens[i] = attacker.sign(t, claims(is.url()))
	}
	var wg sync.WaitGroup
	var accepted, wrongErr atomic.Int64
	work := make(chan string)
	for range 32 {
		wg.Go(func() {
			for tok := range work {
				_, err := v.Verify(t.Context(), tok)
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, verify.ErrUnknownKey):
					wrongErr.Add(1)
				}
			}
		})
	}
	for _, tok := range tokens {
		work <- tok
	}
	close(work)
	wg.Wait()
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d bogus-kid tokens accepted", n)
	}
	if n := wrongErr.Load(); n != 0 {
		t.Errorf("%d bogus-kid tokens failed with an error other than ErrUnknownKey", n)
	}
	// The test clock has not moved since New's fetch: every bogus kid came
	// within MinRefetchInterval of it, so none may cause a refetch.
	if n := is.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for 1000 bogus kids; want 1 (New's)", n)
	}
	if _, err := v.Verify(t.Context(), key.sign(t, claims(is.url()))); err != nil {
		t.Errorf("Verify(good token after the flood) = %v; want nil", err)
	}
}

func TestUnknownKidFloodAfterInterval(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	const interval = 500 * time.Millisecond
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: interval})
	bogus := newKey(t, "ES256", "bogus").sign(t, claims(is.url()))

	// Just inside MinRefetchInterval of New's fetch: no refetch.
	clk.Advance(interval - time.Millisecond)
	if _, err := v.Verify(t.Context(), bogus); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify(bogus kid, within the interval) = %v; want ErrUnknownKey", err)
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times within MinRefetchInterval of New; want 1", n)
	}

	// Once it has passed, a burst shares one refetch.
	clk.Advance(time.Millisecond)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), bogus); !errors.Is(err, verify.ErrUnknownKey) {
				t.Errorf("Verify(bogus kid #%d) = %v; want ErrUnknownKey", i, err)
			}
		})
	}
	wg.Wait()
	// New's fetch, then one refetch shared by the whole burst: the clock
	// stands still, so the burst cannot outlast the interval.
	if n := is.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times; want 2 (New, one shared refetch)", n)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := newKey(t, "ES256", "2026-01")
	newK := newKey(t, "RS256", "2026-02")
	is := newIssuer(t, jwks(t, oldKey.jwk()))
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: 50 * time.Millisecond})

	if _, err := v.Verify(t.Context(), oldKey.sign(t, claims(is.url()))); err != nil {
		t.Fatalf("Verify(old key) = %v", err)
	}
	is.setJWKS(jwks(t, oldKey.jwk(), newK.jwk()))
	clk.Advance(60 * time.Millisecond)
	before := is.jwksHits.Load()
	for range 5 {
		if _, err := v.Verify(t.Context(), newK.sign(t, claims(is.url()))); err != nil {
			t.Fatalf("Verify(new key after rotation) = %v; want nil", err)
		}
	}
	if n := is.jwksHits.Load() - before; n != 1 {
		t.Errorf("rotation caused %d JWKS fetches; want 1", n)
	}
	if _, err := v.Verify(t.Context(), oldKey.sign(t, claims(is.url()))); err != nil {
		t.Errorf("Verify(old key, still published) = %v; want nil", err)
	}

	// The old key is retired: a refetch (caused by another unknown kid) drops it.
	is.setJWKS(jwks(t, newK.jwk()))
	clk.Advance(60 * time.Millisecond)
	if _, err := v.Verify(t.Context(), newKey(t, "ES256", "unknown").sign(t, claims(is.url()))); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify(unknown) = %v; want ErrUnknownKey", err)
	}
	if _, err := v.Verify(t.Context(), oldKey.sign(t, claims(is.url()))); !errors.Is(err, verify.ErrUnknownKey) {
		t.Errorf("Verify(retired key) = %v; want ErrUnknownKey", err)
	}
}

func TestConditionalRefetch(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: 20 * time.Millisecond})
	clk.Advance(30 * time.Millisecond)
	if _, err := v.Verify(t.Context(), newKey(t, "ES256", "other").sign(t, claims(is.url()))); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify(unknown kid) = %v; want ErrUnknownKey", err)
	}
	if n := is.notModified.Load(); n != 1 {
		t.Errorf("refetch answered 304 %d times; want 1 (If-None-Match sent)", n)
	}
	if _, err := v.Verify(t.Context(), key.sign(t, claims(is.url()))); err != nil {
		t.Errorf("Verify(after 304) = %v; want nil", err)
	}
}

func TestIssuerUnreachableAfterWarmUp(t *testing.T) {
	key := newKey(t, "EdDSA", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: 10 * time.Millisecond})
	token := key.sign(t, claims(is.url()))
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("Verify(warm-up) = %v", err)
	}

	is.down.Store(true)
	clk.Advance(20 * time.Millisecond)
	// A refetch against the failing issuer keeps the last good set.
	_, err := v.Verify(t.Context(), newKey(t, "EdDSA", "new").sign(t, claims(is.url())))
	if !errors.Is(err, verify.ErrUnknownKey) || !errors.Is(err, verify.ErrUnavailable) {
		t.Errorf("Verify(unknown kid, issuer down) = %v; want ErrUnknownKey wrapping ErrUnavailable", err)
	}
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Errorf("Verify(known kid, issuer answering 502) = %v; want nil", err)
	}

	is.srv.Close() // now not even listening
	clk.Advance(20 * time.Millisecond)
	if _, err := v.Verify(t.Context(), newKey(t, "EdDSA", "new2").sign(t, claims(is.url()))); !errors.Is(err, verify.ErrUnknownKey) {
		t.Errorf("Verify(unknown kid, issuer gone) = %v; want ErrUnknownKey", err)
	}
	for range 3 {
		if _, err := v.Verify(t.Context(), token); err != nil {
			t.Errorf("Verify(known kid, issuer gone) = %v; want nil", err)
		}
	}
}

func TestKeyHeadersNeverFollowed(t *testing.T) {
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	attacker := newKey(t, "ES256", "evil")
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		_, _ = w.Write(jwks(t, attacker.jwk()))
	}))
	defer evil.Close()
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: time.Millisecond})

	attackerJWK, err := json.Marshal(attacker.jwk())
	if err != nil {
		t.Fatal(err)
	}
	var embedded map[string]any
	_ = json.Unmarshal(attackerJWK, &embedded)
	forged := []struct {
		name  string
		token string
	}{
		{"jku to the attacker's set", attacker.sign(t, claims(is.url()), "jku", evil.URL+"/jwks.json")},
		{"x5u to the attacker", attacker.sign(t, claims(is.url()), "x5u", evil.URL+"/cert.pem")},
		{"jwk of the attacker", attacker.sign(t, claims(is.url()), "jwk", embedded)},
		{"jku and a known kid", attacker.rawSign(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "k1", "jku": evil.URL}, claims(is.url()))},
		{"jwk and a known kid", attacker.rawSign(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "k1", "jwk": embedded}, claims(is.url()))},
	}
	for _, tc := range forged {
		clk.Advance(time.Millisecond) // each token may cause a refetch
		if c, err := v.Verify(t.Context(), tc.token); err == nil {
			t.Errorf("Verify(%s) = %+v; want an error", tc.name, c)
		}
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("the server named in jku/x5u was contacted %d times; want 0", n)
	}
	// A header with jku, x5u or jwk is refused before its kid is looked up
	// (package internal/jws reads alg, kid and typ only), so none of the
	// tokens caused a refetch either.
	if n := is.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times; want 1 (New's)", n)
	}
}

func TestConcurrentVerifyDuringRotation(t *testing.T) {
	keys := []*testKey{newKey(t, "ES256", "a"), newKey(t, "EdDSA", "b"), newKey(t, "ES256", "c")}
	is := newIssuer(t, jwks(t, keys[0].jwk()))
	v, clk := newVerifierClock(t, is, verify.Config{MinRefetchInterval: time.Millisecond})
	tokens := make([]string, len(keys))
	for i, k := range keys {
		tokens[i] = k.sign(t, claims(is.url()))
	}
	// verified[i] is closed once a verifying goroutine has accepted tokens[i].
	verified := make([]chan struct{}, len(keys))
	once := make([]sync.Once, len(keys))
	for i := range verified {
		verified[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (g + i) % len(tokens)
				_, err := v.Verify(t.Context(), tokens[k])
				if err != nil && !errors.Is(err, verify.ErrUnknownKey) {
					t.Errorf("Verify = %v; want nil or ErrUnknownKey", err)
					return
				}
				if err == nil {
					once[k].Do(func() { close(verified[k]) })
				}
			}
		})
	}
	// Publish one more key at a time while the goroutines verify; each new
	// key must be picked up by a refetch that an unknown kid causes once the
	// interval has passed. (A step that published nothing new would have no
	// event to wait for, and a refetch still in flight could then stamp its
	// end with the next step's time and hold the next refetch back.)
	for i := 2; i <= len(keys); i++ {
		set := make([]jose.JSONWebKey, 0, i)
		for _, k := range keys[:i] {
			set = append(set, k.jwk())
		}
		is.setJWKS(jwks(t, set...))
		clk.Advance(time.Millisecond)
		select {
		case <-verified[i-1]:
		case <-time.After(10 * time.Second):
			close(stop)
			wg.Wait()
			t.Fatalf("token of key %d never verified during the rotation", i-1)
		}
	}
	close(stop)
	wg.Wait()
	for i, tok := range tokens {
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("Verify(token %d after all keys published) = %v", i, err)
		}
	}
}
