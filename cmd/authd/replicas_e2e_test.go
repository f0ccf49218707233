package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authd/authd/storage/storagetest"
)

// TestReplicas runs two authd processes on one PostgreSQL and one Redis, as
// behind a load balancer: tokens move between them, a revocation on one is
// seen by the other at once, concurrent refreshes across both let at most
// one win, and a key rotated on one verifies on the other.
func TestReplicas(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	redisURL, prefix := storagetest.RedisURL(t)
	extra := map[string]string{"AUTHD_REDIS_URL": redisURL, "AUTHD_REDIS_KEY_PREFIX": prefix}
	b := backend{name: "postgres+redis", dsn: func(testing.TB) string { return dsn }, extra: func(testing.TB) map[string]string { return extra }}
	a := newFixture(t, b, nil)
	varsB := envFor(t, dsn, extra)
	varsB["AUTHD_ISSUER"] = a.vars["AUTHD_ISSUER"] // one issuer behind the load balancer
	bi := start(t, varsB)
	other := *a
	other.instance = bi

	// A token from A introspects on B; a refresh token from A rotates on B.
	at, rt := a.login(a.app, "alice", userPassword)
	if got := other.introspect(a.rs, at); got["active"] != true {
		t.Fatalf("A's token on B: %v", got)
	}
	code, m := other.refresh(a.app, rt)
	if code != http.StatusOK {
		t.Fatalf("A's refresh token on B: %d %v", code, m)
	}
	at2, rt2 := str(m, "access_token"), str(m, "refresh_token")

	// Revocation on B is seen by A as soon as PostgreSQL delivers B's
	// notification: milliseconds (the bound is a second). The refresh token,
	// a row, is dead on A at once.
	if code, _, m := other.post("/oauth2/revoke", &a.app, url.Values{"token": {rt2}}); code != http.StatusOK {
		t.Fatalf("revoke on B: %d %v", code, m)
	}
	revoked := time.Now()
	for a.introspect(a.rs, at2)["active"] != false {
		if time.Since(revoked) > time.Second {
			t.Fatal("token revoked on B still active on A after 1 s")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("A saw B's revocation after %v", time.Since(revoked))
	if code, _ := a.refresh(a.app, rt2); code != http.StatusBadRequest {
		t.Errorf("refresh token revoked on B works on A: %d", code)
	}

	// Concurrent refreshes of one token, split across the replicas: all
	// answer the one successor (the interval runs on PostgreSQL's clock).
	_, rt = a.login(a.app, "alice", userPassword)
	checkConcurrentRefresh(t, []*instance{a.instance, bi}, a.app, rt, 50)

	// A key rotated through A signs new tokens that B verifies.
	createUser(t, a.vars, "ops", "ops@example.org", "operations pass phrase 1", "admin")
	adminAT, _ := a.login(a.app, "ops", "operations pass phrase 1")
	before, _ := a.login(a.app, "alice", userPassword)
	if code, m := a.api("POST", "/api/v1/admin/keys/rotate", adminAT, nil); code != http.StatusOK {
		t.Fatalf("rotate on A: %d %v", code, m)
	}
	fresh, _ := a.login(a.app, "alice", userPassword)
	hdr, _ := a.verifyJWT(fresh)
	oldHdr, _ := a.verifyJWT(before)
	if hdr.KeyID == oldHdr.KeyID {
		t.Fatalf("A still signs with the old key")
	}
	if got := other.introspect(a.rs, fresh); got["active"] != true {
		t.Errorf("B does not accept A's token from the new key: %v", got)
	}
	if got := other.introspect(a.rs, before); got["active"] != true {
		t.Errorf("B rejects a token of the retired key: %v", got)
	}
}
