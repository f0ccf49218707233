package storagetest

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newToken(clientID, family, subject string) storage.RefreshToken {
	return storage.RefreshToken{
		SignatureHash: uid("sig"),
		FamilyID:      family,
		ClientID:      clientID,
		Subject:       subject,
		Active:        true,
		Request:       []byte(`{"id":"` + family + `"}`),
		RequestedAt:   now(),
		ExpiresAt:     now().Add(24 * time.Hour),
	}
}

func tokenActive(t *testing.T, s storage.Store, sig string) bool {
	t.Helper()
	got, err := s.GetRefreshToken(t.Context(), sig)
	mustNil(t, "GetRefreshToken", err)
	return got.Active
}

func testRefreshTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))

	t.Run("CreateGetRotate", func(t *testing.T) {
		tok := newToken(c.ID, uid("fam"), uid("sub"))
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		got, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshToken", err)
		if got.SignatureHash != tok.SignatureHash || got.FamilyID != tok.FamilyID || got.ClientID != tok.ClientID ||
			got.Subject != tok.Subject || !got.Active || !bytes.Equal(got.Request, tok.Request) ||
			!sameTime(got.RequestedAt, tok.RequestedAt) || !sameTime(got.ExpiresAt, tok.ExpiresAt) ||
			!isUTC(got.RequestedAt) || !isUTC(got.ExpiresAt) {
			t.Fatalf("GetRefreshToken = %+v; want %+v", got, tok)
		}
		wantErr(t, "CreateRefreshToken(same signature)", s.CreateRefreshToken(ctx, tok), storage.ErrConflict)

		next := newToken(c.ID, tok.FamilyID, tok.Subject)
		mustNil(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0))
		if tokenActive(t, s, tok.SignatureHash) {
			t.Error("token still active after RotateRefreshToken")
		}
		if !tokenActive(t, s, next.SignatureHash) {
			t.Error("successor not active after RotateRefreshToken")
		}
		wantErr(t, "RotateRefreshToken(twice, strict)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0), storage.ErrNotFound)
		wantErr(t, "RotateRefreshToken(missing)", s.RotateRefreshToken(ctx, uid("sig"), newToken(c.ID, uid("fam"), uid("sub")), time.Minute), storage.ErrNotFound)
		_, err = s.GetRefreshToken(ctx, uid("sig"))
		wantErr(t, "GetRefreshToken(missing)", err, storage.ErrNotFound)

		mustNil(t, "DeleteRefreshToken", s.DeleteRefreshToken(ctx, tok.SignatureHash))
		_, err = s.GetRefreshToken(ctx, tok.SignatureHash)
		wantErr(t, "GetRefreshToken(deleted)", err, storage.ErrNotFound)
		wantErr(t, "DeleteRefreshToken(deleted)", s.DeleteRefreshToken(ctx, tok.SignatureHash), storage.ErrNotFound)
	})

	t.Run("WithUser", func(t *testing.T) {
		u := newUser("owner")
		u.Roles = []string{storage.RoleUser, storage.RoleAdmin}
		u.LockedUntil = now().Add(time.Minute)
		u.FailedLogins = 2
		mustNil(t, "CreateUser", s.CreateUser(ctx, u))
		tok := newToken(c.ID, uid("fam"), u.ID)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		got, owner, err := s.GetRefreshTokenWithUser(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshTokenWithUser", err)
		want, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshToken", err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetRefreshTokenWithUser token = %+v; want %+v", got, want)
		}
		if owner == nil {
			t.Fatal("GetRefreshTokenWithUser: no user; want the token's")
		}
		checkUser(t, "GetRefreshTokenWithUser user", *owner, u)

		mustNil(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
		got, owner, err = s.GetRefreshTokenWithUser(ctx, tok.SignatureHash)
		mustNil(t, "GetRefreshTokenWithUser(user deleted)", err)
		if owner != nil || got.SignatureHash != tok.SignatureHash {
			t.Errorf("GetRefreshTokenWithUser(user deleted) = %+v, %+v; want the token and no user", got, owner)
		}
		_, _, err = s.GetRefreshTokenWithUser(ctx, uid("sig"))
		wantErr(t, "GetRefreshTokenWithUser(missing)", err, storage.ErrNotFound)
	})

	t.Run("RevokeFamily", func(t *testing.T) {
		fam, other := uid("fam"), uid("fam")
		sub := uid("sub")
		var sigs []string
		for range 3 {
			tok := newToken(c.ID, fam, sub)
			mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
			sigs = append(sigs, tok.SignatureHash)
		}
		keep := newToken(c.ID, other, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, keep))
		mustNil(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, fam))
		for _, sig := range sigs {
			if tokenActive(t, s, sig) {
				t.Errorf("token %s of the revoked family is active", sig)
			}
		}
		if !tokenActive(t, s, keep.SignatureHash) {
			t.Error("token of another family was revoked")
		}
		mustNil(t, "RevokeRefreshFamily(again)", s.RevokeRefreshFamily(ctx, fam))
	})

	t.Run("RevokeSubject", func(t *testing.T) {
		sub, otherSub := uid("sub"), uid("sub")
		f1, f2, f3 := uid("fam"), uid("fam"), uid("fam")
		toks := map[string][]string{}
		for _, f := range []string{f1, f1, f2, f3} {
			tok := newToken(c.ID, f, sub)
			mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
			toks[f] = append(toks[f], tok.SignatureHash)
		}
		// Already inactive tokens do not count as touched.
		f4 := uid("fam")
		old := newToken(c.ID, f4, sub)
		old.Active = false
		mustNil(t, "CreateRefreshToken(inactive)", s.CreateRefreshToken(ctx, old))
		foreign := newToken(c.ID, uid("fam"), otherSub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, foreign))

		got, err := s.RevokeSubjectRefreshTokens(ctx, sub, f2)
		mustNil(t, "RevokeSubjectRefreshTokens", err)
		want := []string{f1, f3}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("RevokeSubjectRefreshTokens = %v; want %v", got, want)
		}
		for f, sigs := range toks {
			for _, sig := range sigs {
				if active := tokenActive(t, s, sig); active != (f == f2) {
					t.Errorf("token of family %s active = %v; want %v", f, active, f == f2)
				}
			}
		}
		if !tokenActive(t, s, foreign.SignatureHash) {
			t.Error("another subject's token was revoked")
		}
		got, err = s.RevokeSubjectRefreshTokens(ctx, sub, "")
		mustNil(t, "RevokeSubjectRefreshTokens(all)", err)
		if !slices.Equal(got, []string{f2}) {
			t.Errorf("RevokeSubjectRefreshTokens(all) = %v; want [%s]", got, f2)
		}
	})

	t.Run("ConcurrentRotation", func(t *testing.T) {
		// 20 refreshes of one token, each in its own transaction that rotates
		// the token and stores a successor, as fosite does: one wins.
		fam, sub := uid("fam"), uid("sub")
		tok := newToken(c.ID, fam, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		successors := make([]storage.RefreshToken, 20)
		for i := range successors {
			successors[i] = newToken(c.ID, fam, sub)
		}
		errs := parallel(20, func(i int) error {
			return s.RotateRefreshToken(ctx, tok.SignatureHash, successors[i], 0)
		})
		wins := 0
		for i, err := range errs {
			_, gerr := s.GetRefreshToken(ctx, successors[i].SignatureHash)
			switch {
			case err == nil:
				wins++
				if gerr != nil {
					t.Errorf("the winner's successor: %v", gerr)
				}
			case errors.Is(err, storage.ErrNotFound):
				if !errors.Is(gerr, storage.ErrNotFound) {
					t.Errorf("loser #%d stored a successor (%v)", i, gerr)
				}
			default:
				t.Errorf("rotation #%d: %v; want nil or ErrNotFound", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("%d of 20 concurrent rotations won; want exactly 1", wins)
		}
	})

	t.Run("IdempotentRotation", func(t *testing.T) {
		// 20 concurrent rotations of one token to one successor, with a
		// grace: every one succeeds, exactly one successor row exists.
		fam, sub := uid("fam"), uid("sub")
		tok := newToken(c.ID, fam, sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		next := newToken(c.ID, fam, sub)
		for i, err := range parallel(20, func(int) error {
			return s.RotateRefreshToken(ctx, tok.SignatureHash, next, time.Minute)
		}) {
			if err != nil {
				t.Errorf("idempotent rotation #%d: %v", i, err)
			}
		}
		if tokenActive(t, s, tok.SignatureHash) || !tokenActive(t, s, next.SignatureHash) {
			t.Fatal("after the rotations the old token is active or the successor is not")
		}
		grace, err := s.InRotationGrace(ctx, tok.SignatureHash, time.Minute)
		if err != nil || !grace {
			t.Errorf("InRotationGrace(just rotated) = %v, %v; want true", grace, err)
		}
		// Another successor is not the one the rotation chose.
		wantErr(t, "RotateRefreshToken(other successor)", s.RotateRefreshToken(ctx, tok.SignatureHash, newToken(c.ID, fam, sub), time.Minute), storage.ErrNotFound)
		// Outside the grace (a zero grace, or a grace already elapsed) it is reuse.
		wantErr(t, "RotateRefreshToken(no grace)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 0), storage.ErrNotFound)
		time.Sleep(20 * time.Millisecond)
		wantErr(t, "RotateRefreshToken(grace elapsed)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, 10*time.Millisecond), storage.ErrNotFound)
		if grace, err := s.InRotationGrace(ctx, tok.SignatureHash, 10*time.Millisecond); err != nil || grace {
			t.Errorf("InRotationGrace(elapsed) = %v, %v; want false", grace, err)
		}
		// Once the successor is used (rotated itself), the old token is reuse.
		third := newToken(c.ID, fam, sub)
		mustNil(t, "RotateRefreshToken(successor)", s.RotateRefreshToken(ctx, next.SignatureHash, third, time.Minute))
		wantErr(t, "RotateRefreshToken(successor used)", s.RotateRefreshToken(ctx, tok.SignatureHash, next, time.Minute), storage.ErrNotFound)
		if grace, err := s.InRotationGrace(ctx, tok.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(successor used) = %v, %v; want false", grace, err)
		}
		// A revoked family has no grace.
		mustNil(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, fam))
		if grace, err := s.InRotationGrace(ctx, next.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(revoked family) = %v, %v; want false", grace, err)
		}
		wantErr(t, "RotateRefreshToken(revoked family)", s.RotateRefreshToken(ctx, next.SignatureHash, third, time.Minute), storage.ErrNotFound)
		// A token never rotated has no grace.
		fresh := newToken(c.ID, uid("fam"), sub)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, fresh))
		if grace, err := s.InRotationGrace(ctx, fresh.SignatureHash, time.Minute); err != nil || grace {
			t.Errorf("InRotationGrace(never rotated) = %v, %v; want false", grace, err)
		}
	})

	t.Run("DeleteClientCascades", func(t *testing.T) {
		c2 := newClient()
		mustNil(t, "CreateClient", s.CreateClient(ctx, c2))
		tok := newToken(c2.ID, uid("fam"), uid("sub"))
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		mustNil(t, "DeleteClient", s.DeleteClient(ctx, c2.ID))
		_, err := s.GetRefreshToken(ctx, tok.SignatureHash)
		wantErr(t, "GetRefreshToken(of a deleted client)", err, storage.ErrNotFound)
	})
}
