package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// A shutdown that outlasts AUTHD_SHUTDOWN_TIMEOUT (a client that never
// finishes its request) closes the remaining connections, says so in the
// JSON log, and ends serve without an error (exit 0).
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	vars := map[string]string{
		"AUTHD_ISSUER": "http://" + addr, "AUTHD_HTTP_ADDR": addr, "AUTHD_SECRET": testSecret, "AUTHD_DEV": "true",
		"AUTHD_DATA_DIR": t.TempDir(), "AUTHD_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "authd.db"),
		"AUTHD_SHUTDOWN_TIMEOUT": "300ms", "AUTHD_LOG_LEVEL": "info",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, lookupEnv: lookup(vars),
		onReady: func(addr string) { ready <- addr }}
	root := e.rootCommand()
	root.SetArgs([]string{"serve"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	// A request whose body never comes: in flight when the shutdown begins.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=", addr)
	time.Sleep(100 * time.Millisecond) // let the server start on it
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after a timed-out shutdown = %v; want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop 10 s after the shutdown began")
	}
	took := time.Since(began)
	out := logs.String()
	if !strings.Contains(out, "shutdown timed out") || took > 5*time.Second {
		t.Errorf("shutdown took %v; logs:\n%s", took, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

// A request whose headers do not arrive within AUTHD_READ_HEADER_TIMEOUT is
// answered 408 (net/http alone would close the connection without a word),
// and counted on /metrics.
func TestSlowHeadersGet408(t *testing.T) {
	t.Parallel()
	in := start(t, envFor(t, "sqlite://"+filepath.Join(t.TempDir(), "authd.db"), map[string]string{"AUTHD_READ_HEADER_TIMEOUT": "200ms"}))
	c, err := net.Dial("tcp", strings.TrimPrefix(in.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /oauth2/token HTTP/1.1\r\nHost: authd\r\nContent-Ty") // and nothing more
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow headers: %v; want a 408", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow headers: %d %v; want 408 with Connection: close", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(scrapeText(t, in), "\nauthd_http_header_timeouts_total 1\n") {
		t.Errorf("/metrics after one slow request: want authd_http_header_timeouts_total 1")
	}
}
