// Package compose checks the wiring of docker-compose.yml, the Caddyfile in
// front of authd, the Dockerfile and .dockerignore: no Docker is needed
// (where `docker compose` is installed, `docker compose config` runs too).
package compose

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"

	"github.com/authd/authd/config"
)

const root = "../.."

// testSecret stands in for the operator's AUTHD_SECRET.
const testSecret = "compose-test-secret-0123456789abcdef0123456789"

type (
	obj  = map[string]any
	list = []any
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compose is docker-compose.yml, parsed, with ${...} interpolated from vars
// as docker compose would.
func compose(t *testing.T, vars map[string]string) obj {
	t.Helper()
	doc, err := yaml.Parser().Unmarshal([]byte(interpolate(t, readFile(t, "docker-compose.yml"), vars)))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return doc
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate expands ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}
// and ${VAR?err}; $$ is a dollar.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := varRef.FindStringSubmatch(m)
		v, set := vars[g[1]]
		empty := !set || (strings.HasPrefix(g[2], ":") && v == "")
		switch strings.TrimPrefix(g[2], ":") {
		case "-":
			if empty {
				return g[3]
			}
		case "?":
			if empty {
				t.Fatalf("docker-compose.yml needs %s: %s", g[1], g[3])
			}
		}
		return v
	})
}

func get(t *testing.T, o obj, path ...string) any {
	t.Helper()
	var cur any = o
	for _, p := range path {
		m, ok := cur.(obj)
		if !ok {
			t.Fatalf("%s: not a mapping at %q", strings.Join(path, "."), p)
		}
		if cur, ok = m[p]; !ok {
			t.Fatalf("%s: missing", strings.Join(path, "."))
		}
	}
	return cur
}

func getObj(t *testing.T, o obj, path ...string) obj {
	t.Helper()
	m, ok := get(t, o, path...).(obj)
	if !ok {
		t.Fatalf("%s: not a mapping", strings.Join(path, "."))
	}
	return m
}

// names returns the keys of a mapping, or the strings of a list (the two
// forms of depends_on and networks).
func names(v any) []string {
	var out []string
	switch x := v.(type) {
	case obj:
		for k := range x {
			out = append(out, k)
		}
	case list:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	}
	slices.Sort(out)
	return out
}

// environment returns a service's environment as strings (mapping or list form).
func environment(t *testing.T, svc obj) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch x := svc["environment"].(type) {
	case obj:
		for k, v := range x {
			env[k] = fmt.Sprint(v)
		}
	case list:
		for _, e := range x {
			k, v, _ := strings.Cut(fmt.Sprint(e), "=")
			env[k] = v
		}
	}
	return env
}

func hostPort(t *testing.T, what, s string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("%s: %q is not host:port", what, s)
	}
	return h, p
}

func TestComposeWiring(t *testing.T) {
	doc := compose(t, map[string]string{"AUTHD_SECRET": testSecret})
	services := getObj(t, doc, "services")
	for _, want := range []string{"authd", "caddy", "postgres", "redis", "kafka"} {
		if _, ok := services[want]; !ok {
			t.Errorf("service %s is missing", want)
		}
	}
	topVolumes, _ := doc["volumes"].(obj)
	topNetworks, _ := doc["networks"].(obj)

	// Every service has a health check; every reference resolves.
	for name, v := range services {
		svc := v.(obj)
		if hc, ok := svc["healthcheck"].(obj); !ok || hc["test"] == nil {
			t.Errorf("service %s has no healthcheck", name)
		}
		for _, dep := range names(svc["depends_on"]) {
			if _, ok := services[dep]; !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			}
			if cond, _ := svc["depends_on"].(obj)[dep].(obj); cond != nil && cond["condition"] == "service_healthy" {
				if _, ok := services[dep].(obj)["healthcheck"]; !ok {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			}
		}
		for _, n := range names(svc["networks"]) {
			if _, ok := topNetworks[n]; !ok {
				t.Errorf("service %s uses network %s, which is not declared", name, n)
			}
		}
		vols, _ := svc["volumes"].(list)
		for _, vv := range vols {
			src, _, _ := strings.Cut(fmt.Sprint(vv), ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := topVolumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which is not declared", name, src)
			}
		}
	}

	authd := getObj(t, services, "authd")
	env := environment(t, authd)

	// Every AUTHD_* variable is a setting, and the whole is a configuration
	// serve accepts.
	var environ []string
	for k, v := range env {
		if !strings.HasPrefix(k, config.EnvPrefix) {
			t.Errorf("authd's environment sets %s, which is not an AUTHD_ setting", k)
		}
		environ = append(environ, k+"="+v)
	}
	for _, u := range config.UnknownEnv(environ) {
		t.Errorf("authd's environment sets %s, which authd does not know (did you mean %q?)", u.Name, u.Suggest)
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("authd's environment does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("serve would refuse authd's environment: %v", err)
	}
	if cfg.Dev || cfg.TLS() || !cfg.TLSTerminatedUpstream {
		t.Errorf("authd: dev %v, TLS %v, terminated upstream %v; want TLS terminated by the proxy", cfg.Dev, cfg.TLS(), cfg.TLSTerminatedUpstream)
	}
	if _, ok := authd["ports"]; ok {
		t.Error("authd publishes a port: clients must come through the TLS proxy, the issuer")
	}
	if hc := fmt.Sprint(get(t, authd, "healthcheck", "test")); hc != "[CMD /authd healthcheck]" {
		t.Errorf("authd healthcheck = %s; want [CMD /authd healthcheck] (the image has no shell)", hc)
	}
	if authd["read_only"] != true {
		t.Error("authd's root file system is writable; want read_only: true")
	}

	// The issuer is the proxy: https, its site address, its published port,
	// and the proxy forwards to authd's listener.
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Scheme != "https" {
		t.Fatalf("AUTHD_ISSUER = %q; want https", cfg.Issuer)
	}
	caddy := getObj(t, services, "caddy")
	site, upstream := caddyfile(t)
	if site.Scheme != "https" || site.Host != iss.Host {
		t.Errorf("Caddyfile site %s; want the issuer's %s://%s", site, iss.Scheme, iss.Host)
	}
	_, issPort := hostPort(t, "AUTHD_ISSUER", iss.Host)
	published := false
	for _, p := range caddy["ports"].(list) {
		parts := strings.Split(fmt.Sprint(p), ":")
		if len(parts) >= 2 && parts[len(parts)-2] == issPort && parts[len(parts)-1] == issPort {
			published = true
		}
	}
	if !published {
		t.Errorf("caddy ports %v do not publish %s:%s, the issuer's port", caddy["ports"], issPort, issPort)
	}
	upHost, upPort := hostPort(t, "Caddyfile reverse_proxy", upstream)
	_, listenPort := hostPort(t, "AUTHD_HTTP_ADDR", cfg.HTTPAddr)
	if upHost != "authd" || upPort != listenPort {
		t.Errorf("Caddy forwards to %s; want authd:%s (AUTHD_HTTP_ADDR)", upstream, listenPort)
	}

	// authd believes X-Forwarded-For from the proxy's fixed address only.
	netName := names(caddy["networks"])[0]
	caddyIP, err := netip.ParseAddr(fmt.Sprint(getObj(t, caddy, "networks", netName)["ipv4_address"]))
	if err != nil {
		t.Fatalf("caddy has no fixed ipv4_address: %v", err)
	}
	trusted := false
	for _, p := range cfg.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil && pfx.Contains(caddyIP) {
			trusted = true
		}
	}
	if !trusted {
		t.Errorf("AUTHD_TRUSTED_PROXIES %v does not hold caddy's %s", cfg.TrustedProxies, caddyIP)
	}
	for _, c := range get(t, topNetworks, netName, "ipam", "config").(list) {
		if subnet, err := netip.ParsePrefix(fmt.Sprint(c.(obj)["subnet"])); err != nil || !subnet.Contains(caddyIP) {
			t.Errorf("caddy's %s is outside network %s's subnet %v", caddyIP, netName, c.(obj)["subnet"])
		}
	}

	// Backends: the URLs name the services and their credentials.
	db, _ := url.Parse(cfg.DatabaseURL)
	pg := environment(t, getObj(t, services, "postgres"))
	if pw, _ := db.User.Password(); db.Hostname() != "postgres" || db.User.Username() != pg["POSTGRES_USER"] || pw != pg["POSTGRES_PASSWORD"] || strings.TrimPrefix(db.Path, "/") != pg["POSTGRES_DB"] {
		t.Errorf("AUTHD_DATABASE_URL does not match the postgres service")
	}
	if r, _ := url.Parse(cfg.RedisURL); r == nil || r.Hostname() != "redis" {
		t.Errorf("AUTHD_REDIS_URL = %q; want the redis service", cfg.RedisURL)
	}

	// Kafka: the brokers authd dials are advertised listeners of the kafka
	// service, and every listener has an explicit security protocol.
	kenv := environment(t, getObj(t, services, "kafka"))
	protocols := map[string]string{}
	for _, m := range strings.Split(kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, proto, ok := strings.Cut(m, ":")
		if !ok {
			t.Fatalf("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP entry %q", m)
		}
		protocols[name] = proto
	}
	listeners := map[string]string{} // name -> host:port
	for _, key := range []string{"KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS"} {
		for _, l := range strings.Split(kenv[key], ",") {
			name, addr, ok := strings.Cut(l, "://")
			if !ok {
				t.Fatalf("%s entry %q", key, l)
			}
			if _, ok := protocols[name]; !ok {
				t.Errorf("%s names listener %s, which has no security protocol", key, name)
			}
			if key == "KAFKA_ADVERTISED_LISTENERS" {
				listeners[addr] = name
			}
		}
	}
	for _, n := range []string{kenv["KAFKA_CONTROLLER_LISTENER_NAMES"], kenv["KAFKA_INTER_BROKER_LISTENER_NAME"]} {
		if _, ok := protocols[n]; n == "" || !ok {
			t.Errorf("kafka listener name %q has no security protocol", n)
		}
	}
	want := "PLAINTEXT"
	if cfg.KafkaTLS || cfg.KafkaTLSCA != "" {
		want = "SSL"
	}
	if cfg.KafkaSASLMechanism != "" {
		want = "SASL_" + want
	}
	for _, b := range cfg.KafkaBrokers {
		name, ok := listeners[b]
		if h, _ := hostPort(t, "AUTHD_KAFKA_BROKERS", b); !ok || h != "kafka" {
			t.Errorf("AUTHD_KAFKA_BROKERS %s is not an advertised listener of the kafka service (%v)", b, listeners)
		} else if protocols[name] != want {
			t.Errorf("broker %s is listener %s (%s); authd's Kafka settings speak %s", b, name, protocols[name], want)
		}
	}
}

var (
	siteLine  = regexp.MustCompile(`(?m)^(https?://[^\s{]+)\s*\{`)
	proxyLine = regexp.MustCompile(`(?m)^\s*reverse_proxy\s+(\S+)`)
)

// caddyfile returns the site address and the upstream of deploy/compose/Caddyfile.
func caddyfile(t *testing.T) (*url.URL, string) {
	t.Helper()
	s := readFile(t, "deploy/compose/Caddyfile")
	sites, proxies := siteLine.FindAllStringSubmatch(s, -1), proxyLine.FindAllStringSubmatch(s, -1)
	if len(sites) != 1 || len(proxies) != 1 {
		t.Fatalf("Caddyfile: %d sites and %d reverse_proxy lines; want one of each", len(sites), len(proxies))
	}
	if !strings.Contains(s, "tls internal") {
		t.Error("Caddyfile: no certificate source (tls internal or another tls directive)")
	}
	u, err := url.Parse(sites[0][1])
	if err != nil {
		t.Fatal(err)
	}
	return u, proxies[0][1]
}

func TestDockerfile(t *testing.T) {
	df := readFile(t, "Dockerfile")
	for _, want := range []string{
		`ARG VERSION`, `-X main.version=${VERSION}`, `HEALTHCHECK`, `CMD ["/authd", "healthcheck"]`,
		`ENTRYPOINT ["/authd"]`, `USER nonroot`, `CGO_ENABLED=0`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	ignore := strings.Fields(readFile(t, ".dockerignore"))
	for _, want := range []string{".git", "data/", "bin/", "*.db", "*.pem", "*.key", ".env", "**/secret"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	// What the build reads must not be ignored.
	for _, need := range []string{"go.mod", "go.sum", "cmd", "migrations", "identity"} {
		if slices.Contains(ignore, need) || slices.Contains(ignore, need+"/") {
			t.Errorf(".dockerignore drops %s, which the build needs", need)
		}
	}
}

// TestDockerComposeConfig asks docker compose itself, where it is installed.
func TestDockerComposeConfig(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the wiring is checked by TestComposeWiring")
	}
	if err := exec.CommandContext(t.Context(), "docker", "compose", "version").Run(); err != nil {
		t.Skip("docker compose is not installed: the wiring is checked by TestComposeWiring")
	}
	cmd := exec.CommandContext(t.Context(), "docker", "compose", "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
	cmd.Env = append(os.Environ(), "AUTHD_SECRET="+testSecret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}
