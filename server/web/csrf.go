package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
)

// CSRF: every browser gets a random value in a cookie (csrfCookie); a form's
// token is the HMAC of that value and the form's purpose, keyed by a key
// derived from AUTHD_SECRET. A POST is accepted only with the token of its
// own purpose for the cookie it carries, compared in constant time. A
// site that can set cookies on authd's domain cannot forge a token (it
// lacks the key); with an https issuer the cookie is __Host- prefixed, so
// no sibling domain can set it at all.

// csrfField is the forms' hidden field.
const csrfField = "csrf_token"

// CSRF purposes: each form's token is good for that form only.
const (
	purposeLogin   = "login"
	purposeSignup  = "signup"
	purposeConsent = "consent"
	purposeLogout  = "logout"
	purposeLink    = "link"
)

// randomBytes is the entropy of a CSRF cookie value.
const randomBytes = 32

type csrf struct {
	keys [][]byte // the current key first; earlier secrets' keys still verify
}

func newCSRF(secrets [][]byte) (*csrf, error) {
	c := &csrf{}
	for _, s := range secrets {
		k, err := hkdf.Key(sha256.New, s, nil, "authd csrf v1", 32)
		if err != nil {
			return nil, fmt.Errorf("web: csrf key: %w", err)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

func mac(key []byte, cookie, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(cookie))
	return m.Sum(nil)
}

// token is the form token of purpose for the browser's cookie value.
func (c *csrf) token(cookie, purpose string) string {
	return base64.RawURLEncoding.EncodeToString(mac(c.keys[0], cookie, purpose))
}

// check reports whether token is purpose's token for cookie under any key.
func (c *csrf) check(cookie, purpose, token string) bool {
	if !validRandom(cookie) {
		return false
	}
	// Strict: one token has one spelling (a lax decoder ignores the unused
	// low bits of the last character).
	got, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, k := range c.keys {
		ok = hmac.Equal(got, mac(k, cookie, purpose)) || ok
	}
	return ok
}

// newRandom is a fresh cookie value: 32 random bytes, unpadded base64url.
func newRandom() string {
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails (it aborts the program)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validRandom reports whether v has the shape of newRandom's values.
func validRandom(v string) bool {
	if len(v) != base64.RawURLEncoding.EncodedLen(randomBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

// csrfCookie returns the browser's CSRF cookie value, setting a new one
// when it has none (or a malformed one).
func (p *Pages) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.cookies.csrf); err == nil && validRandom(c.Value) {
		return c.Value
	}
	v := newRandom()
	http.SetCookie(w, &http.Cookie{
		Name: p.cookies.csrf, Value: v, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	return v
}
