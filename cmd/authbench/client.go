package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The load itself goes through a lean HTTP/1.1 client: each worker owns one
// keep-alive connection per origin and writes each request with a single
// write. net/http's client costs a few goroutine hand-offs per request, which
// on a machine shared with the server under test is CPU taken from the
// server. Discovery and provisioning still use net/http.

// endpoint is a parsed endpoint URL.
type endpoint struct {
	origin string // scheme://host[:port], the connection key
	addr   string // host:port to dial
	host   string // Host header
	path   string // request target: path and query
	tls    bool
	server string // TLS server name
}

func parseEndpoint(raw string) (*endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", raw, err)
	}
	e := &endpoint{host: u.Host, path: u.RequestURI(), server: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = cmpOr(port, "80")
	case "https":
		port, e.tls = cmpOr(port, "443"), true
	default:
		return nil, fmt.Errorf("endpoint %q: not http or https", raw)
	}
	e.addr = net.JoinHostPort(u.Hostname(), port)
	e.origin = u.Scheme + "://" + e.addr
	return e, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// httpConn is a keep-alive connection.
type httpConn struct {
	c  net.Conn
	br *bufio.Reader
}

// conn returns the worker's connection to e's origin, dialling it if needed;
// reused reports whether it carried requests before.
func (w *worker) conn(ctx context.Context, e *endpoint) (hc *httpConn, reused bool, err error) {
	if hc := w.conns[e.origin]; hc != nil {
		return hc, true, nil
	}
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, false, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if e.tls {
		tc := tls.Client(c, &tls.Config{ServerName: e.server, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, false, err
		}
		c = tc
	}
	hc = &httpConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	if w.conns == nil {
		w.conns = map[string]*httpConn{}
	}
	w.conns[e.origin] = hc
	return hc, false, nil
}

func (w *worker) dropConn(e *endpoint) {
	if hc := w.conns[e.origin]; hc != nil {
		hc.c.Close()
		delete(w.conns, e.origin)
	}
}

// closeConns closes every connection of the worker.
func (w *worker) closeConns() {
	for k, hc := range w.conns {
		hc.c.Close()
		delete(w.conns, k)
	}
}

// maxBody is the largest response body read.
const maxBody = 1 << 20

// errBeforeResponse is a failure on a reused connection before any byte of
// the response arrived: the server had closed it while idle.
var errBeforeResponse = errors.New("connection closed before the response")

// roundTrip sends one request (a form POST when form is not empty, else a
// GET), with a DPoP header when proof is set, and reads the answer's body
// into w.buf. A request that failed on a reused connection before any answer
// came back is sent once more on a new one, as net/http does.
func (w *worker) roundTrip(ctx context.Context, e *endpoint, auth, proof, form string, post bool) (int, error) {
	for {
		hc, reused, err := w.conn(ctx, e)
		if err != nil {
			return 0, err
		}
		status, err := w.exchange(hc, e, auth, proof, form, post)
		if err == nil {
			return status, nil
		}
		w.dropConn(e)
		if !reused || !errors.Is(err, errBeforeResponse) || ctx.Err() != nil {
			return 0, err
		}
	}
}

func (w *worker) exchange(hc *httpConn, e *endpoint, auth, proof, form string, post bool) (int, error) {
	req := w.req[:0]
	if post {
		req = append(req, "POST "...)
	} else {
		req = append(req, "GET "...)
	}
	req = append(req, e.path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, e.host...)
	req = append(req, "\r\nUser-Agent: authbench\r\nAccept: application/json\r\n"...)
	if auth != "" {
		req = append(req, "Authorization: "...)
		req = append(req, auth...)
		req = append(req, "\r\n"...)
	}
	if proof != "" {
		req = append(req, "DPoP: "...)
		req = append(req, proof...)
		req = append(req, "\r\n"...)
	}
	if post {
		req = append(req, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
		req = strconv.AppendInt(req, int64(len(form)), 10)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	req = append(req, form...)
	w.req = req

	if err := hc.c.SetDeadline(time.Now().Add(w.b.cfg.timeout)); err != nil {
		return 0, err
	}
	if _, err := hc.c.Write(req); err != nil {
		return 0, fmt.Errorf("%w: %w", errBeforeResponse, err)
	}
	if _, err := hc.br.Peek(1); err != nil {
		return 0, fmt.Errorf("%w: %w", errBeforeResponse, err)
	}
	method := http.MethodGet
	if post {
		method = http.MethodPost
	}
	resp, err := http.ReadResponse(hc.br, &http.Request{Method: method})
	if err != nil {
		return 0, err
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		w.nonce = n // RFC 9449 §8: the server's current nonce, for the next proofs
	}
	w.buf.Reset()
	n, err := w.buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if n > maxBody {
		return 0, fmt.Errorf("response body over %d bytes", maxBody)
	}
	if resp.Close {
		w.dropConn(e)
	}
	return resp.StatusCode, nil
}
