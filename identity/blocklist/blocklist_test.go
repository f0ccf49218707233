package blocklist

import "testing"

func TestCommon(t *testing.T) {
	l := Common()
	if n := l.Len(); n < 10000 {
		t.Fatalf("Len() = %d; want at least 10,000", n)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"PASSWORD", true},
		{"iloveyou1234567", true},
		{"!!!!qwerty!!!!1", true},
		{"1234567890123456", false}, // no core word; other rules refuse it
		{"correct horse battery staple", false},
		{"tr0ub4dor&3-but-longer", false},
		{"", false},
	} {
		if got := l.Contains(tc.pw); got != tc.want {
			t.Errorf("Contains(%q) = %v; want %v", tc.pw, got, tc.want)
		}
	}
}
