package oauth

import "testing"

// matchRedirectURI is exact matching, with only the port of a loopback
// redirect free (RFC 8252 §7.3).
func TestMatchRedirectURI(t *testing.T) {
	registered := []string{"https://rp.example/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb?x=1", "com.example.app:/oauth", "http://localhost:3000/cb"}
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://rp.example/cb", true},
		{"com.example.app:/oauth", true},
		{"http://localhost:3000/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:1/cb", true},
		{"http://127.0.0.1:65535/cb", true},
		{"http://[::1]/cb?x=1", true},
		{"http://[::1]:9/cb?x=1", true},
		{"", false},
		{"https://evil.example/cb", false},        // other host
		{"https://rp.example/cb/x", false},        // other path
		{"https://rp.example/CB", false},          // other path (case)
		{"http://rp.example/cb", false},           // other scheme
		{"https://rp.example/cb?x=1", false},      // extra query
		{"https://rp.example/cb?", false},         // empty query
		{"https://rp.example:443/cb", false},      // a port on a non-loopback host
		{"https://rp.example:8443/cb", false},     // a port on a non-loopback host
		{"https://rp.example/cb#f", false},        // fragment
		{"http://localhost:3001/cb", false},       // localhost is not a loopback IP literal
		{"https://127.0.0.1:8/cb", false},         // loopback, other scheme
		{"http://127.0.0.1:8/cb/", false},         // loopback, other path
		{"http://127.0.0.1:8/cb?x=1", false},      // loopback, extra query
		{"http://127.0.0.2:8/cb", false},          // another loopback address
		{"http://[::1]:9/cb", false},              // loopback, missing query
		{"http://u@127.0.0.1:8/cb", false},        // user information
		{"http://127.0.0.1:8/cb#", false},         // fragment
		{"http://127.0.0.1:x/cb", false},          // not a port
		{"http://[::ffff:127.0.0.1]:8/cb", false}, // mapped address
		{"com.example.app:/oauth/x", false},
	} {
		if got := matchRedirectURI(tc.uri, registered); got != tc.want {
			t.Errorf("matchRedirectURI(%q) = %v; want %v", tc.uri, got, tc.want)
		}
	}
}
