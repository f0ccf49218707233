package storagetest

import (
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func testProofReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	key := uid("proof")
	fresh, err := s.RememberProof(ctx, key, time.Now().Add(time.Minute))
	if err != nil || !fresh {
		t.Fatalf("RememberProof(new) = %v, %v; want true", fresh, err)
	}
	if fresh, err := s.RememberProof(ctx, key, time.Now().Add(time.Minute)); err != nil || fresh {
		t.Errorf("RememberProof(again) = %v, %v; want false", fresh, err)
	}
	// An expired record is taken over.
	old := uid("proof")
	mustNil(t, "RememberProof(expired)", func() error { _, err := s.RememberProof(ctx, old, time.Now().Add(-time.Second)); return err }())
	if fresh, err := s.RememberProof(ctx, old, time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Errorf("RememberProof(after expiry) = %v, %v; want true", fresh, err)
	}
	// 20 at once: exactly one is fresh.
	same := uid("proof")
	freshCount := make([]bool, 20)
	for i, err := range parallel(20, func(i int) error {
		f, err := s.RememberProof(ctx, same, time.Now().Add(time.Minute))
		freshCount[i] = f
		return err
	}) {
		if err != nil {
			t.Errorf("concurrent RememberProof #%d: %v", i, err)
		}
	}
	n := 0
	for _, f := range freshCount {
		if f {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 20 concurrent RememberProof calls were fresh; want exactly 1", n)
	}
}
