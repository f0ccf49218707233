package postgres

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/authd/authd/storage"
)

// memoryDenylist is a Denylist answering from memory, without a database.
func memoryDenylist() *Denylist {
	d := (&Store{now: time.Now}).NewDenylist()
	d.synced.Store(true)
	return d
}

// The memory copy keeps no strings: 100,000 revoked token ids take less
// than 64 bytes each once their strings are garbage (a map of strings and
// storage.Revocation values took about 600), and every one of them, and
// only they, are found.
func TestDenylistMemoryPerEntry(t *testing.T) {
	const n = 100_000
	d := memoryDenylist()
	exp := time.Now().Add(time.Hour)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		d.add(storage.Revocation{Kind: storage.RevokedJTI, Value: fmt.Sprintf("%036d", i), ExpiresAt: exp})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if per := float64(after.HeapAlloc-before.HeapAlloc) / n; per > 64 {
		t.Errorf("%.0f bytes of heap per entry; want at most 64", per)
	} else {
		t.Logf("%.1f bytes of heap per entry", per)
	}
	for i := range n {
		if ok, _ := d.IsRevoked(t.Context(), storage.TokenRef{JTI: fmt.Sprintf("%036d", i)}); !ok {
			t.Fatalf("entry %d not found", i)
		}
	}
	for _, ref := range []storage.TokenRef{
		{JTI: fmt.Sprintf("%036d", n)},
		{Family: fmt.Sprintf("%036d", 1)}, // the value of a jti entry, as another kind
		{Subject: fmt.Sprintf("%036d", 2)},
	} {
		if ok, _ := d.IsRevoked(t.Context(), ref); ok {
			t.Errorf("%+v revoked; no entry names it", ref)
		}
	}
	runtime.KeepAlive(d)
}

func BenchmarkDenylistIsRevoked(b *testing.B) {
	d := memoryDenylist()
	exp := time.Now().Add(time.Hour)
	for i := range 100_000 {
		d.add(storage.Revocation{Kind: storage.RevokedJTI, Value: fmt.Sprintf("%036d", i), ExpiresAt: exp})
	}
	ref := storage.TokenRef{JTI: "not-revoked-0123456789abcdef", Family: "family-0123456789abcdef", Subject: "0193b1c4-user", ClientID: "app", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := d.IsRevoked(b.Context(), ref); ok {
			b.Fatal("revoked")
		}
	}
}
