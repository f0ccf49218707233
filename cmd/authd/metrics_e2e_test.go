package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Where the dashboard and the alert rules live, from this package.
const (
	dashboardFile = "../../deploy/grafana/authd-dashboard.json"
	alertsFile    = "../../deploy/prometheus/alerts.yml"
)

// TestDeployMetricsExist: every metric named by an expression of the Grafana
// dashboard (panels and template variables) and of the Prometheus alert
// rules is on the /metrics of a running authd: on PostgreSQL with Redis and
// Kafka, every one of them; on SQLite with Kafka, every one but those of the
// in-memory denylist (PostgreSQL's) and of the Redis breakers.
func TestDeployMetricsExist(t *testing.T) {
	named := deployMetricNames(t)
	for _, want := range []string{"authd_http_requests_total", "authd_tokens_issued_total", "authd_login_failures_total",
		"authd_lockouts_total", "authd_refresh_token_reuse_detections_total", "authd_denylist_entries",
		"authd_outbox_oldest_pending_age_seconds", "authd_signing_key_age_seconds", "authd_redis_breaker_state",
		"authd_http_request_duration_seconds_bucket"} {
		if _, ok := named[want]; !ok {
			t.Errorf("deploy/ does not use %s (or the expression parser missed it); named: %v", want, slices.Sorted(maps.Keys(named)))
		}
	}
	for _, tc := range []struct {
		name   string
		b      backend
		absent func(metric string) bool // allowed to be missing on this backend
	}{
		{"sqlite", backends()[0], func(m string) bool {
			return strings.HasPrefix(m, "authd_denylist_") || strings.HasPrefix(m, "authd_redis_")
		}},
		{"postgres+redis", backends()[2], func(string) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			f := newFixture(t, tc.b, map[string]string{
				"AUTHD_KAFKA_BROKERS":            strings.Join(cluster.ListenAddrs(), ","),
				"AUTHD_RATE_LIMIT_TOKEN_PER_MIN": "100000", // the Redis limiter and its breaker
			})
			f.do(mustRequest(t, http.MethodGet, f.base+"/healthz")) // the HTTP metrics have a series once a request ended
			families := scrapeFamilies(t, f.instance)
			for _, name := range slices.Sorted(maps.Keys(named)) {
				if !hasSeries(families, name) && !tc.absent(name) {
					t.Errorf("%s (used in %s) is not on /metrics", name, strings.Join(named[name], ", "))
				}
			}
		})
	}
}

// TestMetricsCount: what operators alert on is counted: tokens by grant and
// client type, login failures by reason, lockouts, revocations, reuse
// detections, password hashing, the signing key's age.
func TestMetricsCount(t *testing.T) {
	f := newFixture(t, backends()[0], map[string]string{
		"AUTHD_REFRESH_REUSE_INTERVAL": "0", // strict: a second presentation is reuse
		"AUTHD_LOCKOUT_THRESHOLD":      "3",
	})
	before := scrape(t, f.instance)

	_, m := f.passwordGrant(f.app, "alice", userPassword, url.Values{"scope": {"openid offline_access"}})
	rt1 := str(m, "refresh_token")
	if code, _ := f.refresh(f.app, rt1); code != http.StatusOK {
		t.Fatalf("refresh: %d", code)
	}
	if code, _ := f.refresh(f.app, rt1); code != http.StatusBadRequest {
		t.Fatalf("reuse of a rotated refresh token: %d; want 400", code)
	}
	// A public client authenticates with its id alone.
	if code, _, m := f.post("/oauth2/token", nil, url.Values{"grant_type": {"password"}, "client_id": {f.public.ID},
		"username": {"alice"}, "password": {userPassword}}); code != http.StatusOK {
		t.Fatalf("public client's password grant: %d %v", code, m)
	}
	if code, _, m := f.post("/oauth2/token", &f.cc, url.Values{"grant_type": {"client_credentials"}}); code != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", code, m)
	}
	_, m = f.passwordGrant(f.app, "alice", userPassword, nil)
	if code, _, _ := f.post("/oauth2/revoke", &f.app, url.Values{"token": {str(m, "refresh_token")}}); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	f.passwordGrant(f.app, "nobody-by-that-name", userPassword, nil)
	createUser(t, f.vars, "bob", "bob@example.com", userPassword)
	for range 3 { // the third locks the account
		if code, _ := f.passwordGrant(f.app, "bob", "not bob's password at all", nil); code != http.StatusBadRequest {
			t.Fatalf("wrong password: %d", code)
		}
	}
	f.passwordGrant(f.app, "bob", userPassword, nil) // locked

	after := scrape(t, f.instance)
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`authd_tokens_issued_total{client_type="confidential",dpop="false",grant_type="password"}`, 2},
		{`authd_tokens_issued_total{client_type="confidential",dpop="false",grant_type="refresh_token"}`, 1},
		{`authd_tokens_issued_total{client_type="public",dpop="false",grant_type="password"}`, 1},
		{`authd_tokens_issued_total{client_type="confidential",dpop="false",grant_type="client_credentials"}`, 1},
		{`authd_tokens_issued_total{client_type="confidential",dpop="true",grant_type="password"}`, 0},
		{`authd_refresh_token_reuse_detections_total`, 1},
		{`authd_token_revocations_total{token_type="refresh_token"}`, 1},
		{`authd_token_revocations_total{token_type="access_token"}`, 0},
		{`authd_login_failures_total{reason="unknown_user"}`, 1},
		{`authd_login_failures_total{reason="bad_password"}`, 3},
		{`authd_login_failures_total{reason="locked"}`, 1},
		{`authd_login_failures_total{reason="disabled"}`, 0},
		{`authd_lockouts_total`, 1},
		{`authd_security_events_total{type="auth.login.success"}`, 3},
		{`authd_security_events_total{type="auth.refresh.reuse_detected"}`, 1},
		{`authd_password_hash_duration_seconds_count{op="verify"}`, 8},
		{`authd_database_errors_total{kind="unavailable"}`, 0},
	} {
		if got := after[c.series] - before[c.series]; got != c.want {
			t.Errorf("%s rose by %v; want %v", c.series, got, c.want)
		}
	}
	// bob was created by the CLI, another process: no "hash" here; the dev
	// user serve bootstraps was hashed here.
	hashes := `authd_password_hash_duration_seconds_count{op="hash"}`
	if before[hashes] != 1 || after[hashes] != 1 {
		t.Errorf("hash count %v then %v; want 1 (the dev user) both times", before[hashes], after[hashes])
	}
	if age := after["authd_signing_key_age_seconds"]; age < 0 || age > 3600 {
		t.Errorf("authd_signing_key_age_seconds = %v; want a fresh key's", age)
	}
	if due := after["authd_signing_key_rotation_due_seconds"]; due < 89*86400 || due > 90*86400 {
		t.Errorf("authd_signing_key_rotation_due_seconds = %v; want about 90 days", due)
	}
	for _, absent := range []string{"authd_outbox_pending_events", "authd_denylist_entries", `authd_redis_breaker_state{breaker="dpop"}`} {
		if _, ok := after[absent]; ok {
			t.Errorf("%s is served without Kafka, PostgreSQL or Redis", absent)
		}
	}
}

// deployMetricNames returns every metric name the dashboard's and the alert
// rules' expressions use, with where each is used.
func deployMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	named := map[string][]string{}
	add := func(where, expr string) {
		for _, n := range promqlMetricNames(expr) {
			if !slices.Contains(named[n], where) {
				named[n] = append(named[n], where)
			}
		}
	}

	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := 0
	walkJSON(dash, func(key string, v any) {
		switch s, _ := v.(string); {
		case key == "expr":
			exprs++
			add("the dashboard", s)
		case key == "query" || key == "definition":
			// A template variable: label_values(metric, label).
			if m := labelValuesRE.FindStringSubmatch(s); m != nil {
				add("the dashboard's variables", m[1])
			}
		}
	})
	if exprs < 20 {
		t.Errorf("the dashboard has %d expressions; want a real dashboard", exprs)
	}

	b, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	groups, _ := doc["groups"].([]any)
	rules := 0
	for _, g := range groups {
		g, _ := g.(map[string]any)
		rs, _ := g["rules"].([]any)
		for _, r := range rs {
			r, _ := r.(map[string]any)
			name, _ := r["alert"].(string)
			expr, _ := r["expr"].(string)
			if name == "" || strings.TrimSpace(expr) == "" {
				t.Errorf("%s: a rule without alert or expr: %v", alertsFile, r)
				continue
			}
			if _, err := time.ParseDuration(strOr(r["for"], "0s")); err != nil {
				t.Errorf("%s: %s: for: %v", alertsFile, name, err)
			}
			rules++
			add("alert "+name, expr)
		}
	}
	if rules < 10 {
		t.Errorf("%s has %d rules; want the alerts the issue lists", alertsFile, rules)
	}
	return named
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func strOr(v any, def string) string {
	if s, ok := v.(string); ok {
		return s
	}
	return def
}

func walkJSON(v any, fn func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			fn(k, c)
			walkJSON(c, fn)
		}
	case []any:
		for _, c := range x {
			walkJSON(c, fn)
		}
	}
}

var (
	labelValuesRE = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	promStringRE  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promBracesRE  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promClauseRE  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promOffsetRE  = regexp.MustCompile(`\boffset\s+-?[0-9a-zA-Z_$]+`)
	promIdentRE   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = []string{"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "inf", "nan", "atan2"}
)

// promqlMetricNames returns the metric names a PromQL expression selects:
// the identifiers left once strings, label matchers, ranges, grouping
// clauses and offsets are taken out, that are neither keywords, nor
// functions or aggregations (followed by a parenthesis), nor parts of numbers.
func promqlMetricNames(expr string) []string {
	s := promStringRE.ReplaceAllString(expr, `""`)
	s = promBracesRE.ReplaceAllString(s, " ")
	s = promClauseRE.ReplaceAllString(s, " ")
	s = promOffsetRE.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdentRE.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(s[loc[0]-1])) {
			continue // 1e-9, 0x1f
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") || slices.Contains(promKeywords, strings.ToLower(id)) {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`sum by (route) (rate(authd_http_requests_total{code=~"5..", route!="/x"}[5m]))`, []string{"authd_http_requests_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{op="verify"}[$__rate_interval]))) > 0.25`, []string{"a_bucket"}},
		{"sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0.01", []string{"a_total", "b_total"}},
		{`max(a / b) > 0.8 and on (instance) c offset 5m unless d`, []string{"a", "b", "c", "d"}},
		{`time() - max(x_seconds{instance=~"$instance"})`, []string{"x_seconds"}},
		{`min(due_seconds) < 7 * 86400`, []string{"due_seconds"}},
		{`sum(x) by (le)`, []string{"x"}},
	} {
		if got := promqlMetricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("promqlMetricNames(%q) = %v; want %v", c.expr, got, c.want)
		}
	}
}

// scrapeFamilies returns the metric families /metrics declares, with their type.
func scrapeFamilies(t *testing.T, in *instance) map[string]string {
	t.Helper()
	families := map[string]string{}
	for _, line := range strings.Split(scrapeText(t, in), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	if len(families) == 0 {
		t.Fatal("/metrics declares no metric family")
	}
	return families
}

// hasSeries reports whether name is a series of the families: a family's
// own name, or a histogram's or summary's _bucket, _sum or _count.
func hasSeries(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if k := families[base]; k == "histogram" || (k == "summary" && suffix != "_bucket") {
				return true
			}
		}
	}
	return false
}

func scrapeText(t *testing.T, in *instance) string {
	t.Helper()
	resp, err := http.Get(in.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// scrape returns every sample of /metrics by series, its labels sorted by
// name as client_golang writes them: `name{a="1",b="2"}` or `name`.
func scrape(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(scrapeText(t, in), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
