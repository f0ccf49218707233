package headertimeout

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const headerTimeout = 150 * time.Millisecond

// serve runs an http.Server with the wrapper; handler reads the body and
// answers 200 "ok" (or 400 when the body does not arrive).
func serve(t *testing.T, idle time.Duration) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int64
	wl := Listen(ln)
	wl.OnTimeout = func() { answered.Add(1) }
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "body", http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       2 * headerTimeout,
		IdleTimeout:       idle,
		ConnState:         ConnState,
	}
	go func() { _ = hs.Serve(wl) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String(), &answered
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// status reads one response and returns its status code, or 0 when the
// connection was closed without one.
func status(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	if _, err := r.Peek(1); err == io.EOF || err != nil && strings.Contains(err.Error(), "reset") {
		return 0
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

const request = "GET / HTTP/1.1\r\nHost: authd\r\n\r\n"

func TestSlowHeadersGet408(t *testing.T) {
	t.Parallel()
	addr, answered := serve(t, time.Minute)
	c, r := dial(t, addr)
	write(t, c, "GET / HTTP/1.1\r\nHost: au") // and then nothing
	if got := status(t, r); got != http.StatusRequestTimeout {
		t.Fatalf("slow headers: status %d; want 408", got)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after the 408: %v; want the connection closed", err)
	}
	if answered.Load() != 1 {
		t.Errorf("OnTimeout called %d times; want 1", answered.Load())
	}
}

func TestSlowHeadersOnAKeptAliveConnection(t *testing.T) {
	t.Parallel()
	addr, _ := serve(t, time.Minute)
	c, r := dial(t, addr)
	write(t, c, request)
	if got := status(t, r); got != http.StatusOK {
		t.Fatalf("first request: %d", got)
	}
	write(t, c, "POST / HTTP/1.1\r\n")
	if got := status(t, r); got != http.StatusRequestTimeout {
		t.Fatalf("second request's slow headers: status %d; want 408", got)
	}
}

func TestSilentConnectionsCloseSilently(t *testing.T) {
	t.Parallel()
	t.Run("nothing sent", func(t *testing.T) {
		t.Parallel()
		addr, answered := serve(t, time.Minute)
		_, r := dial(t, addr)
		if got := status(t, r); got != 0 {
			t.Errorf("a connection that sent nothing got %d; want it closed without an answer", got)
		}
		if answered.Load() != 0 {
			t.Errorf("OnTimeout called for a connection that sent nothing")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		addr, _ := serve(t, headerTimeout)
		c, r := dial(t, addr)
		write(t, c, request)
		if got := status(t, r); got != http.StatusOK {
			t.Fatalf("first request: %d", got)
		}
		// An idle connection reaching IdleTimeout is not a slow request
		// (clients treat an unsolicited answer on an idle connection as an
		// error).
		if got := status(t, r); got != 0 {
			t.Errorf("an idle keep-alive connection got %d; want it closed without an answer", got)
		}
	})
}

func TestSlowBodyIsTheHandlers(t *testing.T) {
	t.Parallel()
	addr, answered := serve(t, time.Minute)
	c, r := dial(t, addr)
	write(t, c, "POST / HTTP/1.1\r\nHost: authd\r\nContent-Length: 10\r\n\r\nabc")
	if got := status(t, r); got != http.StatusBadRequest {
		t.Errorf("slow body: status %d; want the handler's 400", got)
	}
	if answered.Load() != 0 {
		t.Errorf("OnTimeout called for a slow body")
	}
}

func TestFastRequestsAreUntouched(t *testing.T) {
	t.Parallel()
	addr, answered := serve(t, time.Minute)
	c, r := dial(t, addr)
	for range 3 {
		write(t, c, request)
		if got := status(t, r); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	// Headers sent in pieces, each within the timeout.
	for _, part := range []string{"GET / HT", "TP/1.1\r\nHo", "st: authd\r\n", "\r\n"} {
		write(t, c, part)
		time.Sleep(headerTimeout / 5)
	}
	if got := status(t, r); got != http.StatusOK {
		t.Fatalf("headers in pieces: status %d", got)
	}
	if answered.Load() != 0 {
		t.Errorf("OnTimeout called %d times", answered.Load())
	}
}
