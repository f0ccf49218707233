package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	// 1..10000 µs, each once: the q-quantile is q*10 ms.
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := time.Duration(q*10000) * time.Microsecond
		got := h.quantile(q)
		if diff := got - want; diff < -want/32 || diff > want/32 {
			t.Errorf("quantile(%v) = %v; want %v within 1/32", q, got, want)
		}
	}
	if h.max != 10*time.Millisecond || h.n != 10000 {
		t.Errorf("max %v, n %d; want 10ms, 10000", h.max, h.n)
	}
	if got := h.quantile(1); got != h.max {
		t.Errorf("quantile(1) = %v; want the max %v", got, h.max)
	}

	// Merging two halves gives the same quantiles as recording everything.
	var a, b, all histogram
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		all.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if a.quantile(q) != all.quantile(q) {
			t.Errorf("merged quantile(%v) = %v; want %v", q, a.quantile(q), all.quantile(q))
		}
	}
	if a.n != all.n || a.max != all.max || a.sum != all.sum {
		t.Errorf("merged n, max, sum = %d %v %v; want %d %v %v", a.n, a.max, a.sum, all.n, all.max, all.sum)
	}
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<40; v = v*9/8 + 1 {
		i := bucketOf(v)
		if i < prev || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		if mid := bucketValue(i); float64(mid) < float64(v)*(1-1.0/subCount) || float64(mid) > float64(v)*(1+1.0/subCount)+1 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %d: more than 1/%d away", v, mid, subCount)
		}
		prev = i
	}
}

func TestMixWeights(t *testing.T) {
	sum := 0
	for _, w := range mixWeights {
		sum += w
	}
	if sum != 100 {
		t.Errorf("mixed weights sum to %d; want 100", sum)
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		args    []string
		environ []string
		wantErr string
	}{
		{[]string{"-issuer", "http://10.1.2.3:8080", "-authd", "x"}, nil, "not on a loopback address"},
		{[]string{"-issuer", "http://example.com", "-authd", "x"}, nil, "not on a loopback address"},
		{[]string{"-issuer", "ftp://127.0.0.1", "-authd", "x"}, nil, "not an http(s) URL"},
		{[]string{"-scenario", "nope", "-authd", "x"}, nil, `unknown scenario "nope"`},
		{[]string{"-c", "0", "-authd", "x"}, nil, "-c must be"},
		{[]string{"-d", "0s", "-authd", "x"}, nil, "-d must be"},
		{[]string{"-d", "2h", "-authd", "x"}, nil, "-d must be"},
		{[]string{"-scenario", "jwks"}, nil, "-client-id and -client-secret are required"},
		{[]string{"-scenario", "refresh", "-client-id", "c"}, []string{"AUTHBENCH_CLIENT_SECRET=s"}, "need -username and -password"},
		{[]string{"-authd", "x", "-client-id", "c"}, nil, "drop -client-id"},
		{[]string{"-scenario", "refresh", "-client-id", "c", "-username", "u"}, []string{"AUTHBENCH_CLIENT_SECRET=s", "AUTHBENCH_PASSWORD=p"}, ""},
		{[]string{"-issuer", "http://[::1]:9", "-allow-remote=false", "-authd", "x", "-scenario", "jwks,mixed"}, nil, ""},
		{[]string{"-issuer", "http://10.1.2.3:8080", "-allow-remote", "-authd", "x"}, nil, ""},
		{[]string{"-scenario", "code", "-client-id", "c", "-username", "u"}, []string{"AUTHBENCH_CLIENT_SECRET=s", "AUTHBENCH_PASSWORD=p"}, "needs -redirect-uri"},
		{[]string{"-scenario", "code", "-client-id", "c", "-username", "u", "-redirect-uri", "http://127.0.0.1/cb"}, []string{"AUTHBENCH_CLIENT_SECRET=s", "AUTHBENCH_PASSWORD=p"}, ""},
		{[]string{"-scenario", "code,jwks", "-authd", "x"}, nil, ""},
	}
	for _, c := range cases {
		cfg, err := parseFlags(c.args, c.environ, io.Discard)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("parseFlags(%q) = %v; want no error", c.args, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("parseFlags(%q) = %v; want an error containing %q", c.args, err, c.wantErr)
		case c.wantErr == "" && c.environ != nil && (cfg.clientSecret != "s" || cfg.password != "p"):
			t.Errorf("parseFlags(%q): secrets from the environment not read: %+v", c.args, cfg)
		}
	}
}

// Discovery falls back to the OpenID document, and refuses metadata that
// points the load somewhere else.
func TestDiscover(t *testing.T) {
	var base string
	var mu sync.Mutex
	token := "/oauth2/token"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base, "token_endpoint": token, "jwks_uri": base + "/jwks"})
	}))
	defer srv.Close()
	base = srv.URL
	token = base + "/oauth2/token"
	m, err := discover(t.Context(), srv.Client(), base, false)
	if err != nil || m.TokenEndpoint != base+"/oauth2/token" || m.JWKSURI != base+"/jwks" || m.RevocationEndpoint != "" {
		t.Fatalf("discover = %+v, %v", m, err)
	}
	mu.Lock()
	token = "http://203.0.113.7/oauth2/token"
	mu.Unlock()
	if _, err := discover(t.Context(), srv.Client(), base, false); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("discover with a remote token endpoint = %v; want a loopback error", err)
	}
}

// The lean client speaks HTTP/1.1 to net/http's server: keep-alive, a
// connection the server closes, chunked bodies.
func TestLeanClient(t *testing.T) {
	var conns sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("close") == "1" {
			w.Header().Set("Connection", "close")
		}
		if r.Method == http.MethodPost && (r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Authorization") != "Basic x") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.(http.Flusher).Flush() // chunked
		_, _ = w.Write(append([]byte(r.Method+" "), body...))
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Store(c.RemoteAddr().String(), true)
		}
	}
	srv.Start()
	defer srv.Close()
	b := &bench{cfg: config{timeout: 10 * time.Second}}
	w := b.newWorker(0, nil)
	defer w.closeConns()
	post, _ := parseEndpoint(srv.URL + "/p")
	get, _ := parseEndpoint(srv.URL + "/g?close=1")
	for i := range 3 {
		status, err := w.roundTrip(t.Context(), post, "Basic x", "", "a=b", true)
		if err != nil || status != http.StatusOK || w.buf.String() != "POST a=b" {
			t.Fatalf("POST %d = %d %q, %v", i, status, w.buf.String(), err)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("3 requests used %d connections; want 1 (keep-alive)", n)
	}
	for i := range 2 {
		status, err := w.roundTrip(t.Context(), get, "", "", "", false)
		if err != nil || status != http.StatusOK || w.buf.String() != "GET " {
			t.Fatalf("GET %d = %d %q, %v", i, status, w.buf.String(), err)
		}
	}
	if len(w.conns) != 0 {
		t.Errorf("the worker kept a connection the server closed")
	}
}

// authd is a real authd, built from this module and started as its own
// process on the embedded SQLite store, as make bench does.
type authd struct {
	bin     string
	issuer  string
	environ []string
}

var (
	buildDir  string // removed by TestMain
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authbench-test")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildAuthd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(buildDir, "authd")
		cmd := exec.Command(goBin, "build", "-o", builtBin, "github.com/authd/authd/cmd/authd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build authd: %v", buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func startAuthd(t *testing.T) *authd {
	t.Helper()
	bin := buildAuthd(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHD_") && !strings.HasPrefix(kv, "AUTHBENCH_") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, "AUTHD_DEV=true", "AUTHD_DATA_DIR="+data, "AUTHD_DATABASE_URL=sqlite://"+filepath.Join(data, "authd.db"),
		"AUTHD_HTTP_ADDR="+addr, "AUTHD_ISSUER=http://"+addr, "AUTHD_RATE_LIMIT_TOKEN_PER_MIN=0", "AUTHD_LOG_LEVEL=warn")
	a := &authd{bin: bin, issuer: "http://" + addr, environ: environ}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = environ
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(a.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		select {
		case <-exited:
			t.Fatalf("authd exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authd did not become ready:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runJSON(t *testing.T, environ []string, args ...string) report {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(t.Context(), append(args, "-json"), environ, &out, &errb); err != nil {
		t.Fatalf("authbench %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("authbench -json output: %v\n%s", err, out.String())
	}
	return rep
}

// checkRuns wants every scenario run, each stopped by the request count with
// no error at all.
func checkRuns(t *testing.T, rep report, n uint64, repeat int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rep.Runs {
		if r.Scenario == "mixed" && r.Op != "total" {
			continue
		}
		seen[r.Scenario]++
		if r.Requests != n || len(r.Errors) != 0 {
			t.Errorf("%s run %d: %d requests, errors %v; want %d, none", r.Scenario, r.Run, r.Requests, r.Errors, n)
		}
		if r.RPS <= 0 || r.P50MS <= 0 || r.P99MS < r.P50MS || r.MaxMS < r.P99MS {
			t.Errorf("%s run %d: figures out of order: %+v", r.Scenario, r.Run, r)
		}
	}
	for _, s := range scenarioNames {
		if seen[s] != repeat {
			t.Errorf("scenario %s ran %d times; want %d", s, seen[s], repeat)
		}
	}
}

// Against a real authd, authbench provisions its clients and users with the
// CLI and runs every scenario; each refresh token is used once (a second use
// would kill its family and show up as errors).
func TestAgainstAuthd(t *testing.T) {
	a := startAuthd(t)
	rep := runJSON(t, a.environ, "-issuer", a.issuer, "-authd", a.bin, "-users", "2", "-c", "3",
		"-n", "24", "-d", "5m", "-warmup", "0", "-repeat", "2")
	checkRuns(t, rep, 24, 2)
	if len(rep.Medians) == 0 {
		t.Error("no medians with -repeat 2")
	}
	// The clients it created are gone.
	out, err := authdCLI{bin: a.bin, environ: a.environ}.run(t.Context(), "", "clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("authbench-")) {
		t.Errorf("clients left behind: %s", out)
	}
}

// Against any server: a pre-registered client and user, secrets from the
// environment, no CLI.
func TestAgainstPreprovisionedServer(t *testing.T) {
	a := startAuthd(t)
	cli := authdCLI{bin: a.bin, environ: a.environ}
	out, err := cli.run(t.Context(), "", "clients", "create", "--id", "peer", "--grant-types", "password,refresh_token,client_credentials", "--introspect")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	const pw = "a long enough bench password 42"
	if _, err := cli.run(t.Context(), pw+"\n", "users", "create", "--username", "peer-user", "--email", "peer@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	environ := append(slices.Clone(a.environ), "AUTHBENCH_CLIENT_SECRET="+c.Secret, "AUTHBENCH_PASSWORD="+pw)
	rep := runJSON(t, environ, "-issuer", a.issuer, "-client-id", "peer", "-username", "peer-user",
		"-c", "2", "-n", "10", "-d", "5m", "-warmup", "0")
	checkRuns(t, rep, 10, 1)
}

// The code scenario against a real authd: every round trip ends with a
// code exchanged for an access token and an id_token, posting the login
// form each time or, with -code-sso, riding the worker's browser session
// after its first sign-in. Each step is reported beside the round trips:
// with the form, a round trip is two authorization requests, two login
// requests (the page, the form) and one exchange; on the session, one
// authorization request and the exchange, after each worker's first
// sign-in. The web client it registered is gone afterwards.
func TestCodeAgainstAuthd(t *testing.T) {
	a := startAuthd(t)
	for _, sso := range []bool{false, true} {
		args := []string{"-issuer", a.issuer, "-authd", a.bin, "-users", "2", "-c", "3",
			"-n", "12", "-d", "5m", "-warmup", "0", "-scenario", "code"}
		if sso {
			args = append(args, "-code-sso")
		}
		rep := runJSON(t, a.environ, args...)
		byOp := map[string]row{}
		for _, r := range rep.Runs {
			byOp[r.Op] = r
		}
		if len(rep.Runs) != 4 {
			t.Fatalf("sso=%v: %d rows; want the round trips and 3 steps: %+v", sso, len(rep.Runs), rep.Runs)
		}
		r := byOp["code"]
		if r.Scenario != "code" || r.Requests != 12 || len(r.Errors) != 0 || r.RPS <= 0 {
			t.Errorf("sso=%v: %+v; want 12 code round trips, no error", sso, r)
		}
		if tok := byOp["code:token"]; tok.Requests != 12 || len(tok.Errors) != 0 || tok.P99MS <= 0 {
			t.Errorf("sso=%v: code:token %+v; want 12 exchanges", sso, tok)
		}
		az, lg := byOp["code:authorize"], byOp["code:login"]
		switch {
		case az.P99MS <= 0 || len(az.Errors) != 0 || len(lg.Errors) != 0:
			t.Errorf("sso=%v: code:authorize %+v, code:login %+v; want timed steps without errors", sso, az, lg)
		case !sso && (az.Requests != 24 || lg.Requests != 24):
			t.Errorf("posting the form: code:authorize %d, code:login %d requests; want 24 and 24", az.Requests, lg.Requests)
		case sso && (az.Requests < 12 || az.Requests > 12+3 || lg.Requests > 2*3):
			t.Errorf("on the session: code:authorize %d, code:login %d requests; want 12 to 15 and at most 6 (each worker signs in once)", az.Requests, lg.Requests)
		}
	}
	out, err := authdCLI{bin: a.bin, environ: a.environ}.run(t.Context(), "", "clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("authbench-")) {
		t.Errorf("clients left behind: %s", out)
	}
}

// The code scenario fails loudly when a round trip cannot complete: a user
// whose password is wrong never gets a code.
func TestCodeCountsFailures(t *testing.T) {
	a := startAuthd(t)
	cli := authdCLI{bin: a.bin, environ: a.environ}
	out, err := cli.run(t.Context(), "", "clients", "create", "--id", "peer-web", "--grant-types", "authorization_code",
		"--scopes", "openid", "--redirect-uris", defaultRedirectURI, "--first-party")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.run(t.Context(), "a long enough bench password 42\n", "users", "create", "--username", "peer-user", "--email", "peer@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	base := []string{"-issuer", a.issuer, "-client-id", "peer-web", "-username", "peer-user", "-redirect-uri", defaultRedirectURI,
		"-c", "1", "-n", "3", "-d", "5m", "-warmup", "0", "-scenario", "code"}
	good := runJSON(t, append(slices.Clone(a.environ), "AUTHBENCH_CLIENT_SECRET="+c.Secret, "AUTHBENCH_PASSWORD=a long enough bench password 42"), base...)
	if r := good.Runs[0]; r.Op != "code" || r.Requests != 3 || len(r.Errors) != 0 {
		t.Errorf("pre-registered client, right password: %+v; want 3 round trips, no error", r)
	}
	bad := runJSON(t, append(slices.Clone(a.environ), "AUTHBENCH_CLIENT_SECRET="+c.Secret, "AUTHBENCH_PASSWORD=not the password of peer"), base...)
	r := bad.Runs[0]
	if r.Op != "code" {
		t.Fatalf("the first row is %q; want the round trips", r.Op)
	}
	var failed uint64
	for _, n := range r.Errors {
		failed += n
	}
	if r.Requests != 3 || failed != 3 {
		t.Errorf("wrong password: %+v; want 3 round trips, each an error", r)
	}
}
