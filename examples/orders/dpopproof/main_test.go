package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/dpop"
)

func TestProof(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "k.jwk")
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	out := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(append([]string{"-key", keyFile}, args...), &stdout, &stderr, clock); err != nil {
			t.Fatalf("dpopproof %q: %v %s", args, err, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	jkt := out("-jkt")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", st, err)
	}
	url := "http://localhost:8081/orders"
	p1 := out("-method", "POST", "-url", url, "-token", "tok")
	p2 := out("-method", "POST", "-url", url, "-token", "tok")
	for _, p := range []string{p1, p2} {
		got, err := dpop.Check(p, dpop.Params{Method: "POST", URL: url, AccessToken: "tok", Now: now})
		if err != nil {
			t.Fatalf("dpop.Check(proof) = %v", err)
		}
		if got.JKT != jkt {
			t.Errorf("proof key %s; -jkt printed %s (the key file is reused)", got.JKT, jkt)
		}
	}
	if p1 == p2 {
		t.Error("two proofs are the same: no fresh jti")
	}
	if _, err := dpop.Check(out("-url", url, "-nonce", "n1"), dpop.Params{Method: "GET", URL: url, Nonce: "n1", Now: now}); err != nil {
		t.Errorf("proof with a nonce: %v", err)
	}
	var stderr bytes.Buffer
	if err := run([]string{"-key", keyFile}, &bytes.Buffer{}, &stderr, clock); err == nil {
		t.Error("no -url: nil error")
	}
	bad := filepath.Join(t.TempDir(), "bad.jwk")
	_ = os.WriteFile(bad, []byte(`{"kty":"oct","k":"c2VjcmV0"}`), 0o600)
	if err := run([]string{"-key", bad, "-jkt"}, &bytes.Buffer{}, &stderr, clock); err == nil {
		t.Error("a symmetric key file: nil error")
	}
}
