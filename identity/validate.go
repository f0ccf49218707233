package identity

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Fields a ValidationError names.
const (
	FieldUsername = "username"
	FieldEmail    = "email"
	FieldPassword = "password"
	FieldRoles    = "roles"
)

// Username and email limits.
const (
	MinUsernameLen = 3
	MaxUsernameLen = 64
	MaxEmailLen    = 254
	maxLocalLen    = 64
	maxRoleLen     = 64
)

// ValidationError is input that breaks the account rules of API.md. Reason is
// meant for the person who typed the input: it never repeats a password.
type ValidationError struct {
	Field  string // FieldUsername, FieldEmail, FieldPassword or FieldRoles
	Reason string
}

func (e *ValidationError) Error() string {
	return "identity: invalid " + e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Blocklist reports whether a password is too common to accept. It is given
// the NFKC form of the password; matching case-insensitively is up to it.
type Blocklist interface {
	Contains(password string) bool
}

// NormalizeUsername lowercases the ASCII letters of s. Other characters are
// left alone (and then refused by ValidateUsername), so no two distinct
// non-ASCII inputs fold onto one username.
func NormalizeUsername(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// ValidateUsername lowercases username and checks it is 3 to 64 of
// a-z 0-9 . _ -; it returns the lowercased form.
func ValidateUsername(username string) (string, error) {
	u := NormalizeUsername(username)
	if n := len(u); n < MinUsernameLen || n > MaxUsernameLen {
		return "", invalid(FieldUsername, "must be %d to %d characters", MinUsernameLen, MaxUsernameLen)
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", invalid(FieldUsername, "may hold only letters a-z, digits, '.', '_' and '-'")
		}
	}
	return u, nil
}

// ValidateEmail checks that email is one bare address (no display name, no
// angle brackets, no comments) of at most 254 bytes with a non-empty domain,
// which may be dotless.
func ValidateEmail(email string) error {
	if email == "" {
		return invalid(FieldEmail, "is required")
	}
	if len(email) > MaxEmailLen {
		return invalid(FieldEmail, "must be at most %d bytes", MaxEmailLen)
	}
	if !utf8.ValidString(email) || strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return invalid(FieldEmail, "must not contain spaces or control characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return invalid(FieldEmail, "must be a single address such as name@example.com")
	}
	at := strings.LastIndexByte(email, '@')
	local, domain := email[:at], email[at+1:]
	if local == "" || domain == "" || strings.HasPrefix(domain, "[") {
		return invalid(FieldEmail, "must be a single address such as name@example.com")
	}
	if len(local) > maxLocalLen {
		return invalid(FieldEmail, "the part before @ must be at most %d bytes", maxLocalLen)
	}
	return nil
}

// ValidatePassword applies API.md's password rules to the NFKC form of
// password: 15 to 128 code points, not one repeated character, not one run of
// sequential characters, not containing username or email (case-insensitive;
// either may be empty), and not on bl (may be nil).
func ValidatePassword(password, username, email string, bl Blocklist) error {
	if !utf8.ValidString(password) {
		return invalid(FieldPassword, "must be valid UTF-8")
	}
	if len(password) > MaxPasswordBytes {
		return invalid(FieldPassword, "must be at most %d characters", MaxPasswordRunes)
	}
	p := norm.NFKC.String(password)
	n := utf8.RuneCountInString(p)
	if n < MinPasswordRunes {
		return invalid(FieldPassword, "must be at least %d characters", MinPasswordRunes)
	}
	if n > MaxPasswordRunes {
		return invalid(FieldPassword, "must be at most %d characters", MaxPasswordRunes)
	}
	lower := strings.ToLower(p)
	rs := []rune(lower)
	if repeated(rs) {
		return invalid(FieldPassword, "must not be one character repeated")
	}
	if sequential(rs) {
		return invalid(FieldPassword, "must not be a run of sequential characters")
	}
	if u := strings.ToLower(norm.NFKC.String(username)); u != "" && strings.Contains(lower, u) {
		return invalid(FieldPassword, "must not contain the username")
	}
	if e := strings.ToLower(norm.NFKC.String(email)); e != "" && strings.Contains(lower, e) {
		return invalid(FieldPassword, "must not contain the email address")
	}
	if bl != nil && bl.Contains(p) {
		return invalid(FieldPassword, "is too common; choose another")
	}
	return nil
}

// repeated reports whether rs is one character repeated.
func repeated(rs []rune) bool {
	for _, r := range rs[1:] {
		if r != rs[0] {
			return false
		}
	}
	return true
}

// sequential reports whether every code point of rs is the one before plus
// one, or every one minus one ("abcd...", "9876..."). Digits also wrap
// (…7890123…, …3210987…), as people type them.
func sequential(rs []rune) bool {
	up, down := true, true
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		up = up && (cur == prev+1 || prev == '9' && cur == '0')
		down = down && (cur == prev-1 || prev == '0' && cur == '9')
		if !up && !down {
			return false
		}
	}
	return true
}

// ValidateSignup checks a new account's username, email and password, in
// that order, and returns the lowercased username or the first problem as a
// *ValidationError.
func ValidateSignup(username, email, password string, bl Blocklist) (string, error) {
	u, err := ValidateUsername(username)
	if err != nil {
		return "", err
	}
	if err := ValidateEmail(email); err != nil {
		return "", err
	}
	if err := ValidatePassword(password, u, email, bl); err != nil {
		return "", err
	}
	return u, nil
}

// normalizeRoles returns roles with RoleUser first, duplicates dropped, each
// checked to be 1 to 64 of a-z 0-9 . _ - :.
func normalizeRoles(roles []string, always string) ([]string, error) {
	out := []string{always}
	seen := map[string]bool{always: true}
	for _, r := range roles {
		if r == "" || len(r) > maxRoleLen {
			return nil, invalid(FieldRoles, "each role must be 1 to %d characters", maxRoleLen)
		}
		for i := 0; i < len(r); i++ {
			if c := r[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
				return nil, invalid(FieldRoles, "a role may hold only letters a-z, digits, '.', '_', '-' and ':'")
			}
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}
