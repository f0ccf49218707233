package main

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authd/authd/internal/testcert"
)

func TestServeTLS(t *testing.T) {
	tc := testcert.New(t)
	certFile, keyFile, pool := tc.CertFile, tc.KeyFile, tc.Pool
	addr := freeAddr(t)
	vars := map[string]string{
		"AUTHD_ISSUER": "https://" + addr, "AUTHD_HTTP_ADDR": addr, "AUTHD_SECRET": testSecret,
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
		"AUTHD_TLS_CERT":     certFile, "AUTHD_TLS_KEY": keyFile, "AUTHD_LOG_LEVEL": "warn",
	}
	in := start(t, vars)
	base := strings.Replace(in.base, "http://", "https://", 1)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("HTTPS discovery: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %v", resp.TLS)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.1 client was served")
	}
}

func TestServeRefusesPlainHTTP(t *testing.T) {
	vars := map[string]string{
		"AUTHD_ISSUER": "https://auth.example.com", "AUTHD_HTTP_ADDR": freeAddr(t), "AUTHD_SECRET": testSecret,
		"AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
	}
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &errb, lookup(vars))
	root.SetArgs([]string{"serve"})
	err := root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "AUTHD_TLS_CERT") || !strings.Contains(err.Error(), "AUTHD_TLS_TERMINATED_UPSTREAM") {
		t.Errorf("serve without TLS or dev: %v; want a refusal naming AUTHD_TLS_CERT and AUTHD_TLS_TERMINATED_UPSTREAM", err)
	}
	if strings.Contains(err.Error()+errb.String(), testSecret) {
		t.Errorf("the secret appears in the error")
	}
}
