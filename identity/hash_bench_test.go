package identity

import "testing"

// BenchmarkHashParallel hashes on every CPU at once (GOMAXPROCS goroutines):
// its ns/op is the machine's real argon2id capacity, which memory bandwidth
// keeps below CPUs / BenchmarkHash's time per hash. It bounds the password
// grant, since at most GOMAXPROCS hashes run at once (MaxConcurrentHashes).
func BenchmarkHashParallel(b *testing.B) {
	h := NewHasher(DefaultParams())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash("correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
