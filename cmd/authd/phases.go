package main

import (
	"log/slog"
	"time"
)

// phases times serve's start-up, one phase after the other, and logs each
// at debug (AUTHD_LOG_LEVEL=debug shows where start-up time goes).
type phases struct {
	log   *slog.Logger
	start time.Time
	last  time.Time
}

func newPhases(log *slog.Logger, start time.Time) *phases {
	return &phases{log: log, start: start, last: start}
}

// done ends the phase that began at the previous done (or at start).
func (p *phases) done(name string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.log.Debug("start-up phase", "phase", name, "duration_ms", ms(now.Sub(p.last)), "since_start_ms", ms(now.Sub(p.start)))
	p.last = now
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
