package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// cheap are fast parameters for tests that do not measure cost.
var cheap = Params{Memory: 1024, Time: 1, Threads: 1}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerifyRoundTrip(t *testing.T) {
	h := NewHasher(DefaultParams())
	const pw = "correct horse battery staple"
	enc, err := h.Hash(pw)
	if err != nil {
		t.Fatalf("Hash() = %v", err)
	}
	if !phcRE.MatchString(enc) {
		t.Errorf("Hash() = %q; want a PHC string matching %s", enc, phcRE)
	}
	if enc2, _ := h.Hash(pw); enc2 == enc {
		t.Errorf("Hash() twice = %q both times; want fresh salts", enc)
	}
	if ok, rehash, err := h.Verify(pw, enc); !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	for _, wrong := range []string{"correct horse battery stapl", "Correct horse battery staple", "", pw + " "} {
		if ok, rehash, err := h.Verify(wrong, enc); ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
		}
	}
}

func TestVerifyKnownAnswer(t *testing.T) {
	// The argon2-cffi README's example: an independent implementation.
	const enc = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	h := NewHasher(DefaultParams())
	ok, rehash, err := h.Verify("correct horse battery staple", enc)
	if !ok || !rehash || err != nil {
		t.Errorf("Verify(argon2-cffi vector) = %v, %v, %v; want true, true (other params), nil", ok, rehash, err)
	}
	if ok, _, _ := h.Verify("Tr0ub4dor&3", enc); ok {
		t.Error("Verify(wrong, argon2-cffi vector) = true")
	}
}

func TestVerifyReadsParamsBack(t *testing.T) {
	old := NewHasher(Params{Memory: 2048, Time: 1, Threads: 2, SaltLen: 8, KeyLen: 16})
	enc, err := old.Hash("a password of some length")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(enc, "$m=2048,t=1,p=2$") {
		t.Errorf("Hash() = %q; want m=2048,t=1,p=2", enc)
	}
	// The current hasher verifies with the stored parameters, and asks for a rehash.
	cur := NewHasher(DefaultParams())
	if ok, rehash, err := cur.Verify("a password of some length", enc); !ok || !rehash || err != nil {
		t.Errorf("current.Verify(old hash) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if ok, rehash, err := old.Verify("a password of some length", enc); !ok || rehash || err != nil {
		t.Errorf("old.Verify(old hash) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	// A wrong password never asks for a rehash.
	if ok, rehash, _ := cur.Verify("another password entirely", enc); ok || rehash {
		t.Errorf("current.Verify(wrong, old hash) = %v, %v; want false, false", ok, rehash)
	}
}

func TestNewHasherDefaultsAndBounds(t *testing.T) {
	if got := NewHasher(Params{}).Params(); got != DefaultParams() {
		t.Errorf("NewHasher(zero).Params() = %+v; want %+v", got, DefaultParams())
	}
	defer func() {
		if recover() == nil {
			t.Error("NewHasher(m=1 GiB) did not panic")
		}
	}()
	NewHasher(Params{Memory: 1 << 20})
}

func TestVerifyNFKC(t *testing.T) {
	h := NewHasher(cheap)
	// Fullwidth letters and a composed é hash like their NFKC forms.
	enc, err := h.Hash("ｃｏｒｒｅｃｔ horse battery café")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"correct horse battery café", "correct horse battery cafe\u0301", "ｃｏｒｒｅｃｔ horse battery café"} {
		if ok, _, err := h.Verify(pw, enc); !ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want true, nil", pw, ok, err)
		}
	}
}

func TestVerifyBcrypt(t *testing.T) {
	// From golang.org/x/crypto/bcrypt's tests: "allmine" at cost 10.
	const known = "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga"
	h := NewHasher(cheap)
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := prefix + strings.TrimPrefix(known, "$2a$")
		if ok, rehash, err := h.Verify("allmine", enc); !ok || !rehash || err != nil {
			t.Errorf("Verify(allmine, %s...) = %v, %v, %v; want true, true, nil", prefix, ok, rehash, err)
		}
		if ok, rehash, err := h.Verify("allmine!", enc); ok || rehash || err != nil {
			t.Errorf("Verify(wrong, %s...) = %v, %v, %v; want false, false, nil", prefix, ok, rehash, err)
		}
	}
	// bcrypt hashes raw bytes elsewhere: no NFKC applied to them.
	raw := "ｆｕｌｌｗｉｄｔｈ"
	enc, err := bcrypt.GenerateFromPassword([]byte(raw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(raw, string(enc)); !ok || err != nil {
		t.Errorf("Verify(fullwidth, bcrypt) = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyBcrypt73Bytes(t *testing.T) {
	h := NewHasher(cheap)
	pw72 := strings.Repeat("x", 72)
	enc, err := bcrypt.GenerateFromPassword([]byte(pw72), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pw73 := pw72 + "y"
	// bcrypt itself ignores byte 73: this is the hole.
	if err := bcrypt.CompareHashAndPassword(enc, []byte(pw73)); err != nil {
		t.Fatalf("precondition: bcrypt.CompareHashAndPassword(73 bytes) = %v; want it to truncate", err)
	}
	if ok, _, err := h.Verify(pw72, string(enc)); !ok || err != nil {
		t.Errorf("Verify(72 bytes) = %v, %v; want true, nil", ok, err)
	}
	ok, _, err := h.Verify(pw73, string(enc))
	if ok || !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("Verify(73 bytes) = %v, %v; want false, ErrPasswordTooLong", ok, err)
	}
}

func TestOverLongRefused(t *testing.T) {
	h := NewHasher(cheap)
	enc, err := h.Hash("an ordinary password")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"128 code points", strings.Repeat("ab", 64), true},
		{"128 four-byte code points", strings.Repeat("😀", 128), true},
		{"129 code points", strings.Repeat("a", 129), false},
		{"1025 bytes", strings.Repeat("a", 1025), false},
		{"129 code points after NFKC", strings.Repeat("\uFDFA", 8), false}, // U+FDFA expands to 18 code points
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Hash(tt.pw)
			_, _, verr := h.Verify(tt.pw, enc)
			if tt.ok {
				if err != nil || verr != nil {
					t.Errorf("Hash, Verify = %v, %v; want nil, nil", err, verr)
				}
				return
			}
			if !errors.Is(err, ErrPasswordTooLong) || !errors.Is(verr, ErrPasswordTooLong) {
				t.Errorf("Hash, Verify = %v, %v; want ErrPasswordTooLong twice", err, verr)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(cheap)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	tests := []struct {
		enc  string
		want error
	}{
		{"", ErrUnsupportedHash},
		{"plaintext", ErrUnsupportedHash},
		{"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key, ErrUnsupportedHash},
		{"$scrypt$ln=16,r=8,p=1$aaaa$bbbb", ErrUnsupportedHash},
		{"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, ErrMalformedHash}, // 4 GiB
		{"$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=8,t=2,p=4$" + salt + "$" + key, ErrMalformedHash}, // m < 8p
		{"$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "=$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key, ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key, ErrMalformedHash}, // 4-byte salt
		{"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$c2hvcnQ", ErrMalformedHash},
		{"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$extra", ErrMalformedHash},
		{"$2a$31$sssssssssssssssssssssshhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh", ErrMalformedHash}, // absurd cost
		{"$2a$10$short", ErrMalformedHash},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify("a password", tt.enc)
		if ok || rehash || !errors.Is(err, tt.want) {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, %v", tt.enc, ok, rehash, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key)) {
			t.Errorf("Verify(%q) error %q shows the hash", tt.enc, err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBcryptCost10(b *testing.B) {
	h := NewHasher(DefaultParams())
	const enc = "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga"
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify("allmine", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// Unmatchable is a well-formed hash with the hasher's parameters (so that a
// check against it costs what a real one does and asks for no rehash),
// fresh each time, and matched by no password.
func TestUnmatchable(t *testing.T) {
	h := NewHasher(DefaultParams())
	enc, err := h.Unmatchable()
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(enc) {
		t.Errorf("Unmatchable() = %q; want a PHC string matching %s", enc, phcRE)
	}
	if again, _ := h.Unmatchable(); again == enc {
		t.Errorf("Unmatchable() twice = %q; want fresh bytes", enc)
	}
	for _, pw := range []string{"", "correct horse battery staple", strings.Repeat("x", 100)} {
		if ok, rehash, err := h.Verify(pw, enc); ok || rehash || err != nil {
			t.Errorf("Verify(%q, unmatchable) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
	p, err := NewHasher(cheap).Unmatchable()
	if err != nil || !strings.Contains(p, "$m=1024,t=1,p=1$") {
		t.Errorf("Unmatchable with other parameters = %q, %v; want them in the string", p, err)
	}
}
