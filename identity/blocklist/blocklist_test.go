package blocklist

import (
	"strings"
	"testing"
	"unicode"
)

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

func TestNew(t *testing.T) {
	l := New([]string{"Hunter2", "  letmein ", "", "hunter2", "LETMEIN", "dragon"})
	if n := l.Len(); n != 3 {
		t.Fatalf("Len() = %d; want 3 (case, spaces and repeats folded, empty skipped)", n)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"hunter2", true},
		{"HUNTER2", true},
		{"letmein", true},
		{"2024dragon!!", true},
		{"dragon\nletmein", false}, // not a word of the list, though both halves are
		{"hunter", false},
		{"letmei", false},
		{"etmein", false},
		{"", false},
	} {
		if got := l.Contains(tc.pw); got != tc.want {
			t.Errorf("Contains(%q) = %v; want %v", tc.pw, got, tc.want)
		}
	}
	if New(nil).Contains("anything") {
		t.Error("an empty list contains a word")
	}
}

// TestCommonMatchesAMap checks the table against the obvious set: every
// word of the embedded list is found, in any case, and neither prefixes,
// suffixes nor joins of two neighbouring words are.
func TestCommonMatchesAMap(t *testing.T) {
	l := Common()
	set := map[string]bool{}
	words := strings.Split(strings.TrimSuffix(commonPasswords, "\n"), "\n")
	for _, w := range words {
		set[strings.ToLower(strings.TrimSpace(w))] = true
	}
	if l.Len() != len(set) {
		t.Fatalf("Len() = %d; the file has %d distinct words", l.Len(), len(set))
	}
	for i, w := range words {
		if !l.has(w) || !l.has(strings.ToLower(w)) {
			t.Fatalf("word %d %q not found", i, w)
		}
		for _, probe := range []string{w[:len(w)-1], w[1:], w + "x"} {
			if l.has(probe) != set[probe] {
				t.Fatalf("has(%q) = %v; the set says %v", probe, l.has(probe), set[probe])
			}
		}
		if i > 0 {
			if join := words[i-1] + "\n" + w; l.has(join) {
				t.Fatalf("has(%q) = true", join)
			}
		}
	}
}

func BenchmarkCommon(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Common()
	}
}

func BenchmarkContains(b *testing.B) {
	l := Common()
	b.ReportAllocs()
	for b.Loop() {
		l.Contains("correct horse battery staple")
	}
}

// FuzzContains compares Contains with the same rules over a Go map, for
// any password (the table must neither miss a word nor invent one).
func FuzzContains(f *testing.F) {
	l := Common()
	set := map[string]bool{}
	for _, w := range strings.Split(strings.TrimSuffix(commonPasswords, "\n"), "\n") {
		set[w] = true
	}
	for _, s := range []string{"password", "Password1!", "!!qwerty!!", "dragon\nmonkey", "", "\x00", "ÄÖÜ123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		p := strings.ToLower(pw)
		core := strings.TrimFunc(p, func(r rune) bool {
			return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
		})
		want := set[p] || (len(core) >= 4 && core != p && set[core])
		if got := l.Contains(pw); got != want {
			t.Fatalf("Contains(%q) = %v; the map says %v", pw, got, want)
		}
	})
}
