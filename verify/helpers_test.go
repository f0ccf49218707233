package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/verify"
)

const audience = "orders"

// testNow is the fixed clock of most tests.
var testNow = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return testNow }

// testKey is a signing key of the test's issuer.
type testKey struct {
	alg  string
	kid  string
	priv crypto.Signer
}

func newKey(t testing.TB, alg, kid string) *testKey {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("newKey: unknown alg %q", alg)
	}
	if err != nil {
		t.Fatalf("newKey(%s): %v", alg, err)
	}
	return &testKey{alg: alg, kid: kid, priv: priv}
}

// jwk is the key's public JWK, as authd publishes it.
func (k *testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"}
}

func jwks(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatalf("marshal JWKS: %v", err)
	}
	return b
}

// claims returns a valid claims set for issuer at testNow.
func claims(issuer string) map[string]any {
	return map[string]any{
		"iss":                issuer,
		"sub":                "user-1",
		"aud":                []string{audience, "billing"},
		"exp":                testNow.Add(15 * time.Minute).Unix(),
		"iat":                testNow.Unix(),
		"nbf":                testNow.Unix(),
		"jti":                "jti-1",
		"client_id":          "web",
		"scope":              "openid orders:read orders:write",
		"roles":              []string{"user"},
		"preferred_username": "alice",
		"sid":                "family-1",
	}
}

// with returns a copy of c with the given claims changed; a nil value
// deletes the claim.
func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// sign signs claims with go-jose, typ at+jwt, the key's kid, and extra headers.
func (k *testKey) sign(t testing.TB, c map[string]any, extra ...any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	for i := 0; i+1 < len(extra); i += 2 {
		opts = opts.WithHeader(jose.HeaderKey(extra[i].(string)), extra[i+1])
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.alg),
		Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid},
	}, opts)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("CompactSerialize: %v", err)
	}
	return s
}

// rawSign builds a token from a header and claims of the test's choosing,
// signed by k with its own algorithm whatever the header says.
func (k *testKey) rawSign(t testing.TB, header, c map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, c)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		var r, s []byte
		rr, ss, e := ecdsa.Sign(rand.Reader, p, digest[:])
		err = e
		if e == nil {
			r, s = rr.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))
			sig = append(r, s...)
		}
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, digest[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, []byte(input))
	}
	if err != nil {
		t.Fatalf("rawSign: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// issuer is an httptest authd: metadata, JWKS (with ETag), introspection,
// and counters of what it served.
type issuer struct {
	srv          *httptest.Server
	jwks         atomic.Pointer[[]byte]
	cacheControl atomic.Pointer[string]
	jwksHits     atomic.Int64
	notModified  atomic.Int64
	discoveries  atomic.Int64
	down         atomic.Bool
	introspect   atomic.Pointer[http.HandlerFunc]
}

func newIssuer(t testing.TB, doc []byte) *issuer {
	t.Helper()
	is := &issuer{}
	is.jwks.Store(&doc)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		is.discoveries.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                 is.srv.URL,
			"jwks_uri":               is.srv.URL + "/.well-known/jwks.json",
			"token_endpoint":         is.srv.URL + "/oauth2/token",
			"introspection_endpoint": is.srv.URL + "/oauth2/introspect",
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		doc := *is.jwks.Load()
		sum := sha256.Sum256(doc)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if cc := is.cacheControl.Load(); cc != nil {
			w.Header().Set("Cache-Control", *cc)
		}
		if r.Header.Get("If-None-Match") == etag {
			is.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("POST /oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		h := is.introspect.Load()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		(*h)(w, r)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) url() string { return is.srv.URL }

func (is *issuer) setJWKS(doc []byte) { is.jwks.Store(&doc) }

// newVerifier runs verify.New against is with the fixed clock for tokens.
func newVerifier(t testing.TB, is *issuer, cfg verify.Config) *verify.Verifier {
	t.Helper()
	v, _ := newVerifierClock(t, is, cfg)
	return v
}

// newVerifierClock is newVerifier, and returns the TestClock (starting at
// testNow) that runs the verifier's refetch rate limit, background refresh
// and introspection cache. Advancing it does not move the fixed clock for
// tokens. The background refresh is due after 4.5 to 5 minutes: a test
// that advances that far will see extra JWKS fetches.
func newVerifierClock(t testing.TB, is *issuer, cfg verify.Config) (*verify.Verifier, *verify.TestClock) {
	t.Helper()
	cfg.Issuer = is.url()
	if cfg.Audience == "" {
		cfg.Audience = audience
	}
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	clk := verify.NewTestClock(testNow)
	v, err := verify.NewWithClock(t.Context(), cfg, clk)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v, clk
}

// newStatic builds a verifier over keys with the fixed clock.
func newStatic(t testing.TB, iss string, keys ...jose.JSONWebKey) *verify.Verifier {
	t.Helper()
	v, err := verify.NewStatic(verify.Config{Issuer: iss, Audience: audience, Now: fixedNow}, jwks(t, keys...))
	if err != nil {
		t.Fatalf("NewStatic: %v", err)
	}
	return v
}

func rsaKey(bits int) (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, bits)
}
