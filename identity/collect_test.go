package identity

import (
	"runtime/metrics"
	"testing"
)

func forcedCollections() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A hash of at least collectAboveKiB is followed by a forced collection,
// unless Options.NoCollection turns it off (a process without a memory
// limit).
func TestCollectionAfterHash(t *testing.T) {
	params := Params{Memory: collectAboveKiB, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, tt := range []struct {
		noCollection bool
		want         uint64
	}{{false, 3}, {true, 0}} {
		f := newFixture(t, Options{Params: params, NoCollection: tt.noCollection})
		before := forcedCollections()
		for range 3 {
			if _, err := f.svc.hash(t.Context(), "a long enough pass phrase"); err != nil {
				t.Fatal(err)
			}
		}
		if got := forcedCollections() - before; got != tt.want {
			t.Errorf("NoCollection %t: %d forced collections after 3 hashes; want %d", tt.noCollection, got, tt.want)
		}
	}
}
