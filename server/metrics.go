package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
)

// Metrics are authd's Prometheus metrics (README, Operations). Each server
// has its own registry: nothing is registered globally, so several servers
// run in one process (tests) without clashing.
//
// The counters fed by events count what committed: Metrics is the Observer
// of the events.Recorder, which hands an event over once the transaction that
// recorded it committed (events.CommitStore).
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // route, method, code
	duration *prometheus.HistogramVec // route

	tokens       *prometheus.CounterVec // grant_type, client_type, dpop
	dbErrors     *prometheus.CounterVec // kind
	events       *prometheus.CounterVec // type
	loginFails   *prometheus.CounterVec // reason
	lockouts     prometheus.Counter
	revocations  *prometheus.CounterVec // token_type
	reuse        prometheus.Counter
	hashDuration *prometheus.HistogramVec // op
	headerSlow   prometheus.Counter
}

var (
	_ events.Observer       = (*Metrics)(nil)
	_ identity.HashObserver = (*Metrics)(nil)
)

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Label values known in advance: their series exist (at 0) from the start,
// so that rate() and the dashboard see the first increment.
var (
	loginFailureReasons = []string{identity.ReasonUnknownUser, identity.ReasonBadPassword, identity.ReasonLocked, identity.ReasonDisabled}
	revokedTokenTypes   = []string{"access_token", "refresh_token"}
	eventTypes          = []events.Type{
		events.UserCreated, events.LoginSuccess, events.LoginFailed, events.UserLocked, events.UserUnlocked,
		events.Logout, events.TokenRevoked, events.RefreshReuse, events.PasswordChanged, events.KeyRotated,
		events.UserUpdated, events.UserDeleted, events.ClientCreated, events.ClientUpdated, events.ClientDeleted,
		events.LinkCreated, events.LinkRemoved,
	}
)

// NewMetrics creates authd's metrics on reg (NewRegistry() when nil). The
// gauges of optional parts (denylist, Redis, outbox relay, signing keys) are
// added by the Watch methods.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	if reg == nil {
		reg = NewRegistry()
	}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authd_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_tokens_issued_total",
			Help: "Token responses (200) of the token endpoint by grant type, client type (public, confidential) and whether the access token is DPoP-bound.",
		}, []string{"grant_type", "client_type", "dpop"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_database_errors_total",
			Help: "Requests answered 503 because the database could not serve, by kind (unavailable: unreachable, shutting down, overloaded; serialization: a conflict to retry).",
		}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_security_events_total", Help: "Security events committed (audit trail and outbox), by type.",
		}, []string{"type"}),
		loginFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_login_failures_total", Help: "Failed password logins by reason (unknown_user, bad_password, locked, disabled).",
		}, []string{"reason"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_lockouts_total", Help: "Accounts locked after too many failed logins.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_token_revocations_total", Help: "Tokens revoked (RFC 7009, or a refresh of a disabled or deleted user), by the type of the token presented.",
		}, []string{"token_type"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_refresh_token_reuse_detections_total", Help: "Rotated refresh tokens presented again: each one revoked its whole family.",
		}),
		hashDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authd_password_hash_duration_seconds",
			Help:    "Time of password hashing by operation: hash (a new argon2id hash) or verify (one login's check, padded to equal work).",
			Buckets: []float64{.005, .01, .02, .03, .05, .075, .1, .15, .25, .5, 1},
		}, []string{"op"}),
		headerSlow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_http_header_timeouts_total", Help: "Requests whose headers did not arrive within AUTHD_READ_HEADER_TIMEOUT, answered 408.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.tokens, m.dbErrors, m.events, m.loginFails,
		m.lockouts, m.revocations, m.reuse, m.hashDuration, m.headerSlow} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, gt := range oauth.SupportedGrantTypes() {
		for _, ct := range []string{"public", "confidential"} {
			for _, dpop := range []string{"false", "true"} {
				m.tokens.WithLabelValues(gt, ct, dpop)
			}
		}
	}
	for _, k := range []string{"unavailable", "serialization"} {
		m.dbErrors.WithLabelValues(k)
	}
	for _, t := range eventTypes {
		m.events.WithLabelValues(string(t))
	}
	for _, r := range loginFailureReasons {
		m.loginFails.WithLabelValues(r)
	}
	for _, t := range revokedTokenTypes {
		m.revocations.WithLabelValues(t)
	}
	for _, op := range []string{"hash", "verify"} {
		m.hashDuration.WithLabelValues(op)
	}
	return m, nil
}

// Registry is the registry the metrics are on, the one /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveEvent counts a committed security event (events.Observer).
func (m *Metrics) ObserveEvent(e events.Event) {
	m.events.WithLabelValues(string(e.Type)).Inc()
	switch e.Type {
	case events.LoginFailed:
		m.loginFails.WithLabelValues(dataString(e.Data, "reason", loginFailureReasons)).Inc()
	case events.UserLocked:
		m.lockouts.Inc()
	case events.TokenRevoked:
		m.revocations.WithLabelValues(dataString(e.Data, "token_type", revokedTokenTypes)).Inc()
	case events.RefreshReuse:
		m.reuse.Inc()
	}
}

// dataString is data[key] when it is one of known, else "other": label
// values stay a known, small set.
func dataString(data map[string]any, key string, known []string) string {
	v, _ := data[key].(string)
	for _, k := range known {
		if v == k {
			return v
		}
	}
	return "other"
}

// ObservePasswordHash records the duration of a password hash or check
// (identity.HashObserver).
func (m *Metrics) ObservePasswordHash(op string, d time.Duration) {
	m.hashDuration.WithLabelValues(op).Observe(d.Seconds())
}

// DatabaseUnavailable counts a request answered 503 because of err, a
// storage.Retryable error (oauth.Options.StoreUnavailable).
func (m *Metrics) DatabaseUnavailable(err error) {
	kind := "unavailable"
	if errors.Is(err, storage.ErrSerialization) && !errors.Is(err, storage.ErrUnavailable) {
		kind = "serialization"
	}
	m.dbErrors.WithLabelValues(kind).Inc()
}

// HeaderTimeout counts a request answered 408 because its headers were too
// slow (they never reached a handler).
func (m *Metrics) HeaderTimeout() { m.headerSlow.Inc() }

// tokenRoute is the route template of the token endpoint.
const tokenRoute = "/oauth2/token"

// observeRequest counts a finished request; observe calls it.
func (m *Metrics) observeRequest(r *http.Request, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
	if route == tokenRoute && status == http.StatusOK {
		m.tokenIssued(r)
	}
}

// tokenIssued counts a 200 of the token endpoint. The handler has parsed the
// form by then. A 200 means the client authenticated: with a secret (HTTP
// Basic or client_secret) for a confidential client, with neither for a
// public one; and a request with a DPoP proof gets a DPoP-bound token.
func (m *Metrics) tokenIssued(r *http.Request) {
	clientType := "public"
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
		clientType = "confidential"
	}
	dpop := strconv.FormatBool(r.Header.Get("DPoP") != "")
	m.tokens.WithLabelValues(r.PostForm.Get("grant_type"), clientType, dpop).Inc()
}

// DenylistStats is what the in-memory denylist reports (postgres.Denylist).
type DenylistStats struct {
	Entries    int
	MaxEntries int
	InMemory   bool   // answers come from memory (the copy is complete)
	SQLAnswers uint64 // answers that fell back to SQL, since start
}

// WatchDenylist exports the in-memory denylist's size and its SQL fallbacks.
func (m *Metrics) WatchDenylist(stats func() DenylistStats) error {
	return registerAll(m.reg,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_denylist_entries", Help: "Revocations held in the in-memory denylist.",
		}, func() float64 { return float64(stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_denylist_max_entries", Help: "Bound on the in-memory denylist; beyond it answers come from SQL.",
		}, func() float64 { return float64(stats().MaxEntries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_denylist_in_memory", Help: "1 while the denylist answers from memory, 0 while it answers from SQL (loading, listener down, over its bound).",
		}, func() float64 { return boolFloat(stats().InMemory) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_denylist_sql_fallbacks_total", Help: "Denylist answers that fell back to SQL because the memory copy was not known complete.",
		}, func() float64 { return float64(stats().SQLAnswers) }),
	)
}

// BreakerStats is what a Redis circuit breaker reports (redis.BreakerStats).
type BreakerStats struct {
	State    string // closed, half-open or open
	Failures uint64 // Redis calls that failed
	Rejected uint64 // calls the open breaker kept from Redis
}

// breakerStates are the values of authd_redis_breaker_state.
var breakerStates = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// WatchRedisBreaker exports the state and errors of the Redis breaker name
// (ratelimit, dpop).
func (m *Metrics) WatchRedisBreaker(name string, stats func() BreakerStats) error {
	labels := prometheus.Labels{"breaker": name}
	return registerAll(m.reg,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_redis_breaker_state", Help: "State of a circuit breaker in front of Redis: 0 closed, 1 half-open, 2 open (callers fall back to their own state).",
			ConstLabels: labels,
		}, func() float64 {
			if v, ok := breakerStates[stats().State]; ok {
				return v
			}
			return 2
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_redis_errors_total", Help: "Redis calls that failed (an error or the call deadline).",
			ConstLabels: labels,
		}, func() float64 { return float64(stats().Failures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_redis_breaker_rejections_total", Help: "Calls the open breaker kept from Redis (answered by the fallback).",
			ConstLabels: labels,
		}, func() float64 { return float64(stats().Rejected) }),
	)
}

// RelayStats is what the outbox relay reports (events.RelayStats).
type RelayStats = events.RelayStats

// OutboxBacklog counts the unsent outbox events and names the oldest one's
// creation time (storage.Outbox).
type OutboxBacklog func(ctx context.Context) (count int, oldest time.Time, err error)

// WatchOutbox exports the outbox backlog (asked of the database at most
// every backlogEvery, whatever the scrape rate) and what the relay did.
// Register it where a relay runs: without a broker, events wait in the
// outbox by design.
func (m *Metrics) WatchOutbox(backlog OutboxBacklog, relay func() RelayStats, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return registerAll(m.reg,
		&backlogCollector{query: backlog, log: log, now: time.Now,
			pending: prometheus.NewDesc("authd_outbox_pending_events", "Outbox events not yet published.", nil, nil),
			age:     prometheus.NewDesc("authd_outbox_oldest_pending_age_seconds", "Age of the oldest outbox event not yet published (0 when none).", nil, nil),
		},
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_outbox_relay_published_total", Help: "Outbox events this replica's relay published and marked sent.",
		}, func() float64 { return float64(relay().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_outbox_relay_errors_total", Help: "Relay batches that failed (claim, publish or mark sent); their events stay in the outbox.",
		}, func() float64 { return float64(relay().Failures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_outbox_relay_lag_seconds", Help: "Age, when published, of the oldest event of the relay's last published batch.",
		}, func() float64 { return relay().Lag.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_outbox_relay_last_success_timestamp_seconds", Help: "When the relay last drained the outbox without a failure (Unix time; 0 before the first).",
		}, func() float64 { return unixSeconds(relay().LastSuccess) }),
	)
}

// Bounds of the backlog query a scrape makes.
const (
	backlogEvery   = 10 * time.Second
	backlogTimeout = 2 * time.Second
)

// backlogCollector asks the database for the outbox backlog at most every
// backlogEvery, so that many replicas scraped often do not count the outbox
// all the time. When the database does not answer, the backlog is left out
// of the scrape (alert on its absence with the database's own alerts).
type backlogCollector struct {
	query        OutboxBacklog
	log          *slog.Logger
	now          func() time.Time
	pending, age *prometheus.Desc

	mu     sync.Mutex
	asked  time.Time
	ok     bool
	count  int
	oldest time.Time
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending; ch <- c.age }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.asked.IsZero() || now.Sub(c.asked) >= backlogEvery {
		ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
		n, oldest, err := c.query(ctx)
		cancel()
		c.asked, c.ok = now, err == nil
		if err != nil {
			c.log.Warn("metrics: outbox backlog", "error", err)
		} else {
			c.count, c.oldest = n, oldest
		}
	}
	if !c.ok {
		return
	}
	age := 0.0
	if !c.oldest.IsZero() {
		age = max(now.Sub(c.oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(c.count))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}

// KeyStatus is what the signing-key manager reports (keys.Status).
type KeyStatus struct {
	ActivatedAt time.Time // when the current key started signing
	RotationDue time.Time // when the next rotation is due
}

// WatchKeys exports the current signing key's age and the time left until
// its rotation is due (negative once overdue).
func (m *Metrics) WatchKeys(status func() KeyStatus) error {
	return registerAll(m.reg,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_signing_key_age_seconds", Help: "Time since the current signing key started signing.",
		}, func() float64 { return time.Since(status().ActivatedAt).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authd_signing_key_rotation_due_seconds", Help: "Seconds until the next signing-key rotation is due (authd keys rotate); negative when overdue.",
		}, func() float64 { return time.Until(status().RotationDue).Seconds() }),
	)
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: metrics: %w", err)
		}
	}
	return nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
