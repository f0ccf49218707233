package main

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/internal/dpop"
)

// The hand-written proofs pass authd's checks, carry the key's thumbprint
// as go-jose computes it, and are fresh each time.
func TestDPoPProof(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: k.priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	const htu = "http://127.0.0.1:8080/oauth2/token"
	target := dpopTarget(http.MethodPost, htu)
	now := time.Now()
	var buf []byte
	seen := map[string]bool{}
	for i := range 3 {
		nonce := ""
		if i == 2 {
			nonce = "n-1"
		}
		var p string
		p, buf, err = k.proof(buf, target, nonce, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dpop.Check(p, dpop.Params{Method: http.MethodPost, URL: htu, Now: now, Nonce: nonce})
		if err != nil {
			t.Fatalf("dpop.Check(authbench proof %d) = %v\n%s", i, err, p)
		}
		if got.JKT != base64.RawURLEncoding.EncodeToString(tp) {
			t.Errorf("JKT = %s; want go-jose's thumbprint", got.JKT)
		}
		if seen[got.JTI] {
			t.Errorf("jti %s used twice", got.JTI)
		}
		seen[got.JTI] = true
		// go-jose reads it too.
		jws, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(&k.priv.PublicKey); err != nil {
			t.Errorf("go-jose: %v", err)
		}
	}
	if _, err := dpop.Check(strings.Replace(mustProof(t, k, target), ".", ".x", 1), dpop.Params{Method: http.MethodPost, URL: htu}); err == nil {
		t.Error("a mangled proof passes")
	}
}

func mustProof(t *testing.T, k *dpopKey, target string) string {
	t.Helper()
	p, _, err := k.proof(nil, target, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A server that wants its nonce: the request is sent once more with it.
func TestDPoPNonceRetry(t *testing.T) {
	var (
		mu     sync.Mutex
		proofs []string
		base   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		proofs = append(proofs, r.Header.Get("DPoP"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("DPoP-Nonce", "server-nonce")
		if _, err := dpop.Check(r.Header.Get("DPoP"), dpop.Params{Method: "POST", URL: base + "/token", Nonce: "server-nonce"}); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"use_dpop_nonce"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "at", "token_type": "DPoP"})
	}))
	defer srv.Close()
	base = srv.URL
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: config{timeout: 10 * time.Second}, keys: []*dpopKey{k}, tokenTarget: dpopTarget("POST", srv.URL+"/token")}
	for o := range numOps {
		b.eps[o], _ = parseEndpoint(srv.URL + "/token")
	}
	w := b.newWorker(0, nil)
	defer w.closeConns()
	tr, err := w.token(t.Context(), newCredential("c", "s"), "grant_type=client_credentials")
	if err != nil || tr.AccessToken != "at" {
		t.Fatalf("token = %+v, %v", tr, err)
	}
	if len(proofs) != 2 || proofs[0] == proofs[1] {
		t.Fatalf("server saw proofs %q; want two different ones (without, then with its nonce)", proofs)
	}
	// The nonce is kept: the next request needs one try.
	if _, err := w.token(t.Context(), newCredential("c", "s"), "grant_type=client_credentials"); err != nil || len(proofs) != 3 {
		t.Errorf("second token: %v, %d requests in all; want 3", err, len(proofs))
	}
}

// -dpop needs a server that says it supports DPoP, and tokens of type DPoP.
func TestDPoPNeedsServerSupport(t *testing.T) {
	bearer := false
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			m := map[string]any{"issuer": base, "token_endpoint": base + "/token", "jwks_uri": base + "/jwks"}
			if !bearer {
				m["dpop_signing_alg_values_supported"] = []string{"ES256"}
			}
			_ = json.NewEncoder(w).Encode(m)
		case "/token":
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "at", "token_type": "Bearer"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base = srv.URL
	args := []string{"-issuer", srv.URL, "-client-id", "c", "-client-secret", "s", "-scenario", "client-credentials",
		"-dpop", "-c", "1", "-n", "5", "-d", "1m", "-warmup", "0", "-json"}
	var out, errb strings.Builder
	if err := run(t.Context(), args, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.DPoP || len(rep.Runs) != 1 || rep.Runs[0].Errors["bad-body"] != 5 {
		t.Errorf("Bearer answers to DPoP requests: %+v; want 5 bad-body errors", rep.Runs)
	}
	bearer = true // now the metadata does not advertise DPoP
	if err := run(t.Context(), args, nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "dpop_signing_alg_values_supported") {
		t.Errorf("-dpop against a server without DPoP: %v; want a refusal", err)
	}
	args = slices.DeleteFunc(args, func(a string) bool { return a == "-dpop" })
	if err := run(t.Context(), args, nil, &out, &errb); err != nil {
		t.Errorf("without -dpop: %v", err)
	}
}

// Against a real authd, every scenario with DPoP proofs: tokens come back
// bound (token_type DPoP, or bad-body), each proof is fresh (a replayed
// jti is a 400), and refresh chains keep their key.
func TestAgainstAuthdDPoP(t *testing.T) {
	a := startAuthd(t)
	rep := runJSON(t, a.environ, "-issuer", a.issuer, "-authd", a.bin, "-users", "2", "-c", "3",
		"-n", "12", "-d", "5m", "-warmup", "0", "-dpop")
	if !rep.DPoP {
		t.Error("report does not say DPoP")
	}
	checkRuns(t, rep, 12, 1)
}

func BenchmarkDPoPProof(b *testing.B) {
	k, err := newDPoPKey()
	if err != nil {
		b.Fatal(err)
	}
	target := dpopTarget("POST", "http://127.0.0.1:8080/oauth2/token")
	var buf []byte
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, buf, err = k.proof(buf, target, "", now); err != nil {
			b.Fatal(err)
		}
	}
}
