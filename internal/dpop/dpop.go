// Package dpop checks DPoP proofs (RFC 9449): the JWTs a client signs with a
// key it holds, to show that it holds the key an access or refresh token is
// bound to. The authorization server (token endpoint, its own API) and
// resource servers (package verify) check proofs with it. It imports nothing
// of authd's.
package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algs are the proof signature algorithms accepted by default.
var Algs = []string{"ES256", "EdDSA", "RS256"}

// MaxProofLen bounds a proof before it is parsed.
const MaxProofLen = 8 << 10

// Errors. A proof that fails any check is ErrInvalidProof (wrapped with the
// reason); a proof without the server's current nonce is ErrUseNonce.
var (
	ErrInvalidProof = errors.New("dpop: invalid proof")
	ErrUseNonce     = errors.New("dpop: the server's nonce is required")
	ErrReplayed     = fmt.Errorf("%w: jti already used", ErrInvalidProof)
)

// Proof is a checked proof.
type Proof struct {
	JKT      string // RFC 7638 SHA-256 thumbprint of the proof's public key, base64url
	JTI      string
	IssuedAt time.Time
	Nonce    string // the proof's nonce claim, if any
}

// Params are what a proof must match.
type Params struct {
	Method string // the request's method (htm)
	URL    string // the request's URL without query and fragment (htu)
	// AccessToken, when set, must be hashed into the proof's ath (a proof
	// presented with a token to a resource server).
	AccessToken string
	// Nonce, when set, must be the proof's nonce (ErrUseNonce otherwise).
	Nonce string
	// Window bounds how far iat may be from now, either way (default 60s).
	Window time.Duration
	Now    time.Time // default time.Now()
	Algs   []string  // default Algs
}

type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce string          `json:"nonce"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
}

// Check verifies a proof's signature with the public key in its header and
// its claims against p. It does not remember the jti: pass the result to a
// ReplayCache.
func Check(proof string, p Params) (*Proof, error) {
	if proof == "" || len(proof) > MaxProofLen {
		return nil, invalid("missing or too long")
	}
	if !canonicalCompact(proof) {
		return nil, invalid("not three canonical base64url parts")
	}
	algs := p.Algs
	if len(algs) == 0 {
		algs = Algs
	}
	sigAlgs := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		sigAlgs[i] = jose.SignatureAlgorithm(a)
	}
	// A DPoP proof is a JWT: compact serialization only (RFC 7519 §1). The
	// JSON serializations could carry unprotected headers and more than one
	// signature.
	jws, err := jose.ParseSignedCompact(proof, sigAlgs)
	if err != nil {
		return nil, invalid("not a compact JWS with an accepted algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("not exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, invalid("typ is not dpop+jwt")
	}
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, invalid("crit is not supported")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, invalid("the header's jwk is missing, invalid or private")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalid("bad signature")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("claims are not a JSON object")
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	window := p.Window
	if window <= 0 {
		window = 60 * time.Second
	}
	var iat float64
	if err := json.Unmarshal(c.IAT, &iat); err != nil || iat <= 0 {
		return nil, invalid("iat is missing or not a number")
	}
	issued := time.Unix(int64(iat), 0)
	switch {
	case c.JTI == "" || len(c.JTI) > 256:
		return nil, invalid("jti is missing or too long")
	case c.HTM != p.Method:
		return nil, invalid("htm does not match the request")
	case !SameURL(c.HTU, p.URL):
		return nil, invalid("htu does not match the request")
	case issued.Before(now.Add(-window)) || issued.After(now.Add(window)):
		return nil, invalid("iat is outside the accepted window")
	}
	if p.AccessToken != "" {
		sum := sha256.Sum256([]byte(p.AccessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, invalid("ath does not match the access token")
		}
	}
	if p.Nonce != "" && c.Nonce != p.Nonce {
		return nil, ErrUseNonce
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalid("no thumbprint for the key")
	}
	return &Proof{JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: c.JTI, IssuedAt: issued, Nonce: c.Nonce}, nil
}

// canonicalCompact reports whether s is three non-empty base64url parts,
// unpadded, each with its unused low bits zero: one byte string has one
// encoding, so a proof cannot be re-encoded into a different string with the
// same signature (the base64 decoder alone would also skip CR and LF and
// ignore those bits).
func canonicalCompact(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	strict := base64.RawURLEncoding.Strict()
	for _, part := range parts {
		// Strict refuses CR and LF and non-zero unused bits; the alphabet
		// check refuses what the decoder would skip or the URL form of '+'.
		if part == "" || strings.ContainsFunc(part, func(r rune) bool {
			return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) {
			return false
		}
		if _, err := strict.DecodeString(part); err != nil {
			return false
		}
	}
	return true
}

// SameURL compares an htu with the request's URL as RFC 9449 §4.3 asks:
// without query and fragment, scheme and host case-insensitively.
func SameURL(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil || a.Opaque != "" || a.User != nil {
		return false
	}
	norm := func(u *url.URL) string {
		host := strings.ToLower(u.Host)
		switch scheme := strings.ToLower(u.Scheme); {
		case scheme == "https" && strings.HasSuffix(host, ":443"), scheme == "http" && strings.HasSuffix(host, ":80"):
			host = host[:strings.LastIndexByte(host, ':')]
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return strings.ToLower(u.Scheme) + "://" + host + path
	}
	return a.Scheme != "" && a.Host != "" && norm(a) == norm(b)
}

// ReplayCache remembers proof jtis: Remember reports false for a jti seen
// before (and not yet forgotten). Entries may be dropped after until.
type ReplayCache interface {
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// MemoryReplayCache is a ReplayCache for one process, holding at most max
// entries: when full it refuses new proofs (fails closed) until entries
// expire, rather than forgetting ones still in their window. Expired entries
// leave in order of expiry (a heap), so each call costs O(log n) even when
// the cache is full.
type MemoryReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time
	exp  expiryHeap // the entries of seen, soonest expiry first
	now  func() time.Time
}

// ErrCacheFull is returned by MemoryReplayCache.Remember when it holds max
// unexpired entries.
var ErrCacheFull = errors.New("dpop: replay cache full")

// NewMemoryReplayCache returns a cache of at most max entries (default 100,000).
func NewMemoryReplayCache(max int, now func() time.Time) *MemoryReplayCache {
	if max <= 0 {
		max = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{max: max, seen: map[string]time.Time{}, now: now}
}

// Remember implements ReplayCache.
func (c *MemoryReplayCache) Remember(_ context.Context, key string, until time.Time) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget what has expired; afterwards every entry of seen is live.
	for len(c.exp) > 0 && !now.Before(c.exp[0].until) {
		delete(c.seen, c.exp.pop().key)
	}
	if _, ok := c.seen[key]; ok {
		return false, nil
	}
	if len(c.seen) >= c.max {
		return false, ErrCacheFull
	}
	c.seen[key] = until
	c.exp.push(expiry{until: until, key: key})
	return true, nil
}

type expiry struct {
	until time.Time
	key   string
}

// expiryHeap is a binary min-heap on until.
type expiryHeap []expiry

func (h *expiryHeap) push(e expiry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].until.Before(s[parent].until) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *expiryHeap) pop() expiry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = expiry{}
	s = s[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s[l].until.Before(s[small].until) {
			small = l
		}
		if r < len(s) && s[r].until.Before(s[small].until) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}
