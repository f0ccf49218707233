// Package blocklist embeds a list of common passwords (see SOURCE.md) and
// implements identity.Blocklist over it.
package blocklist

import (
	_ "embed"
	"strings"
	"unicode"
)

//go:embed common-passwords.txt
var commonPasswords string

// List is a set of common passwords, matched case-insensitively.
type List struct {
	set map[string]struct{}
}

// Common returns the embedded list of the 30,000 most common passwords.
func Common() *List {
	return New(strings.Split(commonPasswords, "\n"))
}

// New returns a list of words (empty lines are skipped).
func New(words []string) *List {
	l := &List{set: make(map[string]struct{}, len(words))}
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			l.set[w] = struct{}{}
		}
	}
	return l
}

// Len returns the number of distinct entries.
func (l *List) Len() int { return len(l.set) }

// Contains reports whether password is a common password, or a common
// password padded with digits or punctuation at either end
// ("iloveyou1234567!", "2024password!!!!"): padding adds little to a guess.
func (l *List) Contains(password string) bool {
	p := strings.ToLower(password)
	if _, ok := l.set[p]; ok {
		return true
	}
	core := strings.TrimFunc(p, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	if len(core) < 4 || core == p {
		return false
	}
	_, ok := l.set[core]
	return ok
}
