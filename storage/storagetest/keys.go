package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

func newKey(state storage.KeyState) storage.SigningKey {
	k := storage.SigningKey{
		ID:         uid("kid"),
		Alg:        "ES256",
		State:      state,
		PrivateKey: []byte("encrypted-" + RandomID(8)),
		PublicKey:  []byte(`{"kty":"EC"}`),
		CreatedAt:  now(),
	}
	switch state {
	case storage.KeyCurrent:
		k.ActivatedAt = now()
	case storage.KeyRetired:
		k.ActivatedAt, k.RetiredAt, k.ExpiresAt = now().Add(-time.Hour), now(), now().Add(time.Hour)
	}
	return k
}

func checkKeys(t *testing.T, what string, got, want []storage.SigningKey) {
	t.Helper()
	same := func(g, w storage.SigningKey) bool {
		return g.ID == w.ID && g.Alg == w.Alg && g.State == w.State && bytes.Equal(g.PrivateKey, w.PrivateKey) &&
			bytes.Equal(g.PublicKey, w.PublicKey) && sameTime(g.CreatedAt, w.CreatedAt) &&
			sameTime(g.ActivatedAt, w.ActivatedAt) && sameTime(g.RetiredAt, w.RetiredAt) &&
			sameTime(g.ExpiresAt, w.ExpiresAt) && isUTC(g.CreatedAt) && isUTC(g.ExpiresAt)
	}
	gotByID := map[string]storage.SigningKey{}
	for _, k := range got {
		gotByID[k.ID] = k
	}
	var problems []string
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("%d keys, want %d", len(got), len(want)))
	}
	for _, w := range want {
		g, ok := gotByID[w.ID]
		switch {
		case !ok:
			problems = append(problems, "missing "+w.ID)
		case !same(g, w):
			problems = append(problems, fmt.Sprintf("%s = %+v, want %+v", w.ID, g, w))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%s: %s", what, strings.Join(problems, "; "))
	}
}

func testKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	list := func() []storage.SigningKey {
		t.Helper()
		keys, err := s.ListKeys(ctx)
		mustNil(t, "ListKeys", err)
		return keys
	}
	if keys := list(); len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %d keys", len(keys))
	}

	k1, k2 := newKey(storage.KeyCurrent), newKey(storage.KeyNext)
	mustNil(t, "UpdateKeys(create)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		if len(old) != 0 {
			return nil, fmt.Errorf("old = %d keys; want none", len(old))
		}
		return []storage.SigningKey{k1, k2}, nil
	}))
	checkKeys(t, "ListKeys", list(), []storage.SigningKey{k1, k2})

	// Rotate: k2 becomes current, k1 retires, k3 is next.
	k3 := newKey(storage.KeyNext)
	r1, r2 := k1, k2
	r1.State, r1.RetiredAt, r1.ExpiresAt = storage.KeyRetired, now(), now().Add(time.Hour)
	r2.State, r2.ActivatedAt = storage.KeyCurrent, now()
	mustNil(t, "UpdateKeys(rotate)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		checkKeys(t, "UpdateKeys' old", old, []storage.SigningKey{k1, k2})
		return []storage.SigningKey{r2, r1, k3}, nil // current first: the store must cope with the order
	}))
	checkKeys(t, "ListKeys after rotation", list(), []storage.SigningKey{r1, r2, k3})

	// Keys missing from the result are deleted.
	mustNil(t, "UpdateKeys(drop)", s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, k3}, nil
	}))
	checkKeys(t, "ListKeys after dropping", list(), []storage.SigningKey{r2, k3})

	fnErr := errors.New("fn failed")
	err := s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) { return nil, fnErr })
	wantErr(t, "UpdateKeys(fn fails)", err, fnErr)
	dup := k3
	dup.Alg = "RS256"
	err = s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, k3, dup}, nil
	})
	wantErr(t, "UpdateKeys(duplicate id)", err, storage.ErrConflict)
	err = s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{r2, newKey(storage.KeyCurrent)}, nil
	})
	wantErr(t, "UpdateKeys(two current keys)", err, storage.ErrConflict)
	checkKeys(t, "ListKeys after failed updates", list(), []storage.SigningKey{r2, k3})

	// Concurrent updates (replicas rotating at once) never lose one.
	added := make([]storage.SigningKey, 10)
	errs := parallel(10, func(i int) error {
		added[i] = newKey(storage.KeyRetired)
		return s.UpdateKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
			return append(old, added[i]), nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent UpdateKeys #%d: %v", i, err)
		}
	}
	checkKeys(t, "ListKeys after 10 concurrent appends", list(), append([]storage.SigningKey{r2, k3}, added...))
}
