package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxies configured", "203.0.113.7:5000", []string{"1.2.3.4"}, nil, "203.0.113.7"},
		{"untrusted peer's header ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, trusted, "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:5000", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"spoofed left part skipped", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"chain of proxies", "10.1.2.3:5000", []string{"198.51.100.9, 10.9.9.9"}, trusted, "198.51.100.9"},
		{"two header lines", "10.1.2.3:5000", []string{"6.6.6.6", "198.51.100.9"}, trusted, "198.51.100.9"},
		{"garbage hop", "10.1.2.3:5000", []string{"198.51.100.9, nonsense"}, trusted, "10.1.2.3"},
		{"no header", "10.1.2.3:5000", nil, trusted, "10.1.2.3"},
		{"ipv6 peer", "[::1]:5000", []string{"2001:db8::1"}, trusted, "2001:db8::1"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientIPFunc(tc.trusted)(r); got != tc.want {
			t.Errorf("%s: ClientIP = %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestIPLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Errorf("4th request: ok=%v wait=%v; want refused with a wait of about 20s", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Errorf("another IP refused")
	}
	now = now.Add(20 * time.Second)
	if ok, _ := l.allow("a"); !ok {
		t.Errorf("refused after the refill time")
	}
	now = now.Add(10 * time.Minute)
	l.allow("c")
	if _, ok := l.buckets["b"]; ok {
		t.Errorf("idle bucket not collected")
	}
}

// The limiter's memory is bounded whatever the number of addresses: 100,000
// IPv6 addresses of one /64 share one bucket, and 100,000 distinct IPv4
// addresses hold at most maxBuckets buckets (the rest share the
// overflow bucket, which is limited too).
func TestIPLimiterIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(3, func() time.Time { return now })
	l.maxBuckets = 1000
	for i := range 100_000 {
		l.allow(fmt.Sprintf("2001:db8:1:2:%x:%x::1", i>>16, i&0xffff))
	}
	if len(l.buckets) != 1 {
		t.Errorf("one /64: %d buckets; want 1", len(l.buckets))
	}
	if ok, _ := l.allow("2001:db8:1:2::99"); ok {
		t.Error("an address of a /64 that used its limit was let through")
	}
	for i := range 100_000 {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff))
	}
	if len(l.buckets) > l.maxBuckets {
		t.Errorf("%d buckets; want at most %d", len(l.buckets), l.maxBuckets)
	}
	if ok, _ := l.allow("192.0.2.77"); ok {
		t.Error("a new address past the bound was let through although the overflow bucket is spent")
	}
	// Once the buckets are idle they are collected and new addresses get their own.
	now = now.Add(3 * time.Minute)
	if ok, _ := l.allow("192.0.2.78"); !ok {
		t.Error("a new address refused after the idle buckets went")
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after collection; want 1", len(l.buckets))
	}
}

func TestDecodeJSON(t *testing.T) {
	type in struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	tests := []struct {
		ctype, body string
		status      int
		field       string
	}{
		{"application/json", `{"name":"x","n":1}`, 0, ""},
		{"application/json; charset=utf-8", `{"name":"x"}`, 0, ""},
		{"text/plain", `{"name":"x"}`, 415, ""},
		{"application/json", `{"name":5}`, 400, "name"},
		{"application/json", `{"n":"5"}`, 400, "n"},
		{"application/json", `{"name":`, 400, ""},
		{"application/json", ``, 400, ""},
		{"application/json", `{} {}`, 400, ""},
		{"application/json", `[1]`, 400, ""},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.ctype)
		var v in
		ok := decodeJSON(rec, r, &v)
		if ok != (tc.status == 0) || (tc.status != 0 && rec.Code != tc.status) {
			t.Errorf("decodeJSON(%q, %q) = %v, %d; want status %d", tc.ctype, tc.body, ok, rec.Code, tc.status)
		}
		if tc.field != "" && !strings.Contains(rec.Body.String(), `"field":"`+tc.field+`"`) {
			t.Errorf("decodeJSON(%q): body %s does not name field %q", tc.body, rec.Body, tc.field)
		}
		if tc.status != 0 && rec.Header().Get("Content-Type") != "application/problem+json; charset=utf-8" {
			t.Errorf("decodeJSON(%q): content type %q", tc.body, rec.Header().Get("Content-Type"))
		}
	}
	// A body over the limit is 413.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/x", strings.NewReader(`{"name":"`+strings.Repeat("a", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	var v in
	if decodeJSON(rec, r, &v) || rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d; want 413", rec.Code)
	}
}

func TestETagMatch(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{{`"a"`, true}, {`W/"a"`, true}, {`"b", "a"`, true}, {`*`, true}, {`"b"`, false}, {``, false}} {
		if got := etagMatch(tc.header, `"a"`); got != tc.want {
			t.Errorf("etagMatch(%q) = %v; want %v", tc.header, got, tc.want)
		}
	}
}
