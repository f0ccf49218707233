package identity

import (
	"errors"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// listBlocklist is a Blocklist over a few lowercase passwords.
type listBlocklist map[string]bool

func (l listBlocklist) Contains(p string) bool { return l[strings.ToLower(p)] }

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"ALICE.SMITH_2-b", "alice.smith_2-b"},
		{"abc", "abc"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"ab", ""},
		{"", ""},
		{strings.Repeat("a", 65), ""},
		{"alice smith", ""},
		{"alice@example.com", ""},
		{"élodie", ""},
		{"\u212Aelvin", ""}, // KELVIN SIGN lowercases to k in Unicode; not folded here
		{"al\x00ice", ""},
		{"al/ice", ""},
		{"ａｌｉｃｅ", ""},
	}
	for _, tt := range tests {
		got, err := ValidateUsername(tt.in)
		if tt.want == "" {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != FieldUsername {
				t.Errorf("ValidateUsername(%q) = %q, %v; want a username ValidationError", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ValidateUsername(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"alice@example.com", true},
		{"Alice.Smith+tag@Example.COM", true},
		{"root@localhost", true},
		{"jörg@bücher.example", true},
		{"", false},
		{"alice", false},
		{"alice@", false},
		{"@example.com", false},
		{"Alice <alice@example.com>", false},
		{"<alice@example.com>", false},
		{"alice@example.com (work)", false},
		{"alice@example.com, bob@example.com", false},
		{" alice@example.com", false},
		{"alice@example.com\n", false},
		{"al ice@example.com", false},
		{`"al ice"@example.com`, false},
		{"alice@[127.0.0.1]", false},
		{strings.Repeat("a", 65) + "@example.com", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189), true}, // 254 bytes
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190), false},
	}
	for _, tt := range tests {
		err := ValidateEmail(tt.in)
		if tt.ok && err != nil {
			t.Errorf("ValidateEmail(%q) = %v; want nil", tt.in, err)
		}
		if !tt.ok {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != FieldEmail {
				t.Errorf("ValidateEmail(%q) = %v; want an email ValidationError", tt.in, err)
			}
		}
	}
}

func TestValidatePassword(t *testing.T) {
	bl := listBlocklist{"correcthorsebatterystaple": true}
	tests := []struct {
		name     string
		pw       string
		username string
		email    string
		reason   string // substring of the reason; "" means accepted
	}{
		{"15 code points", "tr0ub4dor&3xyzq", "", "", ""},
		{"14 code points", "tr0ub4dor&3xyz", "", "", "at least 15"},
		{"128 code points", strings.Repeat("ab", 64), "", "", ""},
		{"129 code points", strings.Repeat("ab", 64) + "c", "", "", "at most 128"},
		{"over 1 KiB", strings.Repeat("ab", 600), "", "", "at most 128"},
		{"any unicode", "пароль для входа", "", "", ""},
		{"emoji count as one", strings.Repeat("🔑🚪", 7) + "x", "", "", ""},
		{"emoji under 15", strings.Repeat("🔑🚪", 7), "", "", "at least 15"},
		{"spaces allowed", "correct horse battery", "", "", ""},
		{"ligatures expand under NFKC", strings.Repeat("\uFB01", 7) + "x", "", "", ""}, // "fi"x7 + x: 8 runes raw, 15 after
		{"decomposed accents compose under NFKC", strings.Repeat("e\u0301", 7) + "bcdfghj", "", "", "at least 15"},
		{"composed accents", strings.Repeat("é", 8) + "bcdfghj", "", "", ""},
		{"fullwidth repeated", strings.Repeat("ａ", 15), "", "", "repeated"},
		{"repeated", strings.Repeat("a", 20), "", "", "repeated"},
		{"repeated mixed case", strings.Repeat("aA", 8), "", "", "repeated"},
		{"repeated symbol", strings.Repeat("!", 30), "", "", "repeated"},
		{"ascending letters", "abcdefghijklmnop", "", "", "sequential"},
		{"descending letters", "ponmlkjihgfedcba", "", "", "sequential"},
		{"ascending mixed case", "AbCdEfGhIjKlMnOp", "", "", "sequential"},
		{"digits wrapping", "123456789012345", "", "", "sequential"},
		{"digits descending wrapping", "543210987654321", "", "", "sequential"},
		{"fullwidth digits", "１２３４５６７８９０１２３４５", "", "", "sequential"},
		{"almost sequential", "abcdefghijklmnoq", "", "", ""},
		{"two runs", "abcdefghabcdefgh", "", "", ""},
		{"contains username", "my-Alice-password-2024", "alice", "", "username"},
		{"contains email", "BOB@Example.com is my password", "", "bob@example.com", "email"},
		{"contains fullwidth username", "my ａｌｉｃｅ password 2024", "alice", "", "username"},
		{"other user's name is fine", "my-alice-password-2024", "bob", "bob@example.com", ""},
		{"blocklisted", "CorrectHorseBatteryStaple", "", "", "common"},
		{"invalid utf-8", "password\xffpassword", "", "", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePassword(tt.pw, tt.username, tt.email, bl)
			if tt.reason == "" {
				if err != nil {
					t.Errorf("ValidatePassword(%q) = %v; want nil", tt.pw, err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != FieldPassword {
				t.Fatalf("ValidatePassword(%q) = %v; want a password ValidationError", tt.pw, err)
			}
			if !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("ValidatePassword(%q) reason = %q; want it to contain %q", tt.pw, ve.Reason, tt.reason)
			}
			if strings.Contains(err.Error(), tt.pw) {
				t.Errorf("ValidatePassword error %q repeats the password", err)
			}
		})
	}
	// No blocklist is fine.
	if err := ValidatePassword("CorrectHorseBatteryStaple", "", "", nil); err != nil {
		t.Errorf("ValidatePassword(nil blocklist) = %v; want nil", err)
	}
}

func TestValidateSignupOrder(t *testing.T) {
	tests := []struct {
		username, email, password string
		field                     string
	}{
		{"x", "bad", "short", FieldUsername},
		{"alice", "bad", "short", FieldEmail},
		{"alice", "alice@example.com", "short", FieldPassword},
		{"Alice", "alice@example.com", "alice's long enough password", FieldPassword},
	}
	for _, tt := range tests {
		_, err := ValidateSignup(tt.username, tt.email, tt.password, nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("ValidateSignup(%q, %q, ...) = %v; want a %s ValidationError", tt.username, tt.email, err, tt.field)
		}
	}
	got, err := ValidateSignup("Alice", "Alice@Example.com", "tr0ub4dor&3 plus more", nil)
	if err != nil || got != "alice" {
		t.Errorf("ValidateSignup(valid) = %q, %v; want alice, nil", got, err)
	}
}

func TestNormalizeRoles(t *testing.T) {
	got, err := normalizeRoles([]string{"admin", "user", "admin", "billing:read"}, "user")
	if err != nil || strings.Join(got, ",") != "user,admin,billing:read" {
		t.Errorf("normalizeRoles = %q, %v; want user,admin,billing:read", got, err)
	}
	for _, bad := range [][]string{{""}, {"Admin"}, {"a b"}, {strings.Repeat("r", 65)}} {
		if _, err := normalizeRoles(bad, "user"); err == nil {
			t.Errorf("normalizeRoles(%q) = nil error; want refused", bad)
		}
	}
}

var usernameRE = regexp.MustCompile(`^[a-z0-9._-]{3,64}$`)

func FuzzValidateSignup(f *testing.F) {
	f.Add("alice", "alice@example.com", "correct horse battery staple")
	f.Add("Bob.Smith", "bob@localhost", "ｃｏｒｒｅｃｔ horse ﬁ")
	f.Add("x", "not an email", "abcdefghijklmnop")
	f.Add("carol", "carol@example.com", "123456789012345")
	f.Add("dave", "Dave <dave@example.com>", strings.Repeat("\uFDFA", 8))
	f.Add("erin", "erin@example.com", "e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301")
	f.Add("frank", "frank@example.com", "my frank password!")
	bl := listBlocklist{"password1234567890": true}
	f.Fuzz(func(t *testing.T, username, email, password string) {
		u, err := ValidateSignup(username, email, password, bl)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateSignup error %v (%T) is not a *ValidationError", err, err)
			}
			switch ve.Field {
			case FieldUsername, FieldEmail, FieldPassword:
			default:
				t.Fatalf("ValidateSignup error field %q", ve.Field)
			}
			if len(password) >= 4 && strings.Contains(ve.Reason, password) {
				t.Fatalf("reason %q repeats the password", ve.Reason)
			}
			return
		}
		// Accepted: every rule holds, checked independently.
		if !usernameRE.MatchString(u) || u != strings.ToLower(username) {
			t.Fatalf("accepted username %q -> %q", username, u)
		}
		a, perr := mail.ParseAddress(email)
		if perr != nil || a.Name != "" || a.Address != email || len(email) > 254 || !strings.Contains(email, "@") {
			t.Fatalf("accepted email %q", email)
		}
		p := norm.NFKC.String(password)
		n := utf8.RuneCountInString(p)
		if n < 15 || n > 128 || len(password) > 1024 {
			t.Fatalf("accepted password of %d code points (%d bytes)", n, len(password))
		}
		lp := []rune(strings.ToLower(p))
		same, up, down := true, true, true
		for i := 1; i < len(lp); i++ {
			same = same && lp[i] == lp[0]
			up = up && (lp[i] == lp[i-1]+1 || lp[i-1] == '9' && lp[i] == '0')
			down = down && (lp[i] == lp[i-1]-1 || lp[i-1] == '0' && lp[i] == '9')
		}
		if same || up || down {
			t.Fatalf("accepted a repeated or sequential password %q", password)
		}
		if strings.Contains(strings.ToLower(p), u) || strings.Contains(strings.ToLower(p), strings.ToLower(norm.NFKC.String(email))) {
			t.Fatalf("accepted password %q containing the username or email", password)
		}
		if bl.Contains(p) {
			t.Fatalf("accepted blocklisted password %q", password)
		}
	})
}
