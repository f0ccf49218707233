package connector

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// Errors a caller tells apart with errors.Is. Connectors wrap them with %w and a
// short reason; no error ever carries a token, code, secret or PKCE verifier.
var (
	// ErrBadState: the callback's state does not match the saved State (forged,
	// replayed or from another browser), or the callback has no code.
	ErrBadState = errors.New("connector: bad state")
	// ErrUpstreamDenied: the upstream redirected back with an error (the person
	// declined, or the upstream refused the request). See *DeniedError.
	ErrUpstreamDenied = errors.New("connector: upstream denied the sign-in")
	// ErrUpstream: the upstream could not be reached, answered with a server
	// error or an unreadable answer, or refused the code exchange.
	ErrUpstream = errors.New("connector: upstream unavailable or failed")
	// ErrInvalidToken: the upstream's id_token failed verification (signature,
	// issuer, audience, expiry, nonce) or lacks a subject.
	ErrInvalidToken = errors.New("connector: invalid id_token")
	// ErrNoRefresh: the identity holds nothing to refresh it with (the upstream
	// gave no refresh token).
	ErrNoRefresh = errors.New("connector: identity cannot be refreshed")
)

// DeniedError is the error callback of an upstream (RFC 6749 section 4.1.2.1).
// errors.Is(err, ErrUpstreamDenied) holds for it.
type DeniedError struct {
	// Code is the upstream's error code, e.g. "access_denied".
	Code string
	// Description is the upstream's error_description, cut to printable text.
	Description string
}

func (e *DeniedError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("connector: upstream denied the sign-in: %s", e.Code)
	}
	return fmt.Sprintf("connector: upstream denied the sign-in: %s: %s", e.Code, e.Description)
}

// Is makes errors.Is(err, ErrUpstreamDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrUpstreamDenied }

// CheckCallback is the first step of every HandleCallback: it checks the state
// parameter of the callback query q against s, then turns an error callback
// into a *DeniedError, and returns the authorization code.
func CheckCallback(s State, q url.Values) (string, error) {
	if !s.CheckState(q.Get("state")) {
		return "", fmt.Errorf("%w: state parameter does not match this sign-in", ErrBadState)
	}
	if code := q.Get("error"); code != "" {
		return "", &DeniedError{Code: Printable(code, 64), Description: Printable(q.Get("error_description"), 200)}
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("%w: callback has no code", ErrBadState)
	}
	return code, nil
}

// Printable keeps at most n printable characters of s, so that upstream text is
// safe to put into an error message or a page.
func Printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
