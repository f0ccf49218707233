package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// envMap turns a map into the lookup Load takes.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeYAML writes body to a file in a test folder and returns its path.
func writeYAML(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authd.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load registers the flags on a fresh set, parses args and loads.
func load(t *testing.T, yaml string, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("authd", pflag.ContinueOnError)
	Register(fs)
	if yaml != "" {
		args = append([]string{"--config", writeYAML(t, yaml)}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q) = %v", args, err)
	}
	return Load(fs, envMap(env))
}

func TestLoadDefaults(t *testing.T) {
	got, err := load(t, "", nil)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if want := Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load() = %+v; want %+v", got, want)
	}
	d := Defaults()
	if d.Issuer != "http://localhost:8080" || d.HTTPAddr != ":8080" || d.DatabaseURL != "sqlite://./data/authd.db" ||
		d.SigningAlg != "ES256" || d.AccessTokenTTL != 15*time.Minute || d.RefreshTokenTTL != 720*time.Hour ||
		d.RefreshFamilyTTL != 2160*time.Hour || d.LockoutThreshold != 5 || d.LockoutDuration != 15*time.Minute ||
		d.RateLimitTokenPerMin != 60 || d.Dev || d.RedisURL != "" || len(d.KafkaBrokers) != 0 {
		t.Errorf("Defaults() = %+v; differs from API.md", d)
	}
}

func TestLoadPrecedence(t *testing.T) {
	const yaml = `
http_addr: "yaml:1"
access_token_ttl: 20m
lockout_threshold: 7
dev: true
kafka_brokers: [y1:9092, y2:9092]
`
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		args []string
		want Config // only the five fields below are compared
	}{
		{
			name: "defaults",
			want: Config{HTTPAddr: ":8080", AccessTokenTTL: 15 * time.Minute, LockoutThreshold: 5, Dev: false},
		},
		{
			name: "yaml beats defaults",
			yaml: yaml,
			want: Config{HTTPAddr: "yaml:1", AccessTokenTTL: 20 * time.Minute, LockoutThreshold: 7, Dev: true, KafkaBrokers: []string{"y1:9092", "y2:9092"}},
		},
		{
			name: "env beats yaml",
			yaml: yaml,
			env: map[string]string{
				"AUTHD_HTTP_ADDR": "env:2", "AUTHD_ACCESS_TOKEN_TTL": "25m", "AUTHD_LOCKOUT_THRESHOLD": "8",
				"AUTHD_DEV": "false", "AUTHD_KAFKA_BROKERS": "e1:9092",
			},
			want: Config{HTTPAddr: "env:2", AccessTokenTTL: 25 * time.Minute, LockoutThreshold: 8, Dev: false, KafkaBrokers: []string{"e1:9092"}},
		},
		{
			name: "flag beats env and yaml",
			yaml: yaml,
			env: map[string]string{
				"AUTHD_HTTP_ADDR": "env:2", "AUTHD_ACCESS_TOKEN_TTL": "25m", "AUTHD_LOCKOUT_THRESHOLD": "8",
				"AUTHD_DEV": "false", "AUTHD_KAFKA_BROKERS": "e1:9092",
			},
			args: []string{"--http-addr=flag:3", "--access-token-ttl=30m", "--lockout-threshold=9", "--dev", "--kafka-brokers=f1:9092,f2:9092"},
			want: Config{HTTPAddr: "flag:3", AccessTokenTTL: 30 * time.Minute, LockoutThreshold: 9, Dev: true, KafkaBrokers: []string{"f1:9092", "f2:9092"}},
		},
		{
			name: "flag beats yaml without env",
			yaml: yaml,
			args: []string{"--http-addr=flag:3", "--lockout-threshold=0"},
			want: Config{HTTPAddr: "flag:3", AccessTokenTTL: 20 * time.Minute, LockoutThreshold: 0, Dev: true, KafkaBrokers: []string{"y1:9092", "y2:9092"}},
		},
		{
			name: "unset flags do not hide env",
			env:  map[string]string{"AUTHD_HTTP_ADDR": "env:2", "AUTHD_DEV": "true"},
			args: []string{"--access-token-ttl=1m"},
			want: Config{HTTPAddr: "env:2", AccessTokenTTL: time.Minute, LockoutThreshold: 5, Dev: true},
		},
		{
			name: "empty env counts as unset",
			yaml: yaml,
			env:  map[string]string{"AUTHD_HTTP_ADDR": "", "AUTHD_KAFKA_BROKERS": ""},
			want: Config{HTTPAddr: "yaml:1", AccessTokenTTL: 20 * time.Minute, LockoutThreshold: 7, Dev: true, KafkaBrokers: []string{"y1:9092", "y2:9092"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.yaml, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			if got.HTTPAddr != tt.want.HTTPAddr {
				t.Errorf("HTTPAddr = %q; want %q", got.HTTPAddr, tt.want.HTTPAddr)
			}
			if got.AccessTokenTTL != tt.want.AccessTokenTTL {
				t.Errorf("AccessTokenTTL = %v; want %v", got.AccessTokenTTL, tt.want.AccessTokenTTL)
			}
			if got.LockoutThreshold != tt.want.LockoutThreshold {
				t.Errorf("LockoutThreshold = %d; want %d", got.LockoutThreshold, tt.want.LockoutThreshold)
			}
			if got.Dev != tt.want.Dev {
				t.Errorf("Dev = %v; want %v", got.Dev, tt.want.Dev)
			}
			if len(got.KafkaBrokers) != 0 || len(tt.want.KafkaBrokers) != 0 {
				if !reflect.DeepEqual(got.KafkaBrokers, tt.want.KafkaBrokers) {
					t.Errorf("KafkaBrokers = %q; want %q", got.KafkaBrokers, tt.want.KafkaBrokers)
				}
			}
		})
	}
}

func TestLoadEveryEnvName(t *testing.T) {
	env := map[string]string{
		"AUTHD_ISSUER":                    "https://id.example.com",
		"AUTHD_HTTP_ADDR":                 ":9090",
		"AUTHD_DATABASE_URL":              "postgres://authd@db/authd",
		"AUTHD_REDIS_URL":                 "redis://cache:6379/0",
		"AUTHD_KAFKA_BROKERS":             "k1:9092,k2:9092",
		"AUTHD_KAFKA_TLS":                 "true",
		"AUTHD_KAFKA_TLS_CA":              "/tls/kafka-ca.pem",
		"AUTHD_KAFKA_SASL_MECHANISM":      "SCRAM-SHA-512",
		"AUTHD_KAFKA_SASL_USER":           "authd",
		"AUTHD_KAFKA_SASL_PASSWORD":       strings.Repeat("k", 20),
		"AUTHD_DATA_DIR":                  "/var/lib/authd",
		"AUTHD_TLS_CERT":                  "/tls/cert.pem",
		"AUTHD_TLS_KEY":                   "/tls/key.pem",
		"AUTHD_TLS_TERMINATED_UPSTREAM":   "true",
		"AUTHD_DEV":                       "1",
		"AUTHD_SECRET":                    strings.Repeat("s", 32),
		"AUTHD_SECRET_OLD":                strings.Repeat("o", 32) + "," + strings.Repeat("p", 32),
		"AUTHD_SIGNING_ALG":               "EdDSA",
		"AUTHD_ACCESS_TOKEN_TTL":          "5m",
		"AUTHD_REFRESH_TOKEN_TTL":         "24h",
		"AUTHD_REFRESH_FAMILY_TTL":        "48h",
		"AUTHD_REFRESH_REUSE_INTERVAL":    "0",
		"AUTHD_AUDIT_RETENTION":           "720h",
		"AUTHD_DPOP_NONCE":                "true",
		"AUTHD_LOCKOUT_THRESHOLD":         "3",
		"AUTHD_LOCKOUT_DURATION":          "1h",
		"AUTHD_RATE_LIMIT_TOKEN_PER_MIN":  "0",
		"AUTHD_SESSION_TTL":               "48h",
		"AUTHD_SESSION_IDLE_TTL":          "2h",
		"AUTHD_TEMPLATES_DIR":             ".",
		"AUTHD_SHUTDOWN_TIMEOUT":          "5s",
		"AUTHD_READ_HEADER_TIMEOUT":       "2s",
		"AUTHD_MEMORY_LIMIT":              "1GiB",
		"AUTHD_PPROF_ADDR":                "127.0.0.1:6060",
		"AUTHD_LOG_LEVEL":                 "debug",
		"AUTHD_REDIS_KEY_PREFIX":          "svc1:",
		"AUTHD_TRUSTED_PROXIES":           "10.0.0.0/8, 192.168.1.1",
		"AUTHD_SOMETHING_AUTHD_IGNORES":   "x",
		"HOME_IS_NOT_AUTHD_CONFIGURATION": "y",
	}
	got, err := Load(nil, envMap(env))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	want := Config{
		Issuer: "https://id.example.com", HTTPAddr: ":9090", DatabaseURL: "postgres://authd@db/authd",
		RedisURL: "redis://cache:6379/0", RedisKeyPrefix: "svc1:", KafkaBrokers: []string{"k1:9092", "k2:9092"}, DataDir: "/var/lib/authd",
		KafkaTLS: true, KafkaTLSCA: "/tls/kafka-ca.pem", KafkaSASLMechanism: "SCRAM-SHA-512", KafkaSASLUser: "authd", KafkaSASLPassword: strings.Repeat("k", 20),
		TLSCert: "/tls/cert.pem", TLSKey: "/tls/key.pem", TLSTerminatedUpstream: true, Dev: true,
		Secret: strings.Repeat("s", 32), SecretOld: []string{strings.Repeat("o", 32), strings.Repeat("p", 32)},
		SigningAlg: "EdDSA", AccessTokenTTL: 5 * time.Minute, RefreshTokenTTL: 24 * time.Hour, RefreshFamilyTTL: 48 * time.Hour,
		RefreshReuseInterval: 0, AuditRetention: 720 * time.Hour, DPoPNonce: true, LockoutThreshold: 3, LockoutDuration: time.Hour, RateLimitTokenPerMin: 0,
		SessionTTL: 48 * time.Hour, SessionIdleTTL: 2 * time.Hour, TemplatesDir: ".",
		ShutdownTimeout: 5 * time.Second, ReadHeaderTimeout: 2 * time.Second, MemoryLimit: "1GiB",
		PprofAddr: "127.0.0.1:6060", LogLevel: "debug", TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"},
	}
	if !reflect.DeepEqual(got, want) {
		// Compare field by field: %v of a Config hides the secrets.
		gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
		for i := range gv.NumField() {
			if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
				t.Errorf("%s = %#v; want %#v", gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
			}
		}
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v; want nil", err)
	}
}

func TestLoadLists(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "env trims and drops blanks", env: map[string]string{"AUTHD_KAFKA_BROKERS": " a:1, b:2,,c:3 ,"}, want: []string{"a:1", "b:2", "c:3"}},
		{name: "env single", env: map[string]string{"AUTHD_KAFKA_BROKERS": "a:1"}, want: []string{"a:1"}},
		{name: "yaml sequence", yaml: "kafka_brokers:\n  - a:1\n  - ' b:2 '\n", want: []string{"a:1", "b:2"}},
		{name: "yaml comma string", yaml: "kafka_brokers: a:1,b:2\n", want: []string{"a:1", "b:2"}},
		{name: "yaml empty sequence", yaml: "kafka_brokers: []\n", want: []string{}},
		{name: "flag repeated", args: []string{"--kafka-brokers=a:1", "--kafka-brokers=b:2,c:3"}, want: []string{"a:1", "b:2", "c:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.yaml, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			if !reflect.DeepEqual(got.KafkaBrokers, tt.want) {
				t.Errorf("KafkaBrokers = %q; want %q", got.KafkaBrokers, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		args  []string
		wants []string // substrings of the error
	}{
		{name: "env duration without unit", env: map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "15"}, wants: []string{"AUTHD_ACCESS_TOKEN_TTL", "duration", `"15"`}},
		{name: "env duration garbage", env: map[string]string{"AUTHD_LOCKOUT_DURATION": "fifteen minutes"}, wants: []string{"AUTHD_LOCKOUT_DURATION", "duration"}},
		{name: "env bad int", env: map[string]string{"AUTHD_LOCKOUT_THRESHOLD": "five"}, wants: []string{"AUTHD_LOCKOUT_THRESHOLD", "integer"}},
		{name: "env bad bool", env: map[string]string{"AUTHD_DEV": "yes please"}, wants: []string{"AUTHD_DEV", "true or false"}},
		{
			name:  "every env error at once",
			env:   map[string]string{"AUTHD_DEV": "maybe", "AUTHD_REFRESH_TOKEN_TTL": "1 month"},
			wants: []string{"AUTHD_DEV", "AUTHD_REFRESH_TOKEN_TTL"},
		},
		{name: "yaml duration as number", yaml: "access_token_ttl: 900\n", wants: []string{"access_token_ttl", "duration"}},
		{name: "yaml bad duration string", yaml: "refresh_token_ttl: 30d\n", wants: []string{"refresh_token_ttl", "duration"}},
		{name: "yaml int as text", yaml: "lockout_threshold: many\n", wants: []string{"lockout_threshold", "integer"}},
		{name: "yaml fractional int", yaml: "rate_limit_token_per_min: 1.5\n", wants: []string{"rate_limit_token_per_min", "integer"}},
		{name: "yaml list of maps", yaml: "kafka_brokers:\n  - host: a\n", wants: []string{"kafka_brokers", "list of strings"}},
		{name: "yaml unknown key", yaml: "issuer: https://x\nhttp_adr: :1\ntls:\n  cert: x\n", wants: []string{"unknown keys", "http_adr", "tls.cert"}},
		{name: "yaml env-style key", yaml: "AUTHD_ISSUER: https://x\n", wants: []string{"unknown keys", "AUTHD_ISSUER"}},
		{name: "yaml syntax", yaml: "issuer: [unclosed\n", wants: []string{"config: read"}},
		{name: "missing config file", args: []string{"--config", "/nonexistent/authd.yaml"}, wants: []string{"config: read", "/nonexistent/authd.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml, tt.env, tt.args...)
			if err == nil {
				t.Fatalf("Load() = nil; want an error containing %q", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigFromEnv(t *testing.T) {
	path := writeYAML(t, "issuer: https://from-file.example\n")
	got, err := Load(nil, envMap(map[string]string{"AUTHD_CONFIG": path}))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if got.Issuer != "https://from-file.example" {
		t.Errorf("Issuer = %q; want the file's", got.Issuer)
	}
}

func TestRegister(t *testing.T) {
	fs := pflag.NewFlagSet("authd", pflag.ContinueOnError)
	Register(fs)
	for _, name := range []string{
		"config", "issuer", "http-addr", "database-url", "redis-url", "kafka-brokers", "tls-cert", "tls-key",
		"tls-terminated-upstream", "dev", "signing-alg", "access-token-ttl", "refresh-token-ttl",
		"refresh-family-ttl", "lockout-threshold", "lockout-duration", "rate-limit-token-per-min",
		"pprof-addr", "log-level", "shutdown-timeout", "data-dir",
	} {
		if fs.Lookup(name) == nil {
			t.Errorf("Register: no --%s flag", name)
		}
	}
	for _, name := range []string{"secret", "secret-old", "kafka-sasl-password"} {
		if fs.Lookup(name) != nil {
			t.Errorf("Register: --%s exists; secrets must not be flags", name)
		}
	}
	if f := fs.Lookup("http-addr"); f != nil && f.DefValue != ":8080" {
		t.Errorf("--http-addr default = %q; want :8080", f.DefValue)
	}
}

// production is a valid non-dev configuration.
func production() Config {
	c := Defaults()
	c.Issuer = "https://id.example.com"
	c.DatabaseURL = "postgres://authd:pw@db:5432/authd?sslmode=verify-full"
	c.TLSCert, c.TLSKey = "/tls/cert.pem", "/tls/key.pem"
	c.Secret = strings.Repeat("k", 32)
	return c
}

func TestValidate(t *testing.T) {
	dev := Defaults()
	dev.Dev = true
	if err := dev.Validate(); err != nil {
		t.Errorf("Defaults()+Dev Validate() = %v; want nil", err)
	}
	if err := production().Validate(); err != nil {
		t.Errorf("production Validate() = %v; want nil", err)
	}

	tests := []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"issuer relative", func(c *Config) { c.Issuer = "/auth" }, "AUTHD_ISSUER"},
		{"issuer no host", func(c *Config) { c.Issuer = "https://" }, "AUTHD_ISSUER"},
		{"issuer ftp", func(c *Config) { c.Issuer = "ftp://id.example.com" }, "scheme"},
		{"issuer http outside dev", func(c *Config) { c.Issuer = "http://id.example.com" }, "https outside dev"},
		{"issuer query", func(c *Config) { c.Issuer = "https://id.example.com?x=1" }, "query"},
		{"issuer empty query", func(c *Config) { c.Issuer = "https://id.example.com?" }, "query"},
		{"issuer fragment", func(c *Config) { c.Issuer = "https://id.example.com#x" }, "fragment"},
		{"issuer trailing slash", func(c *Config) { c.Issuer = "https://id.example.com/" }, "slash"},
		{"issuer with path", func(c *Config) { c.Issuer = "https://example.com/auth" }, ""},
		{"issuer userinfo", func(c *Config) { c.Issuer = "https://u:p@id.example.com" }, "user information"},
		{"http addr empty", func(c *Config) { c.HTTPAddr = "" }, "AUTHD_HTTP_ADDR"},
		{"http addr no port", func(c *Config) { c.HTTPAddr = "localhost" }, "AUTHD_HTTP_ADDR"},
		{"pprof same as http", func(c *Config) { c.PprofAddr = c.HTTPAddr }, "AUTHD_PPROF_ADDR"},
		{"pprof ok", func(c *Config) { c.PprofAddr = "127.0.0.1:6060" }, ""},
		{"trusted proxy not a CIDR", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "AUTHD_TRUSTED_PROXIES"},
		{"trusted proxies ok", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "::1"} }, ""},
		{"mysql", func(c *Config) { c.DatabaseURL = "mysql://db/authd" }, "AUTHD_DATABASE_URL"},
		{"sqlite empty path", func(c *Config) { c.DatabaseURL = "sqlite://" }, "AUTHD_DATABASE_URL"},
		{"sqlite without slashes", func(c *Config) { c.DatabaseURL = "sqlite:authd.db" }, "AUTHD_DATABASE_URL"},
		{"sqlite ok", func(c *Config) { c.DatabaseURL = "sqlite:///var/lib/authd/authd.db" }, ""},
		{"postgresql ok", func(c *Config) { c.DatabaseURL = "postgresql:///authd?host=/run/postgresql" }, ""},
		{"redis http", func(c *Config) { c.RedisURL = "http://cache" }, "AUTHD_REDIS_URL"},
		{"rediss ok", func(c *Config) { c.RedisURL = "rediss://cache:6380" }, ""},
		{"kafka no port", func(c *Config) { c.KafkaBrokers = []string{"k1:9092", "k2"} }, "broker 2"},
		{"kafka scram", func(c *Config) {
			c.KafkaBrokers, c.KafkaSASLMechanism, c.KafkaSASLUser, c.KafkaSASLPassword = []string{"k:9092"}, "scram-sha-256", "u", "p"
		}, ""},
		{"kafka plain over tls", func(c *Config) {
			c.KafkaBrokers, c.KafkaTLSCA, c.KafkaSASLMechanism, c.KafkaSASLUser, c.KafkaSASLPassword = []string{"k:9092"}, "/ca.pem", "PLAIN", "u", "p"
		}, ""},
		{"kafka plain in clear", func(c *Config) {
			c.KafkaBrokers, c.KafkaSASLMechanism, c.KafkaSASLUser, c.KafkaSASLPassword = []string{"k:9092"}, "PLAIN", "u", "p"
		}, "PLAIN sends the password in clear"},
		{"kafka mechanism unknown", func(c *Config) {
			c.KafkaBrokers, c.KafkaSASLMechanism, c.KafkaSASLUser, c.KafkaSASLPassword = []string{"k:9092"}, "GSSAPI", "u", "p"
		}, "AUTHD_KAFKA_SASL_MECHANISM: must be PLAIN"},
		{"kafka mechanism without password", func(c *Config) {
			c.KafkaBrokers, c.KafkaSASLMechanism, c.KafkaSASLUser = []string{"k:9092"}, "SCRAM-SHA-512", "u"
		}, "AUTHD_KAFKA_SASL_PASSWORD are required"},
		{"kafka user without mechanism", func(c *Config) { c.KafkaBrokers, c.KafkaSASLUser = []string{"k:9092"}, "u" }, "AUTHD_KAFKA_SASL_MECHANISM: is required"},
		{"kafka tls without brokers", func(c *Config) { c.KafkaTLS = true }, "AUTHD_KAFKA_BROKERS: is empty"},
		{"cert without key", func(c *Config) { c.TLSKey = "" }, "AUTHD_TLS_KEY"},
		{"key without cert", func(c *Config) { c.TLSCert = "" }, "AUTHD_TLS_CERT"},
		{"plain http", func(c *Config) { c.TLSCert, c.TLSKey = "", "" }, "serve refuses plain HTTP unless AUTHD_DEV=true or AUTHD_TLS_TERMINATED_UPSTREAM=true"},
		{"plain http upstream tls", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSTerminatedUpstream = "", "", true }, ""},
		{"no secret", func(c *Config) { c.Secret = "" }, "AUTHD_SECRET: is required"},
		{"short secret", func(c *Config) { c.Secret = strings.Repeat("k", 31) }, "at least 32 bytes"},
		{"short old secret", func(c *Config) { c.SecretOld = []string{strings.Repeat("o", 32), "short"} }, "secret 2"},
		{"alg", func(c *Config) { c.SigningAlg = "HS256" }, "AUTHD_SIGNING_ALG"},
		{"alg case", func(c *Config) { c.SigningAlg = "es256" }, "AUTHD_SIGNING_ALG"},
		{"rs256 ok", func(c *Config) { c.SigningAlg = "RS256" }, ""},
		{"access ttl zero", func(c *Config) { c.AccessTokenTTL = 0 }, "AUTHD_ACCESS_TOKEN_TTL"},
		{"refresh ttl negative", func(c *Config) { c.RefreshTokenTTL = -time.Hour }, "AUTHD_REFRESH_TOKEN_TTL"},
		{"refresh shorter than access", func(c *Config) { c.RefreshTokenTTL = time.Minute }, "shorter than AUTHD_ACCESS_TOKEN_TTL"},
		{"family shorter than refresh", func(c *Config) { c.RefreshFamilyTTL = time.Hour }, "AUTHD_REFRESH_FAMILY_TTL"},
		{"negative lockout", func(c *Config) { c.LockoutThreshold = -1 }, "AUTHD_LOCKOUT_THRESHOLD"},
		{"lockout without duration", func(c *Config) { c.LockoutDuration = 0 }, "AUTHD_LOCKOUT_DURATION"},
		{"lockout off without duration", func(c *Config) { c.LockoutThreshold, c.LockoutDuration = 0, 0 }, ""},
		{"negative rate limit", func(c *Config) { c.RateLimitTokenPerMin = -5 }, "AUTHD_RATE_LIMIT_TOKEN_PER_MIN"},
		{"rate limit off", func(c *Config) { c.RateLimitTokenPerMin = 0 }, ""},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, "AUTHD_LOG_LEVEL"},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "AUTHD_SHUTDOWN_TIMEOUT"},
		{"session ttl zero", func(c *Config) { c.SessionTTL = 0 }, "AUTHD_SESSION_TTL: must be positive"},
		{"session idle negative", func(c *Config) { c.SessionIdleTTL = -time.Minute }, "AUTHD_SESSION_IDLE_TTL: must be positive"},
		{"session idle longer", func(c *Config) { c.SessionTTL, c.SessionIdleTTL = time.Hour, 2*time.Hour }, "must not be longer than AUTHD_SESSION_TTL"},
		{"session idle equal", func(c *Config) { c.SessionTTL, c.SessionIdleTTL = time.Hour, time.Hour }, ""},
		{"templates dir missing", func(c *Config) { c.TemplatesDir = "/no/such/authd/templates" }, "AUTHD_TEMPLATES_DIR: must be a folder"},
		{"templates dir a file", func(c *Config) { c.TemplatesDir = "config_test.go" }, "got a file"},
		{"templates dir ok", func(c *Config) { c.TemplatesDir = "../templates" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := production()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate() = nil; want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate() = %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Config{
		Issuer:          "http://id.example.com?x=1",
		HTTPAddr:        ":8080",
		DatabaseURL:     "mysql://db",
		TLSCert:         "/tls/cert.pem",
		Secret:          "short",
		SigningAlg:      "HS256",
		AccessTokenTTL:  time.Hour,
		RefreshTokenTTL: time.Minute,
		LockoutDuration: -time.Second,
		SessionTTL:      time.Hour,
		SessionIdleTTL:  time.Hour,
		LogLevel:        "info",
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want many problems")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("Validate() = %T; want an errors.Join", err)
	}
	for _, want := range []string{
		"AUTHD_ISSUER: must be https outside dev", "AUTHD_ISSUER: must not have a query",
		"AUTHD_DATABASE_URL", "AUTHD_TLS_KEY", "AUTHD_SECRET", "AUTHD_SIGNING_ALG",
		"AUTHD_REFRESH_TOKEN_TTL", "AUTHD_REFRESH_FAMILY_TTL", "AUTHD_LOCKOUT_DURATION",
		"AUTHD_SHUTDOWN_TIMEOUT",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q; want it to list %q", err, want)
		}
	}
	if n := len(joined.Unwrap()); n != 11 {
		t.Errorf("Validate() listed %d problems; want 11:\n%v", n, err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "config: ") {
			t.Errorf("problem %q lacks the config: prefix", line)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const secret = "this-is-the-current-secret-value-0123456789"
	const old = "this-is-an-old-secret-value-abcdefghijklmnop"
	const dbPassword = "db-password-7f3a"
	const redisPassword = "redis-password-9c1e"
	c := production()
	c.Secret = secret
	c.SecretOld = []string{old, "short-old-secret"}
	c.DatabaseURL = "postgres://authd:" + dbPassword + "@db/authd?password=" + dbPassword
	c.RedisURL = "redis://:" + redisPassword + "@cache:6379"
	const kafkaPassword = "kafka-sasl-password-3d9b"
	c.KafkaBrokers, c.KafkaSASLMechanism, c.KafkaSASLUser, c.KafkaSASLPassword = []string{"k:9092"}, "GSSAPI", "authd", kafkaPassword

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	var texted bytes.Buffer
	slog.New(slog.NewTextHandler(&texted, nil)).Info("config", "config", c)

	outputs := map[string]string{
		"String":   c.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"%s ptr":   fmt.Sprintf("%s", &c),
		"json log": logged.String(),
		"text log": texted.String(),
		"Validate": fmt.Sprint(c.Validate()),
	}
	for name, out := range outputs {
		for _, s := range []string{secret, old, "short-old-secret", dbPassword, redisPassword, kafkaPassword} {
			if strings.Contains(out, s) {
				t.Errorf("%s shows a secret: %s", name, out)
			}
		}
	}
	if !strings.Contains(logged.String(), "[REDACTED]") || !strings.Contains(logged.String(), "id.example.com") {
		t.Errorf("json log = %s; want the issuer and a redaction marker", logged.String())
	}

	// A YAML secret of the wrong type must not be echoed either.
	_, err := load(t, "secret: 123456789012345678901234567890123\n", nil)
	if err == nil || strings.Contains(err.Error(), "1234567890") {
		t.Errorf("Load(numeric secret) = %v; want an error without the value", err)
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		url    string
		want   string
		wantOK bool
	}{
		{"sqlite://./data/authd.db", "./data/authd.db", true},
		{"sqlite:///var/lib/authd.db", "/var/lib/authd.db", true},
		{"sqlite://:memory:", ":memory:", true},
		{"sqlite://", "", false},
		{"postgres://db/authd", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := Config{DatabaseURL: tt.url}.SQLitePath()
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q, %v", tt.url, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "WARN": slog.LevelWarn, "error": slog.LevelError, "info": slog.LevelInfo} {
		if got := (Config{LogLevel: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v; want %v", in, got, want)
		}
	}
}

func TestValidateCLI(t *testing.T) {
	// What only serve reads is not demanded of the other verbs.
	c := production()
	c.Issuer = "http://localhost:8080"
	c.TLSCert, c.TLSKey = "", "/tls/key.pem"
	c.HTTPAddr, c.PprofAddr = "nonsense", "nonsense"
	c.TrustedProxies = []string{"not-an-ip"}
	c.RateLimitTokenPerMin, c.ShutdownTimeout, c.ReadHeaderTimeout = -1, 0, 0
	if err := c.ValidateCLI(); err != nil {
		t.Errorf("ValidateCLI() = %v; want nil", err)
	}
	err := c.Validate()
	for _, want := range []string{"AUTHD_ISSUER: must be https", "AUTHD_TLS_CERT", "AUTHD_HTTP_ADDR", "AUTHD_PPROF_ADDR",
		"AUTHD_TRUSTED_PROXIES", "AUTHD_RATE_LIMIT_TOKEN_PER_MIN", "AUTHD_SHUTDOWN_TIMEOUT", "AUTHD_READ_HEADER_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to list %q", err, want)
		}
	}
	// What every verb reads is checked for every verb.
	c = production()
	c.TLSCert, c.TLSKey = "", ""
	c.Issuer, c.Secret, c.SigningAlg, c.DatabaseURL, c.AccessTokenTTL = "https://x/?q", "short", "HS256", "mysql://db", 0
	err = c.ValidateCLI()
	for _, want := range []string{"AUTHD_ISSUER", "AUTHD_SECRET", "AUTHD_SIGNING_ALG", "AUTHD_DATABASE_URL", "AUTHD_ACCESS_TOKEN_TTL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateCLI() = %v; want it to list %q", err, want)
		}
	}
	c = production()
	c.Secret = ""
	if err := c.ValidateCLI(); err == nil || !strings.Contains(err.Error(), "AUTHD_SECRET: is required") {
		t.Errorf("ValidateCLI() without a secret = %v", err)
	}
}

func TestLoadReportsEveryProblemWithTheRest(t *testing.T) {
	got, err := load(t, "issuer: https://from-file.example\nhttp_adr: :1\nlockout_threshold: many\nlog_level: debug\n",
		map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "15", "AUTHD_DEV": "maybe", "AUTHD_SIGNING_ALG": "EdDSA"},
		"--rate-limit-token-per-min", "7")
	for _, want := range []string{"unknown keys http_adr", "lockout_threshold", "AUTHD_ACCESS_TOKEN_TTL", "AUTHD_DEV"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load() = %v; want it to list %q", err, want)
		}
	}
	// The settings that parsed are loaded; those in error keep their defaults.
	d := Defaults()
	if got.Issuer != "https://from-file.example" || got.LogLevel != "debug" || got.SigningAlg != "EdDSA" || got.RateLimitTokenPerMin != 7 ||
		got.AccessTokenTTL != d.AccessTokenTTL || got.LockoutThreshold != d.LockoutThreshold || got.Dev {
		t.Errorf("Load() with errors = %v; want the rest loaded, defaults for the settings in error", got)
	}
	// A variable in error overrides the file's good value: neither is used.
	got, err = load(t, "access_token_ttl: 5m\n", map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "5"})
	if err == nil || got.AccessTokenTTL != d.AccessTokenTTL {
		t.Errorf("Load() = %v, %v; want an error and the default TTL", got.AccessTokenTTL, err)
	}
	// An unreadable file stops everything.
	var fe *FileError
	if _, err := load(t, "issuer: [unclosed\n", nil); !errors.As(err, &fe) {
		t.Errorf("Load(bad YAML) = %v; want a *FileError", err)
	}
}

func TestDevIssuer(t *testing.T) {
	for _, tt := range []struct {
		addr, want string
		ok         bool
	}{
		{":8080", "http://localhost:8080", true},
		{":9090", "http://localhost:9090", true},
		{"0.0.0.0:9090", "http://localhost:9090", true},
		{"[::]:9090", "http://localhost:9090", true},
		{"127.0.0.1:9091", "http://127.0.0.1:9091", true},
		{"[::1]:9091", "http://[::1]:9091", true},
		{"auth.test:80", "http://auth.test:80", true},
		{":0", "", false},
		{"nonsense", "", false},
	} {
		if got, ok := DevIssuer(tt.addr); got != tt.want || ok != tt.ok {
			t.Errorf("DevIssuer(%q) = %q, %v; want %q, %v", tt.addr, got, ok, tt.want, tt.ok)
		}
	}
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		args []string
		want string
	}{
		{"dev, env addr", "", map[string]string{"AUTHD_DEV": "true", "AUTHD_HTTP_ADDR": ":9090"}, nil, "http://localhost:9090"},
		{"dev, flag addr", "", map[string]string{"AUTHD_DEV": "true"}, []string{"--http-addr", "127.0.0.1:7070"}, "http://127.0.0.1:7070"},
		{"dev, default addr", "", map[string]string{"AUTHD_DEV": "true"}, nil, "http://localhost:8080"},
		{"dev, issuer set", "", map[string]string{"AUTHD_DEV": "true", "AUTHD_HTTP_ADDR": ":9090", "AUTHD_ISSUER": "http://auth.test:8080"}, nil, "http://auth.test:8080"},
		{"dev, issuer in file", "issuer: http://file.test\n", map[string]string{"AUTHD_DEV": "true", "AUTHD_HTTP_ADDR": ":9090"}, nil, "http://file.test"},
		{"not dev", "", map[string]string{"AUTHD_HTTP_ADDR": ":9090"}, nil, Defaults().Issuer},
	}
	for _, tt := range tests {
		got, err := load(t, tt.yaml, tt.env, tt.args...)
		if err != nil || got.Issuer != tt.want {
			t.Errorf("%s: Issuer = %q, %v; want %q", tt.name, got.Issuer, err, tt.want)
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"AUTHD_ISSUR=https://x", "AUTHD_ISSUER=https://x", "AUTHD_CONFIG=/etc/authd.yaml", "HOME=/root",
		"AUTHD_TEST_POSTGRES_URL=postgres://", "AUTHD_SOMETHING_ELSE=1", "AUTHD_SECRETS=x", "AUTHD_ISSUR=again", "AUTHD_=", "AUTHD_TLS_TERMINATED_UPSTRAEM=true",
	})
	want := []UnknownVar{{Name: "AUTHD_"}, {Name: "AUTHD_ISSUR", Suggest: "AUTHD_ISSUER"}, {Name: "AUTHD_SECRETS", Suggest: "AUTHD_SECRET"}, {Name: "AUTHD_SOMETHING_ELSE"}, {Name: "AUTHD_TLS_TERMINATED_UPSTRAEM", Suggest: "AUTHD_TLS_TERMINATED_UPSTREAM"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnknownEnv = %+v; want %+v", got, want)
	}
}

func TestMemoryLimitBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"off", 0, true}, {"80MiB", 80 << 20, true}, {"1GiB", 1 << 30, true},
		{"65536KiB", 64 << 20, true}, {"33554432", 32 << 20, true}, {"96 MiB", 96 << 20, true},
		{"16MiB", 0, false}, {"-1", 0, false}, {"80MB", 0, false}, {"lots", 0, false}, {"99999999999GiB", 0, false},
	} {
		got, err := Config{MemoryLimit: c.in}.MemoryLimitBytes()
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("MemoryLimitBytes(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
	cfg := Defaults()
	if n, err := cfg.MemoryLimitBytes(); err != nil || n != 72<<20 {
		t.Errorf("default memory limit = %d, %v; want 72 MiB", n, err)
	}
}
