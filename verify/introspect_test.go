package verify_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/verify"
)

// introspection is a fake RFC 7662 endpoint: it checks client_secret_basic,
// counts questions, and calls active every token not revoked.
type introspection struct {
	id, secret string
	calls      atomic.Int64
	mu         sync.Mutex
	revoked    map[string]bool
	status     atomic.Int64 // when not 0, answer this status
}

func (f *introspection) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[token] = true
}

func (f *introspection) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if s := f.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		id, secret, ok := r.BasicAuth()
		if ok {
			// RFC 6749 §2.3.1: both are form-encoded before Basic.
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		if !ok || id != f.id || secret != f.secret {
			w.Header().Set("WWW-Authenticate", `Basic realm="authd"`)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("introspection Content-Type = %q", ct)
		}
		token := r.PostFormValue("token")
		if hint := r.PostFormValue("token_type_hint"); hint != "access_token" {
			t.Errorf("token_type_hint = %q; want access_token", hint)
		}
		f.mu.Lock()
		active := token != "" && !f.revoked[token]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !active {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "user-1", "token_type": "Bearer"})
	}
}

func onlineSetup(t *testing.T, ttl time.Duration, id, secret string) (*issuer, *introspection, *verify.Verifier, *testKey, *verify.TestClock) {
	t.Helper()
	key := newKey(t, "ES256", "k1")
	is := newIssuer(t, jwks(t, key.jwk()))
	f := &introspection{id: "orders:api", secret: "s3cret with spaces & symbols", revoked: map[string]bool{}}
	h := f.handler(t)
	is.introspect.Store(&h)
	v, clk := newVerifierClock(t, is, verify.Config{
		IntrospectionClientID:     id,
		IntrospectionClientSecret: secret,
		IntrospectionCacheTTL:     ttl,
	})
	return is, f, v, key, clk
}

func TestIntrospect(t *testing.T) {
	const ttl = 5 * time.Second
	is, f, v, key, clk := onlineSetup(t, ttl, "orders:api", "s3cret with spaces & symbols")
	token := key.sign(t, claims(is.url()))

	for range 5 {
		c, err := v.Introspect(t.Context(), token)
		if err != nil {
			t.Fatalf("Introspect(active) = %v; want nil", err)
		}
		if c.Subject != "user-1" {
			t.Errorf("Introspect subject = %q; want user-1", c.Subject)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("introspection endpoint asked %d times for one token; want 1 (cached)", n)
	}

	// Revoked: the cached answer holds for the TTL, then the revocation shows.
	f.revoke(token)
	clk.Advance(ttl - time.Millisecond)
	if _, err := v.Introspect(t.Context(), token); err != nil {
		t.Errorf("Introspect(revoked, within cache TTL) = %v; want the cached active answer", err)
	}
	clk.Advance(time.Millisecond)
	for range 3 {
		if _, err := v.Introspect(t.Context(), token); !errors.Is(err, verify.ErrRevoked) {
			t.Fatalf("Introspect(revoked, after TTL) = %v; want ErrRevoked", err)
		}
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("introspection endpoint asked %d times; want 2", n)
	}

	// A token that fails locally never reaches the endpoint.
	before := f.calls.Load()
	if _, err := v.Introspect(t.Context(), key.sign(t, with(claims(is.url()), "aud", "payments"))); !errors.Is(err, verify.ErrAudience) {
		t.Errorf("Introspect(wrong audience) = %v; want ErrAudience", err)
	}
	if n := f.calls.Load() - before; n != 0 {
		t.Errorf("locally invalid token was introspected %d times; want 0", n)
	}

	// Concurrent questions about one new token share one request.
	fresh := key.sign(t, with(claims(is.url()), "jti", "jti-2"))
	before = f.calls.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Introspect(t.Context(), fresh); err != nil {
				t.Errorf("Introspect(concurrent) = %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.calls.Load() - before; n != 1 {
		t.Errorf("20 concurrent introspections of one token made %d requests; want 1", n)
	}
}

func TestIntrospectFailsClosed(t *testing.T) {
	t.Run("wrong client secret", func(t *testing.T) {
		is, f, v, key, _ := onlineSetup(t, time.Minute, "orders:api", "wrong")
		_, err := v.Introspect(t.Context(), key.sign(t, claims(is.url())))
		if !errors.Is(err, verify.ErrUnavailable) {
			t.Errorf("Introspect(rejected client) = %v; want ErrUnavailable", err)
		}
		if f.calls.Load() != 1 {
			t.Errorf("calls = %d; want 1", f.calls.Load())
		}
	})
	t.Run("endpoint failing", func(t *testing.T) {
		is, f, v, key, _ := onlineSetup(t, time.Minute, "orders:api", "s3cret with spaces & symbols")
		f.status.Store(http.StatusInternalServerError)
		token := key.sign(t, claims(is.url()))
		if _, err := v.Introspect(t.Context(), token); !errors.Is(err, verify.ErrUnavailable) {
			t.Errorf("Introspect(500) = %v; want ErrUnavailable", err)
		}
		// Failures are not cached: once the endpoint is back, it is asked.
		f.status.Store(0)
		if _, err := v.Introspect(t.Context(), token); err != nil {
			t.Errorf("Introspect(after recovery) = %v; want nil", err)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		key := newKey(t, "ES256", "k1")
		v := newStatic(t, iss, key.jwk())
		if _, err := v.Introspect(t.Context(), key.sign(t, claims(iss))); !errors.Is(err, verify.ErrUnavailable) {
			t.Errorf("Introspect(no online mode) = %v; want ErrUnavailable", err)
		}
	})
}

func TestOnlineMiddleware(t *testing.T) {
	is, f, v, key, _ := onlineSetup(t, time.Minute, "orders:api", "s3cret with spaces & symbols")
	h := v.OnlineMiddleware(echoSubject)
	active := key.sign(t, claims(is.url()))
	revoked := key.sign(t, with(claims(is.url()), "jti", "revoked"))
	f.revoke(revoked)

	if resp, _, raw := serve(t, h, "Bearer "+active); resp.StatusCode != 200 || raw != "user-1" {
		t.Errorf("active token: status %d body %q; want 200 user-1", resp.StatusCode, raw)
	}
	resp, body, _ := serve(t, h, "Bearer "+revoked)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token: status %d; want 401", resp.StatusCode)
	}
	want := `Bearer realm="orders", error="invalid_token", error_description="the access token is not active"`
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q; want %q", got, want)
	}
	if body.Error != "invalid_token" {
		t.Errorf("body error = %q; want invalid_token", body.Error)
	}
	// The local middleware does not see the revocation: that is the trade-off.
	if resp, _, _ := serve(t, v.Middleware(echoSubject), "Bearer "+revoked); resp.StatusCode != 200 {
		t.Errorf("local Middleware, revoked token: status %d; want 200", resp.StatusCode)
	}

	f.status.Store(http.StatusBadGateway)
	fresh := key.sign(t, with(claims(is.url()), "jti", "fresh"))
	if resp, body, _ := serve(t, h, "Bearer "+fresh); resp.StatusCode != http.StatusServiceUnavailable || body.Error != "temporarily_unavailable" {
		t.Errorf("introspection down: status %d error %q; want 503 temporarily_unavailable", resp.StatusCode, body.Error)
	}
}
