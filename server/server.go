// Package server is authd's HTTP layer: the router, middleware (request id,
// access log, metrics, body limit, security headers, rate limit, panic
// recovery) and the thin handlers for discovery, JWKS, userinfo, health and
// metrics. The OAuth endpoints themselves live in server/oauth.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/server/web"
	"github.com/authd/authd/storage"
)

// KeySet serves the pre-rendered public key set and manages the keys (keys.Manager).
type KeySet interface {
	JWKS() (body []byte, etag string)
	Keys(ctx context.Context) ([]keys.KeyInfo, error)
	Rotate(ctx context.Context) (storage.SigningKey, error)
}

// Store is what the account and admin APIs read and write.
type Store interface {
	storage.Users
	storage.Audit
}

// Identity is the account logic (identity.Service).
type Identity interface {
	CreateUser(ctx context.Context, nu identity.NewUser, m identity.Meta) (storage.User, error)
	ChangePassword(ctx context.Context, userID, current, next string, m identity.Meta, also func(ctx context.Context) error) error
	Unlock(ctx context.Context, userID string, m identity.Meta) (storage.User, error)
	UpdateUser(ctx context.Context, userID string, ch identity.UserChange, admin string, m identity.Meta, rv identity.Revoker) (storage.User, error)
	DeleteUser(ctx context.Context, userID, admin string, m identity.Meta, rv identity.Revoker) error
}

// Clients is the OAuth client logic (clients.Service).
type Clients interface {
	Create(ctx context.Context, spec clients.Spec, admin string, m clients.Meta) (storage.Client, string, error)
	Get(ctx context.Context, id string) (storage.Client, error)
	List(ctx context.Context) ([]storage.Client, error)
	Update(ctx context.Context, id string, ch clients.Change, admin string, m clients.Meta) (storage.Client, error)
	Delete(ctx context.Context, id, admin string, m clients.Meta, rv clients.Revoker) error
}

// Recorder records security events in the caller's transaction.
type Recorder interface {
	Record(ctx context.Context, e events.Event) error
}

// SharedLimiter is a rate limit that every replica shares (redis.Limiter).
// An error means it cannot answer now; the process's own limit applies then.
type SharedLimiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Check is a readiness probe of one dependency.
type Check struct {
	Name     string
	Required bool // a failing required check makes /readyz answer 503
	Probe    func(ctx context.Context) error
}

// Config is everything the HTTP layer needs; cmd/authd fills it.
type Config struct {
	Issuer   string
	OAuth    *oauth.Provider
	Keys     KeySet
	Store    Store
	Identity Identity
	Recorder Recorder
	Clients  Clients
	Links    Links      // users' links to upstream identities; nil serves no link routes
	Pages    *web.Pages // the browser pages (login, signup); nil serves none
	Checks   []Check
	Logger   *slog.Logger
	// AccessLog, when set, is the writer Logger's JSON handler writes to:
	// the INFO access lines are encoded straight into it, in that
	// handler's format (see accesslog.go); nil sends them through Logger.
	AccessLog       io.Writer
	Registry        *prometheus.Registry       // nil: Metrics' registry, or a new one
	Metrics         *Metrics                   // nil: new metrics on Registry
	HSTS            bool                       // set when serving TLS
	MaxBodyBytes    int64                      // default 64 KiB
	RateLimitPerMin int                        // per client IP on token and signup; 0: off
	SharedLimiter   SharedLimiter              // nil: each process limits on its own
	ClientIP        func(*http.Request) string // nil: the connection's peer (see ClientIPFunc)
	Now             func() time.Time
}

// Server is authd's HTTP handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	access    *accessWriter // nil: access lines go through log
	router    *mux.Router
	metrics   *Metrics
	limiter   *ipLimiter
	ipOf      func(*http.Request) string
	discovery document
	oidc      document
	methods   []string // every method some route accepts, for Allow
}

// document is a pre-rendered JSON body with its ETag.
type document struct {
	body []byte
	etag string
}

func newDocument(v any) (document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return document{}, err
	}
	return document{body: b, etag: etagOf(b)}, nil
}

func etagOf(b []byte) string {
	h := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(h[:16]) + `"`
}

// New builds the handler.
func New(cfg Config) (*Server, error) {
	if cfg.OAuth == nil || cfg.Keys == nil || cfg.Store == nil || cfg.Identity == nil || cfg.Recorder == nil || cfg.Clients == nil || cfg.Issuer == "" {
		return nil, errors.New("server: missing dependency")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var err error
	switch {
	case cfg.Metrics == nil:
		if cfg.Metrics, err = NewMetrics(cfg.Registry); err != nil {
			return nil, fmt.Errorf("server: metrics: %w", err)
		}
		cfg.Registry = cfg.Metrics.Registry()
	case cfg.Registry == nil:
		cfg.Registry = cfg.Metrics.Registry()
	case cfg.Registry != cfg.Metrics.Registry():
		return nil, errors.New("server: Metrics are on another registry than Registry")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ipOf: cfg.ClientIP, metrics: cfg.Metrics}
	if cfg.AccessLog != nil {
		s.access = newAccessWriter(cfg.AccessLog)
	}
	if s.ipOf == nil {
		s.ipOf = ClientIPFunc(nil)
	}
	if cfg.RateLimitPerMin > 0 {
		s.limiter = newIPLimiter(cfg.RateLimitPerMin, cfg.Now)
	}
	if s.discovery, err = newDocument(s.metadata(false)); err != nil {
		return nil, fmt.Errorf("server: discovery: %w", err)
	}
	if s.oidc, err = newDocument(s.metadata(true)); err != nil {
		return nil, fmt.Errorf("server: discovery: %w", err)
	}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) routes() {
	r := mux.NewRouter()
	// Both go through unrouted: gorilla/mux v1.8.1 answers some method
	// mismatches as not found (a later route of a subrouter clears the
	// mismatch), and never sets Allow.
	r.NotFoundHandler = s.observe("unmatched", s.secure(s.unrouted()))
	r.MethodNotAllowedHandler = r.NotFoundHandler

	r.Handle("/.well-known/oauth-authorization-server", s.serveDocument(func() document { return s.discovery }, "public, max-age=3600")).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/.well-known/openid-configuration", s.serveDocument(func() document { return s.oidc }, "public, max-age=3600")).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/.well-known/jwks.json", s.serveDocument(func() document {
		b, etag := s.cfg.Keys.JWKS()
		return document{body: b, etag: etag}
	}, "public, max-age=300, must-revalidate")).Methods(http.MethodGet, http.MethodHead)

	r.Handle("/oauth2/token", s.rateLimit(http.HandlerFunc(s.cfg.OAuth.Token))).Methods(http.MethodPost)
	r.HandleFunc("/oauth2/introspect", s.cfg.OAuth.Introspect).Methods(http.MethodPost)
	r.HandleFunc("/oauth2/revoke", s.cfg.OAuth.Revoke).Methods(http.MethodPost)
	r.Handle("/userinfo", s.userinfoAuth(s.userinfo)).Methods(http.MethodGet, http.MethodPost)

	if p := s.cfg.Pages; p != nil {
		r.HandleFunc(web.LoginPath, p.LoginForm).Methods(http.MethodGet, http.MethodHead)
		r.Handle(web.LoginPath, s.pageRateLimit(http.HandlerFunc(p.Login))).Methods(http.MethodPost)
		r.HandleFunc(web.SignupPath, p.SignupForm).Methods(http.MethodGet, http.MethodHead)
		r.Handle(web.SignupPath, s.pageRateLimit(http.HandlerFunc(p.Signup))).Methods(http.MethodPost)
		r.HandleFunc(web.StylesheetPath, p.Stylesheet).Methods(http.MethodGet, http.MethodHead)
		// Sign-in through other identity providers (each start and callback
		// costs a row and a call to the provider: under the forms' limit).
		r.Handle(web.ConnectorLoginPath("{id}"), s.pageRateLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.ConnectorLogin(w, r, mux.Vars(r)["id"])
		}))).Methods(http.MethodGet)
		r.Handle(web.ConnectorCallbackPath("{id}"), s.pageRateLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.ConnectorCallback(w, r, mux.Vars(r)["id"])
		}))).Methods(http.MethodGet)
		r.Handle(web.LinkPath, s.pageRateLimit(http.HandlerFunc(p.Link))).Methods(http.MethodPost)
		if s.authorizes() {
			r.HandleFunc(oauth.AuthorizePath, s.cfg.OAuth.Authorize).Methods(http.MethodGet, http.MethodPost)
			r.HandleFunc(oauth.LogoutPath, s.cfg.OAuth.EndSession).Methods(http.MethodGet, http.MethodPost)
		}
	}

	api := r.PathPrefix("/api/v1").Subrouter()
	api.Handle("/signup", s.rateLimit(http.HandlerFunc(s.signup))).Methods(http.MethodPost)
	api.Handle("/me", s.userAuth(s.me)).Methods(http.MethodGet)
	api.Handle("/me/password", s.userAuth(s.changePassword)).Methods(http.MethodPost)
	api.Handle("/logout", s.userAuth(s.logout)).Methods(http.MethodPost)
	adm := api.PathPrefix("/admin").Subrouter()
	adm.Handle("/users", s.adminAuth(s.listUsers)).Methods(http.MethodGet)
	adm.Handle("/users/{id}", s.adminAuth(s.getUser)).Methods(http.MethodGet)
	adm.Handle("/users/{id}", s.adminAuth(s.patchUser)).Methods(http.MethodPatch)
	adm.Handle("/users/{id}", s.adminAuth(s.deleteUser)).Methods(http.MethodDelete)
	adm.Handle("/users/{id}/unlock", s.adminAuth(s.unlockUser)).Methods(http.MethodPost)
	if s.cfg.Links != nil {
		adm.Handle("/users/{id}/links", s.adminAuth(s.listLinks)).Methods(http.MethodGet)
		adm.Handle("/users/{id}/links/{connector_id}", s.adminAuth(s.deleteLink)).Methods(http.MethodDelete)
	}
	adm.Handle("/clients", s.adminAuth(s.listClients)).Methods(http.MethodGet)
	adm.Handle("/clients", s.adminAuth(s.createClient)).Methods(http.MethodPost)
	adm.Handle("/clients/{id}", s.adminAuth(s.getClient)).Methods(http.MethodGet)
	adm.Handle("/clients/{id}", s.adminAuth(s.patchClient)).Methods(http.MethodPatch)
	adm.Handle("/clients/{id}", s.adminAuth(s.deleteClient)).Methods(http.MethodDelete)
	adm.Handle("/keys", s.adminAuth(s.listKeys)).Methods(http.MethodGet)
	adm.Handle("/keys/rotate", s.adminAuth(s.rotateKeys)).Methods(http.MethodPost)
	adm.Handle("/audit", s.adminAuth(s.audit)).Methods(http.MethodGet)

	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentTypeJSON)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	s.router = r
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		// Every route's handler is wrapped once here, not by Router.Use,
		// which wraps the matched handler again on every request.
		if h := route.GetHandler(); h != nil {
			tpl, err := route.GetPathTemplate()
			if err != nil {
				return fmt.Errorf("server: route without a path template: %w", err)
			}
			route.Handler(s.observe(tpl, s.secure(s.checkInput(h))))
		}
		ms, _ := route.GetMethods()
		for _, m := range ms {
			if !slices.Contains(s.methods, m) {
				s.methods = append(s.methods, m)
			}
		}
		return nil
	})
	if err != nil {
		panic(err) // a route registered above without a path: a bug
	}
	slices.Sort(s.methods)
}

// unrouted answers a request no route took: 405 with Allow listing the
// methods the router routes for its path (RFC 9110 §15.5.6) when there are
// some, else 404.
func (s *Server) unrouted() http.Handler {
	notFound := s.fallback(http.StatusNotFound, "No such resource.")
	notAllowed := s.fallback(http.StatusMethodNotAllowed, "Method not allowed.")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed := s.allowedMethods(r)
		if len(allowed) == 0 {
			notFound.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		notAllowed.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods the router routes for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range s.methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// fallback answers unrouted requests: RFC 6749 JSON under /oauth2/, problem+json elsewhere.
func (s *Server) fallback(status int, detail string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isOAuthPath(r.URL.Path) {
			oauth.WriteError(w, status, "invalid_request", detail)
			return
		}
		writeProblem(w, r, status, detail)
	})
}

// authorizes reports whether the authorize endpoint is served: the browser
// pages are, and the provider shows them.
func (s *Server) authorizes() bool { return s.cfg.Pages != nil && s.cfg.OAuth.AuthorizeEnabled() }

// metadata is the RFC 8414 document; oidc adds the OpenID Connect Discovery
// fields. The authorize endpoint's fields are there when it is served.
func (s *Server) metadata(oidc bool) map[string]any {
	issuer := s.cfg.Issuer
	grants := oauth.SupportedGrantTypes()
	if !s.authorizes() {
		grants = slices.DeleteFunc(grants, func(g string) bool { return g == oauth.GrantAuthorizationCode })
	}
	m := map[string]any{
		"issuer":                                issuer,
		"token_endpoint":                        issuer + "/oauth2/token",
		"introspection_endpoint":                issuer + "/oauth2/introspect",
		"revocation_endpoint":                   issuer + "/oauth2/revoke",
		"jwks_uri":                              issuer + "/.well-known/jwks.json",
		"userinfo_endpoint":                     issuer + "/userinfo",
		"grant_types_supported":                 grants,
		"response_types_supported":              []string{},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                  []string{"openid", "profile", "email", "offline_access"},
		"dpop_signing_alg_values_supported": oauth.DPoPAlgs(),
		// No service_documentation: authd serves no documentation page.
	}
	if s.authorizes() {
		m["authorization_endpoint"] = issuer + oauth.AuthorizePath
		m["end_session_endpoint"] = issuer + oauth.LogoutPath
		m["response_types_supported"] = []string{"code"}
		m["response_modes_supported"] = []string{"query"}
		m["code_challenge_methods_supported"] = []string{"S256"}
		m["authorization_response_iss_parameter_supported"] = true
	}
	if oidc {
		m["subject_types_supported"] = []string{"public"}
		m["id_token_signing_alg_values_supported"] = []string{"ES256", "RS256", "EdDSA"}
		m["claims_supported"] = []string{"sub", "iss", "aud", "exp", "iat", "preferred_username", "email", "email_verified", "roles"}
		if s.authorizes() {
			// The algorithm of the key that signs now; a change of
			// AUTHD_SIGNING_ALG takes effect over two rotations, and the
			// document is rendered again at the next start.
			m["id_token_signing_alg_values_supported"] = []string{s.cfg.OAuth.IDTokenAlg()}
			m["prompt_values_supported"] = []string{"none", "login", "consent"}
			m["claims_supported"] = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
				"preferred_username", "email", "email_verified", "roles"}
		}
	}
	return m
}

// serveDocument answers a pre-rendered JSON document with ETag and Cache-Control.
func (s *Server) serveDocument(get func() document, cacheControl string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := get()
		h := w.Header()
		h.Set("Content-Type", contentTypeJSON)
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", d.etag)
		h.Set("Access-Control-Allow-Origin", "*")
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, d.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(d.body)
	})
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := http.StatusOK
	report := map[string]string{}
	for _, c := range s.cfg.Checks {
		if err := c.Probe(ctx); err != nil {
			report[c.Name] = "down"
			if c.Required {
				status = http.StatusServiceUnavailable
			}
			s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "error", err)
			continue
		}
		report[c.Name] = "up"
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": report})
}

// writeBearerError answers 401 per RFC 6750 §3.
func writeBearerError(w http.ResponseWriter, r *http.Request, withToken bool) {
	if withToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authd", error="invalid_token", error_description="The access token is invalid, expired or revoked."`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authd"`)
	}
	writeProblem(w, r, http.StatusUnauthorized, "A valid Bearer access token is required.")
}

// userinfo serves OIDC Core §5.3 for users' access tokens (behind userAuth).
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	c := claimsFrom(r.Context())
	u, ok := s.currentUser(w, r, c.Subject)
	if !ok {
		return
	}
	// Claims by scope (OIDC Core §5.4): profile gives preferred_username,
	// email gives email and email_verified; roles always.
	scopes := strings.Fields(c.Scope)
	out := map[string]any{"sub": u.ID, "roles": u.Roles}
	if slices.Contains(scopes, "profile") {
		out["preferred_username"] = u.Username
	}
	// A user created through a provider that vouched for no email has none.
	if slices.Contains(scopes, "email") && u.Email != "" {
		verified := false
		if s.cfg.Links != nil {
			v, err := s.cfg.Links.EmailVerified(r.Context(), u)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			verified = v
		}
		out["email"], out["email_verified"] = u.Email, verified
	}
	writeJSONStatus(w, http.StatusOK, out)
}
