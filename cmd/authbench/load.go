package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// op is one kind of request.
type op int

const (
	opPassword op = iota
	opRefresh
	opClientCredentials
	opIntrospect
	opRevoke
	opJWKS
	opCode // a browser sign-in's round trip (the code scenario)
	// The steps of a code round trip, reported beside it: each request to
	// the authorization endpoint, to the login page (GET and POST), and the
	// code exchange at the token endpoint.
	opCodeAuthorize
	opCodeLogin
	opCodeToken
	numOps
)

var opNames = [numOps]string{"password", "refresh", "client-credentials", "introspect", "revoke", "jwks", "code",
	"code:authorize", "code:login", "code:token"}

// codeSteps are the ops a code round trip's requests are counted in.
var codeSteps = []op{opCodeAuthorize, opCodeLogin, opCodeToken}

// mixWeights is the blend of the mixed scenario, in percent: mostly token
// checks and machine tokens, some refreshes, few logins; no browser
// sign-in (code).
var mixWeights = [numOps]int{
	opPassword: 1, opRefresh: 20, opClientCredentials: 25, opIntrospect: 40, opRevoke: 4, opJWKS: 10,
}

// errPoolEmpty ends a worker's run when the revoke pool is used up.
var errPoolEmpty = errors.New("token pool used up")

// opStats are one worker's (or, merged, one run's) figures for one op.
type opStats struct {
	hist histogram
	// status counts responses by HTTP status; index 0 counts transport errors.
	status [600]uint64
	// bad counts 2xx answers without what they should carry (an inactive
	// introspection, a token response without a token).
	bad uint64
	// redirects: a 3xx is an answer the op expects (a browser sign-in's
	// steps), not an error.
	redirects bool
}

// newOpStats returns empty figures for o.
func newOpStats(o op) *opStats { return &opStats{redirects: slices.Contains(codeSteps, o)} }

func (s *opStats) merge(o *opStats) {
	s.hist.merge(&o.hist)
	for i, n := range o.status {
		s.status[i] += n
	}
	s.bad += o.bad
}

// errors returns the failures by kind: "transport", "bad-body" or a status code.
func (s *opStats) errors() map[string]uint64 {
	out := map[string]uint64{}
	if s.status[0] > 0 {
		out["transport"] = s.status[0]
	}
	for code := 1; code < len(s.status); code++ {
		if s.status[code] > 0 && (code < 200 || code > 299) && !(s.redirects && code >= 300 && code <= 399) {
			out[fmt.Sprint(code)] = s.status[code]
		}
	}
	if s.bad > 0 {
		out["bad-body"] = s.bad
	}
	return out
}

// bench is a target, its credentials and the state shared by the runs.
type bench struct {
	cfg    config
	hc     *http.Client
	meta   metadata
	creds  creds
	cli    *authdCLI
	clean  []string // clients to delete at the end
	log    io.Writer
	tty    bool
	eps    [numOps]*endpoint
	chains []string // refresh chain head of each worker, kept across runs
	access []string // access tokens to introspect

	// -dpop: one key per worker (chain i is bound to keys[i]), and the htm
	// and htu of proofs for the token endpoint.
	keys        []*dpopKey
	tokenTarget string
}

func newBench(ctx context.Context, cfg config, environ []string, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, hc: newHTTPClient(cfg.concurrency, cfg.timeout), log: log}
	if f, ok := log.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	var err error
	if b.meta, err = discover(ctx, b.hc, cfg.issuer, cfg.allowRemote); err != nil {
		return nil, err
	}
	for o := range numOps {
		if raw, err := b.endpoint(o); err == nil {
			if b.eps[o], err = parseEndpoint(raw); err != nil {
				return nil, err
			}
		}
	}
	if cfg.dpop {
		if !slices.Contains(b.meta.DPoPAlgs, "ES256") {
			return nil, fmt.Errorf("-dpop: the server's metadata does not list ES256 in dpop_signing_alg_values_supported (%q)", b.meta.DPoPAlgs)
		}
		b.tokenTarget = dpopTarget(http.MethodPost, b.meta.TokenEndpoint)
		b.keys = make([]*dpopKey, cfg.concurrency)
		for i := range b.keys {
			if b.keys[i], err = newDPoPKey(); err != nil {
				return nil, err
			}
		}
	}
	if cfg.authdBin != "" {
		b.cli = &authdCLI{bin: cfg.authdBin, environ: environ}
		web := slices.Contains(cfg.scenarios, "code")
		b.logf("provisioning %d clients and %d users with %s", 3+btoi(web), cfg.users, cfg.authdBin)
		b.creds, b.clean, err = provisionAuthd(ctx, *b.cli, cfg.users, web)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("provision: %w", err)
		}
	} else {
		app := newCredential(cfg.clientID, cfg.clientSecret)
		intro := app
		if cfg.introID != "" {
			intro = newCredential(cfg.introID, cfg.introSecret)
		}
		b.creds = creds{app: app, svc: app, intro: intro, web: app, redirectURI: cfg.redirectURI}
		if cfg.username != "" {
			b.creds.users = []user{{name: cfg.username, password: cfg.password}}
		}
	}
	return b, nil
}

// close deletes the clients authbench created (their refresh tokens go with them).
func (b *bench) close() {
	if b.cli == nil || !b.cfg.cleanup {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range b.clean {
		if _, err := b.cli.run(ctx, "", "clients", "delete", id); err != nil {
			b.logf("cleanup: %v", err)
		}
	}
	b.clean = nil
}

func (b *bench) logf(format string, args ...any) {
	if b.tty {
		fmt.Fprint(b.log, "\r\033[K")
	}
	fmt.Fprintf(b.log, "authbench: "+format+"\n", args...)
}

func (b *bench) endpoint(o op) (string, error) {
	var ep, name string
	switch o {
	case opPassword, opRefresh, opClientCredentials:
		ep, name = b.meta.TokenEndpoint, "token_endpoint"
	case opIntrospect:
		ep, name = b.meta.IntrospectionEndpoint, "introspection_endpoint"
	case opRevoke:
		ep, name = b.meta.RevocationEndpoint, "revocation_endpoint"
	case opJWKS:
		ep, name = b.meta.JWKSURI, "jwks_uri"
	case opCode:
		ep, name = b.meta.AuthorizationEndpoint, "authorization_endpoint"
		if ep != "" && b.meta.TokenEndpoint == "" {
			ep, name = "", "token_endpoint"
		}
	}
	if ep == "" {
		return "", fmt.Errorf("the server's metadata has no %s", name)
	}
	return ep, nil
}

// scenarioOps lists the ops a scenario uses.
func scenarioOps(name string) []op {
	switch name {
	case "password":
		return []op{opPassword}
	case "refresh":
		return []op{opRefresh}
	case "client-credentials":
		return []op{opClientCredentials}
	case "introspect":
		return []op{opIntrospect}
	case "revoke":
		return []op{opRevoke}
	case "jwks":
		return []op{opJWKS}
	case "code":
		return []op{opCode}
	default: // mixed
		return []op{opPassword, opRefresh, opClientCredentials, opIntrospect, opRevoke, opJWKS}
	}
}

// runAll runs every scenario cfg.repeat times and collects the results.
func (b *bench) runAll(ctx context.Context) (*report, error) {
	rep := &report{Issuer: b.cfg.issuer, Label: b.cfg.label, CPUs: runtime.NumCPU(), Concurrency: b.cfg.concurrency, Duration: b.cfg.duration.String(), DPoP: b.cfg.dpop}
	for _, name := range b.cfg.scenarios {
		for _, o := range scenarioOps(name) {
			if _, err := b.endpoint(o); err != nil {
				return nil, fmt.Errorf("scenario %s: %w", name, err)
			}
		}
		if err := b.prepare(ctx, name); err != nil {
			return nil, fmt.Errorf("scenario %s: prepare: %w", name, err)
		}
		var runs []runResult
		for i := 1; i <= b.cfg.repeat; i++ {
			rr, err := b.runOnce(ctx, name, i)
			if err != nil {
				return nil, fmt.Errorf("scenario %s: %w", name, err)
			}
			runs = append(runs, rr)
			rep.Runs = append(rep.Runs, rr.rows()...)
		}
		if b.cfg.repeat > 1 {
			rep.Medians = append(rep.Medians, medianRows(runs)...)
		}
	}
	return rep, nil
}

// prepare builds what a scenario needs before its runs: refresh chains and
// access tokens to introspect. Revoke pools are minted before each run.
func (b *bench) prepare(ctx context.Context, name string) error {
	ops := scenarioOps(name)
	for _, o := range ops {
		switch o {
		case opPassword, opRefresh:
			if len(b.creds.users) == 0 {
				return errors.New("no user to sign in")
			}
		case opCode:
			if len(b.creds.users) == 0 || b.creds.web.id == "" || b.creds.redirectURI == "" {
				return errors.New("no user, client or redirect URI for the browser sign-in")
			}
		}
	}
	needChains := name == "refresh" || name == "mixed"
	needAccess := name == "introspect" || name == "mixed"
	if needChains && len(b.chains) != b.cfg.concurrency {
		b.logf("%s: signing in %d refresh chains", name, b.cfg.concurrency)
		b.chains = make([]string, b.cfg.concurrency)
		err := b.parallel(ctx, b.cfg.concurrency, func(w *worker, i int) error {
			if len(b.keys) > 0 {
				w.key = b.keys[i] // the key of the worker that will follow chain i
			}
			tr, err := w.passwordGrant(ctx, b.creds.users[i%len(b.creds.users)])
			if err != nil {
				return err
			}
			if tr.RefreshToken == "" {
				return errors.New("the password grant returned no refresh token (does the client have the refresh_token grant, or is -scope offline_access needed?)")
			}
			b.chains[i] = tr.RefreshToken
			return nil
		})
		if err != nil {
			return err
		}
	}
	if needAccess && len(b.access) == 0 {
		const n = 64
		b.logf("%s: minting %d access tokens to introspect", name, n)
		b.access = make([]string, n)
		err := b.parallel(ctx, n, func(w *worker, i int) error {
			tr, err := w.clientCredentials(ctx)
			if err != nil {
				return err
			}
			b.access[i] = tr.AccessToken
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// parallel runs fn(i) for i in [0, n) on cfg.concurrency workers; nothing is measured.
func (b *bench) parallel(ctx context.Context, n int, fn func(w *worker, i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range min(n, b.cfg.concurrency) {
		w := b.newWorker(0, nil)
		wg.Go(func() {
			defer w.closeConns()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(w, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// revokePool is the tokens of one revoke run; each is handed out once.
type revokePool struct {
	tokens []string
	next   atomic.Int64
}

func (p *revokePool) take() (string, bool) {
	if p == nil {
		return "", false
	}
	i := p.next.Add(1) - 1
	if i >= int64(len(p.tokens)) {
		return "", false
	}
	return p.tokens[i], true
}

func (b *bench) mintRevokePool(ctx context.Context) (*revokePool, error) {
	n := b.cfg.revokePool
	if n == 0 {
		secs := (b.cfg.duration + b.cfg.warmup).Seconds()
		n = int(min(float64(b.cfg.maxRequests)+1500*b.cfg.warmup.Seconds(), 1500*secs)) + b.cfg.concurrency
	}
	b.logf("revoke: minting %d access tokens to revoke", n)
	p := &revokePool{tokens: make([]string, n)}
	err := b.parallel(ctx, n, func(w *worker, i int) error {
		tr, err := w.clientCredentials(ctx)
		if err != nil {
			return err
		}
		p.tokens[i] = tr.AccessToken
		return nil
	})
	return p, err
}

// runResult is one run of a scenario: stats per op it used.
type runResult struct {
	scenario string
	run      int
	elapsed  time.Duration
	stats    [numOps]*opStats
	ops      []op
	steps    []op // reported beside ops, not part of the total (a code round trip's requests)
	reseeds  int64
	rssMiB   float64 // the server's RSS after the run
	peakMiB  float64 // the server's peak RSS during the run
	load     [3]float64
}

// runOnce runs a warm-up (unmeasured), then the measured phase, and returns
// the merged figures of the measured phase.
func (b *bench) runOnce(ctx context.Context, name string, run int) (runResult, error) {
	var pool *revokePool
	if name == "revoke" {
		var err error
		if pool, err = b.mintRevokePool(ctx); err != nil {
			return runResult{}, fmt.Errorf("mint revoke pool: %w", err)
		}
	}
	ops := scenarioOps(name)
	workers := make([]*worker, b.cfg.concurrency)
	for i := range workers {
		workers[i] = b.newWorker(i, pool)
		if len(b.chains) == len(workers) {
			workers[i].chain = b.chains[i]
		}
	}
	tag := fmt.Sprintf("%s [%d/%d]", name, run, b.cfg.repeat)
	if b.cfg.warmup > 0 {
		b.phase(ctx, workers, ops, b.cfg.warmup, b.cfg.maxRequests, tag+" warm-up")
		for _, w := range workers {
			w.resetStats()
		}
	}
	var peak *peakWatch
	if b.cfg.pid > 0 {
		peak = watchPeak(b.cfg.pid)
	}
	elapsed := b.phase(ctx, workers, ops, b.cfg.duration, b.cfg.maxRequests, tag)
	if err := ctx.Err(); err != nil {
		peak.stop()
		return runResult{}, err
	}
	rr := runResult{scenario: name, run: run, elapsed: elapsed, ops: ops, peakMiB: peak.stop()}
	if slices.Contains(ops, opCode) {
		rr.steps = codeSteps
	}
	for _, o := range append(slices.Clone(ops), rr.steps...) {
		rr.stats[o] = newOpStats(o)
	}
	for i, w := range workers {
		w.closeConns()
		for _, o := range append(slices.Clone(ops), rr.steps...) {
			rr.stats[o].merge(w.stats[o])
		}
		rr.reseeds += w.reseeds
		if len(b.chains) == len(workers) {
			b.chains[i] = w.chain
		}
	}
	rr.load = loadAvg()
	if b.cfg.pid > 0 {
		rr.rssMiB = rssMiB(b.cfg.pid)
	}
	b.logf("%s: %d requests in %.2fs", tag, rr.total().hist.n, elapsed.Seconds())
	return rr, nil
}

func (rr runResult) total() *opStats {
	t := &opStats{}
	for _, o := range rr.ops {
		t.merge(rr.stats[o])
	}
	return t
}

// phase runs the workers for d or n requests, whichever ends first, with a
// progress line, and returns the time until the last request finished.
// Requests in flight at the deadline are allowed to finish.
func (b *bench) phase(ctx context.Context, workers []*worker, ops []op, d time.Duration, n int64, tag string) time.Duration {
	var (
		issued atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) && issued.Add(1) <= n {
				if err := w.step(ctx, ops); errors.Is(err, errPoolEmpty) {
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	every := 5 * time.Second
	if b.tty {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			elapsed := time.Since(start)
			if b.tty {
				fmt.Fprint(b.log, "\r\033[K")
			}
			return elapsed
		case <-t.C:
			var reqs, errs int64
			for _, w := range workers {
				reqs += w.progress.Load()
				errs += w.failures.Load()
			}
			el := time.Since(start)
			line := fmt.Sprintf("authbench: %s %5.1fs/%s %9d req %9.0f req/s %d errors", tag, el.Seconds(), d, reqs, float64(reqs)/el.Seconds(), errs)
			if b.tty {
				fmt.Fprint(b.log, "\r\033[K"+line)
			} else {
				fmt.Fprintln(b.log, line)
			}
		}
	}
}

// worker is one connection's loop and its own figures.
type worker struct {
	b        *bench
	id       int
	rng      *rand.Rand
	conns    map[string]*httpConn // keep-alive connection per origin
	req      []byte               // request being written
	buf      bytes.Buffer         // body of the last answer
	stats    [numOps]*opStats
	chain    string // refresh token to use next
	last     string // mixed: the last client_credentials token, to revoke
	pool     *revokePool
	key      *dpopKey     // -dpop: the simulated client's key
	web      *http.Client // code: the worker's browser (its cookie jar)
	nonce    string       // the server's last DPoP-Nonce
	pbuf     []byte       // scratch space for proofs
	reseeds  int64
	progress atomic.Int64
	failures atomic.Int64
}

func (b *bench) newWorker(id int, pool *revokePool) *worker {
	w := &worker{b: b, id: id, rng: rand.New(rand.NewPCG(uint64(id)+1, uint64(time.Now().UnixNano()))), pool: pool}
	if len(b.keys) > 0 {
		w.key = b.keys[id%len(b.keys)]
	}
	w.resetStats()
	return w
}

func (w *worker) resetStats() {
	for i := range w.stats {
		w.stats[i] = newOpStats(op(i))
	}
	w.progress.Store(0)
	w.failures.Store(0)
}

// pick chooses the op of the next request.
func (w *worker) pick(ops []op) op {
	if len(ops) == 1 {
		return ops[0]
	}
	r := w.rng.IntN(100)
	for _, o := range ops {
		if r < mixWeights[o] {
			return o
		}
		r -= mixWeights[o]
	}
	return ops[len(ops)-1]
}

// step sends one measured request.
func (w *worker) step(ctx context.Context, ops []op) error {
	o := w.pick(ops)
	if o == opRevoke && w.pool == nil && w.last == "" {
		o = opClientCredentials // mixed: nothing of ours to revoke yet
	}
	// A token request's DPoP proof is signed before the clock starts: the
	// latency is the server's. (Its CPU still counts: it runs on the same
	// machine.)
	proof := w.proof(o)
	var (
		status int
		ok     bool
		err    error
		start  = time.Now()
	)
	switch o {
	case opPassword:
		// Each connection signs in as its own user (with the default
		// -users): many users signing in is the load to measure; one
		// account's concurrent logins queue behind its lockout threshold.
		u := w.b.creds.users[w.id%len(w.b.creds.users)]
		status, err = w.post(ctx, opPassword, w.b.creds.app, passwordForm(u, w.b.cfg.scope), proof)
		if status == http.StatusOK {
			_, ok = w.tokenBody()
		}
	case opRefresh:
		status, err = w.post(ctx, opRefresh, w.b.creds.app, "grant_type=refresh_token&refresh_token="+url.QueryEscape(w.chain), proof)
		if status == http.StatusOK {
			if tr, good := w.tokenBody(); good && tr.RefreshToken != "" {
				w.chain, ok = tr.RefreshToken, true
			}
		}
	case opClientCredentials:
		status, err = w.post(ctx, opClientCredentials, w.b.creds.svc, clientCredentialsForm(w.b.cfg.scope), proof)
		if status == http.StatusOK {
			switch {
			case len(ops) > 1: // mixed: keep the token to revoke later
				if tr, good := w.tokenBody(); good {
					w.last, ok = tr.AccessToken, true
				}
			case w.key != nil:
				_, ok = w.tokenBody()
			default:
				ok = bytes.Contains(w.buf.Bytes(), []byte(`"access_token"`))
			}
		}
	case opIntrospect:
		tok := w.b.access[w.rng.IntN(len(w.b.access))]
		status, err = w.post(ctx, opIntrospect, w.b.creds.intro, "token="+url.QueryEscape(tok), "")
		if status == http.StatusOK {
			var ir struct {
				Active bool `json:"active"`
			}
			ok = json.Unmarshal(w.buf.Bytes(), &ir) == nil && ir.Active
		}
	case opRevoke:
		tok, have := w.last, w.last != ""
		if w.pool != nil {
			tok, have = w.pool.take()
		}
		if !have {
			return errPoolEmpty
		}
		w.last = ""
		start = time.Now()
		status, err = w.post(ctx, opRevoke, w.b.creds.svc, "token_type_hint=access_token&token="+url.QueryEscape(tok), "")
		ok = status == http.StatusOK
	case opJWKS:
		status, err = w.get(ctx, opJWKS)
		ok = status == http.StatusOK && w.buf.Len() > 0
	case opCode:
		status, ok, err = w.authorize(ctx)
	}
	st := w.stats[o]
	st.hist.record(time.Since(start))
	w.progress.Add(1)
	switch {
	case err != nil || status <= 0 || status >= len(st.status):
		st.status[0]++
	default:
		st.status[status]++
		if status >= 200 && status <= 299 && !ok {
			st.bad++
		}
	}
	if !ok {
		w.failures.Add(1)
		if o == opRefresh {
			// The chain is broken (a refresh token is never retried): start a
			// new family, unmeasured.
			w.reseeds++
			if tr, err := w.passwordGrant(ctx, w.b.creds.users[w.id%len(w.b.creds.users)]); err == nil && tr.RefreshToken != "" {
				w.chain = tr.RefreshToken
			}
		}
	}
	return nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// tokenBody reads the token response in w.buf: good when it carries an
// access token, of type DPoP with -dpop (else the server ignored the proof).
func (w *worker) tokenBody() (tokenResponse, bool) {
	var tr tokenResponse
	if json.Unmarshal(w.buf.Bytes(), &tr) != nil || tr.AccessToken == "" {
		return tr, false
	}
	return tr, w.key == nil || strings.EqualFold(tr.TokenType, "DPoP")
}

// proof is a fresh DPoP proof for a request of op o to the token endpoint
// with -dpop; "" otherwise.
func (w *worker) proof(o op) string {
	if w.key == nil || (o != opPassword && o != opRefresh && o != opClientCredentials) {
		return ""
	}
	p, buf, err := w.key.proof(w.pbuf, w.b.tokenTarget, w.nonce, time.Now())
	w.pbuf = buf
	if err != nil {
		return "" // the server answers a Bearer token: counted as bad-body
	}
	return p
}

func passwordForm(u user, scope string) string {
	f := "grant_type=password&username=" + url.QueryEscape(u.name) + "&password=" + url.QueryEscape(u.password)
	if scope != "" {
		f += "&scope=" + url.QueryEscape(scope)
	}
	return f
}

func clientCredentialsForm(scope string) string {
	if scope == "" {
		return "grant_type=client_credentials"
	}
	return "grant_type=client_credentials&scope=" + url.QueryEscape(scope)
}

// post sends a form authenticated with HTTP Basic to o's endpoint, with a
// DPoP proof when given, and reads the answer into w.buf. When the server
// asks for its DPoP nonce (RFC 9449 §8: 400 use_dpop_nonce, with a
// DPoP-Nonce header) the request is sent once more with a proof carrying it.
func (w *worker) post(ctx context.Context, o op, c credential, form, proof string) (int, error) {
	nonce := w.nonce
	status, err := w.roundTrip(ctx, w.b.eps[o], c.basic, proof, form, true)
	if err == nil && proof != "" && status == http.StatusBadRequest && w.nonce != nonce &&
		bytes.Contains(w.buf.Bytes(), []byte("use_dpop_nonce")) {
		status, err = w.roundTrip(ctx, w.b.eps[o], c.basic, w.proof(o), form, true)
	}
	return status, err
}

// get fetches o's endpoint into w.buf.
func (w *worker) get(ctx context.Context, o op) (int, error) {
	return w.roundTrip(ctx, w.b.eps[o], "", "", "", false)
}

// passwordGrant signs u in (unmeasured) and returns the tokens.
func (w *worker) passwordGrant(ctx context.Context, u user) (tokenResponse, error) {
	return w.token(ctx, w.b.creds.app, passwordForm(u, w.b.cfg.scope))
}

// clientCredentials gets a token for the svc client (unmeasured).
func (w *worker) clientCredentials(ctx context.Context) (tokenResponse, error) {
	return w.token(ctx, w.b.creds.svc, clientCredentialsForm(w.b.cfg.scope))
}

func (w *worker) token(ctx context.Context, c credential, form string) (tokenResponse, error) {
	status, err := w.post(ctx, opPassword, c, form, w.proof(opPassword)) // the token endpoint
	if err != nil {
		return tokenResponse{}, fmt.Errorf("token request: %w", err)
	}
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(w.buf.Bytes(), &e)
		return tokenResponse{}, fmt.Errorf("token request: status %d %s", status, e.Error)
	}
	tr, ok := w.tokenBody()
	switch {
	case tr.AccessToken == "":
		return tokenResponse{}, errors.New("token request: no access_token in the answer")
	case !ok:
		return tokenResponse{}, fmt.Errorf("token request with a DPoP proof: token_type %q; want DPoP (does the server support DPoP?)", tr.TokenType)
	}
	return tr, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
