package oidc

import (
	"encoding/json"
	"slices"
	"testing"
)

// The id_token's amr is read leniently: a provider's odd amr never fails a
// sign-in, and only short token values pass on (at most 8).
func TestAMRValues(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{``, nil},
		{`null`, nil},
		{`["pwd","mfa"]`, []string{"pwd", "mfa"}},
		{`["pwd","two words","<b>","x-y_z",""]`, []string{"pwd", "x-y_z"}},
		{`"pwd"`, nil},
		{`[1,2]`, nil},
		{`{"a":1}`, nil},
		{`["a","b","c","d","e","f","g","h","i","j"]`, []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
		{`["0123456789012345678901234567890123"]`, nil},
	}
	for _, tt := range tests {
		if got := amrValues(json.RawMessage(tt.raw)); !slices.Equal(got, tt.want) {
			t.Errorf("amrValues(%s) = %q; want %q", tt.raw, got, tt.want)
		}
	}
}
