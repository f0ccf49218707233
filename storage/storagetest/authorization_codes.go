package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newCode(clientID string) storage.AuthorizationCode {
	at := now()
	req := uid("req")
	return storage.AuthorizationCode{
		SignatureHash: uid("codehash"),
		RequestID:     req,
		ClientID:      clientID,
		Subject:       uid("sub"),
		SessionID:     uid("sid"),
		Active:        true,
		Request:       []byte(`{"id":"` + req + `","pkce":"S256"}`),
		RequestedAt:   at,
		ExpiresAt:     at.Add(60 * time.Second),
	}
}

func checkCode(t *testing.T, what string, got, want storage.AuthorizationCode) {
	t.Helper()
	ok := got.SignatureHash == want.SignatureHash && got.RequestID == want.RequestID && got.ClientID == want.ClientID &&
		got.Subject == want.Subject && got.SessionID == want.SessionID && got.Active == want.Active &&
		bytes.Equal(got.Request, want.Request) && sameTime(got.RequestedAt, want.RequestedAt) &&
		sameTime(got.ExpiresAt, want.ExpiresAt) && isUTC(got.RequestedAt) && isUTC(got.ExpiresAt)
	if !ok {
		t.Fatalf("%s = %+v; want %+v", what, got, want)
	}
}

func getCode(t *testing.T, s storage.Store, hash string) storage.AuthorizationCode {
	t.Helper()
	got, err := s.GetAuthorizationCode(t.Context(), hash)
	mustNil(t, "GetAuthorizationCode", err)
	return got
}

func testAuthorizationCodes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))

	t.Run("CreateGetUse", func(t *testing.T) {
		code := newCode(c.ID)
		mustNil(t, "CreateAuthorizationCode", s.CreateAuthorizationCode(ctx, code))
		checkCode(t, "GetAuthorizationCode", getCode(t, s, code.SignatureHash), code)
		wantErr(t, "CreateAuthorizationCode(same hash)", s.CreateAuthorizationCode(ctx, code), storage.ErrConflict)
		_, err := s.GetAuthorizationCode(ctx, uid("codehash"))
		wantErr(t, "GetAuthorizationCode(missing)", err, storage.ErrNotFound)

		// A use in a transaction that rolls back leaves the code active.
		inRolledBackTx(t, s, func(ctx context.Context) {
			mustNil(t, "UseAuthorizationCode(in tx)", s.UseAuthorizationCode(ctx, code.SignatureHash))
		})
		checkCode(t, "GetAuthorizationCode after a rolled-back use", getCode(t, s, code.SignatureHash), code)

		mustNil(t, "UseAuthorizationCode", s.UseAuthorizationCode(ctx, code.SignatureHash))
		used := code
		used.Active = false
		checkCode(t, "GetAuthorizationCode(used)", getCode(t, s, code.SignatureHash), used)
		wantErr(t, "UseAuthorizationCode(again)", s.UseAuthorizationCode(ctx, code.SignatureHash), storage.ErrNotFound)
		wantErr(t, "UseAuthorizationCode(missing)", s.UseAuthorizationCode(ctx, uid("codehash")), storage.ErrNotFound)
		checkCode(t, "GetAuthorizationCode(used twice)", getCode(t, s, code.SignatureHash), used)
	})

	t.Run("Defaults", func(t *testing.T) {
		before := time.Now()
		code := newCode(c.ID)
		code.RequestedAt, code.Request = time.Time{}, nil
		mustNil(t, "CreateAuthorizationCode(defaults)", s.CreateAuthorizationCode(ctx, code))
		got := getCode(t, s, code.SignatureHash)
		if got.RequestedAt.Before(before.Add(-time.Second)) || got.RequestedAt.After(time.Now().Add(time.Second)) || len(got.Request) != 0 {
			t.Errorf("CreateAuthorizationCode(defaults) stored %+v; want requested now, an empty request", got)
		}
		for name, bad := range map[string]func(*storage.AuthorizationCode){
			"no hash":        func(c *storage.AuthorizationCode) { c.SignatureHash = "" },
			"no request id":  func(c *storage.AuthorizationCode) { c.RequestID = "" },
			"no client":      func(c *storage.AuthorizationCode) { c.ClientID = "" },
			"no expiry":      func(c *storage.AuthorizationCode) { c.ExpiresAt = time.Time{} },
			"unknown client": func(c *storage.AuthorizationCode) { c.ClientID = uid("nobody") },
		} {
			code := newCode(c.ID)
			bad(&code)
			if err := s.CreateAuthorizationCode(ctx, code); err == nil {
				t.Errorf("CreateAuthorizationCode(%s) = nil; want an error", name)
			}
		}
	})

	t.Run("ClientDeleteCascades", func(t *testing.T) {
		gone := newClient()
		mustNil(t, "CreateClient", s.CreateClient(ctx, gone))
		code := newCode(gone.ID)
		mustNil(t, "CreateAuthorizationCode", s.CreateAuthorizationCode(ctx, code))
		keep := newCode(c.ID)
		mustNil(t, "CreateAuthorizationCode", s.CreateAuthorizationCode(ctx, keep))
		mustNil(t, "DeleteClient", s.DeleteClient(ctx, gone.ID))
		_, err := s.GetAuthorizationCode(ctx, code.SignatureHash)
		wantErr(t, "GetAuthorizationCode(client deleted)", err, storage.ErrNotFound)
		checkCode(t, "another client's code", getCode(t, s, keep.SignatureHash), keep)
	})

	// Of 32 concurrent uses of one code exactly one wins; the others are
	// ErrNotFound. On PostgreSQL they run at once on separate connections.
	t.Run("ConcurrentUseOneWins", func(t *testing.T) {
		const racers = 32
		for round := range 3 {
			code := newCode(c.ID)
			mustNil(t, "CreateAuthorizationCode", s.CreateAuthorizationCode(ctx, code))
			won, lost := 0, 0
			for _, err := range parallel(racers, func(int) error { return s.UseAuthorizationCode(ctx, code.SignatureHash) }) {
				switch {
				case err == nil:
					won++
				case errors.Is(err, storage.ErrNotFound):
					lost++
				default:
					t.Errorf("round %d: UseAuthorizationCode = %v; want nil or ErrNotFound", round, err)
				}
			}
			if won != 1 || lost != racers-1 {
				t.Fatalf("round %d: %d uses won, %d got ErrNotFound; want exactly 1 and %d", round, won, lost, racers-1)
			}
			if getCode(t, s, code.SignatureHash).Active {
				t.Errorf("round %d: code still active after its use", round)
			}
		}
	})
}

// testAuthorizationCodePurge runs on a store of its own: Purge counts every
// expired row.
func testAuthorizationCodePurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	c := newClient()
	mustNil(t, "CreateClient", s.CreateClient(ctx, c))
	expired, expiredUsed, live, liveUsed := newCode(c.ID), newCode(c.ID), newCode(c.ID), newCode(c.ID)
	expired.ExpiresAt, expiredUsed.ExpiresAt = at.Add(-time.Second), at.Add(-time.Second)
	for _, code := range []storage.AuthorizationCode{expired, expiredUsed, live, liveUsed} {
		mustNil(t, "CreateAuthorizationCode", s.CreateAuthorizationCode(ctx, code))
	}
	for _, code := range []storage.AuthorizationCode{expiredUsed, liveUsed} {
		mustNil(t, "UseAuthorizationCode", s.UseAuthorizationCode(ctx, code.SignatureHash))
	}
	n, err := s.Purge(ctx, at, storage.Retention{})
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2 (the expired codes, used or not)", n, err)
	}
	for _, code := range []storage.AuthorizationCode{expired, expiredUsed} {
		_, err := s.GetAuthorizationCode(ctx, code.SignatureHash)
		wantErr(t, "GetAuthorizationCode(expired, purged)", err, storage.ErrNotFound)
	}
	checkCode(t, "unexpired code after Purge", getCode(t, s, live.SignatureHash), live)
	// A used code stays until it expires: a second use finds it, and fails.
	liveUsed.Active = false
	checkCode(t, "unexpired used code after Purge", getCode(t, s, liveUsed.SignatureHash), liveUsed)
	wantErr(t, "UseAuthorizationCode(used, kept)", s.UseAuthorizationCode(ctx, liveUsed.SignatureHash), storage.ErrNotFound)
}
