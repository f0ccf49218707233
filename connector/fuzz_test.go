package connector

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckCallback feeds hostile callback queries to the first check of
// every connector: a code comes out only for the saved state, exactly, with
// no error parameter; every refusal is ErrBadState or ErrUpstreamDenied,
// printable, bounded, and never repeats the code or the state.
func FuzzCheckCallback(f *testing.F) {
	for _, seed := range [][2]string{
		{"state=abc&code=xyz", "abc"},
		{"state=abc&code=", "abc"},
		{"state=abc&error=access_denied&error_description=no+thanks", "abc"},
		{"state=abd&code=xyz", "abc"},
		{"code=xyz", ""},
		{"state=abc&state=abc&code=xyz", "abc"},
		{"state=%00&error=%1b%5b31m&error_description=%ff%fe", "\x00"},
		{"state=abc&code=xyz&error=" + strings.Repeat("e", 500), "abc"},
		{"state=abcdefgh&code=12345678&error=x&error_description=12345678", "abcdefgh"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, raw, saved string) {
		q, _ := url.ParseQuery(raw)
		code, err := CheckCallback(State{State: saved}, q)
		if err == nil {
			if saved == "" || q.Get("state") != saved || code == "" || code != q.Get("code") || q.Get("error") != "" {
				t.Fatalf("CheckCallback(%q, saved %q) = %q, nil", raw, saved, code)
			}
			return
		}
		if code != "" {
			t.Fatalf("a code %q with an error %v", code, err)
		}
		if !errors.Is(err, ErrBadState) && !errors.Is(err, ErrUpstreamDenied) {
			t.Fatalf("error %v is neither ErrBadState nor ErrUpstreamDenied", err)
		}
		msg := err.Error()
		if !utf8.ValidString(msg) || len(msg) > 400 {
			t.Fatalf("error message not valid UTF-8 or too long (%d bytes): %q", len(msg), msg)
		}
		for _, r := range msg {
			if !unicode.IsPrint(r) {
				t.Fatalf("error message holds %U: %q", r, msg)
			}
		}
		echoed := q.Get("error") + " " + q.Get("error_description") // the upstream's own words, shown
		for _, secret := range []string{q.Get("code"), saved} {
			if len(secret) >= 8 && strings.Contains(msg, secret) && !strings.Contains(echoed, secret) {
				t.Fatalf("error message repeats a code or state: %q", msg)
			}
		}
	})
}
