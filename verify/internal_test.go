package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/internal/jws"
)

func TestRefreshInterval(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 5 * time.Minute},
		{"max-age=600", 10 * time.Minute},
		{"public, max-age=3600, must-revalidate", time.Hour},
		{"MAX-AGE=120", 2 * time.Minute},
		{`max-age="900"`, 15 * time.Minute},
		{"max-age=5", time.Minute},
		{"max-age=0", time.Minute},
		{"max-age=9999999999", 24 * time.Hour},
		{"max-age=-5", 5 * time.Minute},
		{"max-age=junk", 5 * time.Minute},
		{"no-store", time.Minute},
		{"max-age=600, no-cache", time.Minute},
	}
	for _, tc := range cases {
		if got := refreshInterval(tc.in); got != tc.want {
			t.Errorf("refreshInterval(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}

func TestBearerTokenSyntax(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"abc", true}, {"a.b.c", true}, {"a+b/c==", true}, {"a~b-c_d", true},
		{"", false}, {"==", false}, {"a b", false}, {"a=b", false}, {"a\"b", false}, {"é", false},
	} {
		if got := isB64Token(tc.s); got != tc.want {
			t.Errorf("isB64Token(%q) = %v; want %v", tc.s, got, tc.want)
		}
	}
}

func TestChallengeQuoting(t *testing.T) {
	got := challenge(`a"b\c`+"\r\nX: y", "error", "invalid_token")
	want := `Bearer realm="a\"b\\cX: y", error="invalid_token"`
	if got != want {
		t.Errorf("challenge = %q; want %q", got, want)
	}
	if got := challenge("", "error", "invalid_token"); got != `Bearer error="invalid_token"` {
		t.Errorf("challenge without realm = %q", got)
	}
}

// TestBackgroundRefresh drives run on a TestClock: it waits for the refresh
// that the interval asks for, retries a failing issuer with backoff while the
// last good set keeps serving, installs the new set once the issuer answers,
// then waits for its max-age.
func TestBackgroundRefresh(t *testing.T) {
	priv1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	doc := func(keys ...jose.JSONWebKey) []byte {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		return b
	}
	var hits atomic.Int64
	var failing atomic.Bool
	var current atomic.Pointer[[]byte]
	first := doc(jose.JSONWebKey{Key: &priv1.PublicKey, KeyID: "one", Algorithm: "ES256", Use: "sig"})
	current.Store(&first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(*current.Load())
	}))
	defer srv.Close()

	clk := NewTestClock(time.Unix(1_800_000_000, 0))
	var keys atomic.Pointer[keySet]
	r := &remoteKeys{
		url: srv.URL, client: srv.Client(), allowed: jws.ES256 | jws.RS256 | jws.EdDSA,
		log: slog.New(slog.DiscardHandler), keys: &keys, minRefetch: 10 * time.Second, clock: clk.clock(),
	}
	if _, err := r.fetch(t.Context()); err != nil {
		t.Fatalf("fetch = %v", err)
	}
	failing.Store(true)
	second := doc(
		jose.JSONWebKey{Key: &priv1.PublicKey, KeyID: "one", Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: &priv2.PublicKey, KeyID: "two", Algorithm: "ES256", Use: "sig"},
	)
	current.Store(&second)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, 5*time.Minute)
	}()
	// nextWait waits for run to arm its timer, checks that it is want less
	// at most 10% of jitter, and returns it. run arms it only once the
	// fetch before has ended, so hits and keys are settled by then.
	nextWait := func(step string, want time.Duration) time.Duration {
		t.Helper()
		d := clk.WaitTimer(t).Sub(clk.Now())
		if d < want-want/10 || d > want {
			t.Fatalf("%s: next fetch in %v; want %v less up to 10%%", step, d, want)
		}
		return d
	}

	d := nextWait("first refresh", 5*time.Minute)
	clk.Advance(d - time.Second)
	if n := hits.Load(); n != 1 || clk.Pending() != 1 {
		t.Fatalf("%d fetches and %d timers 1s before the refresh is due; want 1 (New's) and 1", n, clk.Pending())
	}
	clk.Advance(time.Second)

	// The issuer fails: retries back off from minRefetch to defaultRefresh.
	backoff := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, want := range backoff {
		d := nextWait("retry "+strconv.Itoa(i+1), want)
		if n := hits.Load(); n != int64(i+2) {
			t.Fatalf("%d fetches before retry %d; want %d", n, i+1, i+2)
		}
		if keys.Load().byKID["one"] == nil {
			t.Fatal("last good set lost while the issuer fails")
		}
		if i == len(backoff)-1 {
			failing.Store(false)
		}
		clk.Advance(d)
	}

	// The issuer answers: the new set is in, and the next refresh waits for
	// its max-age.
	d = nextWait("after recovery", time.Hour)
	if keys.Load().byKID["two"] == nil {
		t.Fatal("new set not installed after the issuer recovered")
	}
	settled := hits.Load()
	clk.Advance(d - time.Minute)
	if n := hits.Load() - settled; n != 0 || clk.Pending() != 1 {
		t.Errorf("%d fetches within max-age=3600 after success (timers pending: %d); want 0", n, clk.Pending())
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop when its context ended")
	}
}

func TestDefaultClientRedirects(t *testing.T) {
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/loop", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, plain.URL+"/keys", http.StatusFound)
		case "/up":
			http.Redirect(w, r, "/keys", http.StatusFound)
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	defer secure.Close()

	client := defaultHTTPClient()
	client.Transport = secure.Client().Transport
	if _, err := get(t.Context(), client, secure.URL+"/down", "", 1024); err == nil {
		t.Error("redirect from https to http followed; want an error")
	}
	if n := plainHits.Load(); n != 0 {
		t.Errorf("http server reached %d times through a downgrade", n)
	}
	if resp, err := get(t.Context(), client, secure.URL+"/up", "", 1024); err != nil || resp.status != http.StatusOK {
		t.Errorf("same-scheme redirect = %v, %v; want 200", resp, err)
	}
	if _, err := get(t.Context(), client, plain.URL+"/loop", "", 1024); err == nil {
		t.Error("redirect loop followed without end")
	}
	if n := plainHits.Load(); n > 4 {
		t.Errorf("redirect loop fetched %d times; want at most 4", n)
	}
}

func TestIntrospectionCacheBounded(t *testing.T) {
	clk := NewTestClock(time.Unix(1_800_000_000, 0))
	in := &introspector{ttl: time.Minute, now: clk.Now, cache: make(map[[32]byte]introspection)}
	keyOf := func(i int) (key [32]byte) {
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		return key
	}
	for i := range maxIntrospectionCache + 10 {
		in.store(keyOf(i), true)
	}
	if n := len(in.cache); n > maxIntrospectionCache {
		t.Errorf("cache holds %d answers; want at most %d", n, maxIntrospectionCache)
	}
	newest := keyOf(maxIntrospectionCache + 9)
	if active, ok := in.lookup(newest); !ok || !active {
		t.Errorf("lookup(newest) = %v, %v; want true, true", active, ok)
	}

	// Once the answers are past their TTL, a store into the full cache
	// drops them all, and lookups miss.
	for i := len(in.cache); len(in.cache) < maxIntrospectionCache; i++ {
		in.store(keyOf(maxIntrospectionCache+10+i), true)
	}
	clk.Advance(time.Minute)
	if _, ok := in.lookup(newest); ok {
		t.Error("lookup(newest) hit after the TTL; want a miss")
	}
	in.store(keyOf(1<<23), false)
	if n := len(in.cache); n != 1 {
		t.Errorf("cache holds %d answers after a store into a full cache of expired ones; want 1", n)
	}
	if active, ok := in.lookup(keyOf(1 << 23)); !ok || active {
		t.Errorf("lookup(stored after the purge) = %v, %v; want false, true", active, ok)
	}
}
