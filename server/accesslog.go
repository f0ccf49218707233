package server

import (
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The access line of every request is written in the format of slog's
// JSONHandler (keys time, level, msg, then the request's attributes), but
// encoded here: slog encodes a float through encoding/json and walks its
// attributes generically, which made the access line a tenth of a JWKS
// answer's CPU. FuzzAccessLineMatchesSlog holds the two encodings equal.

// accessLine is one request's access log entry.
type accessLine struct {
	time       time.Time
	requestID  string
	method     string
	path       string
	status     int
	bytes      int
	durationMS float64
	ip         string
}

// appendAccessLine appends l as slog's JSONHandler writes an INFO record
// "request" with l's attributes, newline included.
func appendAccessLine(buf []byte, l accessLine) []byte {
	buf = append(buf, `{"time":"`...)
	buf = l.time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","level":"INFO","msg":"request","request_id":`...)
	buf = appendJSONString(buf, l.requestID)
	buf = append(buf, `,"method":`...)
	buf = appendJSONString(buf, l.method)
	buf = append(buf, `,"path":`...)
	buf = appendJSONString(buf, l.path)
	buf = append(buf, `,"status":`...)
	buf = strconv.AppendInt(buf, int64(l.status), 10)
	buf = append(buf, `,"bytes":`...)
	buf = strconv.AppendInt(buf, int64(l.bytes), 10)
	buf = append(buf, `,"duration_ms":`...)
	buf = appendJSONFloat(buf, l.durationMS)
	buf = append(buf, `,"ip":`...)
	buf = appendJSONString(buf, l.ip)
	return append(buf, "}\n"...)
}

// appendJSONFloat appends f as encoding/json does (what slog calls for
// floats): 'f' format within [1e-6, 1e21), 'e' outside with a two-digit
// exponent trimmed; NaN and infinities are not JSON and are written as 0.
func appendJSONFloat(buf []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(buf, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(buf)
		if n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as slog's JSONHandler quotes strings:
// '"', '\\' and control characters escaped (\n, \r, \t by name), invalid
// UTF-8 as \ufffd, U+2028 and U+2029 escaped; everything else as is.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// accessWriter writes access lines to the log stream's writer, one Write
// per line (the stream's writer serialises them with the other records).
type accessWriter struct {
	w    io.Writer
	bufs sync.Pool // *[]byte
}

func newAccessWriter(w io.Writer) *accessWriter {
	return &accessWriter{w: w, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}}
}

func (a *accessWriter) write(l accessLine) {
	bp := a.bufs.Get().(*[]byte)
	*bp = appendAccessLine((*bp)[:0], l)
	_, _ = a.w.Write(*bp)
	if cap(*bp) <= 4096 {
		a.bufs.Put(bp)
	}
}
