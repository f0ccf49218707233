package identity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Equal work for every password check.
//
// Whatever the account (argon2id hash, imported bcrypt hash, unusable hash,
// unknown, locked or disabled), a check does the same hashing work:
//
//   - exactly one argon2id computation: the account's hash, or the dummy
//     (current parameters) when the account has no argon2id hash or its
//     password is not checked;
//   - when bcrypt hashes are in use, bcrypt work of exactly 2^C rounds,
//     C being the pad cost (Options.BcryptPadCost, raised to the highest
//     cost met at import or login): the account's own bcrypt verification
//     at cost c, plus dummy verifications at costs c, c+1, ..., C-1
//     (2^c + 2^c + 2^(c+1) + ... + 2^(C-1) = 2^C); or one dummy at cost C.
//
// The work is matched operation for operation rather than by calibrated
// time, so it stays equal on any hardware and under any load. The price is
// that while bcrypt hashes are in use every check costs one argon2id plus
// one bcrypt at cost C. An argon2id hash with older parameters still costs
// its own parameters until the next successful login rehashes it.

// dummyPassword is checked against the dummy hashes. It matches none.
const dummyPassword = "not the password"

// verify checks password against encoded in a hashing slot, doing the work
// of any other check (see check).
func (s *Service) verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if err := s.acquire(ctx); err != nil {
		return false, false, err
	}
	defer s.release()
	return s.check(password, encoded)
}

// check is Hasher.Verify padded to the work every check does; the caller
// holds a hashing slot. Verify fails before any hashing, so an error means
// no work was done yet.
func (s *Service) check(password, encoded string) (ok, needsRehash bool, err error) {
	defer s.observeHash("verify", time.Now())
	ok, needsRehash, err = s.hasher.Verify(password, encoded)
	argon2idDone, bcryptDone := false, 0
	if err == nil {
		switch {
		case strings.HasPrefix(encoded, argon2idPrefix):
			argon2idDone = true
		case isBcrypt(encoded):
			bcryptDone, _ = bcrypt.Cost([]byte(encoded)) // parsed by Verify already
			s.noteBcryptCost(bcryptDone)
		}
	}
	if !argon2idDone {
		_, _, _ = s.hasher.Verify(dummyPassword, s.dummy)
	}
	s.padBcrypt(bcryptDone)
	return ok, needsRehash, err
}

// noteBcryptCost raises the pad cost to c.
func (s *Service) noteBcryptCost(c int) {
	if c < bcrypt.MinCost || c > maxBcryptCost {
		return
	}
	for {
		cur := s.bcryptPad.Load()
		if int(cur) >= c || s.bcryptPad.CompareAndSwap(cur, int32(c)) {
			return
		}
	}
}

// padBcrypt does the bcrypt work the pad cost asks for, less the work of a
// verification at cost done (0 for none) already done.
func (s *Service) padBcrypt(done int) {
	pad := int(s.bcryptPad.Load())
	if pad == 0 {
		return
	}
	if done == 0 {
		s.dummyBcrypt(pad)
		return
	}
	for c := done; c < pad; c++ {
		s.dummyBcrypt(c)
	}
}

// dummyBcrypt runs one bcrypt verification at cost, which fails: the dummy
// hash with its cost field rewritten (bcrypt reads the cost from the hash).
func (s *Service) dummyBcrypt(cost int) {
	h := fmt.Sprintf("$2a$%02d$%s", cost, s.bcryptDummy[7:])
	_ = bcrypt.CompareHashAndPassword([]byte(h), []byte(dummyPassword))
}
