package postgres_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

// RotateRefreshTokenTo stores the successor only when it deactivated the
// token: of concurrent calls for one token exactly one wins, and only the
// winner's successor exists.
func TestRotateRefreshTokenTo(t *testing.T) {
	t.Parallel()
	st := newStore(t).(*postgres.Store)
	ctx := t.Context()
	if err := st.CreateClient(ctx, storage.Client{ID: "app", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	token := func(sig string) storage.RefreshToken {
		return storage.RefreshToken{SignatureHash: sig, FamilyID: "fam", ClientID: "app", Subject: "u", Active: true,
			Request: []byte(`{}`), RequestedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	}
	first := "sig-" + storagetest.RandomID(6)
	if err := st.CreateRefreshToken(ctx, token(first)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	succ := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		succ[i] = "next-" + storagetest.RandomID(6)
		wg.Go(func() { errs[i] = st.RotateRefreshTokenTo(ctx, first, token(succ[i])) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		got, gerr := st.GetRefreshToken(ctx, succ[i])
		switch {
		case err == nil:
			wins++
			if gerr != nil || !got.Active || got.FamilyID != "fam" {
				t.Errorf("winner's successor = %+v, %v; want it stored and active", got, gerr)
			}
		case errors.Is(err, storage.ErrNotFound):
			if !errors.Is(gerr, storage.ErrNotFound) {
				t.Errorf("a loser's successor was stored: %v", gerr)
			}
		default:
			t.Errorf("RotateRefreshTokenTo: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent rotations won; want exactly 1", wins, n)
	}
	if old, err := st.GetRefreshToken(ctx, first); err != nil || old.Active {
		t.Errorf("rotated token = %+v, %v; want inactive", old, err)
	}
	if err := st.RotateRefreshTokenTo(ctx, "unknown-"+storagetest.RandomID(6), token("x-"+storagetest.RandomID(6))); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rotating an unknown token: %v; want ErrNotFound", err)
	}
}
