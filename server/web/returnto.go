package web

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds return_to (an authorize request's path and query).
const maxReturnTo = 4096

// ValidReturnTo reports whether s may be where a sign-in returns: the
// authorize endpoint on authd itself, as a path with a query
// ("/oauth2/authorize?..."), in printable ASCII (the query percent-encoded),
// without a fragment, a backslash or anything a browser could read as
// another host or scheme. Anything else goes nowhere (no open redirect).
func ValidReturnTo(s string) bool {
	if len(s) > maxReturnTo || !strings.HasPrefix(s, AuthorizePath+"?") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" && u.EscapedPath() == AuthorizePath
}
