//go:build linux

package identity

import (
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// cpuTime is the process's user+system CPU time: unlike wall time it does not
// grow while other processes hold the cores.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestFailuresCostTheSame checks that every failed-login path runs one
// argon2id verification with the real parameters: an unknown user, a locked
// and a disabled account cost about what a wrong password costs.
func TestFailuresCostTheSame(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes with the production parameters")
	}
	f := newFixture(t, Options{Params: DefaultParams(), LockoutThreshold: 1000, LockoutDuration: time.Minute})
	f.createAlice(t)
	for _, name := range []string{"lena", "dora"} {
		u, err := f.svc.CreateUser(t.Context(), NewUser{Username: name, Email: name + "@example.com", Password: alicePassword}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.UpdateUser(t.Context(), u.ID, func(x *storage.User) error {
			x.Disabled = name == "dora"
			if name == "lena" {
				x.LockedUntil = f.now.Add(time.Hour)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	paths := []struct{ name, login, password string }{
		{"wrong password", "alice", "not the password at all"},
		{"unknown user", "mallory", "not the password at all"},
		{"locked", "lena", alicePassword},
		{"disabled", "dora", alicePassword},
		{"over-long password", "alice", string(make([]byte, 2000))},
	}
	const rounds = 5
	median := map[string]time.Duration{}
	for _, p := range paths {
		var samples []time.Duration
		for range rounds {
			start := cpuTime(t)
			_, err := f.svc.Authenticate(t.Context(), p.login, p.password, meta)
			samples = append(samples, cpuTime(t)-start)
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("%s: Authenticate = %v; want ErrInvalidCredentials", p.name, err)
			}
		}
		slices.Sort(samples)
		median[p.name] = samples[rounds/2]
	}
	ref := median["wrong password"]
	t.Logf("median CPU per failed login: %v", median)
	for name, d := range median {
		if d < ref/2 || d > ref*2 {
			t.Errorf("%s costs %v of CPU; a wrong password costs %v: want within a factor of 2", name, d, ref)
		}
	}
}
