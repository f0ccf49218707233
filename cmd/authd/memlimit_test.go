package main

import (
	"io"
	"log/slog"
	"math"
	"testing"

	"github.com/authd/authd/config"
)

func TestMemoryLimit(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name  string
		vars  map[string]string
		limit string
		want  int64 // -1: not set
	}{
		{"default", nil, config.DefaultMemoryLimit, 72 << 20},
		{"set", nil, "1GiB", 1 << 30},
		{"off", nil, "0", -1},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "200MiB"}, "1GiB", -1},
	} {
		got := int64(-1)
		e := &env{stdout: io.Discard, stderr: io.Discard, lookupEnv: lookup(c.vars),
			setMemoryLimit: func(n int64) int64 { got = n; return math.MaxInt64 }}
		cfg := config.Defaults()
		cfg.MemoryLimit = c.limit
		e.applyMemoryLimit(cfg, quiet)
		if got != c.want {
			t.Errorf("%s: memory limit set to %d; want %d", c.name, got, c.want)
		}
	}
}
