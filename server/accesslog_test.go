package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"
)

// slogLine is the access line as slog's JSONHandler writes it.
func slogLine(t testing.TB, l accessLine) []byte {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, nil)
	r := slog.NewRecord(l.time, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("request_id", l.requestID), slog.String("method", l.method), slog.String("path", l.path),
		slog.Int("status", l.status), slog.Int("bytes", l.bytes), slog.Float64("duration_ms", l.durationMS),
		slog.String("ip", l.ip))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAccessLineMatchesSlog(t *testing.T) {
	base := accessLine{time: time.Date(2026, 12, 1, 19, 46, 58, 123456789, time.UTC), requestID: "01J0ABCDEF", method: "GET",
		path: "/.well-known/jwks.json", status: 200, bytes: 420, durationMS: 0.123, ip: "127.0.0.1"}
	cases := []accessLine{base}
	for _, p := range []string{"/a\"b\\c", "/\x00\x1f\x7f\n\r\t", "/caf\u00e9/\u2028\u2029", "/\xff\xfe", "<>&'", ""} {
		l := base
		l.path = p
		cases = append(cases, l)
	}
	for _, d := range []float64{0, 0.001, 1, 12.5, 1234567.891, 1e-7, 3e21, math.MaxFloat64} {
		l := base
		l.durationMS = d
		cases = append(cases, l)
	}
	local := base
	local.time = time.Date(2026, 12, 1, 19, 46, 58, 0, time.FixedZone("x", 3600))
	cases = append(cases, local)
	for _, l := range cases {
		got, want := appendAccessLine(nil, l), slogLine(t, l)
		if !bytes.Equal(got, want) {
			t.Errorf("access line\n got %s\nwant %s", got, want)
		}
		if !json.Valid(bytes.TrimSpace(got)) {
			t.Errorf("not JSON: %s", got)
		}
	}
}

// FuzzAccessLineMatchesSlog: for any request text (hostile paths, ids,
// methods), the hand-encoded access line is byte for byte slog's.
func FuzzAccessLineMatchesSlog(f *testing.F) {
	f.Add("GET", "/x", "id", "127.0.0.1", 200, 12, 0.5, int64(0))
	f.Add("P\x00ST", "/\xff\u2028\"\\", "\n", "::1", 503, 0, 1e-9, int64(1764618418123456789))
	f.Fuzz(func(t *testing.T, method, path, id, ip string, status, n int, d float64, unixNano int64) {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return // never a duration; slog writes an error there
		}
		tm := time.Unix(0, unixNano).UTC()
		if y := tm.Year(); y < 0 || y >= 10000 {
			return
		}
		l := accessLine{time: tm, requestID: id, method: method, path: path, status: status, bytes: n, durationMS: d, ip: ip}
		if got, want := appendAccessLine(nil, l), slogLine(t, l); !bytes.Equal(got, want) {
			t.Fatalf("access line\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAccessLine(b *testing.B) {
	l := accessLine{time: time.Now(), requestID: "01J0ABCDEF", method: "GET", path: "/.well-known/jwks.json", status: 200, bytes: 420, durationMS: 0.123, ip: "127.0.0.1"}
	b.Run("authd", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendAccessLine(buf[:0], l)
		}
	})
	b.Run("slog", func(b *testing.B) {
		b.ReportAllocs()
		lg := slog.New(slog.NewJSONHandler(io.Discard, nil))
		for b.Loop() {
			lg.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("request_id", l.requestID),
				slog.String("method", l.method), slog.String("path", l.path), slog.Int("status", l.status),
				slog.Int("bytes", l.bytes), slog.Float64("duration_ms", l.durationMS), slog.String("ip", l.ip))
		}
	})
}
