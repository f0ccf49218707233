package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/storage"
)

var allAlgs = []string{ES256, RS256, EdDSA}

func claimsFor(i int) []byte {
	return fmt.Appendf(nil, `{"iss":"https://issuer.example","sub":"user-%d","aud":["api"],"exp":1893456000,"iat":1893455100,"jti":"jti-%d","scope":"openid profile","roles":["user"]}`, i, i)
}

// decodeHeader returns the protected header of a compact JWS as a map.
func headerOf(t *testing.T, token string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("unmarshal header: %v", err)
	}
	return h
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			store := &memStore{}
			m := newTestManager(t, store, testOptions(alg, newFakeClock()))
			if got := m.Alg(); got != alg {
				t.Errorf("Alg() = %q; want %q", got, alg)
			}
			cur := store.byState(storage.KeyCurrent)
			if len(cur) != 1 || len(store.byState(storage.KeyNext)) != 1 {
				t.Fatalf("store after NewManager = %+v; want one current and one next key", store.snapshot())
			}
			claims := claimsFor(1)
			token, err := m.Sign(t.Context(), claims)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			h := headerOf(t, token)
			want := map[string]any{"alg": alg, "kid": cur[0].ID, "typ": "at+jwt"}
			if fmt.Sprint(h) != fmt.Sprint(want) {
				t.Errorf("header = %v; want %v", h, want)
			}
			got, kid, err := m.Verify(t.Context(), token)
			if err != nil {
				t.Fatalf("Verify(Sign(claims)): %v", err)
			}
			if !bytes.Equal(got, claims) || kid != cur[0].ID {
				t.Errorf("Verify = %s, %q; want %s, %q", got, kid, claims, cur[0].ID)
			}

			// A second manager on the same store (another replica) verifies it too.
			m2 := newTestManager(t, store, testOptions(alg, newFakeClock()))
			if _, _, err := m2.Verify(t.Context(), token); err != nil {
				t.Errorf("replica Verify: %v", err)
			}
			if len(store.snapshot()) != 2 {
				t.Errorf("second NewManager changed the key set: %+v", store.snapshot())
			}
		})
	}
}

func TestSignRejectsNonObjectClaims(t *testing.T) {
	m := newTestManager(t, &memStore{}, testOptions(EdDSA, newFakeClock()))
	for _, c := range []string{"", "null", `"x"`, "[1]", `{"a":`, ` {"a":1}`, `{"a":1}x`} {
		if _, err := m.Sign(t.Context(), []byte(c)); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("Sign(%q) error = %v; want ErrInvalidClaims", c, err)
		}
	}
	big := fmt.Appendf(nil, `{"a":%q}`, strings.Repeat("x", MaxTokenSize))
	if _, err := m.Sign(t.Context(), big); !errors.Is(err, ErrInvalidClaims) {
		t.Errorf("Sign(%d bytes) error = %v; want ErrInvalidClaims", len(big), err)
	}
}

func TestRotateKeepsTokensVerifyingUntilDropped(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	opts := testOptions(ES256, clock)
	m := newTestManager(t, store, opts)
	retention := opts.TokenTTL + opts.ReloadInterval + RetireLeeway

	k1 := store.byState(storage.KeyCurrent)[0].ID
	k2 := store.byState(storage.KeyNext)[0].ID
	t1, err := m.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Hour)
	rotatedAt := clock.Now()
	cur, err := m.Rotate(t.Context())
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if cur.ID != k2 || cur.State != storage.KeyCurrent || !cur.ActivatedAt.Equal(rotatedAt) || cur.PrivateKey != nil {
		t.Errorf("Rotate = %+v; want the former next key %q, current, activated now, without private key", cur, k2)
	}
	var k3 string
	for _, k := range store.snapshot() {
		switch k.State {
		case storage.KeyRetired:
			if k.ID != k1 || !k.RetiredAt.Equal(rotatedAt) || !k.ExpiresAt.Equal(rotatedAt.Add(retention)) {
				t.Errorf("retired key = %s retired %v expires %v; want %s retired %v expires %v", k.ID, k.RetiredAt, k.ExpiresAt, k1, rotatedAt, rotatedAt.Add(retention))
			}
		case storage.KeyNext:
			k3 = k.ID
		}
	}
	if k3 == "" || k3 == k1 || k3 == k2 {
		t.Fatalf("no new next key after Rotate: %+v", store.snapshot())
	}

	t2, err := m.Sign(t.Context(), claimsFor(2))
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{t1: k1, t2: k2} {
		if _, kid, err := m.Verify(t.Context(), token); err != nil || kid != want {
			t.Errorf("after one rotation Verify = %q, %v; want %q", kid, err, want)
		}
	}

	// A second rotation shortly after: k1 still within its retention.
	clock.Advance(time.Minute)
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatalf("second Rotate: %v", err)
	}
	for token, want := range map[string]string{t1: k1, t2: k2} {
		if _, kid, err := m.Verify(t.Context(), token); err != nil || kid != want {
			t.Errorf("after two rotations Verify = %q, %v; want %q", kid, err, want)
		}
	}
	if got := len(store.byState(storage.KeyRetired)); got != 2 {
		t.Errorf("retired keys after two rotations = %d; want 2", got)
	}

	// Past k1's ExpiresAt (but before k2's) k1 leaves the published set at
	// the next reload, and the next rotation drops it from the store.
	clock.Advance(retention - 30*time.Second)
	if err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Verify(t.Context(), t1); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(token of expired key) error = %v; want ErrUnknownKey and ErrInvalidToken", err)
	}
	if body, _ := m.JWKS(); bytes.Contains(body, []byte(k1)) {
		t.Errorf("JWKS still publishes the expired key %s", k1)
	}
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range store.snapshot() {
		if k.ID == k1 {
			t.Errorf("expired retired key %s still stored after Rotate", k1)
		}
	}
	if _, _, err := m.Verify(t.Context(), t2); err != nil {
		t.Errorf("Verify(token of the key retired by the second rotation) = %v; want nil", err)
	}
}

func TestJWKS(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			clock := newFakeClock()
			store := &memStore{}
			m := newTestManager(t, store, testOptions(alg, clock))
			_, etag0 := m.JWKS()
			if _, err := m.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			body, etag := m.JWKS()
			if etag == etag0 {
				t.Errorf("ETag unchanged by Rotate: %s", etag)
			}
			if len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
				t.Errorf("ETag = %s; want a strong quoted ETag", etag)
			}
			if err := m.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			if body2, etag2 := m.JWKS(); etag2 != etag || !bytes.Equal(body2, body) {
				t.Errorf("JWKS changed by a Reload of the same set: %s -> %s", etag, etag2)
			}

			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("JWKS is not JSON: %v", err)
			}
			var wantKIDs []string
			for _, st := range []storage.KeyState{storage.KeyCurrent, storage.KeyNext, storage.KeyRetired} {
				ks := store.byState(st)
				if len(ks) != 1 {
					t.Fatalf("%d %s keys in store; want 1", len(ks), st)
				}
				wantKIDs = append(wantKIDs, ks[0].ID)
			}
			var gotKIDs []string
			for _, k := range doc.Keys {
				gotKIDs = append(gotKIDs, fmt.Sprint(k["kid"]))
				if k["alg"] != alg || k["use"] != "sig" {
					t.Errorf("JWK %v: want alg %s and use sig", k["kid"], alg)
				}
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
					if _, ok := k[private]; ok {
						t.Errorf("JWK %v has private member %q", k["kid"], private)
					}
				}
			}
			if !slices.Equal(gotKIDs, wantKIDs) {
				t.Errorf("JWKS kids = %v; want current, next, retired %v", gotKIDs, wantKIDs)
			}

			// go-jose reads it back as public keys.
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			for _, k := range set.Keys {
				if !k.IsPublic() || !k.Valid() {
					t.Errorf("JWK %s is not a valid public key", k.KeyID)
				}
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	m := newTestManager(t, store, testOptions(ES256, clock))
	token, err := m.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}
	before := store.snapshot()

	// The wrong secret cannot decrypt, and must not make NewManager replace the keys.
	wrong := testOptions(ES256, clock)
	wrong.Secret = otherSecret
	_, err = NewManager(t.Context(), store, wrong)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("NewManager with the wrong secret: error = %v; want ErrDecrypt", err)
	}
	if strings.Contains(err.Error(), string(otherSecret)) || strings.Contains(err.Error(), string(testSecret)) {
		t.Errorf("error leaks a secret: %v", err)
	}
	if !slices.EqualFunc(store.snapshot(), before, func(a, b storage.SigningKey) bool {
		return a.ID == b.ID && bytes.Equal(a.PrivateKey, b.PrivateKey)
	}) {
		t.Errorf("NewManager with the wrong secret changed the store")
	}
	wrongSealer, err := newSealer(otherSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range before {
		if _, _, err := wrongSealer.open(k.ID, k.Alg, k.PrivateKey); !errors.Is(err, ErrDecrypt) {
			t.Errorf("open(%s) with the wrong secret = %v; want ErrDecrypt", k.ID, err)
		}
		// A sealed key does not open under another key id (no swapping rows).
		if _, _, err := m.sealer.open(k.ID+"x", k.Alg, k.PrivateKey); !errors.Is(err, ErrDecrypt) {
			t.Errorf("open(%s) under another kid = %v; want ErrDecrypt", k.ID, err)
		}
		if bytes.Contains(k.PrivateKey, []byte("PRIVATE")) || bytes.Contains(k.PublicKey, []byte(`"d"`)) {
			t.Errorf("key %s stored in the clear", k.ID)
		}
	}

	// Secret rotation: the new secret with the old one in OldSecrets works,
	// and seals the current and next keys again under the new secret...
	rotated := testOptions(ES256, clock)
	rotated.Secret, rotated.OldSecrets = otherSecret, [][]byte{testSecret}
	m2 := newTestManager(t, store, rotated)
	if _, _, err := m2.Verify(t.Context(), token); err != nil {
		t.Errorf("Verify after secret rotation: %v", err)
	}
	for _, k := range store.snapshot() {
		if _, primary, err := m2.sealer.open(k.ID, k.Alg, k.PrivateKey); err != nil || !primary {
			t.Errorf("key %s after NewManager with a new secret: primary = %v, err = %v; want sealed under the new secret", k.ID, primary, err)
		}
	}
	// ...so the old secret can then be dropped.
	onlyNew := testOptions(ES256, clock)
	onlyNew.Secret = otherSecret
	m3 := newTestManager(t, store, onlyNew)
	if _, err := m3.Rotate(t.Context()); err != nil {
		t.Errorf("Rotate with only the new secret: %v", err)
	}
	// and the old secret alone no longer opens anything.
	if _, err := NewManager(t.Context(), store, testOptions(ES256, clock)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("NewManager with the dropped secret: error = %v; want ErrDecrypt", err)
	}
}

func TestNewManagerOptions(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"unknown alg", func(o *Options) { o.Alg = "HS256" }},
		{"alg none", func(o *Options) { o.Alg = "none" }},
		{"lowercase alg", func(o *Options) { o.Alg = "es256" }},
		{"short secret", func(o *Options) { o.Secret = []byte("short") }},
		{"short old secret", func(o *Options) { o.OldSecrets = [][]byte{[]byte("short")} }},
		{"no ttl", func(o *Options) { o.TokenTTL = 0 }},
		{"negative reload", func(o *Options) { o.ReloadInterval = -time.Second }},
	}
	for _, tt := range tests {
		opts := testOptions(ES256, clock)
		tt.edit(&opts)
		store := &memStore{}
		if _, err := NewManager(t.Context(), store, opts); err == nil {
			t.Errorf("NewManager(%s) = nil error; want an error", tt.name)
		}
		if len(store.snapshot()) != 0 {
			t.Errorf("NewManager(%s) wrote keys", tt.name)
		}
	}
	if _, err := NewManager(t.Context(), nil, testOptions(ES256, clock)); err == nil {
		t.Errorf("NewManager(nil store) = nil error")
	}
	// The zero Alg is ES256.
	m := newTestManager(t, &memStore{}, testOptions("", clock))
	if m.Alg() != ES256 {
		t.Errorf("default Alg() = %q; want ES256", m.Alg())
	}
}

func TestConcurrentInitialCreation(t *testing.T) {
	const replicas = 4
	for round := range 5 {
		store := &memStore{}
		// Hold the first ListKeys of every replica until all of them have
		// read the empty store, so each goes on to create keys.
		gate := make(chan struct{})
		var mu sync.Mutex
		n := 0
		store.listGate = func() {
			mu.Lock()
			n++
			first := n <= replicas
			if n == replicas {
				close(gate)
			}
			mu.Unlock()
			if first {
				<-gate
			}
		}

		managers := make([]*Manager, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				managers[i], errs[i] = NewManager(t.Context(), store, testOptions(EdDSA, newFakeClock()))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: NewManager %d: %v", round, i, err)
			}
		}
		cur, next := store.byState(storage.KeyCurrent), store.byState(storage.KeyNext)
		if len(cur) != 1 || len(next) != 1 || len(store.snapshot()) != 2 {
			t.Fatalf("round %d: store = %+v; want exactly one current and one next key", round, store.snapshot())
		}
		if got := store.updates.Load(); got != replicas {
			t.Errorf("round %d: %d UpdateKeys; want %d (every replica tried)", round, got, replicas)
		}
		tokens := make([]string, replicas)
		for i, m := range managers {
			tok, err := m.Sign(t.Context(), claimsFor(i))
			if err != nil {
				t.Fatal(err)
			}
			if kid := headerOf(t, tok)["kid"]; kid != cur[0].ID {
				t.Errorf("round %d: replica %d signs with %v; want the stored current key %s", round, i, kid, cur[0].ID)
			}
			tokens[i] = tok
		}
		for _, m := range managers {
			for _, tok := range tokens {
				if _, _, err := m.Verify(t.Context(), tok); err != nil {
					t.Errorf("round %d: cross-replica Verify: %v", round, err)
				}
			}
		}
	}
}

func TestUnknownKIDReloadIsRateLimited(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	a := newTestManager(t, store, testOptions(ES256, clock))
	b := newTestManager(t, store, testOptions(ES256, clock))

	// After one rotation by A, B already knows the new current key: it was
	// published as next.
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, err := a.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}
	lists := store.lists.Load()
	if _, _, err := b.Verify(t.Context(), tok); err != nil {
		t.Fatalf("B.Verify(token of the promoted next key): %v", err)
	}
	if store.lists.Load() != lists {
		t.Errorf("Verify of a known kid read the store")
	}

	// After a second rotation A signs with a key B has never seen: B
	// reloads once and accepts it.
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, err = a.Sign(t.Context(), claimsFor(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Verify(t.Context(), tok); err != nil {
		t.Fatalf("B.Verify(token of a key B had not loaded): %v", err)
	}
	if got := store.lists.Load() - lists; got != 1 {
		t.Errorf("store reads for an unknown kid = %d; want 1", got)
	}

	// A flood of unknown kids costs at most one reload every few seconds.
	forged := func(kid string) string {
		h := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, kid))
		return h + ".e30.c2ln"
	}
	clock.Advance(unknownKIDReloadEvery)
	lists = store.lists.Load()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_, _, err := b.Verify(t.Context(), forged(fmt.Sprint("nope-", i)))
			if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify(unknown kid) error = %v; want ErrUnknownKey", err)
			}
		})
	}
	wg.Wait()
	if got := store.lists.Load() - lists; got != 1 {
		t.Errorf("store reads for 50 unknown kids = %d; want 1", got)
	}
	clock.Advance(unknownKIDReloadEvery - time.Second)
	b.Verify(t.Context(), forged("again"))
	if got := store.lists.Load() - lists; got != 1 {
		t.Errorf("store reads within the rate limit = %d; want 1", got)
	}
	clock.Advance(time.Second)
	b.Verify(t.Context(), forged("later"))
	if got := store.lists.Load() - lists; got != 2 {
		t.Errorf("store reads after the rate limit = %d; want 2", got)
	}
}

func TestAlgChange(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	es := newTestManager(t, store, testOptions(ES256, clock))
	esToken, err := es.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}

	ed := newTestManager(t, store, testOptions(EdDSA, clock))
	if ed.Alg() != ES256 {
		t.Errorf("Alg() before any rotation = %q; want the current key's ES256", ed.Alg())
	}
	check := func(stage string, wantAlg string) string {
		t.Helper()
		if ed.Alg() != wantAlg {
			t.Errorf("%s: Alg() = %q; want %q", stage, ed.Alg(), wantAlg)
		}
		tok, err := ed.Sign(t.Context(), claimsFor(2))
		if err != nil {
			t.Fatal(err)
		}
		if got := headerOf(t, tok)["alg"]; got != wantAlg {
			t.Errorf("%s: token alg = %v; want %s", stage, got, wantAlg)
		}
		for _, tk := range []string{esToken, tok} {
			if _, _, err := ed.Verify(t.Context(), tk); err != nil {
				t.Errorf("%s: Verify: %v", stage, err)
			}
		}
		return tok
	}
	check("before rotation", ES256)
	if _, err := ed.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if next := store.byState(storage.KeyNext); len(next) != 1 || next[0].Alg != EdDSA {
		t.Errorf("next key after the first rotation = %+v; want one EdDSA key", next)
	}
	check("after one rotation", ES256)
	if _, err := ed.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	edToken := check("after two rotations", EdDSA)
	// The ES256 manager keeps verifying tokens of both algorithms.
	if err := es.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := es.Verify(t.Context(), edToken); err != nil {
		t.Errorf("ES256-configured replica Verify(EdDSA token): %v", err)
	}
}

func TestKeys(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	m := newTestManager(t, store, testOptions(ES256, clock))
	for range 3 {
		clock.Advance(time.Minute)
		if _, err := m.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := m.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var states []storage.KeyState
	for _, k := range infos {
		states = append(states, k.State)
		if k.ID == "" || k.Alg != ES256 || k.CreatedAt.IsZero() {
			t.Errorf("KeyInfo %+v incomplete", k)
		}
	}
	want := []storage.KeyState{storage.KeyCurrent, storage.KeyNext, storage.KeyRetired, storage.KeyRetired, storage.KeyRetired}
	if !slices.Equal(states, want) {
		t.Errorf("Keys states = %v; want %v", states, want)
	}
	if !infos[2].RetiredAt.After(infos[3].RetiredAt) {
		t.Errorf("retired keys not newest first: %v, %v", infos[2].RetiredAt, infos[3].RetiredAt)
	}
	body, err := json.Marshal(infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range store.snapshot() {
		enc := base64.StdEncoding.EncodeToString(k.PrivateKey)
		if bytes.Contains(body, []byte(enc[:20])) {
			t.Errorf("Keys JSON holds private key material")
		}
	}
	if bytes.Contains(body, []byte(`"activated_at":"0001`)) {
		t.Errorf("zero times not omitted: %s", body)
	}
}

func TestRotateWithoutNextKey(t *testing.T) {
	store := &memStore{}
	m := newTestManager(t, store, testOptions(EdDSA, newFakeClock()))
	old := store.byState(storage.KeyCurrent)[0]
	store.set([]storage.SigningKey{old})
	cur, err := m.Rotate(t.Context())
	if err != nil {
		t.Fatalf("Rotate without a next key: %v", err)
	}
	if cur.ID == old.ID {
		t.Errorf("Rotate kept %s current", old.ID)
	}
	if n := len(store.byState(storage.KeyNext)); n != 1 {
		t.Errorf("%d next keys after Rotate; want 1", n)
	}
	tok, err := m.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, kid, err := m.Verify(t.Context(), tok); err != nil || kid != cur.ID {
		t.Errorf("Verify = %q, %v; want %q", kid, err, cur.ID)
	}
}

func TestRotateRefusesUndecryptableNext(t *testing.T) {
	store := &memStore{}
	m := newTestManager(t, store, testOptions(EdDSA, newFakeClock()))
	keys := store.snapshot()
	for i := range keys {
		if keys[i].State == storage.KeyNext {
			keys[i].PrivateKey = bytes.Clone(keys[i].PrivateKey)
			keys[i].PrivateKey[len(keys[i].PrivateKey)-1] ^= 1
		}
	}
	store.set(keys)
	if _, err := m.Rotate(t.Context()); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Rotate with a corrupt next key: error = %v; want ErrDecrypt", err)
	}
	if got := store.snapshot(); !slices.EqualFunc(got, keys, func(a, b storage.SigningKey) bool { return a.ID == b.ID && a.State == b.State }) {
		t.Errorf("failed Rotate changed the store")
	}
}

func TestReloadFailureKeepsKeys(t *testing.T) {
	store := &memStore{}
	m := newTestManager(t, store, testOptions(ES256, newFakeClock()))
	tok, err := m.Sign(t.Context(), claimsFor(1))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database down")
	store.listErr.Store(&boom)
	if err := m.Reload(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Reload error = %v; want it to wrap the store's", err)
	}
	store.listErr.Store(nil)
	// A store that lost its current key does not replace the loaded set.
	store.set(store.byState(storage.KeyNext))
	if err := m.Reload(t.Context()); !errors.Is(err, ErrNoCurrentKey) {
		t.Errorf("Reload without a current key: error = %v; want ErrNoCurrentKey", err)
	}
	if _, err := m.Sign(t.Context(), claimsFor(2)); err != nil {
		t.Errorf("Sign after failed reloads: %v", err)
	}
	if _, _, err := m.Verify(t.Context(), tok); err != nil {
		t.Errorf("Verify after failed reloads: %v", err)
	}
}

func TestUpdateRetriesSerializationFailures(t *testing.T) {
	store := &memStore{updateErrs: []error{fmt.Errorf("pg: 40001: %w", storage.ErrSerialization)}}
	m := newTestManager(t, store, testOptions(EdDSA, newFakeClock()))
	if len(store.byState(storage.KeyCurrent)) != 1 {
		t.Fatalf("initial keys not created after a serialization failure")
	}
	boom := errors.New("disk full")
	store.updateErrs = []error{boom}
	if _, err := m.Rotate(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Rotate error = %v; want it to wrap the store's", err)
	}
}

func TestRunReloads(t *testing.T) {
	store := &memStore{}
	opts := Options{Alg: EdDSA, Secret: testSecret, TokenTTL: time.Minute, ReloadInterval: 10 * time.Millisecond}
	a := newTestManager(t, store, opts)
	b := newTestManager(t, store, opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		b.Run(ctx)
		close(done)
	}()
	cur, err := a.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.set.Load().current.id != cur.ID {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not pick up the rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after cancel")
	}
}

func TestConcurrentSignVerify(t *testing.T) {
	clock := newFakeClock()
	store := &memStore{}
	m := newTestManager(t, store, testOptions(ES256, clock))
	replica := newTestManager(t, store, testOptions(ES256, clock))
	ctx := t.Context()

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // rotations and reloads while tokens flow
		for range 20 {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := m.Rotate(ctx); err != nil {
				t.Errorf("Rotate: %v", err)
				return
			}
			if err := replica.Reload(ctx); err != nil {
				t.Errorf("Reload: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				claims := claimsFor(g*1000 + i)
				tok, err := m.Sign(ctx, claims)
				if err != nil {
					t.Errorf("Sign: %v", err)
					return
				}
				for _, v := range []*Manager{m, replica} {
					got, _, err := v.Verify(ctx, tok)
					if err != nil {
						t.Errorf("Verify: %v", err)
						return
					}
					if !bytes.Equal(got, claims) {
						t.Errorf("Verify returned %s; want %s", got, claims)
					}
				}
				if body, etag := m.JWKS(); len(body) == 0 || etag == "" {
					t.Errorf("empty JWKS")
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
}

// An id_token is signed by the current key with typ "JWT", verifies against
// the published JWK, and is refused by Verify: it never passes for an access
// token.
func TestSignIDToken(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			m := newTestManager(t, &memStore{}, testOptions(alg, newFakeClock()))
			set := m.set.Load()
			claims := claimsFor(3)
			tok, err := m.SignIDToken(t.Context(), claims)
			if err != nil {
				t.Fatalf("SignIDToken: %v", err)
			}
			want := map[string]any{"alg": alg, "kid": set.current.id, "typ": "JWT"}
			if h := headerOf(t, tok); fmt.Sprint(h) != fmt.Sprint(want) {
				t.Errorf("header = %v; want %v", h, want)
			}
			obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose cannot parse the id_token: %v", err)
			}
			if got, err := obj.Verify(set.current.jwk); err != nil || !bytes.Equal(got, claims) {
				t.Fatalf("go-jose Verify(id_token) = %q, %v; want the claims", got, err)
			}
			if _, _, err := m.Verify(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify(id_token) error = %v; want ErrInvalidToken", err)
			}
			if _, err := m.SignIDToken(t.Context(), []byte(`[1]`)); !errors.Is(err, ErrInvalidClaims) {
				t.Errorf("SignIDToken([1]) error = %v; want ErrInvalidClaims", err)
			}
		})
	}
}

// VerifyIDToken accepts what SignIDToken signed, by the current key or a
// retired one still published, and refuses access tokens, tokens of another
// key set and altered signatures.
func TestVerifyIDToken(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			m := newTestManager(t, &memStore{}, testOptions(alg, newFakeClock()))
			claims := claimsFor(4)
			tok, err := m.SignIDToken(t.Context(), claims)
			if err != nil {
				t.Fatalf("SignIDToken: %v", err)
			}
			got, kid, err := m.VerifyIDToken(t.Context(), tok)
			if err != nil || !bytes.Equal(got, claims) || kid != m.set.Load().current.id {
				t.Fatalf("VerifyIDToken = %q, %q, %v; want the claims and the current kid", got, kid, err)
			}
			if _, err := m.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, _, err := m.VerifyIDToken(t.Context(), tok); err != nil || !bytes.Equal(got, claims) {
				t.Errorf("VerifyIDToken after a rotation = %q, %v; want the claims", got, err)
			}

			access, err := m.Sign(t.Context(), claims)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.VerifyIDToken(t.Context(), access); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("VerifyIDToken(access token) error = %v; want ErrInvalidToken", err)
			}
			other := newTestManager(t, &memStore{}, testOptions(alg, newFakeClock()))
			foreign, err := other.SignIDToken(t.Context(), claims)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.VerifyIDToken(t.Context(), foreign); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("VerifyIDToken(another key set's id_token) error = %v; want ErrUnknownKey", err)
			}
			// The same header and claims with another key set's signature.
			i, j := strings.LastIndexByte(tok, '.'), strings.LastIndexByte(foreign, '.')
			forged := tok[:i] + foreign[j:]
			if _, _, err := m.VerifyIDToken(t.Context(), forged); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("VerifyIDToken(forged signature) error = %v; want ErrInvalidToken", err)
			}
		})
	}
}
