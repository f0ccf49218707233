package oauth

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/storage/sqlite"
)

// The refresh-token HMAC is keyed with a key derived from the secret by
// HKDF, not with the secret's first bytes; tokens keyed the old way (by an
// earlier version) still validate until they expire.
func TestRefreshKeyIsDerived(t *testing.T) {
	ctx := t.Context()
	secret := []byte("refresh-key-test-secret-0123456789abcdef")
	st, err := sqlite.New(ctx, filepath.Join(t.TempDir(), "authd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	km, err := keys.NewManager(ctx, st, keys.Options{Secret: secret, TokenTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := NewSecretHasher(secret)
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(st, nil)
	p, err := New(Options{
		Issuer: "https://authd.test", AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, RefreshFamilyTTL: time.Hour,
		Secret: secret, Store: st, Denylist: st, ProofReplay: st, Signer: km, Recorder: rec, Hasher: hasher,
		Auth: identity.NewService(st, rec, identity.Options{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	req := &fosite.Request{Session: &Session{}}
	strategy := func(key []byte) *hmac.HMACStrategy {
		return &hmac.HMACStrategy{Config: &fosite.Config{GlobalSecret: key}}
	}

	token, _, err := p.refresh.GenerateRefreshToken(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	bare, ok := trimRefreshPrefix(token)
	if !ok {
		t.Fatalf("refresh token %q lacks the authd_rt_ prefix", token[:12])
	}
	if err := strategy(refreshKey(secret)).Validate(ctx, bare); err != nil {
		t.Errorf("new token under the derived key: %v", err)
	}
	if err := strategy(secret[:32]).Validate(ctx, bare); err == nil {
		t.Error("new token validates under the secret's raw first 32 bytes; want the derived key only")
	}

	legacy, _, err := strategy(secret[:32]).Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.refresh.ValidateRefreshToken(ctx, req, refreshTokenPrefix+legacy); err != nil {
		t.Errorf("token keyed the old way no longer validates: %v", err)
	}
	forged := "x" + legacy[1:]
	if legacy[0] == 'x' { // one token in 64 starts with it: change it all the same
		forged = "y" + legacy[1:]
	}
	if err := p.refresh.ValidateRefreshToken(ctx, req, refreshTokenPrefix+forged); err == nil {
		t.Error("a forged token validates")
	}
}
