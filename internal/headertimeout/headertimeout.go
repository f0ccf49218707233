// Package headertimeout answers 408 Request Timeout to a client whose
// request headers do not arrive within http.Server.ReadHeaderTimeout.
//
// net/http closes such a connection without a word, so a client (or the
// proxy in front of authd) cannot tell a slow request from a crashed server.
// Wrap the listener with Listen and install ConnState in the server: a read
// that times out while a request's headers are arriving is answered with a
// 408 before net/http closes the connection. A connection that sent nothing
// (a browser's pre-connection, an idle keep-alive connection reaching
// IdleTimeout) is closed silently, as before; a slow body is the handler's
// to answer.
//
// Plain HTTP only: under TLS the server's ConnState sees *tls.Conn and the
// connection is closed silently, as net/http does.
package headertimeout

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// response is what a client gets: a complete HTTP/1.1 message that also
// closes the connection.
const response = "HTTP/1.1 408 Request Timeout\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 19\r\n" +
	"Connection: close\r\n\r\n" +
	"408 Request Timeout"

// writeTimeout bounds the 408's write: a client that does not read does not
// hold the connection's goroutine.
const writeTimeout = time.Second

// Listener hands out connections that can answer a header timeout.
type Listener struct {
	net.Listener
	// OnTimeout, when set, is called after a 408 was written (a metric or
	// a log line).
	OnTimeout func()
}

// Listen wraps ln.
func Listen(ln net.Listener) *Listener { return &Listener{Listener: ln} }

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, onTimeout: l.OnTimeout}, nil
}

// ConnState is the http.Server.ConnState hook that tells the connections
// when a request's headers are being read: from a connection's start (New)
// or the end of the previous response (Idle) until net/http has read the
// headers (Active).
func ConnState(c net.Conn, s http.ConnState) {
	hc, ok := c.(*conn)
	if !ok {
		return
	}
	switch s {
	case http.StateNew, http.StateIdle:
		hc.received.Store(0)
		hc.inHeaders.Store(true)
	default:
		hc.inHeaders.Store(false)
	}
}

type conn struct {
	net.Conn
	onTimeout func()
	inHeaders atomic.Bool  // a request's headers are being read
	received  atomic.Int64 // bytes read since they began
	answered  atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.received.Add(int64(n))
	}
	if err != nil && c.inHeaders.Load() && c.received.Load() > 0 && isTimeout(err) && c.answered.CompareAndSwap(false, true) {
		// net/http returns on this error and closes the connection; the
		// answer goes out first. A failed write changes nothing: the
		// connection is closed either way.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, werr := c.Conn.Write([]byte(response)); werr == nil && c.onTimeout != nil {
			c.onTimeout()
		}
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
