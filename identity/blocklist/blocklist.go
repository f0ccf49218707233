// Package blocklist embeds a list of common passwords (see SOURCE.md) and
// implements identity.Blocklist over it.
package blocklist

import (
	_ "embed"
	"hash/maphash"
	"math/bits"
	"strings"
	"unicode"
)

//go:embed common-passwords.txt
var commonPasswords string

// List is a set of common passwords, matched case-insensitively.
//
// It holds no pointers but two: the words, one per line in a single string,
// and an open-addressing table of their offsets. A map of 30,000 strings
// would be 1.7 MiB of pointers for the garbage collector to trace in every
// cycle (and authd collects after each password hash); this is 256 KiB it
// never looks into, and the embedded list is used in place.
type List struct {
	text  string   // the words, each followed by '\n'
	slots []uint32 // 0 is empty; otherwise 1 + the offset of a word in text
	n     int
	seed  maphash.Seed
}

// Common returns the embedded list of the 30,000 most common passwords.
func Common() *List {
	return fromText(commonPasswords)
}

// New returns a list of words (empty lines are skipped).
func New(words []string) *List {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return fromText(b.String())
}

// fromText indexes the lines of text, lowercased and trimmed. text itself is
// kept when every line already is (the embedded list); otherwise a
// normalised copy.
func fromText(text string) *List {
	lines := 0
	normal := true
	for line := range strings.Lines(text) {
		w := strings.TrimSuffix(line, "\n")
		if w != "" {
			lines++
		}
		if normal && (!strings.HasSuffix(line, "\n") || normalize(w) != w) {
			normal = false
		}
	}
	if !normal {
		var b strings.Builder
		b.Grow(len(text) + 1)
		for line := range strings.Lines(text) {
			if w := normalize(strings.TrimSuffix(line, "\n")); w != "" {
				b.WriteString(w)
				b.WriteByte('\n')
			}
		}
		text = b.String()
	}
	// At most half full: short probe runs.
	size := 1 << bits.Len(uint(2*max(lines, 4)-1))
	l := &List{text: text, slots: make([]uint32, size), seed: maphash.MakeSeed()}
	for off := 0; off < len(text); {
		end := off + strings.IndexByte(text[off:], '\n')
		if w := text[off:end]; w != "" {
			if slot, found := l.find(w); !found {
				l.slots[slot] = uint32(off) + 1
				l.n++
			}
		}
		off = end + 1
	}
	return l
}

func normalize(w string) string { return strings.ToLower(strings.TrimSpace(w)) }

// find returns the slot holding w, or the empty slot where it would go.
func (l *List) find(w string) (slot int, found bool) {
	mask := len(l.slots) - 1
	for i := int(maphash.String(l.seed, w)) & mask; ; i = (i + 1) & mask {
		v := l.slots[i]
		if v == 0 {
			return i, false
		}
		off := int(v - 1)
		if end := off + len(w); end < len(l.text) && l.text[end] == '\n' && l.text[off:end] == w {
			return i, true
		}
	}
}

func (l *List) has(w string) bool {
	if strings.IndexByte(w, '\n') >= 0 { // would span two words
		return false
	}
	_, found := l.find(w)
	return found
}

// Len returns the number of distinct entries.
func (l *List) Len() int { return l.n }

// Contains reports whether password is a common password, or a common
// password padded with digits or punctuation at either end
// ("iloveyou1234567!", "2024password!!!!"): padding adds little to a guess.
func (l *List) Contains(password string) bool {
	p := strings.ToLower(password)
	if l.has(p) {
		return true
	}
	core := strings.TrimFunc(p, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	if len(core) < 4 || core == p {
		return false
	}
	return l.has(core)
}
