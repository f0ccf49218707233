//go:build linux

package identity

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestFailuresCostTheSame checks that every failed-login path does the same
// hashing work: one argon2id computation with the real parameters, plus,
// once a bcrypt hash is in use, bcrypt work of the highest cost. An unknown
// user, a locked and a disabled account, and accounts with imported bcrypt
// hashes (of the highest cost and a lower one) cost what a wrong password
// costs.
func TestFailuresCostTheSame(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes with the production parameters")
	}
	// Cost 9 (about argon2id's time) keeps the test short; TestTimingMedians
	// measures cost 10.
	for _, bcryptCost := range []int{0, 9} {
		t.Run(fmt.Sprintf("bcrypt cost %d", bcryptCost), func(t *testing.T) {
			f := newFixture(t, Options{Params: DefaultParams(), LockoutThreshold: 1 << 30, LockoutDuration: time.Minute})
			f.createAlice(t)
			paths := append(failurePaths(t, f, bcryptCost),
				failurePath{"over-long password", "alice", string(make([]byte, 2000))})
			if bcryptCost != 0 {
				paths = append(paths, failurePath{"over-long password (bcrypt)", fmt.Sprintf("bcrypt%d", bcryptCost), strings.Repeat("x", 100)})
			}
			// The least CPU of several interleaved rounds: contention from
			// other processes (go test runs packages side by side; on a VM,
			// time the host takes from the CPU is charged to the process)
			// only ever adds CPU time, so the minimum is the estimate it
			// disturbs least. Under heavy contention 7 rounds can leave one
			// path's minimum inflated: more rounds follow, up to 21, until
			// every path is within range (a path that really costs more or
			// less never gets there).
			const minRounds, maxRounds = 7, 21
			samples := map[string][]time.Duration{}
			var least map[string]time.Duration
			for round := 1; round <= maxRounds; round++ {
				for _, p := range paths { // interleaved, so that drift hits every path alike
					start := cpuTime(t)
					_, err := f.svc.Authenticate(t.Context(), p.login, p.password, meta)
					samples[p.name] = append(samples[p.name], cpuTime(t)-start)
					if !errors.Is(err, ErrInvalidCredentials) {
						t.Fatalf("%s: Authenticate = %v; want ErrInvalidCredentials", p.name, err)
					}
				}
				if round >= minRounds {
					least = minima(samples)
					if len(outliers(least)) == 0 {
						t.Logf("least CPU per failed login after %d rounds: %v", round, least)
						break
					}
				}
			}
			ref := least[referencePath]
			for _, name := range outliers(least) {
				t.Errorf("%s costs %v of CPU; a wrong password costs %v: want within 25%%", name, least[name], ref)
			}
		})
	}
}

// referencePath is the failure the others are compared with.
const referencePath = "wrong password (argon2id)"

func minima(samples map[string][]time.Duration) map[string]time.Duration {
	least := map[string]time.Duration{}
	for name, s := range samples {
		least[name] = slices.Min(s)
	}
	return least
}

// outliers names the paths whose cost is not within 25 % of referencePath's.
func outliers(least map[string]time.Duration) []string {
	ref := least[referencePath]
	var out []string
	for name, d := range least {
		if d < ref*3/4 || d > ref*5/4 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestTimingMedians measures the wall and CPU time of each failed-login
// path, N times each (interleaved), on SQLite and PostgreSQL, with and
// without an imported bcrypt account of cost 10, and logs the medians. It
// takes minutes: set AUTHD_TIMING_SAMPLES=N to run it, and -v to see them.
func TestTimingMedians(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AUTHD_TIMING_SAMPLES"))
	if n <= 0 {
		t.Skip("set AUTHD_TIMING_SAMPLES (e.g. 500) to measure")
	}
	for _, backend := range backends {
		for _, bcryptCost := range []int{0, 10} {
			t.Run(fmt.Sprintf("%s/bcrypt cost %d", backend, bcryptCost), func(t *testing.T) {
				f := newFixtureOn(t, backend, Options{Params: DefaultParams(), LockoutThreshold: 1 << 30, LockoutDuration: time.Minute})
				f.createAlice(t)
				paths := failurePaths(t, f, bcryptCost)
				wall := map[string][]time.Duration{}
				cpu := map[string][]time.Duration{}
				order := slices.Clone(paths)
				for range n {
					// Each round in a new order, so that nothing periodic (the
					// GC, which argon2id's 19 MiB allocations drive) favours a path.
					rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
					for _, p := range order {
						c0, w0 := cpuTime(t), time.Now()
						_, err := f.svc.Authenticate(t.Context(), p.login, p.password, meta)
						wall[p.name] = append(wall[p.name], time.Since(w0))
						cpu[p.name] = append(cpu[p.name], cpuTime(t)-c0)
						if !errors.Is(err, ErrInvalidCredentials) {
							t.Fatalf("%s: Authenticate = %v; want ErrInvalidCredentials", p.name, err)
						}
					}
				}
				q := func(s []time.Duration, p float64) time.Duration {
					slices.Sort(s)
					return s[int(p*float64(len(s)-1))]
				}
				for _, p := range paths {
					w, c := wall[p.name], cpu[p.name]
					t.Logf("%-28s wall median %7.2f ms (p10 %7.2f, p90 %7.2f)  CPU median %7.2f ms", p.name,
						ms(q(w, 0.5)), ms(q(w, 0.1)), ms(q(w, 0.9)), ms(q(c, 0.5)))
				}
			})
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
