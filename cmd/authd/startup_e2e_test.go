package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveOnce runs `authd serve` with vars and returns its error and log; it
// fails the test if serve neither returns nor gets ready within 20 s.
func serveOnce(t *testing.T, vars map[string]string) (error, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	e := &env{stdin: strings.NewReader(""), stdout: logs, stderr: logs, lookupEnv: lookup(vars),
		onReady: func(addr string) { ready <- addr }}
	root := e.rootCommand()
	root.SetArgs([]string{"serve"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	select {
	case err := <-done:
		return err, logs.String()
	case <-ready:
		cancel()
		<-done
		t.Fatalf("serve got ready; want a start-up failure\n%s", logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("serve neither failed nor got ready in 20 s (hung)\n%s", logs.String())
	}
	return nil, ""
}

// Start-up failures after the store, keys and Kafka relay are up end serve
// with an error, never a hang, and "authd ready" is never logged.
func TestServeStartupFailures(t *testing.T) {
	t.Parallel()
	base := func(t *testing.T) map[string]string {
		addr := freeAddr(t)
		return map[string]string{
			"AUTHD_ISSUER": "https://" + addr, "AUTHD_HTTP_ADDR": addr, "AUTHD_SECRET": testSecret,
			"AUTHD_DATABASE_URL":            "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
			"AUTHD_TLS_TERMINATED_UPSTREAM": "true", "AUTHD_LOG_LEVEL": "info",
			// A broker nobody listens on: the relay starts and keeps retrying.
			"AUTHD_KAFKA_BROKERS": freeAddr(t),
		}
	}
	t.Run("listen error with Kafka configured", func(t *testing.T) {
		vars := base(t)
		ln, err := net.Listen("tcp", vars["AUTHD_HTTP_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		err, logs := serveOnce(t, vars)
		if err == nil || !strings.Contains(err.Error(), "listen") || strings.Contains(logs, "authd ready") {
			t.Errorf("serve on a taken address = %v; logs:\n%s", err, logs)
		}
	})
	t.Run("bad TLS files", func(t *testing.T) {
		vars := base(t)
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		vars["AUTHD_TLS_CERT"], vars["AUTHD_TLS_KEY"] = cert, key
		delete(vars, "AUTHD_TLS_TERMINATED_UPSTREAM")
		err, logs := serveOnce(t, vars)
		if err == nil || !strings.Contains(err.Error(), "AUTHD_TLS_CERT") || strings.Contains(logs, "authd ready") {
			t.Errorf("serve with bad TLS files = %v; logs:\n%s", err, logs)
		}
	})
}
