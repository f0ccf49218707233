// Package config holds authd's configuration: the Config struct, its
// defaults, the command-line flags every CLI verb shares, Load (flags, then
// AUTHD_* environment variables, then an optional YAML file, then defaults)
// and Validate, which lists every problem at once.
//
// Each setting has one name in three spellings: the YAML key http_addr, the
// flag --http-addr and the environment variable AUTHD_HTTP_ADDR.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable authd reads.
const EnvPrefix = "AUTHD_"

// ConfigFlag is the flag (and, as AUTHD_CONFIG, the variable) naming the YAML file.
const ConfigFlag = "config"

// MinSecretLen is the shortest AUTHD_SECRET accepted, in bytes.
const MinSecretLen = 32

// KafkaSASLMechanisms are the values of AUTHD_KAFKA_SASL_MECHANISM (those
// events/kafka speaks).
var KafkaSASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Signing algorithms authd can use.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// Config is authd's configuration. Secret, SecretOld and KafkaSASLPassword
// are secrets: String, GoString and LogValue never show them, nor the
// password of a database or Redis URL.
type Config struct {
	Issuer         string   // iss of every token, base of every metadata URL
	HTTPAddr       string   // listen address
	DatabaseURL    string   // postgres://..., postgresql://... or sqlite://PATH
	RedisURL       string   // redis://... or rediss://...: rate limits shared by every replica; empty keeps them per process
	RedisKeyPrefix string   // prefix of every Redis key authd writes
	KafkaBrokers   []string // empty keeps events in the outbox and the log only
	// Kafka security: TLS (system roots, or the CA in KafkaTLSCA) and SASL.
	KafkaTLS           bool   // dial the brokers with TLS
	KafkaTLSCA         string // PEM file of the brokers' CA instead of the system roots; implies TLS
	KafkaSASLMechanism string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	KafkaSASLUser      string
	KafkaSASLPassword  string // a secret, like Secret
	DataDir            string // where dev mode keeps its generated secret

	TLSCert               string // PEM certificate file; with TLSKey, serve HTTPS
	TLSKey                string // PEM private key file
	TLSTerminatedUpstream bool   // a proxy in front terminates TLS; serve plain HTTP
	Dev                   bool   // plain HTTP allowed, secret generated

	Secret     string   // >= 32 bytes: refresh-token HMAC key and key-encryption key
	SecretOld  []string // earlier secrets, still verifying during a rotation
	SigningAlg string   // ES256, RS256 or EdDSA

	AccessTokenTTL   time.Duration
	RefreshTokenTTL  time.Duration // lifetime of one refresh token
	RefreshFamilyTTL time.Duration // absolute lifetime of a refresh family, however often it rotates
	// RefreshReuseInterval: a refresh token presented again within it, before
	// its successor is used, answers the same successor; 0 is strict.
	RefreshReuseInterval time.Duration
	// DPoPNonce makes DPoP token requests carry a server nonce (RFC 9449 §8).
	DPoPNonce bool
	// AuditRetention is how long audit entries are kept; 0 keeps them forever.
	AuditRetention time.Duration

	LockoutThreshold     int           // consecutive failed logins before a lock; 0 turns lockout off
	LockoutDuration      time.Duration // how long a lock lasts
	RateLimitTokenPerMin int           // per client IP on the token and signup endpoints, the sign-in forms and the connector routes; 0 turns it off

	SessionTTL     time.Duration // absolute lifetime of a browser session (single sign-on)
	SessionIdleTTL time.Duration // a browser session unused this long ends
	// TemplatesDir is a folder of the operator's own copies of the pages
	// (package templates); empty serves the embedded ones.
	TemplatesDir string

	ShutdownTimeout   time.Duration // how long serve waits for in-flight requests on SIGTERM
	ReadHeaderTimeout time.Duration // http.Server.ReadHeaderTimeout

	// MemoryLimit is the Go runtime's soft memory limit ("96MiB", "1GiB";
	// "0" or "off": none). GOMEMLIMIT, when set, wins. See MemoryLimitBytes.
	MemoryLimit string

	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-For is believed
	// when finding a client's IP (rate limits, audit trail); empty trusts none.
	TrustedProxies []string

	PprofAddr string // listen address of net/http/pprof; empty turns it off
	LogLevel  string // debug, info, warn or error

	// Connectors are the other identity providers the login page offers
	// (YAML only: the list `connectors:`).
	Connectors []Connector
}

// Defaults returns the configuration authd uses when nothing is set.
func Defaults() Config {
	return Config{
		Issuer:               "http://localhost:8080",
		HTTPAddr:             ":8080",
		DatabaseURL:          "sqlite://./data/authd.db",
		DataDir:              "./data",
		RedisKeyPrefix:       "authd:",
		SigningAlg:           AlgES256,
		AccessTokenTTL:       15 * time.Minute,
		RefreshTokenTTL:      720 * time.Hour,
		RefreshFamilyTTL:     2160 * time.Hour,
		RefreshReuseInterval: 10 * time.Second,
		AuditRetention:       90 * 24 * time.Hour,
		LockoutThreshold:     5,
		LockoutDuration:      15 * time.Minute,
		RateLimitTokenPerMin: 60,
		SessionTTL:           720 * time.Hour,
		SessionIdleTTL:       72 * time.Hour,
		ShutdownTimeout:      15 * time.Second,
		ReadHeaderTimeout:    10 * time.Second,
		MemoryLimit:          DefaultMemoryLimit,
		LogLevel:             "info",
	}
}

// DefaultMemoryLimit bounds the heap under password-login load (argon2id's
// 19 MiB of scratch per hash, collected after each hash by identity). On
// PostgreSQL with 16 connections, peak RSS: password logins 92 MiB at 72 MiB
// (47-50 logins/s), 94-96 MiB at 80 MiB, 110-113 MiB at 128 MiB, 149-150 MiB
// before the collection after each hash (43-52 logins/s in every case); the
// mixed scenario 95 MiB at 72 MiB, 99-101 MiB at 80 and 128 MiB, at 1,940-
// 2,170 req/s. 64 MiB cost an eighth of the logins. Deployments with many
// live revocations (the in-memory denylist) or clients raise it.
const DefaultMemoryLimit = "72MiB"

// MemoryLimitBytes parses MemoryLimit: a whole number of bytes with an
// optional unit (B, KiB, MiB, GiB); 0 (or "0", "off", "") means no limit.
func (c Config) MemoryLimitBytes() (int64, error) {
	v := strings.TrimSpace(c.MemoryLimit)
	if v == "" || v == "0" || strings.EqualFold(v, "off") {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("want a size such as 96MiB or 1GiB, or 0 for none; got %q", c.MemoryLimit)
	}
	if n*mult < 32<<20 {
		return 0, fmt.Errorf("at least 32MiB (or 0 for none), got %q", c.MemoryLimit)
	}
	return n * mult, nil
}

// SQLitePath returns PATH when DatabaseURL is sqlite://PATH.
func (c Config) SQLitePath() (string, bool) {
	p, ok := strings.CutPrefix(c.DatabaseURL, "sqlite://")
	if !ok || p == "" {
		return "", false
	}
	return p, true
}

// TLS reports whether serve should terminate TLS itself.
func (c Config) TLS() bool { return c.TLSCert != "" && c.TLSKey != "" }

// Secrets returns the current secret followed by the old ones.
func (c Config) Secrets() []string {
	out := make([]string, 0, 1+len(c.SecretOld))
	if c.Secret != "" {
		out = append(out, c.Secret)
	}
	return append(out, c.SecretOld...)
}

// SlogLevel returns LogLevel as a slog.Level (info when it does not parse;
// Validate reports that case).
func (c Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// Validate checks c for serve: every setting, and returns one error that
// lists every problem found (errors.Join), or nil. Messages never contain a
// secret.
func (c Config) Validate() error { return c.validate(true) }

// ValidateCLI checks c for the verbs that do not serve (migrate, clients,
// users, keys): only the settings they read. The listeners, TLS, the https
// issuer, the timeouts and the rate limit are serve's and are not checked,
// so that an operator's shell needs the database URL and the secret only.
func (c Config) ValidateCLI() error { return c.validate(false) }

func (c Config) validate(serve bool) error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", env, fmt.Sprintf(format, args...)))
	}

	// Issuer.
	if u, err := url.Parse(c.Issuer); err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		bad("AUTHD_ISSUER", "must be an absolute http(s) URL, got %q", c.Issuer)
	} else {
		switch {
		case u.Scheme != "https" && u.Scheme != "http":
			bad("AUTHD_ISSUER", "scheme must be https (or http in dev), got %q", u.Scheme)
		case u.Scheme == "http" && !c.Dev && serve:
			bad("AUTHD_ISSUER", "must be https outside dev mode (AUTHD_DEV=true allows http)")
		}
		if u.User != nil {
			bad("AUTHD_ISSUER", "must not carry user information")
		}
		if u.RawQuery != "" || u.ForceQuery {
			bad("AUTHD_ISSUER", "must not have a query")
		}
		if u.Fragment != "" || strings.Contains(c.Issuer, "#") {
			bad("AUTHD_ISSUER", "must not have a fragment")
		}
		if strings.HasSuffix(u.Path, "/") {
			bad("AUTHD_ISSUER", "must not end with a slash")
		}
	}

	if serve {
		errs = append(errs, c.validateServe()...)
	}

	// Backends. URLs may hold passwords: messages name only the scheme.
	if strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		if _, ok := c.SQLitePath(); !ok {
			bad("AUTHD_DATABASE_URL", "must be sqlite://PATH with a non-empty PATH")
		}
	} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("AUTHD_DATABASE_URL", "scheme must be postgres, postgresql or sqlite")
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("AUTHD_REDIS_URL", "scheme must be redis, rediss or unix")
		}
	}
	for i, b := range c.KafkaBrokers {
		if err := checkHostPort(b); err != nil {
			bad("AUTHD_KAFKA_BROKERS", "broker %d: %v", i+1, err)
		}
	}

	// Secrets: lengths only, never contents.
	switch {
	case c.Secret == "" && !c.Dev:
		bad("AUTHD_SECRET", "is required outside dev mode (at least %d bytes)", MinSecretLen)
	case c.Secret != "" && len(c.Secret) < MinSecretLen:
		bad("AUTHD_SECRET", "must be at least %d bytes", MinSecretLen)
	}
	for i, s := range c.SecretOld {
		if len(s) < MinSecretLen {
			bad("AUTHD_SECRET_OLD", "secret %d must be at least %d bytes", i+1, MinSecretLen)
		}
	}
	if c.Dev && c.Secret == "" && c.DataDir == "" {
		bad("AUTHD_DATA_DIR", "is required in dev mode without AUTHD_SECRET (the generated secret is kept there)")
	}

	switch c.SigningAlg {
	case AlgES256, AlgRS256, AlgEdDSA:
	default:
		bad("AUTHD_SIGNING_ALG", "must be ES256, RS256 or EdDSA, got %q", c.SigningAlg)
	}

	// Lifetimes.
	if c.AccessTokenTTL <= 0 {
		bad("AUTHD_ACCESS_TOKEN_TTL", "must be positive, got %s", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL <= 0 {
		bad("AUTHD_REFRESH_TOKEN_TTL", "must be positive, got %s", c.RefreshTokenTTL)
	} else if c.AccessTokenTTL > 0 && c.RefreshTokenTTL < c.AccessTokenTTL {
		bad("AUTHD_REFRESH_TOKEN_TTL", "must not be shorter than AUTHD_ACCESS_TOKEN_TTL (%s < %s)", c.RefreshTokenTTL, c.AccessTokenTTL)
	}
	if c.AuditRetention < 0 {
		bad("AUTHD_AUDIT_RETENTION", "must not be negative (0 keeps the audit trail forever), got %s", c.AuditRetention)
	}
	if c.RefreshReuseInterval < 0 {
		bad("AUTHD_REFRESH_REUSE_INTERVAL", "must not be negative (0 is strict), got %s", c.RefreshReuseInterval)
	} else if c.RefreshReuseInterval > time.Minute {
		bad("AUTHD_REFRESH_REUSE_INTERVAL", "must be at most 1m (a longer window only helps a thief), got %s", c.RefreshReuseInterval)
	}
	if c.RefreshFamilyTTL <= 0 {
		bad("AUTHD_REFRESH_FAMILY_TTL", "must be positive, got %s", c.RefreshFamilyTTL)
	} else if c.RefreshTokenTTL > 0 && c.RefreshFamilyTTL < c.RefreshTokenTTL {
		bad("AUTHD_REFRESH_FAMILY_TTL", "must not be shorter than AUTHD_REFRESH_TOKEN_TTL (%s < %s)", c.RefreshFamilyTTL, c.RefreshTokenTTL)
	}

	// Abuse controls.
	if c.LockoutThreshold < 0 {
		bad("AUTHD_LOCKOUT_THRESHOLD", "must not be negative (0 turns lockout off), got %d", c.LockoutThreshold)
	}
	if c.LockoutDuration < 0 || (c.LockoutThreshold > 0 && c.LockoutDuration == 0) {
		bad("AUTHD_LOCKOUT_DURATION", "must be positive when lockout is on, got %s", c.LockoutDuration)
	}

	// Process.
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("AUTHD_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}

	errs = append(errs, c.validateConnectors()...)

	return errors.Join(errs...)
}

// validateServe checks the settings only serve reads: its listeners, TLS,
// timeouts, rate limit, browser sessions and page templates.
func (c Config) validateServe() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", env, fmt.Sprintf(format, args...)))
	}

	// Listeners.
	if err := checkAddr(c.HTTPAddr); err != nil {
		bad("AUTHD_HTTP_ADDR", "%v", err)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("AUTHD_TRUSTED_PROXIES", "%q is neither a CIDR nor an IP address", p)
			}
		}
	}
	if c.PprofAddr != "" {
		if err := checkAddr(c.PprofAddr); err != nil {
			bad("AUTHD_PPROF_ADDR", "%v", err)
		} else if c.PprofAddr == c.HTTPAddr {
			bad("AUTHD_PPROF_ADDR", "must differ from AUTHD_HTTP_ADDR")
		}
	}

	// Transport security.
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		bad("AUTHD_TLS_KEY", "is required with AUTHD_TLS_CERT")
	case c.TLSKey != "" && c.TLSCert == "":
		bad("AUTHD_TLS_CERT", "is required with AUTHD_TLS_KEY")
	case c.TLSCert == "" && !c.Dev && !c.TLSTerminatedUpstream:
		bad("AUTHD_TLS_CERT", "serve refuses plain HTTP unless AUTHD_DEV=true or AUTHD_TLS_TERMINATED_UPSTREAM=true")
	}

	// Kafka security (only serve publishes). Never the password itself.
	mech := strings.ToUpper(c.KafkaSASLMechanism)
	switch {
	case len(c.KafkaBrokers) == 0 && (c.KafkaTLS || c.KafkaTLSCA != "" || mech != "" || c.KafkaSASLUser != "" || c.KafkaSASLPassword != ""):
		bad("AUTHD_KAFKA_BROKERS", "is empty, so the AUTHD_KAFKA_TLS* / AUTHD_KAFKA_SASL_* settings have no effect")
	case mech == "" && (c.KafkaSASLUser != "" || c.KafkaSASLPassword != ""):
		bad("AUTHD_KAFKA_SASL_MECHANISM", "is required with AUTHD_KAFKA_SASL_USER / AUTHD_KAFKA_SASL_PASSWORD (%s)", strings.Join(KafkaSASLMechanisms, ", "))
	case mech != "" && !slices.Contains(KafkaSASLMechanisms, mech):
		bad("AUTHD_KAFKA_SASL_MECHANISM", "must be %s, got %q", strings.Join(KafkaSASLMechanisms, ", "), c.KafkaSASLMechanism)
	case mech != "" && (c.KafkaSASLUser == "" || c.KafkaSASLPassword == ""):
		bad("AUTHD_KAFKA_SASL_USER", "and AUTHD_KAFKA_SASL_PASSWORD are required with AUTHD_KAFKA_SASL_MECHANISM")
	case mech == "PLAIN" && !c.KafkaTLS && c.KafkaTLSCA == "" && !c.Dev:
		bad("AUTHD_KAFKA_TLS", "must be true with SASL PLAIN outside dev mode (PLAIN sends the password in clear)")
	}

	if c.RateLimitTokenPerMin < 0 {
		bad("AUTHD_RATE_LIMIT_TOKEN_PER_MIN", "must not be negative (0 turns it off), got %d", c.RateLimitTokenPerMin)
	}
	if c.SessionTTL <= 0 {
		bad("AUTHD_SESSION_TTL", "must be positive, got %s", c.SessionTTL)
	}
	if c.SessionIdleTTL <= 0 {
		bad("AUTHD_SESSION_IDLE_TTL", "must be positive, got %s", c.SessionIdleTTL)
	} else if c.SessionTTL > 0 && c.SessionIdleTTL > c.SessionTTL {
		bad("AUTHD_SESSION_IDLE_TTL", "must not be longer than AUTHD_SESSION_TTL (%s > %s)", c.SessionIdleTTL, c.SessionTTL)
	}
	if c.TemplatesDir != "" {
		if st, err := os.Stat(c.TemplatesDir); err != nil {
			bad("AUTHD_TEMPLATES_DIR", "must be a folder holding the page templates: %v", err)
		} else if !st.IsDir() {
			bad("AUTHD_TEMPLATES_DIR", "must be a folder holding the page templates, got a file: %q", c.TemplatesDir)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("AUTHD_SHUTDOWN_TIMEOUT", "must be positive, got %s", c.ShutdownTimeout)
	}
	if _, err := c.MemoryLimitBytes(); err != nil {
		bad("AUTHD_MEMORY_LIMIT", "%v", err)
	}
	if c.ReadHeaderTimeout <= 0 {
		bad("AUTHD_READ_HEADER_TIMEOUT", "must be positive, got %s", c.ReadHeaderTimeout)
	}
	return errs
}

func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("must be host:port or :port, got %q", addr)
	}
	return nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	return nil
}

const redacted = "[REDACTED]"

// LogValue implements slog.LogValuer: every setting of fields(), in order,
// with the secrets replaced and URL passwords masked.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 32)
	for _, f := range fields() {
		var v slog.Value
		switch p := f.ptr(&c).(type) {
		case *string:
			switch {
			case f.secret:
				v = slog.StringValue(redactSecret(*p))
			case f.url:
				v = slog.StringValue(redactURL(*p))
			default:
				v = slog.StringValue(*p)
			}
		case *[]string:
			if f.secret {
				v = slog.IntValue(len(*p)) // how many, never which
			} else {
				v = slog.AnyValue(*p)
			}
		case *bool:
			v = slog.BoolValue(*p)
		case *int:
			v = slog.IntValue(*p)
		case *time.Duration:
			v = slog.DurationValue(*p)
		}
		attrs = append(attrs, slog.Attr{Key: f.key, Value: v})
	}
	ids := make([]string, len(c.Connectors))
	for i, cn := range c.Connectors {
		ids[i] = cn.ID // never their secrets
	}
	attrs = append(attrs, slog.Any(ConnectorsKey, ids))
	return slog.GroupValue(attrs...)
}

// String renders c for humans, secrets redacted. It also makes %v and %+v safe.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("config.Config{")
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", a.Key, a.Value)
	}
	b.WriteString("}")
	return b.String()
}

// GoString makes %#v as safe as %v.
func (c Config) GoString() string { return c.String() }

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// redactURL masks the password of u; a URL that does not parse is hidden
// whole, since it might be all secret.
func redactURL(u string) string {
	if u == "" || strings.HasPrefix(u, "sqlite://") {
		return u
	}
	p, err := url.Parse(u)
	if err != nil {
		return redacted
	}
	if q := p.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}
