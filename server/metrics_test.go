package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMetricsTokensIssued: a 200 of the token endpoint counts by grant type,
// client type (a secret: confidential; none: public) and DPoP; other routes
// and other statuses do not.
func TestMetricsTokensIssued(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	req := func(form url.Values, basic bool, dpop bool) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			r.SetBasicAuth("app", "secret")
		}
		if dpop {
			r.Header.Set("DPoP", "a.proof.jwt")
		}
		if err := r.ParseForm(); err != nil { // as the handler does
			t.Fatal(err)
		}
		return r
	}
	m.observeRequest(req(url.Values{"grant_type": {"password"}}, true, false), tokenRoute, 200, time.Millisecond)
	m.observeRequest(req(url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}}, false, true), tokenRoute, 200, time.Millisecond)
	m.observeRequest(req(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"s"}}, false, false), tokenRoute, 200, time.Millisecond)
	m.observeRequest(req(url.Values{"grant_type": {"password"}}, true, false), tokenRoute, 400, time.Millisecond)
	m.observeRequest(req(url.Values{"grant_type": {"password"}}, true, false), "/oauth2/introspect", 200, time.Millisecond)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"password", "confidential", "false"}, 1},
		{[]string{"refresh_token", "public", "true"}, 1},
		{[]string{"client_credentials", "confidential", "false"}, 1},
		{[]string{"password", "public", "false"}, 0},
	} {
		if got := value(t, m.tokens.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("authd_tokens_issued_total%v = %v; want %v", c.labels, got, c.want)
		}
	}
	if got := value(t, m.requests.WithLabelValues(tokenRoute, http.MethodPost, "400")); got != 1 {
		t.Errorf("authd_http_requests_total{code=400} = %v; want 1", got)
	}
}

// TestMetricsObserveEvent: events map onto their counters; unknown label
// values become "other", so label sets stay small.
func TestMetricsObserveEvent(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	for _, e := range []events.Event{
		{Type: events.LoginFailed, Data: map[string]any{"reason": "bad_password"}},
		{Type: events.LoginFailed, Data: map[string]any{"reason": "locked"}},
		{Type: events.LoginFailed, Data: map[string]any{"reason": "made up"}},
		{Type: events.UserLocked},
		{Type: events.TokenRevoked, Data: map[string]any{"token_type": "access_token"}},
		{Type: events.TokenRevoked, Data: map[string]any{"token_type": "refresh_token", "reason": "user_unavailable"}},
		{Type: events.RefreshReuse},
		{Type: events.LoginSuccess},
	} {
		m.ObserveEvent(e)
	}
	for name, c := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"bad_password":     {m.loginFails.WithLabelValues("bad_password"), 1},
		"locked":           {m.loginFails.WithLabelValues("locked"), 1},
		"other reason":     {m.loginFails.WithLabelValues("other"), 1},
		"unknown_user":     {m.loginFails.WithLabelValues("unknown_user"), 0},
		"lockouts":         {m.lockouts, 1},
		"access revoked":   {m.revocations.WithLabelValues("access_token"), 1},
		"refresh revoked":  {m.revocations.WithLabelValues("refresh_token"), 1},
		"reuse":            {m.reuse, 1},
		"events of a type": {m.events.WithLabelValues(string(events.LoginFailed)), 3},
		"login successes":  {m.events.WithLabelValues(string(events.LoginSuccess)), 1},
	} {
		if got := value(t, c.c); got != c.want {
			t.Errorf("%s = %v; want %v", name, got, c.want)
		}
	}
	m.ObservePasswordHash("verify", 30*time.Millisecond)
	if n := count(t, m.hashDuration); n != 2 {
		t.Errorf("hash histograms = %d; want hash and verify", n)
	}
}

func TestMetricsDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	m.DatabaseUnavailable(fmt.Errorf("postgres: begin: %w", storage.ErrUnavailable))
	m.DatabaseUnavailable(fmt.Errorf("postgres: commit: %w", storage.ErrSerialization))
	m.DatabaseUnavailable(fmt.Errorf("postgres: commit: %w", storage.ErrUnavailable))
	if u, s := value(t, m.dbErrors.WithLabelValues("unavailable")), value(t, m.dbErrors.WithLabelValues("serialization")); u != 2 || s != 1 {
		t.Errorf("database errors: unavailable %v, serialization %v; want 2, 1", u, s)
	}
}

// TestMetricsPerRegistry: metrics live on the registry they are given, so
// servers in one process do not clash; one registry takes them once.
func TestMetricsPerRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("NewMetrics registered twice on one registry")
	}
	if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Errorf("NewMetrics on a second registry: %v", err)
	}
	m := newTestMetrics(t)
	if err := m.WatchKeys(func() KeyStatus { return KeyStatus{} }); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchKeys(func() KeyStatus { return KeyStatus{} }); err == nil {
		t.Error("WatchKeys registered twice")
	}
}

// TestMetricsWatch: the gauges read their sources at scrape time.
func TestMetricsWatch(t *testing.T) {
	t.Parallel()
	m := newTestMetrics(t)
	now := time.Now()
	deny := DenylistStats{Entries: 7, MaxEntries: 10, InMemory: true, SQLAnswers: 3}
	breaker := BreakerStats{State: "open", Failures: 5, Rejected: 9}
	relay := RelayStats{Published: 11, Failures: 2, Lag: 1500 * time.Millisecond, LastSuccess: now}
	for _, err := range []error{
		m.WatchDenylist(func() DenylistStats { return deny }),
		m.WatchRedisBreaker("ratelimit", func() BreakerStats { return breaker }),
		m.WatchRedisBreaker("dpop", func() BreakerStats { return BreakerStats{State: "closed"} }),
		m.WatchOutbox(func(context.Context) (int, time.Time, error) { return 4, now.Add(-time.Minute), nil },
			func() RelayStats { return relay }, nil),
		m.WatchKeys(func() KeyStatus {
			return KeyStatus{ActivatedAt: now.Add(-time.Hour), RotationDue: now.Add(-time.Minute)}
		}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	values := gatherValues(t, m.Registry())
	for series, want := range map[string]float64{
		"authd_denylist_entries":                                    7,
		"authd_denylist_max_entries":                                10,
		"authd_denylist_in_memory":                                  1,
		"authd_denylist_sql_fallbacks_total":                        3,
		"authd_outbox_pending_events":                               4,
		"authd_outbox_relay_errors_total":                           2,
		"authd_outbox_relay_lag_seconds":                            1.5,
		"authd_outbox_relay_published_total":                        11,
		`authd_redis_breaker_state{breaker="dpop"}`:                 0,
		`authd_redis_breaker_state{breaker="ratelimit"}`:            2,
		`authd_redis_errors_total{breaker="ratelimit"}`:             5,
		`authd_redis_breaker_rejections_total{breaker="ratelimit"}`: 9,
		`authd_redis_errors_total{breaker="dpop"}`:                  0,
	} {
		if got, ok := values[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v); want %v", series, got, ok, want)
		}
	}
	for name, c := range map[string]struct{ lo, hi float64 }{
		"authd_outbox_oldest_pending_age_seconds":           {59, 120},
		"authd_signing_key_age_seconds":                     {3599, 3700},
		"authd_signing_key_rotation_due_seconds":            {-120, -59},
		"authd_outbox_relay_last_success_timestamp_seconds": {float64(now.Unix()) - 1, float64(now.Unix()) + 1},
	} {
		if v, ok := values[name]; !ok || v < c.lo || v > c.hi {
			t.Errorf("%s = %v (present %v); want within [%v, %v]", name, v, ok, c.lo, c.hi)
		}
	}
}

// gatherValues returns the gauges, counters and histogram counts g gathers,
// by series: name{label="value",...} in label-name order, or the bare name.
func gatherValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			series := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				series += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[series] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[series] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[series] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// collected returns what c collects, gathered on a registry of its own.
func collected(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return gatherValues(t, reg)
}

// value is the one sample c collects.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	vs := collected(t, c)
	if len(vs) != 1 {
		t.Fatalf("collected %v; want one sample", vs)
	}
	for _, v := range vs {
		return v
	}
	return 0
}

// count is the number of samples c collects.
func count(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	return len(collected(t, c))
}

// TestMetricsBacklogCollector: the backlog is asked at most every
// backlogEvery whatever the scrapes, and left out of a scrape while the
// database does not answer.
func TestMetricsBacklogCollector(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	asked := 0
	var fail error
	c := &backlogCollector{
		query: func(ctx context.Context) (int, time.Time, error) {
			asked++
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the backlog query has no deadline")
			}
			return asked, now.Add(-time.Minute), fail
		},
		log: slog.New(slog.DiscardHandler), now: func() time.Time { return now },
		pending: prometheus.NewDesc("p", "p", nil, nil), age: prometheus.NewDesc("a", "a", nil, nil),
	}
	for range 3 {
		if n := count(t, c); n != 2 {
			t.Fatalf("collected %d metrics; want 2", n)
		}
	}
	if asked != 1 {
		t.Errorf("asked %d times in one interval; want 1", asked)
	}
	now = now.Add(backlogEvery)
	fail = errors.New("database down")
	if n := count(t, c); n != 0 || asked != 2 {
		t.Errorf("with the database down: %d metrics after %d queries; want 0 after 2", n, asked)
	}
	now = now.Add(backlogEvery)
	fail = nil
	if n := count(t, c); n != 2 || c.count != 3 {
		t.Errorf("after recovery: %d metrics, count %d; want 2, 3", n, c.count)
	}
}

// TestMetricsRouteLabels: each request is counted once, under the path
// template of the route that answered (ids never become label values), and
// an unrouted one under "unmatched"; every answer carries the security
// headers and its request id once.
func TestMetricsRouteLabels(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, openSQLite(t))
	before := gatherValues(t, ts.srv.cfg.Registry)
	for _, c := range []struct {
		method, target, token string
		route                 string
		code                  int
	}{
		{http.MethodGet, "/.well-known/jwks.json", "", "/.well-known/jwks.json", 200},
		{http.MethodGet, "/api/v1/admin/users/" + ts.userID, ts.admin, "/api/v1/admin/users/{id}", 200},
		{http.MethodGet, "/api/v1/admin/users/no-such-user", ts.admin, "/api/v1/admin/users/{id}", 404},
		{http.MethodGet, "/api/v1/me", ts.user, "/api/v1/me", 200},
		{http.MethodGet, "/no/such/path", "", "unmatched", 404},
	} {
		rec := ts.json(c.method, c.target, c.token, "")
		if rec.Code != c.code {
			t.Fatalf("%s %s: %d; want %d: %s", c.method, c.target, rec.Code, c.code, rec.Body)
		}
		for _, h := range []string{"X-Request-Id", "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Referrer-Policy"} {
			if got := rec.Header().Values(h); len(got) != 1 {
				t.Errorf("%s %s: %s = %q; want one value", c.method, c.target, h, got)
			}
		}
		series := fmt.Sprintf("authd_http_requests_total{code=%q,method=%q,route=%q}", strconv.Itoa(c.code), c.method, c.route)
		after := gatherValues(t, ts.srv.cfg.Registry)
		if got := after[series] - before[series]; got != 1 {
			t.Errorf("%s %s: %s grew by %v; want 1", c.method, c.target, series, got)
		}
		before = after
	}
}
