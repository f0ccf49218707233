// Package sqlstore is what authd's SQL stores, storage/postgres and
// storage/sqlite, do alike: the queries they assemble at run time (the
// user search and its pages, the audit filters), what a purge deletes,
// the defaults and required fields of new records (users, browser
// sessions, authorization codes, consents, links, upstream sign-ins), the
// migration report, and the reading of rows.
//
// What differs by database stays in each backend, which describes its
// database in a Dialect: placeholders, how a time is stored, how a search
// compares. So do locking, RETURNING, transactions and every fixed query.
package sqlstore

import (
	"strconv"
	"strings"
	"time"
)

// Dialect is how a database spells what the shared queries need.
type Dialect struct {
	// Placeholder is the parameter marker of a statement's nth argument,
	// counted from 1: "$1" or "?".
	Placeholder func(n int) string
	// Time is t as the database stores it.
	Time func(t time.Time) any
	// UserSearch is the condition that a user's username or email contains
	// a LIKE pattern; each ? in it takes the pattern.
	UserSearch string
	// FoldSearch lowercases the search string before it becomes a pattern,
	// for a UserSearch that compares lowercased columns.
	FoldSearch bool
}

// Numbered is the Placeholder of a database that numbers its parameters
// ($1, $2, ...).
func Numbered(n int) string { return "$" + strconv.Itoa(n) }

// Positional is the Placeholder of a database whose parameters are bound in
// order (?).
func Positional(int) string { return "?" }

// bind writes query to sb with each ? replaced by the placeholder of the
// next argument, the first being argument n+1 of the statement, and returns
// the number of the last one. The shared queries have no ? but parameters.
func (d Dialect) bind(sb *strings.Builder, query string, n int) int {
	for {
		i := strings.IndexByte(query, '?')
		if i < 0 {
			sb.WriteString(query)
			return n
		}
		n++
		sb.WriteString(query[:i])
		sb.WriteString(d.Placeholder(n))
		query = query[i+1:]
	}
}

// Bind returns query with each ? replaced by the dialect's placeholder of
// the argument it stands for.
func (d Dialect) Bind(query string) string {
	var sb strings.Builder
	d.bind(&sb, query, 0)
	return sb.String()
}

// limit is n, or def when n is not positive, or def too when most is
// positive and n is above it.
func limit(n, def, most int) int {
	if n <= 0 || (most > 0 && n > most) {
		return def
	}
	return n
}

// LikePattern turns a search string into a LIKE substring pattern, with
// backslash as the escape character.
func LikePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// NullString maps the empty string to NULL.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullBytes maps an empty byte slice to NULL.
func NullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// NotNil keeps a NOT NULL byte column from receiving NULL: nil is sent as
// an empty value.
func NotNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
