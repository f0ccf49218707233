package main

import (
	"io"
	"log/slog"
	"math"
	"testing"

	"github.com/authd/authd/config"
)

// TestMemoryLimit: AUTHD_MEMORY_LIMIT sets the soft limit unless GOMEMLIMIT
// did; while a limit is in effect GOGC becomes gcPercentUnderLimit unless
// the operator set GOGC; without a limit it is left alone.
func TestMemoryLimit(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name     string
		vars     map[string]string
		runtime  int64 // the limit the runtime has from GOMEMLIMIT; MaxInt64 for none
		limit    string
		want     int64 // -1: not set
		wantGOGC int   // 0: not set
	}{
		{"default", nil, math.MaxInt64, config.DefaultMemoryLimit, 72 << 20, gcPercentUnderLimit},
		{"set", nil, math.MaxInt64, "1GiB", 1 << 30, gcPercentUnderLimit},
		{"off", nil, math.MaxInt64, "0", -1, 0},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "200MiB"}, 200 << 20, "1GiB", -1, gcPercentUnderLimit},
		{"GOMEMLIMIT off", map[string]string{"GOMEMLIMIT": "off"}, math.MaxInt64, "1GiB", -1, 0},
		{"GOGC wins", map[string]string{"GOGC": "100"}, math.MaxInt64, config.DefaultMemoryLimit, 72 << 20, 0},
	} {
		got, gotGOGC, cur := int64(-1), 0, c.runtime
		e := &env{stdout: io.Discard, stderr: io.Discard, lookupEnv: lookup(c.vars),
			setMemoryLimit: func(n int64) int64 {
				old := cur
				if n >= 0 {
					got, cur = n, n
				}
				return old
			},
			setGCPercent: func(p int) int { gotGOGC = p; return 100 }}
		cfg := config.Defaults()
		cfg.MemoryLimit = c.limit
		e.applyMemoryLimit(cfg, quiet)
		if got != c.want {
			t.Errorf("%s: memory limit set to %d; want %d", c.name, got, c.want)
		}
		if gotGOGC != c.wantGOGC {
			t.Errorf("%s: GOGC set to %d; want %d", c.name, gotGOGC, c.wantGOGC)
		}
	}
}
