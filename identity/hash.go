package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Password hashing errors. None of them, nor any error wrapping them, carries
// a password or a hash.
var (
	// ErrPasswordTooLong: over MaxPasswordBytes bytes or MaxPasswordRunes code
	// points (after NFKC), or over 72 bytes against a bcrypt hash. Refused
	// before any hashing.
	ErrPasswordTooLong = errors.New("identity: password too long")
	// ErrMalformedHash: a stored hash that does not parse, or whose parameters
	// are outside the bounds authd accepts.
	ErrMalformedHash = errors.New("identity: malformed password hash")
	// ErrUnsupportedHash: a stored hash of an unknown scheme.
	ErrUnsupportedHash = errors.New("identity: unsupported password hash")
)

// Password length limits, applied before hashing.
const (
	MinPasswordRunes = 15
	MaxPasswordRunes = 128
	MaxPasswordBytes = 1024
	maxBcryptBytes   = 72
)

// Bounds on argon2id parameters read back from a stored hash, so a tampered
// or absurd row cannot make one verification eat the machine.
const (
	maxMemoryKiB  = 256 * 1024 // 256 MiB
	maxTime       = 16
	maxThreads    = 16
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	maxBcryptCost = 16
)

const argon2idPrefix = "$argon2id$"

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are the OWASP-recommended argon2id parameters API.md fixes:
// m=19 MiB, t=2, p=1, a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("t=%d out of [1, %d]", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("p=%d out of [1, %d]", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("m=%d out of [8*p, %d]", p.Memory, maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d out of [%d, %d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d out of [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hasher hashes passwords with argon2id and verifies argon2id and bcrypt
// hashes. Passwords are NFKC-normalised before argon2id hashing, so the same
// password typed in another Unicode form still verifies. It is safe for
// concurrent use.
type Hasher struct {
	params Params
}

// NewHasher returns a hasher producing hashes with p; zero fields take
// DefaultParams' values. It panics when p is outside the bounds Verify
// accepts, since its hashes could then never verify.
func NewHasher(p Params) *Hasher {
	d := DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if err := p.check(); err != nil {
		panic("identity: NewHasher: " + err.Error())
	}
	return &Hasher{params: p}
}

// Params returns the parameters new hashes use.
func (h *Hasher) Params() Params { return h.params }

// normalize applies the length limits and returns the NFKC form of password.
func normalize(password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	p := norm.NFKC.String(password)
	if utf8.RuneCountInString(p) > MaxPasswordRunes {
		return "", ErrPasswordTooLong
	}
	return p, nil
}

// Hash returns the argon2id PHC string of password's NFKC form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, both in unpadded standard base64.
// It applies no policy beyond the length limits; see ValidatePassword.
func (h *Hasher) Hash(password string) (string, error) {
	p, err := normalize(password)
	if err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("identity: salt: %w", err)
	}
	key := argon2.IDKey([]byte(p), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return h.encode(salt, key), nil
}

// Unmatchable returns an argon2id PHC string with h's parameters whose salt
// and digest are random bytes: checking a password against it costs exactly
// what checking a real hash costs, and no password matches it (finding one
// would mean inverting argon2id). It stands in for a missing user's hash, so
// that an unknown username takes as long as a wrong password, and it costs
// no hashing to make (start-up does not wait for one).
func (h *Hasher) Unmatchable() (string, error) {
	b := make([]byte, int(h.params.SaltLen)+int(h.params.KeyLen))
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("identity: unmatchable hash: %w", err)
	}
	return h.encode(b[:h.params.SaltLen], b[h.params.SaltLen:]), nil
}

func (h *Hasher) encode(salt, key []byte) string {
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", argon2idPrefix, argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether password matches encoded, an argon2id PHC string or a
// bcrypt hash ($2a$, $2b$, $2y$), and, when it does, whether encoded should be
// replaced by a fresh Hash: always for bcrypt, and for argon2id when its
// parameters differ from h's. A wrong password is (false, false, nil); err is
// ErrPasswordTooLong, ErrMalformedHash or ErrUnsupportedHash otherwise.
//
// argon2id hashes are checked against the NFKC form of password; bcrypt
// hashes, made elsewhere, against password as given, and never above 72 bytes
// (bcrypt would ignore the rest, letting a different password in).
func (h *Hasher) Verify(password, encoded string) (ok, needsRehash bool, err error) {
	p, err := normalize(password)
	if err != nil {
		return false, false, err
	}
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		params, salt, key, err := decodeArgon2id(encoded)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(p), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, false, nil
		}
		return true, params != h.params, nil
	case isBcrypt(encoded):
		if len(password) > maxBcryptBytes {
			return false, false, ErrPasswordTooLong
		}
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil || len(encoded) != 60 {
			return false, false, fmt.Errorf("%w: bcrypt", ErrMalformedHash)
		}
		if cost > maxBcryptCost {
			return false, false, fmt.Errorf("%w: bcrypt cost %d above %d", ErrMalformedHash, cost, maxBcryptCost)
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password)); {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, fmt.Errorf("%w: bcrypt", ErrMalformedHash)
		}
	default:
		return false, false, ErrUnsupportedHash
	}
}

func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")
}

// decodeArgon2id parses $argon2id$v=19$m=M,t=T,p=P$salt$key strictly.
func decodeArgon2id(encoded string) (Params, []byte, []byte, error) {
	bad := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: argon2id %s", ErrMalformedHash, what)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("layout")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("parameters")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameters")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameters")
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return bad("parameters out of bounds")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return bad("salt")
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return bad("key")
	}
	p := Params{
		Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key)),
	}
	if err := p.check(); err != nil {
		return bad("parameters out of bounds: " + err.Error())
	}
	return p, salt, key, nil
}

// CheckEncoded reports whether encoded is a hash Verify can use: an argon2id
// PHC string within bounds, or a bcrypt hash of an accepted cost.
func (h *Hasher) CheckEncoded(encoded string) error {
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		_, _, _, err := decodeArgon2id(encoded)
		return err
	case isBcrypt(encoded):
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil || len(encoded) != 60 || cost > maxBcryptCost {
			return fmt.Errorf("%w: bcrypt", ErrMalformedHash)
		}
		return nil
	default:
		return ErrUnsupportedHash
	}
}
