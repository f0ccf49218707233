package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// field is one setting. Its YAML key is key, its flag key with '-' for '_',
// its environment variable AUTHD_ and key in upper case.
type field struct {
	key    string
	usage  string
	secret bool // no flag (it would show in ps), value never echoed
	url    bool // may carry a password: masked in logs
	ptr    func(*Config) any
}

// fields lists every setting, in the order of the Config struct.
func fields() []field {
	return []field{
		{key: "issuer", usage: "issuer URL: the iss of every token and the base of every metadata URL", ptr: func(c *Config) any { return &c.Issuer }},
		{key: "http_addr", usage: "HTTP listen address", ptr: func(c *Config) any { return &c.HTTPAddr }},
		{key: "database_url", url: true, usage: "postgres://... or sqlite://PATH", ptr: func(c *Config) any { return &c.DatabaseURL }},
		{key: "redis_url", url: true, usage: "redis://... for rate limits shared by every replica; empty keeps them per process", ptr: func(c *Config) any { return &c.RedisURL }},
		{key: "redis_key_prefix", usage: "prefix of every Redis key authd writes (to share one Redis)", ptr: func(c *Config) any { return &c.RedisKeyPrefix }},
		{key: "kafka_brokers", usage: "comma-separated Kafka brokers; empty keeps events in the outbox and the log", ptr: func(c *Config) any { return &c.KafkaBrokers }},
		{key: "kafka_tls", usage: "dial the Kafka brokers with TLS (system roots unless kafka_tls_ca)", ptr: func(c *Config) any { return &c.KafkaTLS }},
		{key: "kafka_tls_ca", usage: "PEM file of the CA that signed the Kafka brokers' certificates; implies TLS", ptr: func(c *Config) any { return &c.KafkaTLSCA }},
		{key: "kafka_sasl_mechanism", usage: "SASL mechanism for Kafka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none", ptr: func(c *Config) any { return &c.KafkaSASLMechanism }},
		{key: "kafka_sasl_user", usage: "SASL user for Kafka", ptr: func(c *Config) any { return &c.KafkaSASLUser }},
		{key: "kafka_sasl_password", usage: "SASL password for Kafka", secret: true, ptr: func(c *Config) any { return &c.KafkaSASLPassword }},
		{key: "data_dir", usage: "data folder (dev mode keeps its generated secret here)", ptr: func(c *Config) any { return &c.DataDir }},
		{key: "tls_cert", usage: "TLS certificate file (PEM)", ptr: func(c *Config) any { return &c.TLSCert }},
		{key: "tls_key", usage: "TLS private key file (PEM)", ptr: func(c *Config) any { return &c.TLSKey }},
		{key: "tls_terminated_upstream", usage: "TLS is terminated by a proxy in front: serve plain HTTP", ptr: func(c *Config) any { return &c.TLSTerminatedUpstream }},
		{key: "dev", usage: "development mode: plain HTTP allowed, secret generated", ptr: func(c *Config) any { return &c.Dev }},
		{key: "secret", usage: "at least 32 bytes: refresh-token HMAC key and key-encryption key", secret: true, ptr: func(c *Config) any { return &c.Secret }},
		{key: "secret_old", usage: "comma-separated earlier secrets, still verifying during a rotation", secret: true, ptr: func(c *Config) any { return &c.SecretOld }},
		{key: "signing_alg", usage: "token signing algorithm: ES256, RS256 or EdDSA", ptr: func(c *Config) any { return &c.SigningAlg }},
		{key: "access_token_ttl", usage: "access token lifetime", ptr: func(c *Config) any { return &c.AccessTokenTTL }},
		{key: "refresh_token_ttl", usage: "refresh token lifetime", ptr: func(c *Config) any { return &c.RefreshTokenTTL }},
		{key: "refresh_family_ttl", usage: "absolute lifetime of a refresh-token family", ptr: func(c *Config) any { return &c.RefreshFamilyTTL }},
		{key: "audit_retention", usage: "how long audit entries are kept; 0 keeps them forever", ptr: func(c *Config) any { return &c.AuditRetention }},
		{key: "dpop_nonce", usage: "DPoP token requests must carry a server nonce (use_dpop_nonce, DPoP-Nonce)", ptr: func(c *Config) any { return &c.DPoPNonce }},
		{key: "refresh_reuse_interval", usage: "a refresh token presented again within this interval, before its successor is used, answers the same successor; 0 is strict", ptr: func(c *Config) any { return &c.RefreshReuseInterval }},
		{key: "lockout_threshold", usage: "consecutive failed logins before a temporary lock; 0 turns lockout off", ptr: func(c *Config) any { return &c.LockoutThreshold }},
		{key: "lockout_duration", usage: "how long a lock lasts", ptr: func(c *Config) any { return &c.LockoutDuration }},
		{key: "rate_limit_token_per_min", usage: "requests per minute per client IP on the token and signup endpoints, the sign-in forms and the connector routes; 0 turns it off", ptr: func(c *Config) any { return &c.RateLimitTokenPerMin }},
		{key: "session_ttl", usage: "absolute lifetime of a browser session (single sign-on)", ptr: func(c *Config) any { return &c.SessionTTL }},
		{key: "session_idle_ttl", usage: "a browser session unused this long ends", ptr: func(c *Config) any { return &c.SessionIdleTTL }},
		{key: "templates_dir", usage: "folder of your own copies of the sign-in pages (every page; authd.css and link.html optional); empty serves the built-in ones", ptr: func(c *Config) any { return &c.TemplatesDir }},
		{key: "shutdown_timeout", usage: "how long serve waits for in-flight requests when stopping", ptr: func(c *Config) any { return &c.ShutdownTimeout }},
		{key: "read_header_timeout", usage: "time allowed to read request headers", ptr: func(c *Config) any { return &c.ReadHeaderTimeout }},
		{key: "memory_limit", usage: "Go runtime soft memory limit (e.g. 96MiB, 1GiB; 0 for none); GOMEMLIMIT wins when set", ptr: func(c *Config) any { return &c.MemoryLimit }},
		{key: "trusted_proxies", usage: "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted", ptr: func(c *Config) any { return &c.TrustedProxies }},
		{key: "pprof_addr", usage: "listen address for net/http/pprof; empty turns it off", ptr: func(c *Config) any { return &c.PprofAddr }},
		{key: "log_level", usage: "debug, info, warn or error", ptr: func(c *Config) any { return &c.LogLevel }},
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return EnvPrefix + strings.ToUpper(key) }

// Register defines on fs the --config flag and one flag per setting, named
// in kebab case (--issuer, --http-addr, --database-url, ...), so every CLI
// verb shares them. The secrets have no flag: a command line is visible to
// every local user; set them through AUTHD_SECRET / AUTHD_SECRET_OLD or the
// file. Register panics, as pflag does, when a flag is already defined.
func Register(fs *pflag.FlagSet) {
	d := Defaults()
	fs.String(ConfigFlag, "", "YAML configuration file (AUTHD_CONFIG)")
	for _, f := range fields() {
		if f.secret {
			continue
		}
		name, usage := flagName(f.key), fmt.Sprintf("%s (%s)", f.usage, envName(f.key))
		switch p := f.ptr(&d).(type) {
		case *string:
			fs.String(name, *p, usage)
		case *[]string:
			fs.StringSlice(name, *p, usage)
		case *bool:
			fs.Bool(name, *p, usage)
		case *int:
			fs.Int(name, *p, usage)
		case *time.Duration:
			fs.Duration(name, *p, usage)
		default:
			panic(fmt.Sprintf("config: field %s has unsupported type %T", f.key, p))
		}
	}
}

// FileError is Load's error when the YAML file cannot be read or parsed;
// nothing else is loaded then.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("config: read %s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// Load builds the configuration: flags of fs that were set on the command
// line win over AUTHD_* variables (read through lookupEnv; nil means
// os.LookupEnv), which win over the YAML file named by --config or
// AUTHD_CONFIG, which wins over Defaults. A variable set to the empty string
// counts as unset. fs may be nil. Load does not call Validate.
//
// In dev mode the issuer follows the listen address unless it is set:
// AUTHD_HTTP_ADDR=:9090 makes it http://localhost:9090 (see DevIssuer).
//
// Every problem with a value (a variable or flag that does not parse, an
// unknown key or a bad value in the file) is returned, joined into one
// error, together with the configuration in which those settings keep
// their defaults, so that the caller can validate the rest and report
// everything at once. A file that cannot be read or parsed is a *FileError
// and the Config is zero.
func Load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	all := fields()
	byKey := make(map[string]field, len(all))
	for _, f := range all {
		byKey[f.key] = f
	}

	k := koanf.New(".")
	var errs []error

	// The file.
	path, _ := lookupEnv(EnvPrefix + "CONFIG")
	if fs != nil {
		if f := fs.Lookup(ConfigFlag); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, &FileError{Path: path, Err: err}
		}
		var unknown []string
		for _, key := range k.Keys() {
			if key == ConnectorsKey || strings.HasPrefix(key, ConnectorsKey+".") {
				continue
			}
			if _, ok := byKey[key]; !ok {
				unknown = append(unknown, key)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			errs = append(errs, fmt.Errorf("config: %s: unknown keys %s", path, strings.Join(unknown, ", ")))
			for _, key := range unknown {
				k.Delete(key)
			}
		}
	}

	// The environment: only the variables authd knows are looked up, then
	// parsed here so that an error names the variable.
	var environ []string
	for _, f := range all {
		if v, ok := lookupEnv(envName(f.key)); ok && v != "" {
			environ = append(environ, envName(f.key)+"="+v)
		}
	}
	envProvider := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
			f, ok := byKey[key]
			if !ok {
				return "", nil
			}
			v, err := parseString(f.ptr(&Config{}), value)
			if err != nil {
				errs = append(errs, fmt.Errorf("config: %s: %w", name, describe(f, value, err)))
				// Whatever the file said, this setting is in error: the
				// default stands in while the rest is validated.
				k.Delete(key)
				return "", nil
			}
			return key, v
		},
	})
	if err := k.Load(envProvider, nil); err != nil {
		return Config{}, fmt.Errorf("config: environment: %w", err)
	}

	// The flags set on the command line (a nil koanf makes posflag skip the
	// unchanged ones); flags that are not settings are ignored.
	if fs != nil {
		p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			if _, ok := byKey[key]; !ok {
				return "", nil
			}
			return key, posflag.FlagVal(fs, f)
		})
		if err := k.Load(p, nil); err != nil {
			return Config{}, fmt.Errorf("config: flags: %w", err)
		}
	}

	// Decode over the defaults.
	c := Defaults()
	for _, f := range all {
		if !k.Exists(f.key) {
			continue
		}
		raw := k.Get(f.key)
		if raw == nil {
			continue
		}
		if err := assign(f.ptr(&c), raw); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", f.key, describe(f, fmt.Sprint(raw), err)))
		}
	}
	if raw := k.Get(ConnectorsKey); raw != nil {
		cs, cerrs := decodeConnectors(raw)
		c.Connectors = cs
		errs = append(errs, cerrs...)
	}
	if c.Dev && !k.Exists("issuer") {
		if iss, ok := DevIssuer(c.HTTPAddr); ok {
			c.Issuer = iss
		}
	}
	return c, errors.Join(errs...)
}

// DevIssuer is the issuer dev mode uses when none is set: http://localhost
// and the port of the listen address addr (its host when it names one:
// 127.0.0.1:9090 gives http://127.0.0.1:9090). ok is false when addr is not
// host:port or its port is 0.
func DevIssuer(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port), true
}

// UnknownVar is an AUTHD_* environment variable that is no setting.
type UnknownVar struct {
	Name    string
	Suggest string // the setting it most resembles, when one is close; else empty
}

// UnknownEnv returns, sorted by name, the AUTHD_* variables of environ
// (KEY=VALUE, as os.Environ gives) that name no setting: a typo leaves a
// setting at its default, so callers warn about them (they are not errors:
// the environment is shared with other programs). AUTHD_CONFIG is known;
// AUTHD_TEST_* belong to authd's test suite and are skipped.
func UnknownEnv(environ []string) []UnknownVar {
	known := map[string]bool{EnvPrefix + "CONFIG": true}
	var names []string
	for _, f := range fields() {
		known[envName(f.key)] = true
		names = append(names, envName(f.key))
	}
	var out []UnknownVar
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || seen[name] || strings.HasPrefix(name, EnvPrefix+"TEST_") {
			continue
		}
		seen[name] = true
		u := UnknownVar{Name: name}
		// A suggestion is at most a third of the name after the prefix away.
		best := max(1, (len(name)-len(EnvPrefix))/3) + 1
		for _, n := range names {
			if d := editDistance(name, n); d < best {
				best, u.Suggest = d, n
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe adds the offending value to err unless the field is a secret.
func describe(f field, value string, err error) error {
	if f.secret {
		return err
	}
	return fmt.Errorf("%w (value %q)", err, value)
}

// parseString turns a string (a variable's value) into the type of ptr.
func parseString(ptr any, s string) (any, error) {
	switch ptr.(type) {
	case *string:
		return s, nil
	case *[]string:
		return splitList(s), nil
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, errors.New("want true or false")
		}
		return b, nil
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, errors.New("want an integer")
		}
		return n, nil
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, errors.New("want a duration such as 90s, 15m or 720h")
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported type %T", ptr)
}

// assign stores raw (from a provider: a string from YAML, or an already
// typed value) into ptr.
func assign(ptr any, raw any) error {
	if s, ok := raw.(string); ok {
		if _, isString := ptr.(*string); !isString {
			v, err := parseString(ptr, s)
			if err != nil {
				return err
			}
			raw = v
		}
	}
	switch p := ptr.(type) {
	case *string:
		s, ok := raw.(string)
		if !ok {
			return errors.New("want a string")
		}
		*p = s
	case *[]string:
		switch v := raw.(type) {
		case []string:
			*p = cleanList(v)
		case []any:
			list := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return errors.New("want a list of strings")
				}
				list = append(list, s)
			}
			*p = cleanList(list)
		default:
			return errors.New("want a list of strings")
		}
	case *bool:
		b, ok := raw.(bool)
		if !ok {
			return errors.New("want true or false")
		}
		*p = b
	case *int:
		switch v := raw.(type) {
		case int:
			*p = v
		case int64:
			if v < math.MinInt || v > math.MaxInt {
				return errors.New("integer out of range")
			}
			*p = int(v)
		case uint64:
			if v > math.MaxInt {
				return errors.New("integer out of range")
			}
			*p = int(v)
		case float64:
			if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
				return errors.New("want an integer")
			}
			*p = int(v)
		default:
			return errors.New("want an integer")
		}
	case *time.Duration:
		d, ok := raw.(time.Duration)
		if !ok {
			return errors.New("want a duration such as 90s, 15m or 720h")
		}
		*p = d
	default:
		return fmt.Errorf("unsupported type %T", ptr)
	}
	return nil
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty elements.
func splitList(s string) []string { return cleanList(strings.Split(s, ",")) }

func cleanList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, e := range in {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// SecretsHelp describes, one per line, the settings that have no flag (the
// secrets, which a command line would show to every local user): they are
// set through their AUTHD_* variable or the YAML file. serve --help shows it.
func SecretsHelp() string {
	var b strings.Builder
	for _, f := range fields() {
		if f.secret {
			fmt.Fprintf(&b, "  %-28s %s (YAML key %s)\n", envName(f.key), f.usage, f.key)
		}
	}
	return b.String()
}
