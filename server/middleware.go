package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/time/rate"

	"github.com/authd/authd/server/oauth"
)

type requestIDKey struct{}

// RequestID returns the request id the middleware gave ctx's request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// statusWriter records the status code for the access log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID accepts a caller's X-Request-Id only when short and plain.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe is the outermost middleware: request id, panic recovery, access
// log and metrics, the latter labelled with route, the path template of the
// route that answers. Only the path is logged, never the query or a body.
func (s *Server) observe(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic", "request_id", id, "path", r.URL.Path, "panic", p)
				if sw.status == 0 {
					writeProblem(sw, r, http.StatusInternalServerError, "The server could not complete the request.")
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observeRequest(r, route, sw.status, d)
			level := slog.LevelInfo
			if sw.status >= 500 {
				level = slog.LevelError
			}
			if !s.log.Enabled(r.Context(), level) {
				return
			}
			if s.access != nil && level == slog.LevelInfo {
				s.access.write(accessLine{time: time.Now(), requestID: id, method: r.Method, path: r.URL.Path,
					status: sw.status, bytes: sw.bytes, durationMS: float64(d.Microseconds()) / 1000, ip: s.clientIP(r)})
				return
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Int("bytes", sw.bytes), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("ip", s.clientIP(r)))
		}()
		next.ServeHTTP(sw, r)
	})
}

// header is one response header, its key canonical.
type header struct {
	name  string
	value []string
}

// securityHeaders are set on every answer. Each value slice is shared by
// every answer of the server: its capacity is 1, so an Add elsewhere would
// copy it, never write into it (and Set replaces it).
func securityHeaders(hsts bool) []header {
	hs := []header{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
	}
	if hsts {
		hs = append(hs, header{"Strict-Transport-Security", []string{"max-age=63072000; includeSubDomains"}})
	}
	return hs
}

// secure sets security headers and bounds the request body.
func (s *Server) secure(next http.Handler) http.Handler {
	headers := securityHeaders(s.cfg.HSTS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range headers {
			h[kv.name] = kv.value
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeTooLarge(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// Limits, in bytes, on the text of a request's path and query string.
const (
	maxPathLen       = 2048
	maxPathVarLen    = 256 // an id in a path: user ids are 36, client ids at most 128
	maxQueryNameLen  = 64
	maxQueryValueLen = 1024
	// maxHintLen bounds an id_token_hint in the query (the logout
	// endpoint's; an RS256 id_token is longer than maxQueryValueLen).
	maxHintLen = 8 << 10
)

// checkInput refuses, before a routed handler runs, a path or query string
// whose decoded text no store should see: invalid UTF-8, a NUL or another
// control character, or an unreasonable length (400, problem+json or
// RFC 6749 JSON under /oauth2/). Path variables are parts of the path, so
// every id an admin route reads is covered.
func (s *Server) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := func(detail string) {
			if isOAuthPath(r.URL.Path) {
				oauth.WriteError(w, http.StatusBadRequest, "invalid_request", detail)
				return
			}
			writeProblem(w, r, http.StatusBadRequest, detail)
		}
		if !textOK(r.URL.Path, maxPathLen) {
			bad("The path is not printable UTF-8 text of a sane length.")
			return
		}
		for _, v := range mux.Vars(r) {
			if len(v) > maxPathVarLen {
				bad("An identifier in the path is too long.")
				return
			}
		}
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			bad("The query string is malformed.")
			return
		}
		for k, vs := range q {
			if !textOK(k, maxQueryNameLen) {
				bad("A query parameter name is not printable UTF-8 text of a sane length.")
				return
			}
			limit := maxQueryValueLen
			if k == "id_token_hint" && r.URL.Path == oauth.LogoutPath {
				limit = maxHintLen
			}
			for _, v := range vs {
				if !textOK(v, limit) {
					bad(fmt.Sprintf("The query parameter %q is not printable UTF-8 text of a sane length.", k))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeTooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if isOAuthPath(r.URL.Path) {
		oauth.WriteError(w, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
		return
	}
	writeProblem(w, r, http.StatusRequestEntityTooLarge, "The request body is too large.")
}

func isOAuthPath(p string) bool {
	return len(p) >= 8 && p[:8] == "/oauth2/"
}

// clientIP is the address of the request's client (see ClientIPFunc).
func (s *Server) clientIP(r *http.Request) string { return s.ipOf(r) }

// ClientIPFunc returns how authd finds a request's client address: the
// connection's peer, unless that peer is a trusted proxy, in which case
// X-Forwarded-For is walked from the right past trusted proxies. Addresses a
// client put at the left end of the header are never believed.
func ClientIPFunc(trusted []netip.Prefix) func(*http.Request) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err != nil || len(trusted) == 0 || !isTrusted(peer) {
			return host
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				return peer.String() // a malformed hop: stop at the last address we trust
			}
			if !isTrusted(a) {
				return a.Unmap().String()
			}
			peer = a
		}
		return peer.Unmap().String()
	}
}

// ipLimiter is a token bucket per client address: perMin requests a minute
// with a burst of perMin. An IPv6 client is keyed by its /64 (one host owns a
// whole /64 and could otherwise rotate through it), and the buckets are
// bounded: once maxBuckets addresses are live, new ones share one overflow
// bucket, so memory stays bounded whatever the number of addresses.
type ipLimiter struct {
	mu         sync.Mutex
	perMin     int
	maxBuckets int
	buckets    map[string]*bucket
	overflow   *bucket
	now        func() time.Time
	lastGC     time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// defaultMaxBuckets bounds the limiter's memory (a bucket is ~200 bytes).
const defaultMaxBuckets = 100_000

func newIPLimiter(perMin int, now func() time.Time) *ipLimiter {
	return &ipLimiter{perMin: perMin, maxBuckets: defaultMaxBuckets, buckets: map[string]*bucket{}, now: now,
		overflow: &bucket{lim: rate.NewLimiter(rate.Limit(float64(perMin)/60), perMin)}}
}

// limitKey is the key of ip's bucket: the address, or its /64 for IPv6.
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// allow reports whether ip may make a request now and, if not, how long to wait.
func (l *ipLimiter) allow(ip string) (bool, time.Duration) {
	now := l.now()
	key := limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	// Idle buckets go every minute, or every second while the limiter is
	// full (never on every request: a scan costs the whole map).
	if since := now.Sub(l.lastGC); !ok && (since > time.Minute || len(l.buckets) >= l.maxBuckets && since > time.Second) {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 2*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.lastGC = now
	}
	switch {
	case ok:
	case len(l.buckets) < l.maxBuckets:
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(l.perMin)/60), l.perMin)}
		l.buckets[key] = b
	default:
		b = l.overflow
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	res := b.lim.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	return false, wait
}

// withinRateLimit asks the limit shared by every replica (Redis) when there
// is one, and this process's own when there is none or it cannot answer at once.
func (s *Server) withinRateLimit(r *http.Request) (bool, time.Duration) {
	ip := s.clientIP(r)
	if s.cfg.SharedLimiter != nil {
		ok, wait, err := s.cfg.SharedLimiter.Allow(r.Context(), ip)
		if err == nil {
			return ok, wait
		}
	}
	return s.limiter.allow(ip)
}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.withinRateLimit(r)
		if !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			if isOAuthPath(r.URL.Path) {
				oauth.WriteError(w, http.StatusTooManyRequests, "too_many_requests", "Too many requests; retry later.")
				return
			}
			writeProblem(w, r, http.StatusTooManyRequests, "Too many requests; retry later.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pageRateLimit is rateLimit for the browser forms: the same per-IP limit,
// answered with the error page.
func (s *Server) pageRateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.withinRateLimit(r); !ok {
			s.cfg.Pages.TooManyRequests(w, r, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}
